"""Certificate records and the CRL state on disk: a `CertificateStore` protocol and a JSON-file
implementation (one file per record under `<data_dir>/ca/records/`).

The store holds JSON (aex.core.certs.record_to_json), so a SQL or document backend can store the
same rows; writes replace whole files atomically (write to a temporary name, then rename).
Single-writer: the embedded exchange runs one process; a multi-process deployment uses a
transactional backend behind the same protocol.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Any, Protocol

from aex.core.certs import CrlState, RevocationReason, RevokedEntry, parse_time

_RECORD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class CertificateStore(Protocol):
    def load_record(self, record_id: str) -> dict[str, Any] | None: ...

    def save_record(self, record: dict[str, Any]) -> None: ...

    def load_crl(self) -> tuple[CrlState, dict[str, Any] | None]:
        """The CRL state and the last signed CRL document (None before the first)."""
        ...

    def save_crl(self, state: CrlState, document: dict[str, Any]) -> None: ...


def crl_state_to_json(state: CrlState) -> dict[str, Any]:
    return {"crl_number": state.crl_number, "entries": [e.to_json() for e in state.entries]}


def crl_state_from_json(document: dict[str, Any]) -> CrlState:
    entries = []
    for item in document["entries"]:
        revoked_at = parse_time(item["revoked_at"])
        assert revoked_at is not None
        entries.append(
            RevokedEntry(item["serial"], revoked_at, RevocationReason(item["reason_code"]))
        )
    return CrlState(crl_number=document["crl_number"], entries=tuple(entries))


def _write_json(path: Path, document: Any) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False))
    os.replace(temporary, path)


class FileCertificateStore:
    def __init__(self, data_dir: Path):
        self._records = Path(data_dir) / "ca" / "records"
        self._records.mkdir(parents=True, exist_ok=True)
        self._crl_path = Path(data_dir) / "ca" / "crl.json"

    def _path(self, record_id: str) -> Path:
        # Ids are drawn by the authority; anything else never reaches the file system.
        assert _RECORD_ID.fullmatch(record_id), f"bad record id {record_id!r}"
        return self._records / f"{record_id}.json"

    def load_record(self, record_id: str) -> dict[str, Any] | None:
        if not _RECORD_ID.fullmatch(record_id):
            return None
        path = self._path(record_id)
        return json.loads(path.read_text()) if path.exists() else None

    def save_record(self, record: dict[str, Any]) -> None:
        _write_json(self._path(record["id"]), record)

    def load_crl(self) -> tuple[CrlState, dict[str, Any] | None]:
        if not self._crl_path.exists():
            return CrlState(crl_number=0), None
        saved = json.loads(self._crl_path.read_text())
        return crl_state_from_json(saved["state"]), saved["document"]

    def save_crl(self, state: CrlState, document: dict[str, Any]) -> None:
        _write_json(self._crl_path, {"state": crl_state_to_json(state), "document": document})


__all__ = [
    "CertificateStore",
    "FileCertificateStore",
    "crl_state_from_json",
    "crl_state_to_json",
]
