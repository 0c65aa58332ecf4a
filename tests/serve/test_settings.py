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
    ],
)
def test_a_bad_timing_is_refused_at_startup_by_name(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ImproperlyConfiguredError, match=name):
        Settings.from_env(data_dir=tmp_path, env={**BASE, name: value})
