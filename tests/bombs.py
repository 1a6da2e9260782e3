"""Compression bombs for hostile-peer tests: a few kilobytes that decode to a gigabyte."""

from __future__ import annotations

import functools
import io
import zlib
from fractions import Fraction

import av

_ZEROS = b"\0" * (1024 * 1024)


@functools.cache
def stacked_gzip(decoded_bytes: int, layers: int = 2) -> bytes:
    """`decoded_bytes` of zeros, gzipped `layers` times (built once per process, streamed)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [packer.compress(_ZEROS) for _ in range(decoded_bytes // len(_ZEROS))]
    data = b"".join(parts) + packer.compress(_ZEROS[: decoded_bytes % len(_ZEROS)])
    data += packer.flush()
    for _ in range(layers - 1):
        outer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        data = outer.compress(data) + outer.flush()
    return data


def many_packet_audio(packets: int) -> bytes:
    """A Matroska file of `packets` one-sample PCM packets: a few bytes each to send, but each
    costs the decoder a full round (millions of them took a decoder tens of seconds)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as out:
        stream = out.add_stream("pcm_s16le", rate=48_000, layout="mono")
        stream.time_base = Fraction(1, 48_000)
        for index in range(packets):
            packet = av.Packet(b"\x01\x00")
            packet.stream = stream
            packet.pts = packet.dts = index
            packet.time_base = stream.time_base
            out.mux(packet)
    return buffer.getvalue()
