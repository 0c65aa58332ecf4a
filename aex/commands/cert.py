"""`aex cert ...`: the certificate authority from the command line.

    aex cert export --format x509|vc-jwt CERT.json     the certificate for other tools
    aex cert export --format x509-ca [--kid KID]       the CA key's self-signed X.509 certificate
    aex cert export --format x509-crl crl.json         the JSON CRL as an X.509 v2 CRL
    aex cert ca | crl                                  the CA document / the signed JSON CRL
    aex cert keygen --out agent.key                    an agent's P-256 key (mode 0600)
    aex cert request --key agent.key ... --claim ...   a request signed by the agent's key
    aex cert submit REQUEST.json                       open it (auto-issued if self-asserted)
    aex cert approve|reject|renew|show ID              the review and lifecycle steps
    aex cert revoke ID --reason keyCompromise          revoke and publish the next CRL
    aex cert rotate | unpublish KID                    CA key rotation

Commands that sign take `--data-dir` (default ./data), where the CA key lives (created on first
use). Output goes to stdout or `--out`. The CA private key is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from aex.commands.verify import EXIT_INVALID, EXIT_UNREADABLE, read_json

EXPORT_FORMATS = ("x509", "vc-jwt", "x509-ca", "x509-crl")


def _common(parser: argparse.ArgumentParser, *, data_dir: bool = True) -> None:
    if data_dir:
        parser.add_argument(
            "--data-dir", type=Path, default=Path("./data"), help="the exchange's data directory"
        )
    parser.add_argument("--out", type=Path, help="write here instead of stdout")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "cert", help="the certificate authority: export, request, issue, revoke, rotate"
    )
    commands = parser.add_subparsers(
        dest="cert_command", required=True, metavar="ACTION", help="what to do"
    )
    export = commands.add_parser("export", help="export as X.509 / VC-JWT / CA cert / X.509 CRL")
    export.add_argument(
        "--format", choices=EXPORT_FORMATS, required=True, help="the format to export into"
    )
    export.add_argument(
        "document",
        type=Path,
        nargs="?",
        metavar="FILE.json",
        help="the certificate (x509, vc-jwt) or CRL document; none for x509-ca",
    )
    export.add_argument("--kid", help="CA key (x509-ca, x509-crl; default: the active key)")
    export.add_argument("--issuer", help="VC issuer URL (vc-jwt)")
    _common(export)
    for name, text in (("ca", "the CA document"), ("crl", "the signed JSON CRL")):
        _common(commands.add_parser(name, help=f"print {text}"))
    keygen = commands.add_parser("keygen", help="create an agent P-256 key (PKCS#8 PEM, 0600)")
    keygen.add_argument("--out", type=Path, required=True, help="the key file to create (0600)")
    request = commands.add_parser("request", help="make a request signed by the agent's key")
    request.add_argument("--key", type=Path, required=True, help="the agent's private key")
    request.add_argument("--provider-id", required=True, help="the provider the agent belongs to")
    request.add_argument("--agent-name", required=True, help="the agent's name")
    request.add_argument(
        "--type",
        default="CAPABILITY",
        help="CAPABILITY, IDENTITY, REPUTATION or RESELLER (docs/certificates.md)",
    )
    request.add_argument(
        "--claim",
        action="append",
        required=True,
        metavar="CATEGORY:CAPABILITY:AUTHORIZATION:SCOPE",
        help="a claim; repeat for several",
    )
    _common(request, data_dir=False)
    submit = commands.add_parser("submit", help="submit a signed request to the CA")
    submit.add_argument(
        "request", type=Path, metavar="REQUEST.json", help="a request made by `aex cert request`"
    )
    _common(submit)
    for name in ("approve", "reject", "renew", "show"):
        step = commands.add_parser(name, help=f"{name} a certificate by id")
        step.add_argument("certificate_id", help="the certificate's id")
        step.add_argument("--note", default="", help="the operator's note, kept with the decision")
        _common(step)
    revoke = commands.add_parser("revoke", help="revoke a certificate (RFC 5280 reason)")
    revoke.add_argument("certificate_id", help="the certificate's id")
    revoke.add_argument("--reason", default="unspecified", help="e.g. keyCompromise, superseded")
    _common(revoke)
    _common(commands.add_parser("rotate", help="create a new active CA key"))
    unpublish = commands.add_parser("unpublish", help="stop publishing an old CA key")
    unpublish.add_argument("kid", help="the CA key id (aex cert ca lists them)")
    _common(unpublish)
    parser.set_defaults(func=run)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


def _emit_json(document: Any, out: Path | None) -> None:
    _emit(json.dumps(document, indent=2, ensure_ascii=False), out)


def _fail(message: str, status: int = EXIT_INVALID) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


# What may make a CA in an empty data directory: issuing (a first certificate needs one) and
# rotating. Everything else reads or acts on an existing CA and must never create a CA key.
CREATES_CA = frozenset({"submit", "rotate", "keygen", "request"})


def run(args: argparse.Namespace) -> int:
    if args.cert_command not in CREATES_CA:
        from aex.ca.keystore import ca_exists
        from aex.commands._errors import UserError

        if not ca_exists(args.data_dir):
            raise UserError(
                f"no CA in {args.data_dir}: `aex serve --data-dir {args.data_dir}` or "
                f"`aex cert rotate --data-dir {args.data_dir}` creates one"
            )
    handlers = {
        "export": _export,
        "ca": _ca,
        "crl": _crl,
        "keygen": _keygen,
        "request": _request,
        "submit": _submit,
        "approve": _step,
        "reject": _step,
        "renew": _step,
        "show": _step,
        "revoke": _revoke,
        "rotate": _rotate,
        "unpublish": _unpublish,
    }
    return handlers[args.cert_command](args)


def _authority(data_dir: Path) -> Any:
    """The exchange's CA: its key in D/ca/keys, its records and CRL in the exchange's database
    (D's SQLite file, or PostgreSQL with AEX_DATABASE_URL and AEX_DATABASE_SCHEMA as for
    `aex serve`), each call under the same cross-process lock as the running server's."""
    import os

    from aex.ca.authority import CertificateAuthority
    from aex.ca.keystore import FileKeyProvider
    from serve.certauth.ca_store import CA_MUTEX, SerializedAuthority, SqlCertificateStore
    from serve.stores.market_db import open_market_db

    db = open_market_db(data_dir, os.environ)
    store = SqlCertificateStore(db)
    store.import_files(data_dir)
    authority = CertificateAuthority(FileKeyProvider(data_dir), store)
    return SerializedAuthority(authority, lambda: db.mutex(CA_MUTEX))


