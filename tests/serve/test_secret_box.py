"""The secret box (serve/secret_box.py): webhook secrets sealed with AES-256-GCM under a key
kept outside the database; a sealed value opens only with its key and its context."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from serve.secret_box import SecretBox, SecretBoxError, load_key, webhook_secret_context
from serve.settings import ImproperlyConfiguredError, Settings

SECRET = "aex_whsec_" + "ab" * 32


def test_a_sealed_secret_opens_with_its_key_and_context_only() -> None:
    box = SecretBox(b"k" * 32)
    sealed = box.seal(SECRET, context=webhook_secret_context("prov_1"))
    assert SECRET not in sealed
    assert SECRET[-64:] not in sealed
    assert box.open(sealed, context=webhook_secret_context("prov_1")) == SECRET
    assert box.seal(SECRET, context="webhook:prov_1") != sealed  # a fresh nonce each time
    with pytest.raises(SecretBoxError):
        box.open(sealed, context=webhook_secret_context("prov_2"))  # copied onto another row
    with pytest.raises(SecretBoxError):
        SecretBox(b"o" * 32).open(sealed, context=webhook_secret_context("prov_1"))
    tampered = sealed[:-2] + ("AA" if sealed[-2:] != "AA" else "BB")
    with pytest.raises(SecretBoxError):
        box.open(tampered, context=webhook_secret_context("prov_1"))
    assert "k" * 8 not in repr(box)


def test_the_key_file_is_made_once_owner_only_and_refused_when_exposed(tmp_path: Path) -> None:
    path = tmp_path / "webhook.key"
    first = load_key(None, path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(None, path) == first
    assert [p.name for p in tmp_path.iterdir()] == ["webhook.key"]  # no temporary left
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="readable by group or others"):
        load_key(None, path)


def test_the_environment_key_wins_and_a_malformed_one_stops_the_server(tmp_path: Path) -> None:
    base = {"AEX_OPERATOR_KEY": "k" * 40, "AEX_JWT_SECRET": "s" * 40}
    chosen = Settings.from_env(data_dir=tmp_path, env={**base, "AEX_WEBHOOK_KEY": "0f" * 32})
    assert chosen.webhook_key == bytes.fromhex("0f" * 32)
    assert not (tmp_path / "webhook.key").exists()
    assert "0f0f" not in repr(chosen)
    assert "k" * 40 not in repr(chosen)
    with pytest.raises(ImproperlyConfiguredError, match="AEX_WEBHOOK_KEY"):
        Settings.from_env(data_dir=tmp_path, env={**base, "AEX_WEBHOOK_KEY": "short"})
