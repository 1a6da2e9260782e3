"""The outbound URL guard: which addresses are public, which URLs parse, and that a name is
judged by every address it resolves to."""

from __future__ import annotations

import ipaddress

import pytest

from whisperx_api.errors import UrlNotAllowed
from whisperx_api.net_guard import check_url, is_public, parse_http_url, pin

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
        ("fec0::1", False),  # site-local (deprecated, still routed inside some networks)
        ("2002:7f00:1::", False),  # 6to4 around 127.0.0.1
        ("2002:a9fe:a9fe::", False),  # 6to4 around 169.254.169.254
        ("2002:5db8:d822::", False),  # 6to4 even around a public address: refused as a range
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo (embeds 127.0.0.1, inverted)
        ("64:ff9b::7f00:1", False),  # NAT64 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 around the metadata address
        ("64:ff9b::5db8:d822", True),  # NAT64 around a public address
        ("64:ff9b:1::7f00:1", False),  # local-use NAT64
        ("::7f00:1", False),  # IPv4-compatible
        ("::ffff:0:7f00:1", False),  # IPv4-translated
        ("::ffff:169.254.169.254", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_internationalised_host_names_are_sent_as_idna() -> None:
    assert parse_http_url("http://bücher.example/a")[1] == "xn--bcher-kva.example"
    assert parse_http_url("https://ÄÖÜ.example:8443/")[1:] == ("xn--4ca0bs.example", 8443)


@pytest.mark.parametrize(
    "url", ["http://a\u200db.example/", "http://\udcff.example/", "http://\U0001f4a9.example/"]
)
def test_a_host_name_idna_cannot_encode_is_refused(url: str) -> None:
    with pytest.raises(UrlNotAllowed, match="internationalised"):
        parse_http_url(url)


async def test_an_idn_url_is_resolved_and_pinned_in_ascii() -> None:
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["93.184.216.34"]

    target = await check_url("https://bücher.example/x", False, resolver=resolver)
    pinned = pin(target)
    assert asked == ["xn--bcher-kva.example"]
    assert pinned.headers == {"host": "xn--bcher-kva.example"}
    assert pinned.extensions == {"sni_hostname": "xn--bcher-kva.example"}
    assert pinned.url == "https://93.184.216.34/x"


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
