"""Decode any audio container into 16 kHz float32, mono or one buffer per channel.

A file's size says little about its length: a few hundred kilobytes of FLAC can declare hours.
So the header is checked at submit (`probe_audio`: declared duration, sample rate, one frame),
and decoding itself stays bounded whatever the header claimed: samples go into one buffer sized
from the declared duration and the limit, grown geometrically only when the declaration was
low and never past the limit; the loop checks the job's cancellation and a wall-time limit.
Peak memory is the buffer (4 bytes a sample: 64 KB a second, 230 MB an hour) plus what FFmpeg
holds for one packet, never a list of chunks joined at the end.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from whisperx_api.domain.audio import SAMPLE_RATE, DecodedAudio
from whisperx_api.errors import AudioTooLong, InvalidAudio, InvalidValue
from whisperx_api.pipeline.stages.audio_container import (
    NOT_AUDIO,
    audio_stream,
    declared_container_seconds,
    open_audio,
)
from whisperx_api.pipeline.stages.truncation import (
    is_cut_short,
    wav_declared_seconds,
    wav_is_cut_short,
)

# A decoded stream this much shorter than its container declares was cut off.
_TRUNCATION_TOLERANCE = 0.9
_TRUNCATION_SLACK_SECONDS = 0.5
_MPEG_CODECS = ("mp3", "mp2", "mp1")

# Buffer sizing: the declared length plus a little (resampler delay, rounding); with no
# declaration, a guess; growth by half again each time the audio runs past the buffer.
_DECLARED_HEADROOM = 1.01
_HEADROOM_SECONDS = 1.0
_UNDECLARED_START_SECONDS = 300.0
# Reserved up front at most (230 MB of address space; pages count only once written). Growing
# past it reallocates in place (glibc moves large blocks with mremap: no copy, no double peak).
_MAX_UPFRONT_SECONDS = 3600.0
_GROWTH = 1.5
# How often (wall time) the loop asks whether the job was cancelled.
_CHECK_INTERVAL_SECONDS = 0.2
# Packets a real stream needs per second of audio is tens (Opus at its shortest 2.5 ms frames:
# 400); a file of millions of one-sample packets costs seconds of CPU per second it declares.
# Past this many per second of the limit (plus a margin for tiny files) a file is refused.
PACKETS_PER_SECOND = 500
_PACKET_MARGIN = 1000
# The probe at submit wants one decoded frame; a real file gives one within a few packets.
_PROBE_MAX_PACKETS = 2000
_PROBE_SECONDS = 5.0


def decode_audio(
    path: Path,
    max_seconds: float,
    *,
    check_cancelled: Callable[[], None] | None = None,
    time_limit: float | None = None,
) -> DecodedAudio:
    """Decode the first audio stream of `path`, mixed to mono; raise InvalidAudio or
    AudioTooLong.

    `check_cancelled` raises to stop (it is called a few times a second); past `time_limit`
    seconds of decoding the file is refused as InvalidAudio.
    """
    guard = _Guard(check_cancelled, time_limit, packet_budget(max_seconds))
    (audio,) = _decode(path, max_seconds, guard, max_channels=None)
    return audio


def decode_channels(
    path: Path,
    max_seconds: float,
    max_channels: int,
    *,
    check_cancelled: Callable[[], None] | None = None,
    time_limit: float | None = None,
) -> tuple[DecodedAudio, ...]:
    """Decode each channel of the first audio stream on its own (same limits as
    `decode_audio`; every channel holds its own buffer, so memory is channels x duration).
    More than `max_channels` channels is refused as InvalidValue before anything is decoded."""
    guard = _Guard(check_cancelled, time_limit, packet_budget(max_seconds))
    return _decode(path, max_seconds, guard, max_channels=max_channels)


def _decode(
    path: Path, max_seconds: float, guard: _Guard, max_channels: int | None
) -> tuple[DecodedAudio, ...]:
    """Mono when `max_channels` is None, else one buffer per channel."""
    if path.stat().st_size == 0:
        raise InvalidAudio("The uploaded file is empty.")
    budget = int(max_seconds * SAMPLE_RATE)
    try:
        with open_audio(str(path)) as container:
            stream = audio_stream(container)
            count = 1 if max_channels is None else _checked_channels(stream, max_channels)
            declared = declared_container_seconds(container)
            capacity = initial_capacity(declared, budget)
            buffers = [SampleBuffer(capacity, budget, max_seconds) for _ in range(count)]
            for planes in _resampled(container, stream, guard, split=count > 1):
                _append(buffers, planes)
            is_wav = container.format.name == "wav"
    except av.error.FFmpegError as exc:
        raise InvalidAudio(NOT_AUDIO) from exc
    if is_wav and wav_is_cut_short(path):
        raise InvalidAudio("The audio is truncated: the file ends before its declared data.")
    return tuple(_checked(buffer.finish(), declared) for buffer in buffers)


def _append(buffers: list[SampleBuffer], planes: npt.NDArray[np.float32]) -> None:
    if len(planes) != len(buffers):
        raise InvalidAudio("The audio changes its number of channels part way through.")
    for buffer, plane in zip(buffers, planes, strict=True):
        buffer.append(plane)


def stream_channels(stream: av.AudioStream) -> int:
    """How many channels the stream declares (at least 1)."""
    return max(1, stream.codec_context.channels or 0)


def _checked_channels(stream: av.AudioStream, max_channels: int) -> int:
    count = stream_channels(stream)
    check_channel_count(count, max_channels)
    return count


def check_channel_count(count: int, max_channels: int) -> None:
    """Each channel is decoded and transcribed on its own: their number is bounded."""
    if count > max_channels:
        raise InvalidValue(
            f"The audio has {count} channels; multichannel transcription takes at most "
            f"{max_channels}.",
            param="multichannel",
        )


def packet_budget(max_seconds: float) -> int:
    """The most packets a file of at most `max_seconds` may hold."""
    return int(max_seconds * PACKETS_PER_SECOND) + _PACKET_MARGIN


def initial_capacity(declared: float | None, budget: int) -> int:
    """Samples to allocate up front: the declared length with headroom, within the budget."""
    if declared is None or not math.isfinite(declared) or declared <= 0:
        wanted = _UNDECLARED_START_SECONDS * SAMPLE_RATE
    else:
        wanted = (declared * _DECLARED_HEADROOM + _HEADROOM_SECONDS) * SAMPLE_RATE
    return max(1, min(budget + 1, int(wanted), int(_MAX_UPFRONT_SECONDS * SAMPLE_RATE)))


class SampleBuffer:
    """float32 samples appended in place; one allocation, resized (realloc) only when needed.

    It holds at most `budget + 1` samples: one past the budget is how AudioTooLong is told.
    """

    def __init__(self, capacity: int, budget: int, max_seconds: float) -> None:
        self._data: npt.NDArray[np.float32] = np.empty(capacity, dtype=np.float32)
        self._size = 0
        self._budget = budget
        self._max_seconds = max_seconds

    def append(self, chunk: npt.NDArray[np.float32]) -> None:
        end = self._size + len(chunk)
        if end > self._budget:
            raise AudioTooLong(
                f"The audio is longer than the maximum of {self._max_seconds:g} seconds."
            )
        if end > len(self._data):
            grown = max(end, int(len(self._data) * _GROWTH))
            self._data.resize(min(grown, self._budget + 1), refcheck=False)
        self._data[self._size : end] = chunk
        self._size = end

    def finish(self) -> npt.NDArray[np.float32]:
        """The samples; the unused tail is handed back to the allocator (no copy)."""
        self._data.resize(self._size, refcheck=False)
        return self._data


class _Guard:
    """Cancellation, the wall-time limit and the packet budget, checked from inside the decode
    loop (once a packet)."""

    def __init__(
        self,
        check_cancelled: Callable[[], None] | None,
        limit: float | None,
        max_packets: int,
    ) -> None:
        self._check_cancelled = check_cancelled
        self._limit = limit
        self._packets_left = max_packets
        self._max_packets = max_packets
        self._started = time.monotonic()
        self._next_check = self._started

    def tick(self) -> None:
        self._packets_left -= 1
        if self._packets_left < 0:
            raise InvalidAudio(
                f"The audio holds more than {self._max_packets} packets, more than audio of "
                "its allowed length needs."
            )
        now = time.monotonic()
        if self._limit is not None and now - self._started > self._limit:
            raise InvalidAudio(
                f"Decoding the audio took longer than the limit of {self._limit:g} seconds."
            )
        if self._check_cancelled is not None and now >= self._next_check:
            self._next_check = now + _CHECK_INTERVAL_SECONDS
            self._check_cancelled()


def _resampled(
    container: av.container.InputContainer, stream: av.AudioStream, guard: _Guard, split: bool
) -> Iterator[npt.NDArray[np.float32]]:
    """2-D chunks: one row per output channel (one row when mixed down to mono). Packed
    float, split here: PyAV's planar frames crash on 8 planes."""
    layout = stream.codec_context.layout if split else "mono"
    resampler = av.AudioResampler(format="flt", layout=layout, rate=SAMPLE_RATE)
    check_mpeg = stream.codec_context.name.startswith(_MPEG_CODECS)
    last_packet = b""
    for packet in container.demux(stream):
        guard.tick()
        if check_mpeg and packet.size:
            last_packet = bytes(packet)
        for frame in packet.decode():
            for out in resampler.resample(frame):
                yield _planes(out)
    if check_mpeg and is_cut_short(last_packet):
        raise InvalidAudio("The audio is truncated: its last frame is incomplete.")
    for out in resampler.resample(None):
        yield _planes(out)


