"""The boot-script template language: ``{name}`` fields filled per client; ``${name}`` is left
alone for iPXE to expand. Pure: both the config (to refuse unknown fields) and netboot use it."""

from __future__ import annotations

import re
from collections.abc import Mapping

TEMPLATE_NAMES = frozenset(
    {"mac", "ip", "hostname", "fqdn", "domain", "profile", "server", "base_url", "arch"}
)
"""Names a template may use as ``{name}``."""
_TEMPLATE_FIELD = re.compile(r"(?<!\$)\{([A-Za-z_]+)\}")


def template_fields(template: str) -> set[str]:
    """The ``{name}`` fields a template uses (to refuse unknown ones at config time)."""
    return {m.group(1) for m in _TEMPLATE_FIELD.finditer(template)}


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` fields; a field without a value is kept as written."""
    return _TEMPLATE_FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), template)
