"""CA key storage: a `KeyProvider` protocol and the embedded file-backed default.

Spec "Credential Management": "CA private key | File or Cloud KMS | ECDSA P-256 | Key versioning
via KMS". `FileKeyProvider` is the embedded default: on first start it creates a P-256 key in
`<data_dir>/ca/keys/<kid>.key.pem` with mode 0600 (created that way, never chmod-ed after the
fact), and loads it afterwards. A production deployment plugs in a KMS or HSM behind the same
protocol: only `sign(kid, data)` touches private material.

Key ids are RFC 7638 JWK thumbprints. Rotation makes a new key active; older keys stay
published (and keep verifying the certificates they signed) until `unpublish(kid)`.

The private key is never logged, never returned by any method, and never part of a repr; a key
file readable by group or others is refused at load time, as ssh refuses such identity files.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aex.core import limits
from aex.core.certs import CaKey, LocalSigner, Signer, ca_document
from aex.core.x509_export import CA_NAME_DEFAULT, self_signed_ca_certificate

log = logging.getLogger(__name__)

# The CA certificate of each key: ten years, the usual lifetime of an intermediate-free root.
CA_CERTIFICATE_VALIDITY = timedelta(days=3653)
KEY_FILE_MODE = 0o600
KEY_DIR_MODE = 0o700


class KeyStoreError(Exception):
    """The key store on disk is unusable (bad permissions, missing or corrupt files)."""


class KeyProvider(Protocol):
    """Where the CA's private keys live; implementations: FileKeyProvider, a KMS, an HSM."""

    def active_kid(self) -> str: ...

    def public_keys(self) -> Mapping[str, ec.EllipticCurvePublicKey]:
        """The published keys by kid: the keys relying parties may verify with."""
        ...

    def sign(self, kid: str, data: bytes) -> bytes:
        """ES256 over `data` with key `kid`, as raw r‖s (64 bytes)."""
        ...

    def signer(self, kid: str | None = None) -> Signer:
        """A `Signer` for `kid` (default: the active key), for the pure core."""
        ...

    def ca_keys(self) -> list[CaKey]:
        """The published keys with their X.509 CA certificates, for the CA document."""
        ...


@dataclass(frozen=True, slots=True)
class ProviderSigner:
    """A `Signer` that delegates to a KeyProvider: how a KMS-backed key reaches the core."""

    provider: KeyProvider
    kid: str
    public_key: ec.EllipticCurvePublicKey

    def sign(self, data: bytes) -> bytes:
        return self.provider.sign(self.kid, data)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _write_exclusive(path: Path, data: bytes, mode: int) -> None:
    # Created with its final mode (O_EXCL: never over an existing file), written and synced
    # under a temporary name, then linked into place: no reader ever sees a partial key.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may only have narrowed it; make it exact
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
    finally:
        temporary.unlink()


