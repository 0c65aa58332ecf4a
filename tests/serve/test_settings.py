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
        ("AEX_SQLITE_BUSY_TIMEOUT_S", "0"),
        ("AEX_SQLITE_BUSY_TIMEOUT_S", "31"),
        ("AEX_SQLITE_BUSY_TIMEOUT_S", "soon"),
    ],
)
def test_a_bad_timing_is_refused_at_startup_by_name(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ImproperlyConfiguredError, match=name):
        Settings.from_env(data_dir=tmp_path, env={**BASE, name: value})


def test_trusted_proxies_default_to_none_and_read_addresses_and_networks(tmp_path: Path) -> None:
    assert Settings.from_env(data_dir=tmp_path, env=BASE).trusted_proxies == ()
    env = {**BASE, "AEX_TRUSTED_PROXIES": " 10.0.0.0/8, 127.0.0.1 ,::1"}
    chosen = Settings.from_env(data_dir=tmp_path, env=env)
    assert chosen.trusted_proxies == ("10.0.0.0/8", "127.0.0.1", "::1")


@pytest.mark.parametrize("value", ["*", "localhost", "10.0.0.0/33", "127.0.0.1;rm"])
def test_a_trusted_proxy_that_is_no_address_is_refused_at_startup(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(ImproperlyConfiguredError, match="AEX_TRUSTED_PROXIES"):
        Settings.from_env(data_dir=tmp_path, env={**BASE, "AEX_TRUSTED_PROXIES": value})


def test_metrics_are_not_public_unless_asked(tmp_path: Path) -> None:
    assert Settings.from_env(data_dir=tmp_path, env=BASE).metrics_public is False
    env = {**BASE, "AEX_METRICS_PUBLIC": "1"}
    assert Settings.from_env(data_dir=tmp_path, env=env).metrics_public is True
    with pytest.raises(ImproperlyConfiguredError, match="AEX_METRICS_PUBLIC"):
        Settings.from_env(data_dir=tmp_path, env={**BASE, "AEX_METRICS_PUBLIC": "maybe"})


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
