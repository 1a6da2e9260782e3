"""Telling a cut-off file from a complete one where the decoder would not notice.

Raw mp3 files carry no total length, so a file cut mid-way decodes without error; only its
last frame gives it away, being shorter than its own header says. A WAV file's data chunk
declares its size, but FFmpeg quietly clamps it to what is there.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_RIFF_SCAN_BYTES = 1 << 16
_STREAMING_SIZES = (0, 0xFFFFFFFF)

_BITRATES_KBPS = {
    (1, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES = {1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 25: (11025, 12000, 8000)}
_VERSIONS = {0b11: 1, 0b10: 2, 0b00: 25}
_LAYERS = {0b11: 1, 0b10: 2, 0b01: 3}


def expected_frame_length(header: bytes) -> int | None:
    """Bytes the frame starting with `header` should span, or None if it is not a frame header."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version = _VERSIONS.get((header[1] >> 3) & 0b11)
    layer = _LAYERS.get((header[1] >> 1) & 0b11)
    bitrate_index, rate_index = header[2] >> 4, (header[2] >> 2) & 0b11
    if version is None or layer is None or bitrate_index in (0, 15) or rate_index == 3:
        return None
    bitrate = _BITRATES_KBPS[(min(version, 2), layer)][bitrate_index] * 1000
    rate = _SAMPLE_RATES[version][rate_index]
    padding = (header[2] >> 1) & 1
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4
    per_frame = 144 if layer == 2 or version == 1 else 72
    return per_frame * bitrate // rate + padding


def is_cut_short(packet: bytes) -> bool:
    """True when an MPEG audio packet is shorter than its header declares."""
    expected = expected_frame_length(packet[:4])
    return expected is not None and len(packet) < expected


def wav_is_cut_short(path: Path) -> bool:
    """True when a RIFF/WAVE file's data chunk declares more bytes than the file holds."""
    header = wav_header(path)
    if header is None or header.data_size in _STREAMING_SIZES:
        return False
    return header.data_offset + header.data_size > path.stat().st_size


def wav_declared_seconds(source: Path | BinaryIO) -> float | None:
    """The duration a RIFF/WAVE header states (data size over byte rate); None when unknown.

    FFmpeg reports the duration of the data actually present, so a header claiming hours of
    audio in a small file is only visible here.
    """
    header = wav_header(source)
    if header is None or header.data_size in _STREAMING_SIZES or not header.byte_rate:
        return None
    return header.data_size / header.byte_rate


@dataclass(frozen=True, slots=True)
class WavHeader:
    """What a RIFF/WAVE file's chunks declare."""

    data_offset: int
    data_size: int
    byte_rate: int | None


def wav_header(source: Path | BinaryIO) -> WavHeader | None:
    """The data chunk's place and size and the format's byte rate; None when not RIFF/WAVE.
    A stream is read from where it stands, and left there."""
    if isinstance(source, Path):
        with source.open("rb") as f:
            head = f.read(_RIFF_SCAN_BYTES)
    else:
        start = source.tell()
        try:
            head = source.read(_RIFF_SCAN_BYTES)
        finally:
            source.seek(start)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    offset = 12
    byte_rate: int | None = None
    while offset + 8 <= len(head):
        chunk_id = head[offset : offset + 4]
        size: int = struct.unpack("<I", head[offset + 4 : offset + 8])[0]
        if chunk_id == b"fmt " and offset + 20 <= len(head):
            byte_rate = struct.unpack("<I", head[offset + 16 : offset + 20])[0] or None
        if chunk_id == b"data":
            return WavHeader(offset + 8, size, byte_rate)
        offset += 8 + size + (size & 1)
    return None