def _write_replace(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def ca_exists(data_dir: Path) -> bool:
    """Whether `data_dir` holds a CA (FileKeyProvider creates one when it does not)."""
    return (Path(data_dir) / "ca" / "keys" / "keys.json").is_file()


class FileKeyProvider:
    """CA keys as PKCS#8 PEM files in `<data_dir>/ca/keys/` (mode 0600), state in keys.json."""

    def __init__(self, data_dir: Path, *, now: datetime | None = None, name: str = CA_NAME_DEFAULT):
        self._dir = Path(data_dir) / "ca" / "keys"
        self._name = name
        self._signers: dict[str, LocalSigner] = {}
        self._ca_pem: dict[str, str] = {}
        self._dir.mkdir(parents=True, exist_ok=True, mode=KEY_DIR_MODE)
        os.chmod(self._dir, KEY_DIR_MODE)
        if not self._state_path.exists():
            kid = self._create_key(now or utc_now())
            self._save_state({"active_kid": kid, "published": [kid]})
        self._load()

    def __repr__(self) -> str:
        return f"FileKeyProvider({str(self._dir)!r}, active_kid={self._active!r})"

    @property
    def _state_path(self) -> Path:
        return self._dir / "keys.json"

    def _save_state(self, state: dict[str, Any]) -> None:
        assert state["active_kid"] in state["published"]
        assert len(state["published"]) <= limits.ca_keys_published_max
        _write_replace(self._state_path, json.dumps(state, indent=2).encode())

    def _create_key(self, now: datetime) -> str:
        private_key = ec.generate_private_key(ec.SECP256R1())
        signer = LocalSigner.from_private_key(private_key)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_exclusive(self._dir / f"{signer.kid}.key.pem", pem, KEY_FILE_MODE)
        certificate = self_signed_ca_certificate(
            signer,
            serial=1 + secrets.randbelow(2**127),
            not_before=now - timedelta(minutes=5),  # tolerate relying parties' clock skew
            not_after=now + CA_CERTIFICATE_VALIDITY,
            name=self._name,
        )
        pem_certificate = certificate.public_bytes(serialization.Encoding.PEM)
        _write_exclusive(self._dir / f"{signer.kid}.ca.pem", pem_certificate, 0o644)
        log.info("created CA key kid=%s", signer.kid)
        return signer.kid

    def _load_key(self, kid: str) -> LocalSigner:
        path = self._dir / f"{kid}.key.pem"
        if not path.exists():
            raise KeyStoreError(f"CA key {kid} is listed in {self._state_path} but missing")
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            raise KeyStoreError(f"CA key file {path} is accessible by group or others: chmod 600")
        private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private_key, ec.EllipticCurvePrivateKey):
            raise KeyStoreError(f"CA key file {path} does not hold an EC key")
        signer = LocalSigner.from_private_key(private_key)
        if signer.kid != kid:
            raise KeyStoreError(f"CA key file {path} holds another key than its name says")
        return signer

    def _load(self) -> None:
        state = json.loads(self._state_path.read_text())
        self._active: str = state["active_kid"]
        self._published: list[str] = list(state["published"])
        self._signers = {kid: self._load_key(kid) for kid in self._published}
        self._ca_pem = {kid: (self._dir / f"{kid}.ca.pem").read_text() for kid in self._published}

    def active_kid(self) -> str:
        return self._active

    def public_keys(self) -> Mapping[str, ec.EllipticCurvePublicKey]:
        return {kid: signer.public_key for kid, signer in self._signers.items()}

    def sign(self, kid: str, data: bytes) -> bytes:
        return self._signers[kid].sign(data)

    def signer(self, kid: str | None = None) -> Signer:
        return self._signers[kid or self._active]

    def ca_keys(self) -> list[CaKey]:
        return [
            CaKey(kid, self._signers[kid].public_key, self._ca_pem[kid], kid == self._active)
            for kid in self._published
        ]

    def ca_certificate_pem(self, kid: str | None = None) -> str:
        return self._ca_pem[kid or self._active]

    def ca_document(self) -> dict[str, Any]:
        return ca_document(self.ca_keys(), name=self._name)

    def rotate(self, *, now: datetime | None = None) -> str:
        """Creates a new active key; the old ones stay published. Returns the new kid."""
        if len(self._published) >= limits.ca_keys_published_max:
            raise KeyStoreError("too many published CA keys: unpublish an old one first")
        kid = self._create_key(now or utc_now())
        self._save_state({"active_kid": kid, "published": [*self._published, kid]})
        self._load()
        return kid

    def unpublish(self, kid: str) -> None:
        """Stops publishing `kid`: certificates it signed no longer verify (unknown_key). The
        key file stays on disk for the record; the active key cannot be unpublished."""
        if kid == self._active:
            raise KeyStoreError("the active CA key cannot be unpublished: rotate first")
        if kid not in self._published:
            raise KeyStoreError(f"CA key {kid} is not published")
        published = [k for k in self._published if k != kid]
        self._save_state({"active_kid": self._active, "published": published})
        self._load()
