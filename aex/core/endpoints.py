# Rule: which webhook endpoints the exchange will connect to, decided here and only here.
#
# Theory of operation: a provider names a URL; the exchange POSTs events to it. Left alone,
# that is a server-side request forgery primitive: "http://169.254.169.254/latest/meta-data"
# reads the cloud's instance credentials, "http://127.0.0.1:5432" probes the database, and the
# delivery log tells the provider which internal ports are open. So an endpoint is checked
# twice: its URL when it is registered (`parse_endpoint`: http or https, a host, no numeric
# shorthand such as "127.1" or "0x7f000001" that a resolver would read as an address), and
# every address its host resolves to, at registration and again at every delivery
# (`address_refusal`), because a name may resolve elsewhere by the time it is used (DNS
# rebinding): the driver connects only to an address this module accepted.
#
# Address classes, in precedence order (the first that applies is the answer):
#   metadata (169.254.169.254, fd00:ec2::254, ...) and unspecified, multicast and every other
#   non-global range are refused always; loopback, link-local and private (RFC 1918, shared
#   100.64/10, unique-local fc00::/7, site-local fec0::/10) are refused unless the operator
#   allows them (`allow_private`, AEX_WEBHOOK_ALLOW_PRIVATE=1: local development and the test
#   suite's loopback receivers). An IPv6 address that embeds an IPv4 one (IPv4-mapped
#   ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo) is judged by the IPv4 address
#   it reaches. "localhost" and "*.localhost" are loopback by RFC 6761, whatever a resolver says.
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from aex.core.reasons import EndpointRejectReason, Rejected

__all__ = [
    "ENDPOINT_CHARS_MAX",
    "METADATA_ADDRESSES",
    "EndpointUrl",
    "address_refusal",
    "parse_endpoint",
    "redacted_url",
]

ENDPOINT_CHARS_MAX: Final = 2000
# Cloud instance-metadata services: AWS/GCP/Azure/OpenStack (IPv4 and AWS's IPv6), AWS ECS task
# metadata, Alibaba Cloud. Refused even when private addresses are allowed: no webhook lives there.
METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
_PRIVATE_NETWORKS: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
        "fec0::/10",
    )
)
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_HOST_NAME: Final = re.compile(
    r"(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
    r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.?"
)
# A last label a resolver would read as a number ("127.1", "2130706433", "0x7f.1"): no TLD is.
_NUMERIC_LABEL: Final = re.compile(r"0x[0-9a-f]*|[0-9]+")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_REFUSED_ALWAYS: Final = frozenset(
    {
        EndpointRejectReason.ENDPOINT_ADDRESS_METADATA,
        EndpointRejectReason.ENDPOINT_ADDRESS_UNSPECIFIED,
        EndpointRejectReason.ENDPOINT_ADDRESS_MULTICAST,
        EndpointRejectReason.ENDPOINT_ADDRESS_RESERVED,
    }
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class EndpointUrl:
    """A parsed endpoint: `host` is lower case (an IPv6 literal without brackets), `target` the
    path and query sent in the request line, `address` the host when it is an IP literal,
    `userinfo` the "user:password@" part (sent as Basic auth; never logged or shown)."""

    scheme: str
    host: str
    port: int
    target: str
    address: Address | None
    userinfo: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        assert self.scheme in _DEFAULT_PORTS
        assert 0 < self.port < 65_536
        assert self.target.startswith("/")

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if isinstance(self.address, ipaddress.IPv6Address) else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def is_localhost_name(self) -> bool:
        return self.host in ("localhost", "localhost.") or self.host.rstrip(".").endswith(
            ".localhost"
        )


def parse_endpoint(url: str) -> EndpointUrl | Rejected[EndpointRejectReason]:
    """Parses a webhook URL: http(s), a host name or IP literal, an optional port.

    Rejections: ENDPOINT_URL_INVALID (field "endpoint") for anything else, including a host
    a resolver would read as a numeric address ("127.1") and control characters or spaces.
    """
    invalid = Rejected(EndpointRejectReason.ENDPOINT_URL_INVALID, "endpoint", "an http(s) URL")
    if len(url) > ENDPOINT_CHARS_MAX or any(c.isspace() or ord(c) < 0x21 for c in url):
        return invalid
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return invalid
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return invalid
    address = _literal(host)
    if address is None and (
        _HOST_NAME.fullmatch(host) is None
        or _NUMERIC_LABEL.fullmatch(host.rstrip(".").rsplit(".", 1)[-1]) is not None
    ):
        return invalid
    if port == 0:
        return invalid
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    userinfo = parts.netloc.rpartition("@")[0]
    return EndpointUrl(scheme, host, port or _DEFAULT_PORTS[scheme], target, address, userinfo)


def address_refusal(address: str | Address, *, allow_private: bool) -> EndpointRejectReason | None:
    """Why the exchange will not connect to `address`, or None (it may).

    Args:
        address: one address a host resolved to (or an IP literal).
        allow_private: the operator's AEX_WEBHOOK_ALLOW_PRIVATE; it admits loopback,
            link-local and private addresses, never metadata, unspecified, multicast or
            reserved ones.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    found = _address_class(ip)
    if found is None or (allow_private and found not in _REFUSED_ALWAYS):
        return None
    return found


def redacted_url(url: str) -> str:
    """The URL as logs and delivery records show it: no credentials, query or fragment."""
    parsed = parse_endpoint(url)
    if isinstance(parsed, Rejected):
        return "<invalid endpoint>"
    path = parsed.target.split("?", 1)[0]
    return f"{parsed.scheme}://{parsed.host_header}{path}"


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # The IPv4 address an IPv6 one reaches: mapped, NAT64 well-known prefix, 6to4, Teredo.
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible ::a.b.c.d (deprecated, still routed)
        return ipaddress.IPv4Address(int(ip))
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def _address_class(ip: Address) -> EndpointRejectReason | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    embedded = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    if embedded is not None:
        ip = embedded  # judged by the IPv4 address it reaches (one level: IPv4 embeds nothing)
    if ip in METADATA_ADDRESSES:
        return EndpointRejectReason.ENDPOINT_ADDRESS_METADATA
    if ip.is_unspecified:
        return EndpointRejectReason.ENDPOINT_ADDRESS_UNSPECIFIED
    if ip.is_multicast:
        return EndpointRejectReason.ENDPOINT_ADDRESS_MULTICAST
    if ip.is_loopback:
        return EndpointRejectReason.ENDPOINT_ADDRESS_LOOPBACK
    if ip.is_link_local:
        return EndpointRejectReason.ENDPOINT_ADDRESS_LINK_LOCAL
    if any(ip in network for network in _PRIVATE_NETWORKS if network.version == ip.version):
        return EndpointRejectReason.ENDPOINT_ADDRESS_PRIVATE
    if not ip.is_global:
        return EndpointRejectReason.ENDPOINT_ADDRESS_RESERVED
    return None


assert all(
    _address_class(a) is EndpointRejectReason.ENDPOINT_ADDRESS_METADATA for a in METADATA_ADDRESSES
)
