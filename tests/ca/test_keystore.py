"""FileKeyProvider: the CA key is created once with mode 0600, loaded afterwards, rotated, and
never appears in logs, reprs or the CA document."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from aex.ca.keystore import FileKeyProvider, KeyStoreError
from aex.core.certs import ca_keys_from_document
from tests.ca.factory import NOW


def key_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "ca" / "keys").glob("*.key.pem"))


def test_first_start_creates_one_key_file_with_mode_0600(tmp_path: Path) -> None:
    keys = FileKeyProvider(tmp_path, now=NOW)
    [path] = key_files(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.name == f"{keys.active_kid()}.key.pem"


def test_key_file_is_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        FileKeyProvider(tmp_path, now=NOW)
    finally:
        os.umask(old)
    [path] = key_files(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_second_start_loads_the_same_key(tmp_path: Path) -> None:
    first = FileKeyProvider(tmp_path, now=NOW)
    second = FileKeyProvider(tmp_path, now=NOW)
    assert second.active_kid() == first.active_kid()
    assert len(key_files(tmp_path)) == 1
    data = b"same key, same deterministic signature"
    assert second.sign(second.active_kid(), data) == first.sign(first.active_kid(), data)


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    FileKeyProvider(tmp_path, now=NOW)
    [path] = key_files(tmp_path)
    path.chmod(0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        FileKeyProvider(tmp_path, now=NOW)


def test_private_key_is_absent_from_logs_reprs_and_the_ca_document(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = FileKeyProvider(tmp_path, now=NOW)
    keys.rotate(now=NOW)
    [old_path, new_path] = key_files(tmp_path)
    secrets = [p.read_text() for p in (old_path, new_path)]
    body_lines = {line for secret in secrets for line in secret.splitlines()[1:-1]}
    outputs = [caplog.text, repr(keys), repr(keys.signer()), str(keys.ca_document())]
    for output in outputs:
        assert "PRIVATE KEY" not in output
        assert not any(line in output for line in body_lines)
    assert "created CA key" in caplog.text


def test_rotation_keeps_old_keys_published_until_unpublished(tmp_path: Path) -> None:
    keys = FileKeyProvider(tmp_path, now=NOW)
    old = keys.active_kid()
    new = keys.rotate(now=NOW)
    assert keys.active_kid() == new != old
    document = keys.ca_document()
    assert document["active_kid"] == new
    published = ca_keys_from_document(document)
    assert isinstance(published, dict)
    assert set(published) == {old, new}
    with pytest.raises(KeyStoreError):
        keys.unpublish(new)
    keys.unpublish(old)
    assert set(FileKeyProvider(tmp_path).public_keys()) == {new}
