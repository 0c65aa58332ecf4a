"""Webhook endpoints: resolving a provider's host and pinning the delivery to a checked address.

The rule (which addresses may be reached) is aex/core/endpoints.py; this module owns the I/O
around it. `EndpointPolicy.registration_refusal` runs when a provider registers or changes its
endpoint: the URL must parse, and every address its host resolves to (when it resolves) must
be admitted; a name that does not resolve yet is accepted, because the delivery checks again.
`EndpointPolicy.pin` runs before every delivery attempt: it resolves the host, refuses the
attempt when ANY address is refused (DNS rebinding: the name may have moved since it was
registered), and returns the first checked address. The delivery then connects to that
address only (the URL's host replaced by the address, the original name in the Host header
and in TLS SNI and certificate verification), so a second lookup inside the HTTP client cannot
take it elsewhere, and proxies from the environment are not used.

Resolvers are injected (`Resolver`): the system's (getaddrinfo), and a static table
(AEX_WEBHOOK_HOSTS, like curl's --resolve) consulted first. With AEX_WEBHOOK_DNS=off only the
table and IP literals resolve: the test suite runs so, so that no test ever sends a DNS query
to a non-loopback server.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Protocol

from aex.core import Rejected
from aex.core.endpoints import EndpointUrl, address_refusal, parse_endpoint
from aex.core.reasons import EndpointRejectReason

# A registration waits this long for the resolver before it accepts the name unchecked (the
# delivery checks it again); the resolver's own timeout bounds a delivery's lookup.
REGISTRATION_RESOLVE_TIMEOUT_S = 2.0
ADDRESSES_PER_HOST_MAX = 32
_LOOKUPS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="aex-resolve")


class ResolveError(Exception):
    """The host has no address (the resolver said so, or it is not in the static table)."""


class Resolver(Protocol):
    def resolve(self, host: str, port: int) -> tuple[str, ...]:
        """The host's addresses, in the resolver's order; raises ResolveError or OSError."""
        ...


@dataclass(frozen=True, slots=True)
class SystemResolver:
    def resolve(self, host: str, port: int) -> tuple[str, ...]:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = dict.fromkeys(str(info[4][0]) for info in infos)
        if not found:
            raise ResolveError(host)
        return tuple(found)[:ADDRESSES_PER_HOST_MAX]


@dataclass(frozen=True, slots=True)
class StaticResolver:
    """A fixed table (host -> addresses) consulted first, then `fallback` (None: nothing else
    resolves)."""

    table: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fallback: Resolver | None = None

    def resolve(self, host: str, port: int) -> tuple[str, ...]:
        found = self.table.get(host.rstrip(".").lower())
        if found:
            return found
        if self.fallback is None:
            raise ResolveError(host)
        return self.fallback.resolve(host, port)


@dataclass(frozen=True, slots=True)
class Pinned:
    """A delivery target: the endpoint and the one checked address to connect to."""

    endpoint: EndpointUrl
    address: str

    @property
    def url(self) -> str:
        ip = ipaddress.ip_address(self.address)
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        userinfo = f"{self.endpoint.userinfo}@" if self.endpoint.userinfo else ""
        return (
            f"{self.endpoint.scheme}://{userinfo}{host}:{self.endpoint.port}{self.endpoint.target}"
        )


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    resolver: Resolver = field(default_factory=SystemResolver)
    allow_private: bool = False

    def registration_refusal(self, url: str) -> Rejected[EndpointRejectReason] | None:
        """Why `url` may not be registered (field "endpoint"), or None."""
        parsed = parse_endpoint(url)
        if isinstance(parsed, Rejected):
            return parsed
        try:
            addresses = self._addresses(parsed, timeout_s=REGISTRATION_RESOLVE_TIMEOUT_S)
        except (ResolveError, OSError, FutureTimeout):
            return None  # not resolvable now: every delivery resolves and checks it again
        return self._refusal(addresses)

    def pin(self, url: str) -> Pinned | str:
        """The checked address to deliver to, or a coarse error ("endpoint_invalid",
        "dns_failed", "address_refused") when no connection may be made."""
        parsed = parse_endpoint(url)
        if isinstance(parsed, Rejected):
            return "endpoint_invalid"
        try:
            addresses = self._addresses(parsed, timeout_s=None)
        except (ResolveError, OSError, ValueError):
            return "dns_failed"
        if not addresses or self._refusal(addresses) is not None:
            return "address_refused"
        return Pinned(parsed, addresses[0])

    def _addresses(self, parsed: EndpointUrl, *, timeout_s: float | None) -> tuple[str, ...]:
        if parsed.address is not None:
            return (str(parsed.address),)
        if parsed.is_localhost_name:  # RFC 6761: loopback, whatever a resolver says
            return ("127.0.0.1",)
        if timeout_s is None:
            found = self.resolver.resolve(parsed.host, parsed.port)
        else:
            lookup = _LOOKUPS.submit(self.resolver.resolve, parsed.host, parsed.port)
            found = lookup.result(timeout=timeout_s)
        return tuple(str(ipaddress.ip_address(a.split("%", 1)[0])) for a in found)

    def _refusal(self, addresses: tuple[str, ...]) -> Rejected[EndpointRejectReason] | None:
        for address in addresses:
            refused = address_refusal(address, allow_private=self.allow_private)
            if refused is not None:
                return Rejected(refused, "endpoint", "webhook endpoints must be public addresses")
        return None


def parse_hosts_table(text: str) -> dict[str, tuple[str, ...]]:
    """AEX_WEBHOOK_HOSTS: "name=addr[|addr],name=addr" (raises ValueError on a bad entry)."""
    table: dict[str, tuple[str, ...]] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, sep, addresses = entry.partition("=")
        name = name.strip().rstrip(".").lower()
        parsed = parse_endpoint(f"http://{name}/")
        if not sep or isinstance(parsed, Rejected) or parsed.address is not None:
            raise ValueError(entry)
        found = tuple(str(ipaddress.ip_address(a.strip())) for a in addresses.split("|"))
        if not found:
            raise ValueError(entry)
        table[name] = found
    return table
