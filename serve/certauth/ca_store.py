"""The certificate authority's state in the exchange's database (SQLite or PostgreSQL).

`SqlCertificateStore` implements aex/ca/store.py's `CertificateStore` protocol (records and
the CRL state as JSON text, tables `ca_records` and `ca_crl`), so every process and host of a
deployment sees one CA state. The authority's operations are read-modify-write sequences over
the store (revoke: record, CRL state, CRL); `serialized` runs each call into an authority under
the database's cross-process mutex (`MarketDb.mutex("ca")`), so two processes never publish two
CRLs with one number or lose a revocation. The server (serve/certauth/certificates.py) and
the offline `aex cert` commands both go through it.

`import_files` moves a data directory's older file store (`<data_dir>/ca/records/*.json`,
`ca/crl.json`) into the tables once, when the tables are still empty.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from aex.ca.store import FileCertificateStore, crl_state_from_json, crl_state_to_json
from aex.core.certs import CrlState
from serve.stores.market_db import MarketDb, Session
from serve.stores.rows import one, scalar, select_list

CA_MUTEX = "ca"


class _CrlRow(NamedTuple):
    state: str  # JSON text
    document: str  # JSON text


_SELECT_CRL = f"SELECT {select_list(_CrlRow)} FROM ca_crl WHERE id = 1"  # noqa: S608


class SqlCertificateStore:
    def __init__(self, db: MarketDb) -> None:
        self.db = db

    def load_record(self, record_id: str) -> dict[str, Any] | None:
        with self.db.reader() as connection:
            body = scalar(
                connection.execute("SELECT body FROM ca_records WHERE record_id = ?", (record_id,))
            )
        return None if body is None else dict(json.loads(body))

    def save_record(self, record: dict[str, Any]) -> None:
        body = json.dumps(record, ensure_ascii=False)

        def write(session: Session) -> None:
            session.connection.execute(
                "INSERT INTO ca_records VALUES (?, ?)"
                " ON CONFLICT (record_id) DO UPDATE SET body = excluded.body",
                (record["id"], body),
            )

        self.db.run(write)

    def load_crl(self) -> tuple[CrlState, dict[str, Any] | None]:
        with self.db.reader() as connection:
            row = one(_CrlRow, connection.execute(_SELECT_CRL))
        if row is None:
            return CrlState(crl_number=0), None
        return crl_state_from_json(json.loads(row.state)), dict(json.loads(row.document))

    def save_crl(self, state: CrlState, document: dict[str, Any]) -> None:
        saved = (json.dumps(crl_state_to_json(state)), json.dumps(document, ensure_ascii=False))

        def write(session: Session) -> None:
            session.connection.execute(
                "INSERT INTO ca_crl VALUES (1, ?, ?) ON CONFLICT (id)"
                " DO UPDATE SET state = excluded.state, document = excluded.document",
                saved,
            )

        self.db.run(write)

    def import_files(self, data_dir: Path) -> int:
        """Copies a file store's records and CRL in, once (tables empty); returns records."""
        records_dir = Path(data_dir) / "ca" / "records"
        with self.db.mutex(CA_MUTEX):
            if self.db.read("SELECT 1 FROM ca_records LIMIT 1") or self.load_crl()[1]:
                return 0
            files = FileCertificateStore(data_dir)
            paths = sorted(records_dir.glob("*.json")) if records_dir.is_dir() else []
            for path in paths:
                record = files.load_record(path.stem)
                if record is not None:
                    self.save_record(record)
            state, document = files.load_crl()
            if document is not None:
                self.save_crl(state, document)
            return len(paths)


class SerializedAuthority:
    """Every method call into the wrapped object under one mutex shared by all processes."""

    def __init__(self, target: Any, mutex: Callable[[], Any]) -> None:
        self._target = target
        self._mutex = mutex

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._target, name)
        if not callable(found):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._mutex():
                return found(*args, **kwargs)

        return call
