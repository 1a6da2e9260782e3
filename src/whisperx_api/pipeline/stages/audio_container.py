"""Opening a client's file with FFmpeg so that it can only ever read that one file.

Some FFmpeg demuxers are not media containers but lists of other inputs: an HLS or DASH
playlist, a `concat` script, `tee`, image sequences. Probed from a client's bytes, they would
make the server read other files on its disk, or fetch URLs. Every open here allows only the
`file` protocol (for nested opens; the client's own file is given as a path or a Python file
object) and only the audio-bearing demuxers listed below; the name of the demuxer that opened
the file is checked against the same list once more.
"""

from __future__ import annotations

from typing import BinaryIO

import av

from whisperx_api.errors import InvalidAudio

# FFmpeg demuxer names (one demuxer may answer to several, e.g. "mov,mp4,m4a,3gp,3g2,mj2").
AUDIO_DEMUXERS = frozenset(
    {
        "aac",
        "ac3",
        "aiff",
        "amr",
        "ape",
        "asf",
        "au",
        "avi",
        "caf",
        "dts",
        "eac3",
        "flac",
        "matroska",
        "webm",
        "mov",
        "mp4",
        "m4a",
        "3gp",
        "3g2",
        "mj2",
        "mp3",
        "mpeg",
        "mpegts",
        "ogg",
        "tta",
        "w64",
        "wav",
        "wv",
    }
)
_OPEN_OPTIONS = {
    "protocol_whitelist": "file",
    "format_whitelist": ",".join(sorted(AUDIO_DEMUXERS)),
}

# Sample rates outside this range are not audio anyone records; a header claiming one is forged.
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000

NOT_AUDIO = "The uploaded file is not audio this server can decode."


def open_audio(source: str | BinaryIO) -> av.container.InputContainer:
    """Open `source` with the audio demuxers only; raise InvalidAudio for anything else.

    The caller closes the container (use it as a context manager).
    """
    try:
        container = av.open(
            source, mode="r", container_options=dict(_OPEN_OPTIONS), metadata_errors="ignore"
        )
    except av.error.FFmpegError as exc:
        raise InvalidAudio(NOT_AUDIO) from exc
    if not set(container.format.name.split(",")) & AUDIO_DEMUXERS:
        container.close()
        raise InvalidAudio(NOT_AUDIO)
    return container


def audio_stream(container: av.container.InputContainer) -> av.AudioStream:
    """The first audio stream, with a sample rate a real recording could have."""
    if not container.streams.audio:
        raise InvalidAudio("The uploaded file has no audio stream.")
    stream = container.streams.audio[0]
    rate = stream.codec_context.sample_rate or 0
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise InvalidAudio(
            f"The audio declares a sample rate of {rate} Hz; accepted: "
            f"{MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz."
        )
    return stream


def declared_container_seconds(container: av.container.InputContainer) -> float | None:
    """The first audio stream's duration as the container states it; None when unknown."""
    stream = container.streams.audio[0]
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / av.time_base
    return None
