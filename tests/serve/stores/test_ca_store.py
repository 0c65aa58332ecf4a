"""The certificate authority's state in the exchange's database (serve/certauth/ca_store.py), on
both backends: the CertificateStore contract, the one-time import of a file store, and two
authorities (two processes' worth: separate drivers, connections and lock handles) revoking
concurrently without losing a revocation or reusing a CRL number."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

from aex.ca.authority import CertificateAuthority
from aex.ca.keystore import FileKeyProvider
from aex.ca.store import FileCertificateStore
from aex.core.certs import CertificateRecord, CertState, CrlState, verify_crl
from serve.certauth.ca_store import CA_MUTEX, SerializedAuthority, SqlCertificateStore
from serve.stores.market_db import MarketDb, PostgresMarketDb, SqliteMarketDb
from serve.stores.postgres import PostgresStore
from serve.stores.sqlite import SqliteStore
from tests.ca.factory import NOW, request_document
from tests.conftest import TEST_DATABASE_URL, Stores

REVOCATIONS = 12


def test_records_and_the_crl_round_trip(store: Stores) -> None:
    ca = SqlCertificateStore(store.market)
    assert ca.load_record("cert_1") is None
    assert ca.load_crl() == (CrlState(crl_number=0), None)
    ca.save_record({"id": "cert_1", "state": "PENDING", "note": "é"})
    ca.save_record({"id": "cert_1", "state": "ISSUED", "note": "é"})
    assert ca.load_record("cert_1") == {"id": "cert_1", "state": "ISSUED", "note": "é"}
    ca.save_crl(CrlState(crl_number=3), {"crl_number": 3})
    assert ca.load_crl() == (CrlState(crl_number=3), {"crl_number": 3})


def test_a_file_store_is_imported_once(store: Stores, tmp_path: Path) -> None:
    files = FileCertificateStore(tmp_path)
    files.save_record({"id": "cert_old", "state": "ISSUED"})
    files.save_crl(CrlState(crl_number=5), {"crl_number": 5})
    ca = SqlCertificateStore(store.market)
    assert ca.import_files(tmp_path) == 1
    assert ca.load_record("cert_old") == {"id": "cert_old", "state": "ISSUED"}
    assert ca.load_crl()[0].crl_number == 5
    files.save_record({"id": "cert_later", "state": "ISSUED"})
    assert ca.import_files(tmp_path) == 0  # the database is the store from now on
    assert ca.load_record("cert_later") is None


def _second_driver(store: Stores) -> MarketDb:
    """Another process's driver on the same database: its own connections and lock handles."""
    if isinstance(store.market, SqliteMarketDb):
        return SqliteMarketDb(SqliteStore(store.market.store.path))
    assert isinstance(store.market, PostgresMarketDb)
    schema = store.market.store.schema
    return PostgresMarketDb(PostgresStore(TEST_DATABASE_URL, schema=schema, pool_max=4))


def test_two_processes_revoking_at_once_lose_no_revocation(store: Stores, tmp_path: Path) -> None:
    drivers = [store.market, _second_driver(store)]
    keys = FileKeyProvider(tmp_path, now=NOW)
    authorities = [
        SerializedAuthority(
            CertificateAuthority(keys, SqlCertificateStore(db)), partial(db.mutex, CA_MUTEX)
        )
        for db in drivers
    ]
    issued = []
    for _ in range(REVOCATIONS):
        record = authorities[0].request(request_document())
        assert isinstance(record, CertificateRecord)
        assert record.state is CertState.ISSUED
        issued.append(record)

    def revoke(n: int) -> None:
        assert not isinstance(authorities[n % 2].revoke(issued[n].id, reason=1), Exception)

    threads = [threading.Thread(target=revoke, args=(n,)) for n in range(REVOCATIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state, document = SqlCertificateStore(store.market).load_crl()
    serials = {entry.serial for entry in state.entries}
    assert serials == {serial for record in issued for serial in record.serials}
    assert state.crl_number == REVOCATIONS  # one CRL per revocation, numbers never reused
    assert document is not None
    crl = verify_crl(document, ca_keys=keys.public_keys(), now=NOW)
    assert not isinstance(crl, Exception)
    if isinstance(drivers[1], PostgresMarketDb):
        drivers[1].store.close()
