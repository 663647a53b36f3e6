"""--anonymous-viewing and --cookie-secure: validated and named in errors; auto means loopback only."""
from __future__ import annotations

import pytest

from auth.web import anonymous_viewing_enabled
from processes.settings import SettingsError, from_args


@pytest.mark.parametrize("host, expected", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("oee.plant.local", False), ("", False),
])
def test_auto_allows_anonymous_viewing_only_on_loopback(host, expected):
    assert anonymous_viewing_enabled(from_args(["--host", host])) is expected


def test_on_and_off_win_over_the_address(monkeypatch):
    assert anonymous_viewing_enabled(from_args(["--host", "0.0.0.0", "--anonymous-viewing", "on"])) is True
    assert anonymous_viewing_enabled(from_args(["--anonymous-viewing", "off"])) is False
    monkeypatch.setenv("OEE_ANONYMOUS_VIEWING", "off")
    assert anonymous_viewing_enabled(from_args([])) is False


@pytest.mark.parametrize("args, env, message", [
    (["--anonymous-viewing", "maybe"], {}, "--anonymous-viewing [OEE_ANONYMOUS_VIEWING]: 'maybe'; use auto, on or off"),
    ([], {"OEE_ANONYMOUS_VIEWING": "yes"}, "--anonymous-viewing [OEE_ANONYMOUS_VIEWING]: 'yes'"),
    (["--cookie-secure", "always"], {}, "--cookie-secure [OEE_COOKIE_SECURE]: 'always'; use auto, on or off"),
])
def test_bad_values_are_named(monkeypatch, args, env, message):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SettingsError) as err:
        from_args(args)
    assert str(err.value).startswith(message)
