"""aex/core/endpoints.py: which webhook URLs parse and which addresses may be connected to."""

from __future__ import annotations

import pytest

from aex.core import Rejected
from aex.core.endpoints import address_refusal, parse_endpoint, redacted_url
from aex.core.reasons import EndpointRejectReason as R

REFUSED_ALWAYS = [
    ("169.254.169.254", R.ENDPOINT_ADDRESS_METADATA),
    ("fd00:ec2::254", R.ENDPOINT_ADDRESS_METADATA),
    ("::ffff:169.254.169.254", R.ENDPOINT_ADDRESS_METADATA),
    ("::ffff:a9fe:a9fe", R.ENDPOINT_ADDRESS_METADATA),
    ("64:ff9b::a9fe:a9fe", R.ENDPOINT_ADDRESS_METADATA),
    ("2002:a9fe:a9fe::1", R.ENDPOINT_ADDRESS_METADATA),
    ("::a9fe:a9fe", R.ENDPOINT_ADDRESS_METADATA),
    ("169.254.170.2", R.ENDPOINT_ADDRESS_METADATA),
    ("0.0.0.0", R.ENDPOINT_ADDRESS_UNSPECIFIED),
    ("::", R.ENDPOINT_ADDRESS_UNSPECIFIED),
    ("::ffff:0.0.0.0", R.ENDPOINT_ADDRESS_UNSPECIFIED),
    ("224.0.0.1", R.ENDPOINT_ADDRESS_MULTICAST),
    ("ff02::1", R.ENDPOINT_ADDRESS_MULTICAST),
    ("255.255.255.255", R.ENDPOINT_ADDRESS_RESERVED),
    ("240.0.0.1", R.ENDPOINT_ADDRESS_RESERVED),
    ("192.0.2.1", R.ENDPOINT_ADDRESS_RESERVED),
]
REFUSED_UNLESS_ALLOWED = [
    ("127.0.0.1", R.ENDPOINT_ADDRESS_LOOPBACK),
    ("127.255.0.9", R.ENDPOINT_ADDRESS_LOOPBACK),
    ("::1", R.ENDPOINT_ADDRESS_LOOPBACK),
    ("::ffff:127.0.0.1", R.ENDPOINT_ADDRESS_LOOPBACK),
    ("::127.0.0.1", R.ENDPOINT_ADDRESS_LOOPBACK),
    ("169.254.1.1", R.ENDPOINT_ADDRESS_LINK_LOCAL),
    ("fe80::1", R.ENDPOINT_ADDRESS_LINK_LOCAL),
    ("10.0.0.1", R.ENDPOINT_ADDRESS_PRIVATE),
    ("172.16.5.4", R.ENDPOINT_ADDRESS_PRIVATE),
    ("192.168.1.1", R.ENDPOINT_ADDRESS_PRIVATE),
    ("::ffff:10.0.0.1", R.ENDPOINT_ADDRESS_PRIVATE),
    ("100.64.0.1", R.ENDPOINT_ADDRESS_PRIVATE),
    ("fc00::1", R.ENDPOINT_ADDRESS_PRIVATE),
    ("fd12:3456::1", R.ENDPOINT_ADDRESS_PRIVATE),
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize(("address", "reason"), REFUSED_ALWAYS)
def test_metadata_unspecified_multicast_and_reserved_are_refused_even_when_allowed(
    address: str, reason: R
) -> None:
    assert address_refusal(address, allow_private=False) is reason
    assert address_refusal(address, allow_private=True) is reason


@pytest.mark.parametrize(("address", "reason"), REFUSED_UNLESS_ALLOWED)
def test_loopback_link_local_and_private_are_refused_unless_the_operator_allows(
    address: str, reason: R
) -> None:
    assert address_refusal(address, allow_private=False) is reason
    assert address_refusal(address, allow_private=True) is None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_admitted(address: str) -> None:
    assert address_refusal(address, allow_private=False) is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://agent.example/",
        "http:///nohost",
        "http://127.1/",  # a resolver reads these as 127.0.0.1
        "http://0x7f000001/",
        "http://2130706433/",
        "http://017700000001/",
        "http://agent.example:0/",
        "http://agent.example:99999/",
        "http://agent example/",
        "http://agent.example/\x00",
        "javascript:alert(1)",
        "http://" + "a" * 2000 + ".example/",
    ],
)
def test_malformed_or_numeric_shorthand_urls_are_refused(url: str) -> None:
    parsed = parse_endpoint(url)
    assert isinstance(parsed, Rejected)
    assert parsed.reason is R.ENDPOINT_URL_INVALID
    assert parsed.field == "endpoint"


def test_a_url_parses_into_host_port_and_target() -> None:
    parsed = parse_endpoint("https://User:pw@Agent.Example:8443/hook?x=1#frag")
    assert not isinstance(parsed, Rejected)
    assert (parsed.scheme, parsed.host, parsed.port, parsed.target) == (
        "https",
        "agent.example",
        8443,
        "/hook?x=1",
    )
    assert parsed.host_header == "agent.example:8443"
    assert "pw" not in repr(parsed)
    six = parse_endpoint("http://[::1]/")
    assert not isinstance(six, Rejected)
    assert (six.host_header, str(six.address)) == ("[::1]", "::1")
    assert not isinstance(local := parse_endpoint("http://api.localhost/"), Rejected)
    assert local.is_localhost_name


def test_a_url_is_shown_without_credentials_query_or_fragment() -> None:
    shown = redacted_url("https://user:secret@agent.example:8443/hook?token=abc#x")
    assert shown == "https://agent.example:8443/hook"
    assert redacted_url("not a url") == "<invalid endpoint>"
