"""A file's declared duration, read from its headers without decoding the audio: for admission
at submit (an upload or a download still in a stream) and for sizing a job (a file on disk)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import av

from whisperx_api.errors import InvalidAudio
from whisperx_api.pipeline.stages.audio_container import (
    audio_stream,
    declared_container_seconds,
    open_audio,
)
from whisperx_api.pipeline.stages.truncation import wav_declared_seconds


def declared_seconds(source: Path | BinaryIO) -> float | None:
    """The duration the headers declare: the first audio stream's as the container states it
    (the larger of that and the RIFF header's, for a WAV whose header and data disagree); None
    when none is declared or the file does not open (the probe or decoding then says why).

    Cheap and only a hint: the decoder still enforces the real limit on the samples. A stream is
    read from where it stands, and left there.
    """
    if isinstance(source, Path):
        return _declared(str(source), lambda: wav_declared_seconds(source))
    stream, start = source, source.tell()

    def riff_seconds() -> float | None:
        stream.seek(start)
        return wav_declared_seconds(stream)

    try:
        return _declared(stream, riff_seconds)
    finally:
        stream.seek(start)


def _declared(opened: str | BinaryIO, riff_seconds: Callable[[], float | None]) -> float | None:
    try:
        with open_audio(opened) as container:
            audio_stream(container)
            declared = declared_container_seconds(container)
            is_wav = container.format.name == "wav"
        header = riff_seconds() if is_wav else None
    except (av.error.FFmpegError, InvalidAudio, OSError, ValueError):
        return None
    return declared if header is None else max(declared or 0.0, header)
