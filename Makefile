# The two commands of the README: `make run` and `make test`. Both create the venv when needed.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= examples/site.toml
PYTEST_ARGS ?=

# Debian 12 packages the tests drive (real clients and the servers we compare against).
DEBIAN_TOOLS := isc-dhcp-client udhcpc busybox bind9-dnsutils tftp-hpa curl iproute2 \
	kea-admin kea-dhcp4-server dnsmasq-base nsd dnsperf postgresql knot-dnsutils systemd \
	tcpdump atftp kea-dhcp6-server ndisc6 dhcpcd-base bind9-utils \
	chromium optipng redis-server

.PHONY: run test lint venv debian-tools clean man screenshots

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		[ "$$(id -u)" = 0 ] && apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv && \
		$(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# As root (with iproute2) the daemon runs in the lab: namespace ddi-site serving DHCP and DNS on
# ddi0, and a client namespace ddi-client to try them from (examples/lab.toml). Otherwise, or
# with LAB=no, it runs here with examples/site.toml: the API and the store, DHCP off.
LAB ?= $(shell [ "$$(id -u)" = 0 ] && command -v ip >/dev/null && echo yes || echo no)
LAB_CONFIG ?= examples/lab.toml
LAB_CLIENT_MAC := 52:54:00:00:00:10

run: venv
	@mkdir -p var/lib var/run
	@echo "ddi: in another shell:"
	@echo "  export DDI_SOCKET=$(CURDIR)/var/run/ddi.sock PATH=$(CURDIR)/$(VENV)/bin:\$$PATH"
	@echo "  ddi status"
ifeq ($(LAB),yes)
	@echo "  ddi reserve add --mac $(LAB_CLIENT_MAC) --ip 198.18.0.10 --hostname client1"
	@echo "  ip netns exec ddi-client dhclient -sf /bin/true -lf /tmp/ddi-lab.leases -1 -v eth0"
	@echo "  ip netns exec ddi-client rdisc6 eth0"
	trap '$(PY) -m ddi.lab down' EXIT; $(PY) -m ddi.lab up && \
		ip -n ddi-client link set eth0 address $(LAB_CLIENT_MAC) && \
		ip netns exec ddi-site $(CURDIR)/$(VENV)/bin/ddi serve --config $(LAB_CONFIG)
else
	@echo "  ddi token add me --scope write    # then sign in at https://127.0.0.1:8053/ (self-signed)"
	exec $(VENV)/bin/ddi serve --config $(CONFIG)
endif

# -bb turns every bytes/str comparison into an error (pyproject's filterwarnings lets the one
# inside dnslib's DNSLabel through: it is not ours to fix).
test: venv debian-tools nautobot
	$(PY) -bb -m pytest $(PYTEST_ARGS)

# The README's console pictures, taken by the browser tests themselves (a plain test run keeps
# its screenshots in a temporary folder).
screenshots: venv debian-tools
	DDI_SCREENSHOTS=$(CURDIR)/docs/screenshots $(PY) -bb -m pytest -q tests/browser
# Nautobot for the central IPAM tests (tests/nautobot/lab.py), in its own venv: its Django
# and library pins are not ours. An exact pin, so every lab (and its cached migrated database,
# .nautobot/cache/) is the same Nautobot. About 600 MB; a minute or two to install.
NAUTOBOT_VERSION := 3.2.7
NAUTOBOT_VENV := .nautobot/venv
$(NAUTOBOT_VENV)/.installed-$(NAUTOBOT_VERSION):
	rm -rf $(NAUTOBOT_VENV)
	$(PYTHON) -m venv $(NAUTOBOT_VENV)
	for attempt in 1 2 3; do \
		$(NAUTOBOT_VENV)/bin/pip install --quiet --disable-pip-version-check \
			'nautobot==$(NAUTOBOT_VERSION)' && exit 0; \
		echo "nautobot: attempt $$attempt failed; retrying"; sleep $$((attempt * 15)); \
	done; exit 1
	touch $@

.PHONY: nautobot
nautobot: $(NAUTOBOT_VENV)/.installed-$(NAUTOBOT_VERSION)

# The man page and shell completions under share/ (checked in, installed by pip as data files):
# regenerate after changing a command; tests/unit/test_cli_help.py fails until then.
man: venv
	$(PY) -m ddi.cli.manpage

lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Installs what is missing, with retries (mirrors flake); without root it only says so, and the
# tests that need a missing tool skip with the reason (under CI=true they fail instead).
debian-tools:
	@missing=$$(for p in $(DEBIAN_TOOLS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -z "$$missing" ]; then echo "debian-tools: all installed"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "debian-tools: not root, not installing:" $$missing; exit 0; fi; \
	for attempt in 1 2 3 4; do \
		if apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends $$missing; then exit 0; fi; \
		echo "debian-tools: attempt $$attempt failed; retrying"; sleep $$((attempt * 15)); \
	done; \
	echo "debian-tools: could not install:" $$missing; exit 1

# Side-by-side benchmarks against NSD, dnsmasq and Kea (root: network namespaces; about
# 20 minutes). BENCH_ARGS="--profile smoke" checks the harness in seconds; see bench/run.py.
BENCH_ARGS ?=
.PHONY: bench
bench: venv debian-tools
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	$(PY) -m bench $(BENCH_ARGS)

# Fuzz every wire entry point (fuzz/): 10^6 inputs per target with atheris when it installs
# (the `fuzz` extra), else hypothesis-driven mutation of the seeds; prints inputs, crashes and
# the slowest input per target. FUZZ_ARGS="--target dns --runs 100000" narrows it.
FUZZ_ARGS ?=
.PHONY: fuzz
fuzz: venv
	@if $(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,fuzz]'; then \
		echo "fuzz: atheris installed: coverage-guided"; \
	else echo "fuzz: atheris does not install here: hypothesis-driven mutation instead"; fi
	$(PY) -m fuzz $(FUZZ_ARGS)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
