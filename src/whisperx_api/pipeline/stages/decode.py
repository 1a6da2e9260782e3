"""Decode any container PyAV reads into 16 kHz mono float32, streamed, with a duration budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from whisperx_api.domain.audio import SAMPLE_RATE, DecodedAudio
from whisperx_api.errors import AudioTooLong, InvalidAudio
from whisperx_api.pipeline.stages.truncation import is_cut_short, wav_is_cut_short

# A decoded stream this much shorter than its container declares was cut off.
_TRUNCATION_TOLERANCE = 0.9
_TRUNCATION_SLACK_SECONDS = 0.5
_MPEG_CODECS = ("mp3", "mp2", "mp1")


def decode_audio(path: Path, max_seconds: float) -> DecodedAudio:
    """Decode the first audio stream of `path`; raise InvalidAudio or AudioTooLong."""
    if path.stat().st_size == 0:
        raise InvalidAudio("The uploaded file is empty.")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            samples = _collect(container, max_seconds)
            declared = declared_container_seconds(container)
            is_wav = container.format.name == "wav"
    except av.error.FFmpegError as exc:
        raise InvalidAudio("The uploaded file is not audio this server can decode.") from exc
    if is_wav and wav_is_cut_short(path):
        raise InvalidAudio("The audio is truncated: the file ends before its declared data.")
    return _checked(samples, declared)


def _collect(container: av.container.InputContainer, max_seconds: float) -> npt.NDArray[np.float32]:
    if not container.streams.audio:
        raise InvalidAudio("The uploaded file has no audio stream.")
    budget = int(max_seconds * SAMPLE_RATE)
    chunks: list[npt.NDArray[np.float32]] = []
    total = 0
    for chunk in _resampled(container):
        total += len(chunk)
        if total > budget:
            raise AudioTooLong(f"The audio is longer than the maximum of {max_seconds:g} seconds.")
        chunks.append(chunk)
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def _resampled(container: av.container.InputContainer) -> Iterator[npt.NDArray[np.float32]]:
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    last_packet = b""
    for packet in container.demux(stream):
        if packet.size:
            last_packet = bytes(packet)
        for frame in packet.decode():
            for out in resampler.resample(frame):
                yield _as_mono(out)
    if stream.codec_context.name.startswith(_MPEG_CODECS) and is_cut_short(last_packet):
        raise InvalidAudio("The audio is truncated: its last frame is incomplete.")
    for out in resampler.resample(None):
        yield _as_mono(out)


def _as_mono(frame: av.AudioFrame) -> npt.NDArray[np.float32]:
    return np.asarray(frame.to_ndarray(), dtype=np.float32).reshape(-1)


def declared_container_seconds(container: av.container.InputContainer) -> float | None:
    """The first audio stream's duration as the container states it; None when unknown."""
    stream = container.streams.audio[0]
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / av.time_base
    return None


def _checked(samples: npt.NDArray[np.float32], declared: float | None) -> DecodedAudio:
    if len(samples) == 0:
        raise InvalidAudio("The uploaded file contains no audio samples.")
    decoded = len(samples) / SAMPLE_RATE
    if declared and decoded < declared * _TRUNCATION_TOLERANCE - _TRUNCATION_SLACK_SECONDS:
        raise InvalidAudio(
            f"The audio is truncated: {decoded:.1f} s decoded of {declared:.1f} s declared."
        )
    return DecodedAudio(samples=samples)


def probe_audio(path: Path) -> None:
    """Cheap check at submit time: the file opens and its first audio frame decodes."""
    if path.stat().st_size == 0:
        raise InvalidAudio("The uploaded file is empty.")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise InvalidAudio("The uploaded file has no audio stream.")
            first = next(container.decode(container.streams.audio[0]), None)
    except av.error.FFmpegError as exc:
        raise InvalidAudio("The uploaded file is not audio this server can decode.") from exc
    if first is None:
        raise InvalidAudio("The uploaded file contains no audio samples.")
