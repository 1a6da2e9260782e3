"""The outbound URL guard: which addresses are public, which URLs parse, and that a name is
judged by every address it resolves to."""

from __future__ import annotations

import ipaddress

import pytest

from whisperx_api.errors import UrlNotAllowed
from whisperx_api.net_guard import check_url, is_public, parse_http_url

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),
        ("0.0.0.0", False),  # noqa: S104 (an address under test, not a bind)
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:93.184.216.34", True),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a",
        "file:///etc/passwd",
        "//example.com/a",
        "http://",
        "http://u:p@h/a",
        "http://example.com:99999/a",
    ],
)
def test_only_plain_http_urls_parse(url: str) -> None:
    with pytest.raises(UrlNotAllowed):
        parse_http_url(url)


def test_default_ports() -> None:
    assert parse_http_url("https://Example.com/a") == ("https", "example.com", 443)
    assert parse_http_url("http://example.com:8080/a") == ("http", "example.com", 8080)


async def test_one_private_address_among_public_ones_refuses_the_name() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "192.168.0.10"]

    with pytest.raises(UrlNotAllowed):
        await check_url("http://mixed.example/a", False, resolver=resolver)
    allowed = await check_url("http://mixed.example/a", True, resolver=resolver)
    assert str(allowed.address) == "93.184.216.34"


async def test_unresolvable_names_are_refused() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(UrlNotAllowed):
        await check_url("http://nowhere.invalid/a", False, resolver=resolver)
