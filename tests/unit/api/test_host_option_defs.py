"""A reservation's options by definition through the admin API: given by name and value,
stored encoded on the host (so they sync with it), replaced by a PATCH, refused saying why."""

from __future__ import annotations

import pytest

from tests.unit.api.test_host_writes import HOST, Client, call, client, context

__all__ = ["client", "context"]  # the fixtures this module uses


@pytest.mark.asyncio
async def test_options_are_encoded_stored_and_replaced(client: Client) -> None:
    body = {**HOST, "dhcp": {"options": [
        {"name": "tftp-server-address", "value": "198.18.0.5, 198.18.0.6"},
        {"code": 66, "value": "tftp.site.example"},
    ]}}  # fmt: skip
    status, added = await call(client, "POST", "/v1/hosts", body)
    assert status == 201, added
    assert added["host"]["dhcp"]["options"] == [
        {"code": 150, "data": "c6120005c6120006", "name": "tftp-server-address"},
        {"code": 66, "data": b"tftp.site.example".hex(), "name": "tftp-server-name"},
    ]
    status, shown = await call(client, "GET", "/v1/hosts/web1")
    assert shown["host"]["dhcp"] == added["host"]["dhcp"]
    patch = {"fields": {"dhcp": {"options": [{"name": "wpad", "value": "http://w/"}]}}}
    status, changed = await call(client, "PATCH", "/v1/hosts/web1", patch)
    assert status == 200, changed
    assert changed["host"]["dhcp"]["options"] == [
        {"code": 252, "data": b"http://w/".hex(), "name": "wpad"}
    ]


@pytest.mark.asyncio
async def test_bad_options_are_refused_naming_the_field(client: Client) -> None:
    for option, why in [
        ({"name": "tftp-server-address", "value": "198.18.0.300"}, "not an IPv4 address"),
        ({"name": "nope", "value": "1"}, "no option is named 'nope'"),
        ({"code": 53, "value": "1"}, "set by the server itself"),
        ({"name": "wpad", "value": "x", "extra": 1}, "expected name (or code) and value"),
    ]:
        body = {**HOST, "dhcp": {"options": [option]}}
        status, answer = await call(client, "POST", "/v1/hosts", body)
        assert status == 422, answer
        assert why in str(answer), answer
        assert "options" in str(answer)
