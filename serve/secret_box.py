"""Secrets the exchange must use again later, sealed at rest (AES-256-GCM).

Most credentials are stored as one-way digests (aex/core/credentials.py): the exchange only
ever compares them. A webhook signing secret is different: the exchange signs every delivery
with it, so it must be recoverable by the exchange, and by nobody who only reads the database.
It is sealed with AES-256-GCM under a key that never enters the database: `AEX_WEBHOOK_KEY`
(64 hex characters, for deployments whose hosts share no data directory) or the key file
`<data_dir>/webhook.key`, created on first start with mode 0600 (O_EXCL, as aex/ca/keystore.py
creates CA keys) and refused when group or others may read it.

A sealed value is `v1.` + base64url(nonce ‖ ciphertext ‖ tag); the associated data names what
it seals (`webhook:<provider_id>`), so a value copied onto another row does not open.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SECRET_BOX_KEY_BYTES = 32
KEY_FILE_MODE = 0o600
_NONCE_BYTES = 12
_VERSION = "v1."


class SecretBoxError(Exception):
    """A sealed value does not open: another key, another context, or tampered with."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        assert len(key) == SECRET_BOX_KEY_BYTES
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key withheld>)"

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, *, context: str) -> str:
        if not sealed.startswith(_VERSION):
            raise SecretBoxError("unknown sealed-value version")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(_VERSION) :])
            nonce, ciphertext = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            return self._aead.decrypt(nonce, ciphertext, context.encode()).decode()
        except (InvalidTag, ValueError) as error:
            raise SecretBoxError("the sealed value does not open") from error


def webhook_secret_context(provider_id: str) -> str:
    """What a provider's sealed webhook signing secret is bound to (the associated data)."""
    return f"webhook:{provider_id}"


def parse_key(value: str) -> bytes:
    """The sealing key from its hex form in AEX_WEBHOOK_KEY. Raises ValueError if malformed."""
    return _parse(value, "AEX_WEBHOOK_KEY")


def load_key(value: str | None, path: Path) -> bytes:
    """The sealing key: `value` (hex, from the environment) or the 0600 key file at `path`,
    created on first start. Raises ValueError on a malformed key or an exposed key file."""
    if value:
        return _parse(value, "AEX_WEBHOOK_KEY")
    if not path.exists():
        _create_exclusive(path, (secrets.token_hex(SECRET_BOX_KEY_BYTES) + "\n").encode())
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ValueError(f"{path} is readable by group or others (mode {mode:o}); chmod 600 it")
    return _parse(path.read_text().strip(), str(path))


def _create_exclusive(path: Path, data: bytes) -> None:
    # Written and synced under a temporary name with its final mode, then linked into place:
    # a process starting at the same moment sees no file or the whole key, never a part.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        os.fchmod(fd, KEY_FILE_MODE)  # exact, whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
    except FileExistsError:  # another process of the cluster made it first: use theirs
        pass
    finally:
        temporary.unlink()


def _parse(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != SECRET_BOX_KEY_BYTES:
        raise ValueError(f"{where}: {2 * SECRET_BOX_KEY_BYTES} hex characters expected")
    return key
