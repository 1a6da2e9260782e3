"""A container's declared duration, read from its header without decoding the audio."""

from __future__ import annotations

from typing import BinaryIO

import av

from whisperx_api.errors import InvalidAudio
from whisperx_api.pipeline.stages.audio_container import declared_container_seconds, open_audio


def declared_seconds(source: BinaryIO) -> float | None:
    """The first audio stream's duration as the container states it; None when unknown.

    Cheap and only a hint: the decoder still enforces the real limit on the samples.
    """
    start = source.tell()
    try:
        with open_audio(source) as container:
            if not container.streams.audio:
                return None
            return declared_container_seconds(container)
    except (av.error.FFmpegError, InvalidAudio):
        return None  # not audio: the probe at submit answers that with its own error
    finally:
        source.seek(start)
