"""Numbers from the wire and from the config: ASCII digits only, length-capped before int()."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddi.config import parse_config
from ddi.errors import ConfigError
from ddi.numbers import MAX_DIGITS, decimal


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("1468", 1468), ("007", 7), ("9" * MAX_DIGITS, int("9" * MAX_DIGITS))],
)
def test_ascii_digits_are_numbers(text: str, value: int) -> None:
    assert decimal(text) == value


@pytest.mark.parametrize(
    "text",
    ["", "9" * (MAX_DIGITS + 1), "9" * 5000, "²", "١٤٦٨", "+1", "-1", " 1", "1 ", "1_000", "0x10"],
)
def test_anything_else_is_not(text: str) -> None:
    assert decimal(text) is None


@given(st.text(max_size=40))
def test_never_raises_and_agrees_with_int_on_what_it_accepts(text: str) -> None:
    value = decimal(text)
    if value is not None:
        assert value == int(text)
        assert text.isascii()


def test_cap_is_checked_before_conversion() -> None:
    # int() raises ValueError past 4,300 digits; decimal() never gets there.
    assert decimal("1" * 100_000, max_digits=5) is None


@pytest.mark.parametrize("key", ["²", "١٢", "99999", "1" * 5000])
def test_config_arch_key_that_is_not_a_number_is_a_config_error(key: str) -> None:
    """``"²".isdigit()`` is true and ``int("²")`` raises: the key used to crash the loader."""
    text = f"""
[site]
id = "s1"
domain = "site.example"

[boot]
root = "tftp"

[boot.profiles.rack.arch]
"{key}" = "x.efi"
"""
    with pytest.raises(ConfigError, match="option 93 number"):
        parse_config(tomllib.loads(text), path=Path("/etc/ddi/site.toml"))
