"""Settings read once at startup: the market's timings are validated like every other setting,
and a bad value stops the server with the setting's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve.settings import ImproperlyConfiguredError, Settings

BASE = {"AEX_OPERATOR_KEY": "k" * 40, "AEX_JWT_SECRET": "s" * 40}


def test_the_timings_default_and_read_the_environment(tmp_path: Path) -> None:
    defaults = Settings.from_env(data_dir=tmp_path, env=BASE)
    assert (defaults.window_poll_ms, defaults.webhook_backoff_ms) == (200, 1_000)
    assert defaults.webhook_lease_ms == 60_000
    env = {
        **BASE,
        "AEX_WINDOW_POLL_MS": "50",
        "AEX_WEBHOOK_BACKOFF_MS": "20",
        "AEX_WEBHOOK_LEASE_MS": "400",
    }
    chosen = Settings.from_env(data_dir=tmp_path, env=env)
    assert (chosen.window_poll_ms, chosen.webhook_backoff_ms, chosen.webhook_lease_ms) == (
        50,
        20,
        400,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AEX_WINDOW_POLL_MS", "0"),
        ("AEX_WINDOW_POLL_MS", "soon"),
        ("AEX_WEBHOOK_BACKOFF_MS", "0"),
        ("AEX_WEBHOOK_LEASE_MS", "99"),
        ("AEX_WEBHOOK_LEASE_MS", "3600001"),
        ("AEX_WEBHOOK_ALLOW_PRIVATE", "yes"),
        ("AEX_WEBHOOK_HOSTS", "rebind.test=not-an-address"),
        ("AEX_WEBHOOK_HOSTS", "127.0.0.1=127.0.0.1"),
        ("AEX_WEBHOOK_DNS", "maybe"),
    ],
)
def test_a_bad_timing_is_refused_at_startup_by_name(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ImproperlyConfiguredError, match=name):
        Settings.from_env(data_dir=tmp_path, env={**BASE, name: value})


def test_the_webhook_endpoint_policy_defaults_to_public_addresses_and_system_dns(
    tmp_path: Path,
) -> None:
    defaults = Settings.from_env(data_dir=tmp_path, env=BASE)
    assert (defaults.webhook_allow_private, defaults.webhook_dns) == (False, "system")
    env = {
        **BASE,
        "AEX_WEBHOOK_ALLOW_PRIVATE": "1",
        "AEX_WEBHOOK_HOSTS": "a.test=10.0.0.1|::1, b.test=127.0.0.1",
        "AEX_WEBHOOK_DNS": "off",
    }
    chosen = Settings.from_env(data_dir=tmp_path, env=env)
    assert chosen.webhook_allow_private
    assert dict(chosen.webhook_hosts) == {"a.test": ("10.0.0.1", "::1"), "b.test": ("127.0.0.1",)}
    policy = chosen.endpoint_policy()
    assert policy.allow_private
    assert policy.pin("http://nowhere.test/") == "dns_failed"  # DNS off: no lookup at all
