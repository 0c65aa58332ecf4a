"""Certificates over HTTP: request, review, read (JSON, X.509 PEM, VC-JWT), verify, renew,
revoke, the CRL and the CA document. Thin handlers over serve.certauth.certificates."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from aex.core import AccessScope
from serve.certauth.certificates import Certificates
from serve.certauth.schemas import (
    ChallengeCreate,
    ChallengeView,
    DelegationCreate,
    DelegationKeyCreate,
    DelegationKeyView,
    DelegationView,
)
from serve.gateway.asgi import PRINCIPAL_SCOPE_KEY
from serve.gateway.callers import PUBLIC, needs, operator_caller, provider_or_tenant_caller
from serve.gateway.openapi import shapes
from serve.gateway.problems import PROBLEM_RESPONSES, ProblemError
from serve.gateway.schemas import ReviewNote, Revocation, decode_struct
from serve.identity.security import Principal
from serve.market.usecases import decode_body

Json = dict[str, Any]
PEM = "application/x-pem-file"


def _principal(request: Request[Any, Any, State]) -> Principal:
    # Any credential: tenants and providers act for their providers, the operator for any.
    # The gateway lets some certificate GETs through without one (they are public): a route
    # that needs a caller says so with a 401, never an assert (issue 11).
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if not isinstance(principal, Principal):
        raise ProblemError(401, "credential-missing", "send X-API-Key or a Bearer JWT")
    return principal


def _certificates(request: Request[Any, Any, State]) -> Certificates:
    found: Certificates = request.app.state.certificates
    return found


async def _body(request: Request[Any, Any, State]) -> Any:
    return decode_body(await request.body())


def _text_or_json(found: Json | str, media_type: str) -> Response[Any]:
    if isinstance(found, str):
        return Response(found, media_type=media_type)
    return Response(found)


class CertificateController(Controller):
    path = "/v1/certificates"
    tags = ["certificates"]  # noqa: RUF012

    @post(
        "/request",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        opt=needs(AccessScope.PROVIDERS),
    )
    async def request_certificate(self, request: Request[Any, Any, State]) -> Json:
        """A certificate request signed with the agent's key; SELF_ASSERTED claims are issued at
        once, others wait for the operator."""
        caller, body = _principal(request), await _body(request)
        return await asyncio.to_thread(_certificates(request).request, caller, body)

    @post(
        "/verify",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.MARKET),
    )
    async def verify(self, request: Request[Any, Any, State]) -> Json:
        """The Verification API ($0.001/call, metered per calling tenant)."""
        caller, body = provider_or_tenant_caller(request), await _body(request)
        return await asyncio.to_thread(_certificates(request).verify, caller, body)

    @get("/usage", responses=PROBLEM_RESPONSES, sync_to_thread=True, opt=needs(AccessScope.READ))
    def usage(self, request: Request[Any, Any, State]) -> Json:
        """The calling tenant's Verification API calls and what they cost."""
        return _certificates(request).usage(provider_or_tenant_caller(request))

    @get(
        "/{cert_id:str}",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(PUBLIC) | shapes(texts=(PEM, "application/jwt")),
    )
    def show(
        self,
        request: Request[Any, Any, State],
        cert_id: str,
        format: Annotated[Literal["json", "x509", "vc-jwt"], Parameter(default="json")],
    ) -> Response[Any]:
        """The current certificate (public): JSON, ?format=x509 (PEM) or ?format=vc-jwt."""
        found = _certificates(request).certificate(cert_id, format, str(request.base_url))
        return _text_or_json(found, PEM if format == "x509" else "application/jwt")

    @get(
        "/{cert_id:str}/record",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ),
    )
    def record(self, request: Request[Any, Any, State], cert_id: str) -> Json:
        """The record (state, review note) for the provider's owner."""
        return _certificates(request).record(_principal(request), cert_id)

    @post(
        "/{cert_id:str}/renew",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.PROVIDERS),
    )
    async def renew(self, request: Request[Any, Any, State], cert_id: str) -> Json:
        """A fresh certificate carrying the provider's current reputation tier."""
        caller = _principal(request)
        return await asyncio.to_thread(_certificates(request).renew, caller, cert_id)

    @post(
        "/{cert_id:str}/revoke",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.PROVIDERS),
    )
    async def revoke(self, request: Request[Any, Any, State], cert_id: str) -> Json:
        """Revokes every serial of the certificate: {"reason": RFC 5280 code, default 0}."""
        caller = _principal(request)
        reason = decode_struct(await request.body(), Revocation, empty=b"{}").reason
        return await asyncio.to_thread(_certificates(request).revoke, caller, cert_id, reason)


