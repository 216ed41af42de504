"""The lab itself: Nautobot answers on loopback with the token, refuses without it, and comes
back after its web server is stopped."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.nautobot.lab import NautobotLab


def test_status_answers_with_the_token(nautobot_running: NautobotLab) -> None:
    status = nautobot_running.api("GET", "/api/status/")
    assert isinstance(status, dict)
    assert status["nautobot-version"] == nautobot_running.version


def test_api_refuses_without_a_token(nautobot_running: NautobotLab) -> None:
    request = urllib.request.Request(
        nautobot_running.url + "/api/ipam/prefixes/", headers={"Accept": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    caught.value.close()
    assert caught.value.code == 403


def test_server_stops_and_starts(nautobot_running: NautobotLab) -> None:
    nautobot_running.stop_server()
    with pytest.raises(urllib.error.URLError, match="refused"):
        nautobot_running.api("GET", "/api/status/")
    nautobot_running.start_server()
    assert isinstance(nautobot_running.api("GET", "/api/status/"), dict)
