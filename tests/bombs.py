"""Compression bombs for hostile-peer tests: a few kilobytes that decode to a gigabyte."""

from __future__ import annotations

import functools
import zlib

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
