"""The CLI as a user runs it (subprocesses): `aex cert` issues, exports and revokes; `aex verify`
exits 0 for a valid certificate and 1 with the reason otherwise; openssl agrees."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aex.cli import main

OPENSSL = shutil.which("openssl")


def aex(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aex.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The same CLI in-process (main(argv)), for the many small cases; subprocesses above."""

    def run(cwd: Path, *args: str) -> Outcome:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


def ok(cwd: Path, *args: str) -> str:
    result = aex(cwd, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a CA, an issued certificate, its CA document and CRL."""
    cwd = tmp_path_factory.mktemp("cli")
    ok(cwd, "cert", "keygen", "--out", "agent.key")
    ok(
        cwd,
        *("cert", "request", "--key", "agent.key", "--provider-id", "prov_abc"),
        *("--agent-name", "CodeReviewBot", "--out", "request.json"),
        *("--claim", "TECHNOLOGY:code.review:SELF_ASSERTED:Go, Python"),
    )
    ok(cwd, "cert", "submit", "request.json", "--out", "cert.json")
    ok(cwd, "cert", "ca", "--out", "aex-ca.json")
    ok(cwd, "cert", "crl", "--out", "crl.json")
    return cwd


def test_verify_accepts_an_issued_certificate(issued: Path) -> None:
    result = aex(issued, "verify", "cert.json", "--ca", "aex-ca.json", "--crl", "crl.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("valid: cert_")
    # Times print as the API gives them: `_ms` first, RFC 3339 second (docs/api.md "Times").
    assert re.search(r"expires_at_ms [0-9]{13} \([0-9T:-]{19}Z\)", result.stdout), result.stdout


def test_key_files_are_0600_and_never_printed(issued: Path) -> None:
    keys = [*(issued / "data" / "ca" / "keys").glob("*.key.pem"), issued / "agent.key"]
    assert len(keys) == 2
    for path in keys:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret_lines = {line for p in keys for line in p.read_text().splitlines()[1:-1]}
    outputs = [p.read_text() for p in issued.glob("*.json")]
    outputs.append(ok(issued, "cert", "ca") + ok(issued, "cert", "export", "--format", "x509-ca"))
    for output in outputs:
        assert "PRIVATE KEY" not in output
        assert not any(line in output for line in secret_lines)


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda c: c["subject"].update(agent_name="x"), "bad_signature"),
        (lambda c: c["reputation"].update(tier="PLATINUM"), "bad_signature"),
        (lambda c: c.update(issuer_kid="A" * 43), "unknown_key"),
        (lambda c: c.update(issuer_kid=5), "certificate_malformed"),
    ],
)
def test_verify_names_the_reason_for_a_tampered_certificate(
    issued: Path, tmp_path: Path, cli: Any, tamper: object, reason: str
) -> None:
    certificate = json.loads((issued / "cert.json").read_text())
    tamper(certificate)  # type: ignore[operator]
    (tmp_path / "bad.json").write_text(json.dumps(certificate))
    ca = str(issued / "aex-ca.json")
    result = cli(issued, "verify", str(tmp_path / "bad.json"), "--ca", ca)
    assert result.returncode == 1
    assert result.stdout.startswith(f"invalid: {reason}")


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        ("2020-01-01T00:00:00Z", "not_yet_valid (not_before_ms "),
        ("2999-01-01T00:00:00Z", "expired (expires_at_ms "),
        ("1577836800000", "not_yet_valid (not_before_ms "),  # --at in epoch milliseconds too
        ("32472144000000", "expired (expires_at_ms "),
    ],
)
def test_verify_at_another_time(issued: Path, cli: Any, at: str, reason: str) -> None:
    result = cli(issued, "verify", "cert.json", "--ca", "aex-ca.json", "--at", at)
    assert result.returncode == 1
    assert result.stdout.startswith(f"invalid: {reason}")


@pytest.mark.parametrize("at", ["yesterday", "-5", "1e12", "99999999999999999999"])
def test_verify_at_an_unreadable_time_is_one_line_and_exit_2(
    issued: Path, cli: Any, at: str
) -> None:
    result = cli(issued, "verify", "cert.json", "--ca", "aex-ca.json", "--at", at)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "epoch milliseconds" in result.stderr


def test_verify_rejects_a_crl_with_a_bad_signature(issued: Path, tmp_path: Path, cli: Any) -> None:
    crl = json.loads((issued / "crl.json").read_text())
    crl["entries"] = []
    crl["crl_number"] += 100
    (tmp_path / "crl.json").write_text(json.dumps(crl))
    args = ("verify", "cert.json", "--ca", "aex-ca.json", "--crl", str(tmp_path / "crl.json"))
    result = cli(issued, *args)
    assert result.returncode == 1
    assert result.stdout.startswith("invalid: crl_bad_signature")


def test_unreadable_input_exits_2(issued: Path, cli: Any) -> None:
    result = cli(issued, "verify", "missing.json", "--ca", "aex-ca.json")
    assert result.returncode == 2
    assert "cannot read" in result.stderr


def test_vc_jwt_export_is_a_compact_jws(issued: Path, cli: Any) -> None:
    token = cli(issued, "cert", "export", "--format", "vc-jwt", "cert.json").stdout.strip()
    assert token.count(".") == 2


def test_export_refuses_a_certificate_this_ca_did_not_sign(
    issued: Path, tmp_path: Path, cli: Any
) -> None:
    certificate = json.loads((issued / "cert.json").read_text())
    certificate["subject"]["agent_name"] = "Impostor"
    (tmp_path / "forged.json").write_text(json.dumps(certificate))
    result = cli(issued, "cert", "export", "--format", "x509", str(tmp_path / "forged.json"))
    assert result.returncode == 1
    assert "bad_signature" in result.stderr


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
def test_revoke_then_verify_and_openssl_both_reject(issued: Path) -> None:
    ok(issued, "cert", "export", "--format", "x509", "cert.json", "--out", "cert.pem")
    ok(issued, "cert", "export", "--format", "x509-ca", "--out", "ca.pem")
    assert OPENSSL is not None
    openssl = [OPENSSL, "verify", "-CAfile", "ca.pem"]
    accepted = subprocess.run([*openssl, "cert.pem"], cwd=issued, capture_output=True, check=False)
    assert accepted.returncode == 0, accepted.stderr
    certificate_id = json.loads((issued / "cert.json").read_text())["id"]
    number_before = json.loads((issued / "crl.json").read_text())["crl_number"]
    ok(issued, "cert", "revoke", certificate_id, "--reason", "keyCompromise", "--out", "crl2.json")
    assert json.loads((issued / "crl2.json").read_text())["crl_number"] > number_before
    result = aex(issued, "verify", "cert.json", "--ca", "aex-ca.json", "--crl", "crl2.json")
    assert result.returncode == 1
    assert result.stdout.startswith("invalid: revoked (keyCompromise)")
    ok(issued, "cert", "export", "--format", "x509-crl", "crl2.json", "--out", "crl.pem")
    crl_check = [*openssl, "-crl_check", "-CRLfile", "crl.pem", "cert.pem"]
    rejected = subprocess.run(crl_check, cwd=issued, capture_output=True, text=True, check=False)
    assert rejected.returncode != 0
    assert "certificate revoked" in rejected.stdout + rejected.stderr
