"""Audio files that lie: headers declaring what is not there, and containers naming other files.

Built on the fly from committed fixtures (nothing large is ever written to the repository).
"""

from __future__ import annotations

import struct
from pathlib import Path

from tests.audio import DATA, tone_wav

FLAC_FIXTURE = DATA / "en_espeak.flac"
_STREAMINFO_FIELDS = 18  # "fLaC" + block header (4) + block/frame sizes (10)


def flac_declaring(path: Path, seconds: float, source: Path = FLAC_FIXTURE) -> Path:
    """A copy of a real FLAC file whose STREAMINFO claims `seconds` of audio."""
    data = bytearray(source.read_bytes())
    assert data[:4] == b"fLaC"
    assert data[4] & 0x7F == 0, "STREAMINFO must come first"
    (packed,) = struct.unpack(">Q", bytes(data[_STREAMINFO_FIELDS : _STREAMINFO_FIELDS + 8]))
    rate = packed >> 44
    total = int(seconds * rate)
    assert total < 1 << 36
    packed = (packed & ~((1 << 36) - 1)) | total
    data[_STREAMINFO_FIELDS : _STREAMINFO_FIELDS + 8] = struct.pack(">Q", packed)
    path.write_bytes(bytes(data))
    return path


def flac_with_rate(path: Path, rate: int, source: Path = FLAC_FIXTURE) -> Path:
    """A copy of a real FLAC file whose STREAMINFO states another sample rate (20 bits)."""
    data = bytearray(source.read_bytes())
    (packed,) = struct.unpack(">Q", bytes(data[_STREAMINFO_FIELDS : _STREAMINFO_FIELDS + 8]))
    packed = (packed & ((1 << 44) - 1)) | (rate << 44)
    data[_STREAMINFO_FIELDS : _STREAMINFO_FIELDS + 8] = struct.pack(">Q", packed)
    path.write_bytes(bytes(data))
    return path


def wav_declaring(path: Path, data_bytes: int, seconds: float = 1.0) -> Path:
    """A short tone WAV whose data chunk (and RIFF size) claim `data_bytes` bytes."""
    tone_wav(path, seconds)
    data = bytearray(path.read_bytes())
    at = data.index(b"data")
    data[at + 4 : at + 8] = struct.pack("<I", data_bytes)
    data[4:8] = struct.pack("<I", min(0xFFFFFFFE, data_bytes + at))
    path.write_bytes(bytes(data))
    return path


def wav_with_rate(path: Path, rate: int, seconds: float = 1.0) -> Path:
    """A short tone WAV whose fmt chunk states `rate` samples a second (byte rate to match)."""
    tone_wav(path, seconds)
    data = bytearray(path.read_bytes())
    at = data.index(b"fmt ")
    data[at + 12 : at + 16] = struct.pack("<I", rate)
    data[at + 16 : at + 20] = struct.pack("<I", (rate * 2) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def concat_script(target: Path) -> bytes:
    """An FFmpeg concat script that names `target` (relative to the script: FFmpeg's 'safe'
    mode refuses absolute names, so an attack would use a relative one)."""
    return f"ffconcat version 1.0\nfile '{target.name}'\n".encode()


def hls_playlist(target: str) -> bytes:
    """An HLS playlist whose only segment is `target` (a path or a URL)."""
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:30\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:30.0,\n{target}\n#EXT-X-ENDLIST\n"
    ).encode()
