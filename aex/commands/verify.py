"""`aex verify CERT.json --ca aex-ca.json [--crl crl.json]`: offline certificate verification.

Exit status 0 and "valid: ..." for a valid certificate; 1 and "invalid: <reason>" otherwise
(bad_signature, expired, not_yet_valid, revoked, unknown_key, certificate_malformed, or the
CRL's own crl_bad_signature, crl_unknown_key, crl_stale, crl_malformed); 2 for unreadable files.
No network, no key store: only the three files and the clock (or --at).

Times are printed as the API gives them (docs/api.md "Times"): integer milliseconds since the
Unix epoch, with the RFC 3339 form second, in parentheses (`expires_at_ms 1767225600000
(2026-01-01T00:00:00Z)`); `--at` takes either form.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2
TIME_MS_MAX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, as serve/gateway/schemas.py TimeMs


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "verify", help="verify an AEX certificate offline against the CA document (and a CRL)"
    )
    parser.add_argument(
        "certificate", type=Path, metavar="CERT.json", help="the certificate document (JSON)"
    )
    parser.add_argument(
        "--ca",
        type=Path,
        required=True,
        metavar="aex-ca.json",
        help="the CA document (aex cert ca, GET /v1/ca)",
    )
    parser.add_argument(
        "--crl",
        type=Path,
        metavar="crl.json",
        help="a signed JSON CRL; without it, no revocation check",
    )
    parser.add_argument(
        "--at",
        metavar="TIME",
        help="verify at this time: milliseconds since the Unix epoch (1767225600000) or RFC 3339"
        " UTC (2026-01-01T00:00:00Z); default: now",
    )
    parser.set_defaults(func=run)


def read_json(path: Path) -> Any:
    """The JSON in `path`, or exits with status 2 and the reason."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        print(f"error: cannot read {path}: {error}", file=sys.stderr)
        raise SystemExit(EXIT_UNREADABLE) from None


def parse_at(text: str) -> datetime | None:
    """`--at`: epoch milliseconds (digits only) or an RFC 3339 UTC time; None if neither."""
    from aex.core.certs import parse_time

    if text.isdigit() and text.isascii():
        milliseconds = int(text)
        if milliseconds > TIME_MS_MAX:
            return None
        return datetime.fromtimestamp(milliseconds // 1000, UTC) + timedelta(
            milliseconds=milliseconds % 1000
        )
    return parse_time(text)


def time_text(moment: datetime) -> str:
    """One printed time: the `_ms` integer first, its RFC 3339 form second."""
    from aex.core.certs import format_time

    return f"{int(moment.timestamp() * 1000)} ({format_time(moment)})"


def run(args: argparse.Namespace) -> int:
    from aex.ca.keystore import utc_now
    from aex.core.certs import parse_time, verify_offline
    from aex.core.reasons import Rejected

    now = utc_now() if args.at is None else parse_at(args.at)
    if now is None:
        print(
            "error: --at takes epoch milliseconds (1769860800000) or an RFC 3339 UTC time"
            " (2026-01-31T12:00:00Z)",
            file=sys.stderr,
        )
        return EXIT_UNREADABLE
    certificate, ca = read_json(args.certificate), read_json(args.ca)
    crl = None if args.crl is None else read_json(args.crl)
    result = verify_offline(certificate, ca, now=now, crl_document=crl)
    if isinstance(result, Rejected):
        moment = parse_time(result.detail) if result.detail else None
        shown = result.detail if moment is None else f"{result.field}_ms {time_text(moment)}"
        detail = f" ({shown})" if shown else ""
        print(f"invalid: {result.reason.value}{detail}")
        return EXIT_INVALID
    cert = result.certificate
    revocation = "not checked" if result.crl_number is None else f"CRL {result.crl_number}"
    print(
        f"valid: {cert.id} serial {cert.serial} {cert.type.value} for {cert.subject.agent_name!r}"
        f" of {cert.subject.provider_id!r}, {cert.reputation.tier},"
        f" expires_at_ms {time_text(cert.expires_at)}, revocation {revocation}"
    )
    return EXIT_VALID
