"""Which URLs the server may contact for a client: http(s) to public addresses only.

A client-supplied URL must not turn the server into a proxy into its own network (cloud metadata
at 169.254.169.254, an admin port on localhost, a database on 10.x). The host is resolved and
every address it resolves to is checked, so a public name pointing at a private address is
refused too. `FETCH__ALLOW_PRIVATE_NETWORKS=true` lifts the address rule (tests, LANs).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from whisperx_api.errors import InvalidUrl, UrlNotAllowed, UrlNotResolvable

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def check_url_syntax(url: str, param: str) -> str:
    """An absolute http(s) URL with a host, else 400 on `param`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        message = f"Invalid '{param}': {exc}."
        raise InvalidUrl(message, param=param) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidUrl(
            f"Invalid '{param}': an absolute http:// or https:// URL is required.",
            param=param,
        )
    if port == 0:
        raise InvalidUrl(f"Invalid '{param}': port 0.", param=param)
    return url


def check_public_url(url: str, param: str, *, allow_private: bool) -> list[IpAddress]:
    """Resolve the URL's host; 400 `url_not_allowed` if any address is not public.

    Returns the addresses checked. Blocking (DNS): call it off the event loop.
    """
    check_url_syntax(url, param)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = resolve(host, port, param)
    if allow_private:
        return addresses
    for address in addresses:
        if not is_public(address):
            raise UrlNotAllowed(
                f"'{param}' points at {address}, which is not a public address; this server "
                "only contacts public hosts (FETCH__ALLOW_PRIVATE_NETWORKS=true lifts this).",
                param=param,
            )
    return addresses


@dataclass(frozen=True, slots=True)
class PinnedRequest:
    """A request aimed at one checked address, so a second DNS answer cannot redirect it."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]


def pin(url: str, address: IpAddress) -> PinnedRequest:
    """`url` with its host replaced by `address`; the original name still goes in `Host` and,
    for https, in SNI and certificate verification."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    shown_host = f"[{host}]" if ":" in host else host
    host_header = shown_host if parts.port is None else f"{shown_host}:{parts.port}"
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return PinnedRequest(pinned, {"host": host_header}, extensions)


def resolve(host: str, port: int, param: str) -> list[IpAddress]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlNotResolvable(
            f"'{param}': the host '{host}' cannot be resolved ({exc}).",
            param=param,
        ) from None
    found: list[IpAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def is_public(address: IpAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local, multicast or reserved."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast
