"""Download the audio a client names by `audio_url`: streamed, bounded, public addresses only.

Each hop (the URL and every redirect) is resolved once and checked by `net_guard`; the
connection then goes to that checked address, with the URL's name in the Host header and as
the TLS server name (so certificates are still verified against the name).

The body is read as raw bytes and decoded here, not by the HTTP client: a server may answer
`Accept-Encoding: identity` with gzip anyway, and a few kilobytes of stacked gzip decode to
gigabytes. So at most one gzip/deflate layer is accepted, decoded a bounded piece at a time,
and the size limit counts the decoded bytes.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import httpx

from whisperx_api import net_guard
from whisperx_api.errors import DownloadFailed, PayloadTooLarge

PARAM = "audio_url"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 64 * 1024
# zlib's window bits for "a gzip or zlib header, detected".
_GZIP_OR_ZLIB = 32 + zlib.MAX_WBITS
_DECODABLE = frozenset({"gzip", "x-gzip", "deflate"})


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """What one download may take: time, bytes, hops; and whether private targets are allowed."""

    max_bytes: int
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 600.0
    max_redirects: int = 3
    allow_private: bool = False


async def download(
    url: str,
    dest: BinaryIO,
    limits: FetchLimits,
    resolver: net_guard.Resolver | None = None,
) -> None:
    """Write the body at `url` (after at most `max_redirects` checked redirects) into `dest`."""
    timeout = httpx.Timeout(
        limits.read_timeout, connect=limits.connect_timeout, pool=limits.connect_timeout
    )
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
        try:
            async with asyncio.timeout(limits.total_timeout):
                await _follow(client, url, dest, limits, resolver or net_guard.system_resolver)
        except TimeoutError as exc:
            raise DownloadFailed(
                f"Downloading '{PARAM}' took longer than {limits.total_timeout:g} s.", param=PARAM
            ) from exc


async def _follow(
    client: httpx.AsyncClient,
    url: str,
    dest: BinaryIO,
    limits: FetchLimits,
    resolver: net_guard.Resolver,
) -> None:
    for _hop in range(limits.max_redirects + 1):
        target = await net_guard.check_url(url, limits.allow_private, resolver=resolver)
        location = await _fetch_once(client, target, dest, limits.max_bytes)
        if location is None:
            return
        url = location
    raise DownloadFailed(
        f"'{PARAM}' redirected more than {limits.max_redirects} times.", param=PARAM
    )


async def _fetch_once(
    client: httpx.AsyncClient, target: net_guard.Target, dest: BinaryIO, max_bytes: int
) -> str | None:
    """Stream one hop into `dest`; the next URL when this hop is a redirect."""
    named = httpx.URL(target.url)
    pinned = net_guard.pin(target)
    request = client.build_request(
        "GET",
        pinned.url,
        headers={
            **pinned.headers,
            "Accept": "audio/*, video/*, */*",
            "Accept-Encoding": "identity",
        },
        extensions=pinned.extensions,
    )
    try:
        response = await client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        raise DownloadFailed(f"'{PARAM}' timed out.", param=PARAM) from exc
    except httpx.HTTPError as exc:
        raise DownloadFailed(
            f"'{PARAM}' could not be fetched ({_reason(exc)}).", param=PARAM
        ) from exc
    try:
        if response.status_code in _REDIRECTS and "location" in response.headers:
            return str(named.join(response.headers["location"]))
        _check_response(response, max_bytes)
        await _stream_body(response, dest, max_bytes)
    finally:
        await response.aclose()
    return None


def _check_response(response: httpx.Response, max_bytes: int) -> None:
    if not response.is_success:
        raise DownloadFailed(
            f"'{PARAM}' answered HTTP {response.status_code}; expected 200.", param=PARAM
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)


async def _stream_body(response: httpx.Response, dest: BinaryIO, max_bytes: int) -> None:
    decoder = BodyDecoder.for_encoding(response.headers.get("content-encoding", ""))
    received = 0
    try:
        async for raw in response.aiter_raw(_CHUNK_BYTES):
            for chunk in decoder.feed(raw):
                received += len(chunk)
                if received > max_bytes:
                    raise _too_large(max_bytes)
                dest.write(chunk)
        decoder.finish()
    except httpx.TimeoutException as exc:
        raise DownloadFailed(f"'{PARAM}' timed out while sending its body.", param=PARAM) from exc
    except httpx.HTTPError as exc:
        raise DownloadFailed(f"'{PARAM}' broke off ({_reason(exc)}).", param=PARAM) from exc


class BodyDecoder:
    """Content decoding one bounded piece at a time: identity, or one gzip/deflate layer."""

    def __init__(self, compressed: bool) -> None:
        self._zlib = zlib.decompressobj(_GZIP_OR_ZLIB) if compressed else None

    @classmethod
    def for_encoding(cls, header: str) -> BodyDecoder:
        """The decoder for a `Content-Encoding` value; DownloadFailed for stacked or unknown
        encodings (nothing is decoded before the refusal)."""
        codings = [c.strip().lower() for c in header.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        if not codings:
            return cls(compressed=False)
        if len(codings) == 1 and codings[0] in _DECODABLE:
            return cls(compressed=True)
        raise DownloadFailed(
            f"'{PARAM}' answered with Content-Encoding '{header}'; this server asks for "
            "identity and accepts at most one gzip or deflate layer.",
            param=PARAM,
        )

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of `data`, at most one chunk at a time (a bomb never expands in
        one call)."""
        if self._zlib is None:
            if data:
                yield data
            return
        try:
            while True:
                out = self._zlib.decompress(data, _CHUNK_BYTES)
                data = self._zlib.unconsumed_tail
                if self._zlib.eof and self._zlib.unused_data:
                    data = self._zlib.unused_data + data  # another gzip member follows
                    self._zlib = zlib.decompressobj(_GZIP_OR_ZLIB)
                if out:
                    yield out
                if not data and len(out) < _CHUNK_BYTES:
                    return
        except zlib.error as exc:
            raise DownloadFailed(f"'{PARAM}' sent a corrupt compressed body.", param=PARAM) from exc

    def finish(self) -> None:
        """Refuse a compressed body that stopped before its end."""
        if self._zlib is not None and not self._zlib.eof:
            raise DownloadFailed(f"'{PARAM}' sent a truncated compressed body.", param=PARAM)


def _too_large(max_bytes: int) -> PayloadTooLarge:
    error = PayloadTooLarge(
        f"The audio at '{PARAM}' is larger than the limit of {max_bytes} bytes."
    )
    error.param = PARAM
    return error


def _reason(exc: httpx.HTTPError) -> str:
    return type(exc).__name__
