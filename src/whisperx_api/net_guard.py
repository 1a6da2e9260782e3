"""Outbound URLs a client names (`audio_url`, `webhook_url`): public addresses only, after DNS.

A client-supplied URL must not turn the server into a proxy into its own network (cloud metadata
at 169.254.169.254, an admin port on localhost, a database on 10.x).

The check runs on the addresses a name resolves to, not on the name, and the caller then
connects to one of exactly those addresses: a name that resolves to a public address for the
check and to a private one for the connection (DNS rebinding) never reaches the private one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import idna

from whisperx_api.errors import InvalidUrl, UrlNotAllowed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_SCHEMES = {"http": 80, "https": 443}

# IPv6 ranges that can carry (or route to) an IPv4 or site-internal address, refused whatever
# address they embed: 6to4 (2002::/16 holds 127.0.0.1 as 2002:7f00:1::), Teredo, IPv4-compatible
# and IPv4-translated forms, local-use NAT64, and the deprecated site-local range. Well-known
# NAT64 (64:ff9b::/96) and IPv4-mapped addresses are judged by the IPv4 address they carry.
_EMBEDDING_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "2002::/16",
        "2001::/32",
        "::/96",
        "::ffff:0:0:0/96",
        "64:ff9b:1::/48",
        "fec0::/10",
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: where to connect (`address`) and what to call it (`host`, for TLS/Host)."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress


def parse_http_url(url: str, param: str = "audio_url") -> tuple[str, str, int]:
    """(scheme, host, port) of an absolute http(s) URL without credentials."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UrlNotAllowed(f"'{param}' is not a valid URL.", param=param) from exc
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise UrlNotAllowed(f"'{param}' must be an absolute http or https URL.", param=param)
    if parts.username or parts.password:
        raise UrlNotAllowed(f"'{param}' must not carry credentials.", param=param)
    return parts.scheme, ascii_host(parts.hostname, param), port or _SCHEMES[parts.scheme]


def ascii_host(host: str, param: str) -> str:
    """The host as it goes on the wire: IDNA (2008, UTS 46) for an internationalised name, so
    the resolver, the Host header and TLS all see ASCII; a name that cannot be encoded is a 400."""
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise UrlNotAllowed(
            f"The host of '{param}' is not a valid internationalised domain name.", param=param
        ) from exc


def check_url_syntax(url: str, param: str) -> str:
    """An absolute http(s) URL with a host (no DNS), else 400 `invalid_url` on `param`."""
    try:
        parse_http_url(url, param)
    except UrlNotAllowed as exc:
        raise InvalidUrl(exc.message, param=param) from None
    return url


def is_public(address: IPAddress) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified addresses,
    and for IPv6 forms that embed an address that is not public (or any IPv4 address at all)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address in _NAT64:
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))
        if any(address in net for net in _EMBEDDING_V6):
            return False
    refused = (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )
    return address.is_global and not refused


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for `host` (TCP)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve_public(
    host: str,
    port: int,
    allow_private: bool,
    *,
    resolver: Resolver = system_resolver,
    param: str = "audio_url",
) -> list[IPAddress]:
    """Resolve `host` once; refuse it if any address is not public (unless allowed)."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        addresses = await _resolved(host, port, resolver, param)
    if not allow_private:
        refused = [a for a in addresses if not is_public(a)]
        if refused:
            raise UrlNotAllowed(
                f"'{param}' points at a non-public address ({refused[0]}); this server only "
                "fetches from public networks.",
                param=param,
            )
    return addresses


async def _resolved(host: str, port: int, resolver: Resolver, param: str) -> list[IPAddress]:
    try:
        raw = await resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise UrlNotAllowed(f"The host of '{param}' could not be resolved.", param=param) from exc
    addresses: list[IPAddress] = []
    for text in raw:
        addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
    if not addresses:
        raise UrlNotAllowed(f"The host of '{param}' could not be resolved.", param=param)
    return addresses


async def check_url(
    url: str,
    allow_private: bool,
    *,
    resolver: Resolver = system_resolver,
    param: str = "audio_url",
) -> Target:
    """Parse and resolve `url`; the first checked address is the one to connect to."""
    scheme, host, port = parse_http_url(url, param)
    addresses = await resolve_public(host, port, allow_private, resolver=resolver, param=param)
    return Target(url=url, scheme=scheme, host=host, port=port, address=addresses[0])


@dataclass(frozen=True, slots=True)
class PinnedRequest:
    """A request aimed at one checked address, so a second DNS answer cannot redirect it."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]


def pin(target: Target) -> PinnedRequest:
    """The target's URL with its host replaced by the checked address; the original name still
    goes in `Host` and, for https, in SNI and certificate verification."""
    parts = urlsplit(target.url.strip())
    literal = f"[{target.address}]" if target.address.version == 6 else str(target.address)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    shown_host = f"[{target.host}]" if ":" in target.host else target.host
    host_header = shown_host if parts.port is None else f"{shown_host}:{parts.port}"
    extensions: dict[str, Any] = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return PinnedRequest(pinned, {"host": host_header}, extensions)