def _export(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.serialization import Encoding

    from aex.ca.keystore import FileKeyProvider

    keys = FileKeyProvider(args.data_dir)
    if args.format == "x509-ca":
        if args.kid is not None and args.kid not in keys.public_keys():
            return _fail(f"CA key {args.kid} is not published")
        _emit(keys.ca_certificate_pem(args.kid), args.out)
        return 0
    if args.document is None:
        return _fail(f"--format {args.format} needs a JSON file", EXIT_UNREADABLE)
    document = read_json(args.document)
    if args.format == "x509-crl":
        return _export_crl(keys, document, args)
    certificate = _our_certificate(keys, document)
    if isinstance(certificate, str):
        return _fail(certificate)
    signer = keys.signer(certificate.issuer_kid)
    if args.format == "x509":
        from aex.core.x509_export import certificate_to_x509

        pem = certificate_to_x509(certificate, signer=signer).public_bytes(Encoding.PEM)
        _emit(pem.decode("ascii"), args.out)
    else:
        from aex.core.x509_export import VC_ISSUER_DEFAULT, certificate_to_vc_jwt

        issuer = args.issuer or VC_ISSUER_DEFAULT
        _emit(certificate_to_vc_jwt(certificate, signer=signer, issuer=issuer), args.out)
    return 0


# The certificate in `document` if this CA signed it with a published key, else why not: an
# export re-signs, so it must never launder a document the CA did not issue.
def _our_certificate(keys: Any, document: Any) -> Any:
    from aex.core.certs import parse_certificate, verify_certificate
    from aex.core.reasons import CertVerifyReason, Rejected

    certificate = parse_certificate(document)
    if isinstance(certificate, Rejected):
        return certificate.reason.value
    checked = verify_certificate(document, ca_keys=keys.public_keys(), now=certificate.not_before)
    if isinstance(checked, Rejected) and checked.reason is not CertVerifyReason.EXPIRED:
        return checked.reason.value
    return certificate


def _export_crl(keys: Any, document: Any, args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.serialization import Encoding

    from aex.core.certs import parse_time, verify_crl
    from aex.core.reasons import Rejected
    from aex.core.x509_export import crl_to_x509

    this_update = parse_time(document.get("this_update")) if isinstance(document, dict) else None
    if this_update is None:
        return _fail("crl_malformed")
    crl = verify_crl(document, ca_keys=keys.public_keys(), now=this_update)
    if isinstance(crl, Rejected):
        return _fail(crl.reason.value)
    kid = args.kid or crl.issuer_kid
    if kid not in keys.public_keys():
        return _fail(f"CA key {kid} is not published")
    pem = crl_to_x509(crl, signer=keys.signer(kid)).public_bytes(Encoding.PEM)
    _emit(pem.decode("ascii"), args.out)
    return 0


def _ca(args: argparse.Namespace) -> int:
    _emit_json(_authority(args.data_dir).ca_document(), args.out)
    return 0


def _crl(args: argparse.Namespace) -> int:
    _emit_json(_authority(args.data_dir).crl(), args.out)
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _fail(f"{args.out} exists; not overwriting a key")
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    return 0


def _request(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from aex.core.certs import Authorization, CertificateType, Claim, LocalSigner, sign_request

    key = serialization.load_pem_private_key(args.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return _fail(f"{args.key} is not an EC private key")
    claims = []
    for text in args.claim:
        parts = text.split(":", 3)
        if len(parts) != 4 or parts[2] not in Authorization.__members__:
            return _fail(f"--claim {text!r}: want CATEGORY:CAPABILITY:AUTHORIZATION:SCOPE")
        claims.append(Claim(parts[0], parts[1], parts[3], Authorization(parts[2])))
    document = sign_request(
        provider_id=args.provider_id,
        agent_name=args.agent_name,
        type=CertificateType(args.type),
        claims=claims,
        signer=LocalSigner.from_private_key(key),
    )
    _emit_json(document, args.out)
    return 0


def _show_result(result: Any, out: Path | None) -> int:
    from aex.core.reasons import Rejected

    if isinstance(result, Rejected):
        return _fail(f"{result.reason.value} ({result.field}) {result.detail}".rstrip())
    if result.certificate is None:
        print(f"{result.id}: {result.state.value} {result.note}".rstrip(), file=sys.stderr)
        return 0
    print(f"{result.id}: {result.state.value}", file=sys.stderr)
    _emit_json(result.certificate.to_json(), out)
    return 0


def _submit(args: argparse.Namespace) -> int:
    return _show_result(_authority(args.data_dir).request(read_json(args.request)), args.out)


def _step(args: argparse.Namespace) -> int:
    authority = _authority(args.data_dir)
    if args.cert_command == "show":
        return _show_result(authority.record(args.certificate_id), args.out)
    if args.cert_command == "renew":
        return _show_result(authority.renew(args.certificate_id), args.out)
    step = authority.approve if args.cert_command == "approve" else authority.reject
    return _show_result(step(args.certificate_id, note=args.note), args.out)


def _revoke(args: argparse.Namespace) -> int:
    from aex.core.certs import RevocationReason

    if args.reason not in RevocationReason.__members__:
        names = ", ".join(RevocationReason.__members__)
        return _fail(f"--reason {args.reason!r}: one of {names}", EXIT_UNREADABLE)
    authority = _authority(args.data_dir)
    result = authority.revoke(args.certificate_id, reason=RevocationReason[args.reason].value)
    code = _show_result(result, None if args.out is None else Path(os.devnull))
    if code == 0 and args.out is not None:
        _emit_json(authority.crl(), args.out)
    return code


def _rotate(args: argparse.Namespace) -> int:
    from aex.ca.keystore import FileKeyProvider

    _emit(FileKeyProvider(args.data_dir).rotate(), args.out)
    return 0


def _unpublish(args: argparse.Namespace) -> int:
    from aex.ca.keystore import FileKeyProvider, KeyStoreError

    try:
        FileKeyProvider(args.data_dir).unpublish(args.kid)
    except KeyStoreError as error:
        return _fail(str(error))
    return 0