class ChallengeController(Controller):
    """IDENTITY endpoint challenges (docs/certificates.md "IDENTITY"), ACME http-01 style."""

    path = "/v1/certificates/challenges"
    tags = ["certificates"]  # noqa: RUF012

    @post(
        "",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        opt=needs(AccessScope.PROVIDERS),
    )
    async def open_challenge(
        self, request: Request[Any, Any, State], data: ChallengeCreate
    ) -> ChallengeView:
        """A token to serve at <registered URL origin>/.well-known/aex-challenge/{token}."""
        caller = _principal(request)
        return await asyncio.to_thread(_certificates(request).open_challenge, caller, data)

    @get(
        "/{token:str}",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ),
    )
    def show_challenge(self, request: Request[Any, Any, State], token: str) -> ChallengeView:
        return _certificates(request).challenge(_principal(request), token)

    @post(
        "/{token:str}/validate",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.PROVIDERS),
    )
    async def validate_challenge(
        self, request: Request[Any, Any, State], token: str
    ) -> ChallengeView:
        """The exchange fetches the key authorisation (SSRF-guarded) and decides: VALID or
        INVALID, both final."""
        caller = _principal(request)
        return await asyncio.to_thread(_certificates(request).validate_challenge, caller, token)


class DelegationController(Controller):
    """RESELLER delegations (docs/certificates.md "RESELLER"): the resold provider's key, its
    signed delegations, and their revocation (which revokes the certificates they authorised)."""

    path = "/v1/certificates"
    tags = ["certificates"]  # noqa: RUF012

    @post(
        "/delegation-keys",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        opt=needs(AccessScope.PROVIDERS),
    )
    async def register_key(
        self, request: Request[Any, Any, State], data: DelegationKeyCreate
    ) -> DelegationKeyView:
        """Registers the P-256 key a provider signs its resale delegations with."""
        caller = _principal(request)
        certificates = _certificates(request)
        return await asyncio.to_thread(certificates.register_delegation_key, caller, data)

    @post(
        "/delegations",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        opt=needs(AccessScope.PROVIDERS),
    )
    async def register_delegation(
        self, request: Request[Any, Any, State], data: DelegationCreate
    ) -> DelegationView:
        """A delegation signed by the resold provider's registered key (ES256 compact JWS)."""
        caller = _principal(request)
        certificates = _certificates(request)
        return await asyncio.to_thread(certificates.register_delegation, caller, data)

    @get(
        "/delegations/{delegation_id:str}",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ),
    )
    def show_delegation(
        self, request: Request[Any, Any, State], delegation_id: str
    ) -> DelegationView:
        return _certificates(request).delegation(_principal(request), delegation_id)

    @post(
        "/delegations/{delegation_id:str}/revoke",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.PROVIDERS),
    )
    async def revoke_delegation(
        self, request: Request[Any, Any, State], delegation_id: str
    ) -> DelegationView:
        """The resold provider withdraws the resale; its RESELLER certificates are revoked."""
        caller = _principal(request)
        certificates = _certificates(request)
        return await asyncio.to_thread(certificates.revoke_delegation, caller, delegation_id)


class CertificateReviewController(Controller):
    path = "/v1/admin/certificates"
    tags = ["certificates", "operator"]  # noqa: RUF012

    @post(
        "/{cert_id:str}/approve",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.OPERATOR),
    )
    async def approve(self, request: Request[Any, Any, State], cert_id: str) -> Json:
        """Issues a reviewed request: {"note"?: up to 256 characters}."""
        operator_caller(request)
        note = decode_struct(await request.body(), ReviewNote, empty=b"{}").note
        return await asyncio.to_thread(_certificates(request).approve, cert_id, note)

    @post(
        "/{cert_id:str}/reject",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.OPERATOR),
    )
    async def reject(self, request: Request[Any, Any, State], cert_id: str) -> Json:
        operator_caller(request)
        note = decode_struct(await request.body(), ReviewNote, empty=b"{}").note
        return await asyncio.to_thread(_certificates(request).reject, cert_id, note)


@get(
    "/v1/crl",
    responses=PROBLEM_RESPONSES,
    sync_to_thread=True,
    tags=["certificates"],
    opt=needs(PUBLIC) | shapes(texts=(PEM,)),
)
def crl(
    request: Request[Any, Any, State],
    format: Annotated[Literal["json", "x509"], Parameter(default="json")],
) -> Response[Any]:
    """The signed certificate revocation list (public); ?format=x509 for an X.509 v2 CRL."""
    return _text_or_json(_certificates(request).crl(format), PEM)


@get(
    "/.well-known/aex-ca.json",
    responses=PROBLEM_RESPONSES,
    sync_to_thread=True,
    tags=["certificates"],
    opt=needs(PUBLIC),
)
def ca_document(request: Request[Any, Any, State]) -> Json:
    """The CA's public keys (JWK) and X.509 certificates, for offline verification."""
    return _certificates(request).ca_document()


@get(
    "/v1/status-lists/{list_number:int}",
    responses=PROBLEM_RESPONSES,
    sync_to_thread=True,
    tags=["certificates"],
    opt=needs(PUBLIC) | shapes(texts=("application/vc+jwt",)),
)
def status_list(request: Request[Any, Any, State], list_number: int) -> Response[str]:
    """The W3C Bitstring Status List credential (revocation) as a VC-JWT signed by the CA."""
    if not 0 <= list_number < 2**31:
        raise ProblemError(404, "not-found", "no such status list")
    found = _certificates(request).status_list(list_number, str(request.base_url))
    return Response(found, media_type="application/vc+jwt")


CERTIFICATE_HANDLERS = (
    CertificateController,
    ChallengeController,
    DelegationController,
    CertificateReviewController,
    crl,
    ca_document,
    status_list,
)