def _planes(frame: av.AudioFrame) -> npt.NDArray[np.float32]:
    """(channels, samples) from packed samples (interleaved: one frame after another)."""
    data = np.asarray(frame.to_ndarray(), dtype=np.float32).reshape(-1)
    return data.reshape(-1, frame.layout.nb_channels).T


def _checked(samples: npt.NDArray[np.float32], declared: float | None) -> DecodedAudio:
    if len(samples) == 0:
        raise InvalidAudio("The uploaded file contains no audio samples.")
    decoded = len(samples) / SAMPLE_RATE
    if declared and decoded < declared * _TRUNCATION_TOLERANCE - _TRUNCATION_SLACK_SECONDS:
        raise InvalidAudio(
            f"The audio is truncated: {decoded:.1f} s decoded of {declared:.1f} s declared."
        )
    return DecodedAudio(samples=samples)


def probe_audio(path: Path, max_seconds: float) -> None:
    """Cheap check at submit time, before anything is queued: the file opens with an audio
    demuxer, its header declares a sane sample rate and at most `max_seconds`, and its first
    audio frame decodes."""
    probe_channels(path, max_seconds)


def probe_channels(path: Path, max_seconds: float) -> int:
    """`probe_audio`, returning the stream's channel count."""
    if path.stat().st_size == 0:
        raise InvalidAudio("The uploaded file is empty.")
    try:
        with open_audio(str(path)) as container:
            stream = audio_stream(container)
            channels = stream_channels(stream)
            _check_declared(declared_container_seconds(container), max_seconds)
            is_wav = container.format.name == "wav"
            first = _first_frame(container, stream)
    except av.error.FFmpegError as exc:
        raise InvalidAudio(NOT_AUDIO) from exc
    if is_wav:
        _check_declared(wav_declared_seconds(path), max_seconds)
        if wav_is_cut_short(path):
            raise InvalidAudio("The audio is truncated: the file ends before its declared data.")
    if first is None:
        raise InvalidAudio("The uploaded file contains no audio samples.")
    return channels


def _first_frame(
    container: av.container.InputContainer, stream: av.AudioStream
) -> av.AudioFrame | None:
    """The first decoded frame, within a packet budget and a time limit (a stream of empty or
    undecodable packets must not hold the submit)."""
    guard = _Guard(None, _PROBE_SECONDS, _PROBE_MAX_PACKETS)
    for packet in container.demux(stream):
        guard.tick()
        for frame in packet.decode():
            return frame
    return None


def _check_declared(seconds: float | None, max_seconds: float) -> None:
    if seconds is not None and seconds > max_seconds:
        raise AudioTooLong(
            f"The audio declares {seconds:.0f} seconds; the maximum is {max_seconds:g} seconds."
        )
