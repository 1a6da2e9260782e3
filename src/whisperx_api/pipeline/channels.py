"""Multichannel audio: which channels are worth transcribing, and one transcript from many.

A call recorder puts each party on its own channel, so the channel already says who speaks:
each channel is transcribed on its own (with its own voice detection) and labelled, and no
diarization is needed. A channel that is silent, or a copy of one already kept (a mono
recording saved as stereo), would only cost time or double every word; it is skipped and
reported as a `channel_skipped` warning.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from whisperx_api.domain.audio import SAMPLE_RATE, DecodedAudio
from whisperx_api.domain.transcript import Segment, Transcript, TranscriptWarning, WarningCode
from whisperx_api.errors import InvalidValue

# A channel whose RMS level stays below this (-60 dBFS) has nothing to transcribe.
_SILENCE_RMS = 1e-3
# A channel this correlated with a kept one (a scaled copy included) is its duplicate.
_DUPLICATE_CORRELATION = 0.999
# A word is another channel's speech heard through this one's microphone (crosstalk) when,
# over the word's span, another kept channel is this much louder (20*log10 of the RMS ratio).
# Real overlapping speech is both parties at similar levels, far under this margin.
_CROSSTALK_DB = 15.0
# Channels are compared in blocks, so the comparison needs no copy of a whole channel.
_BLOCK = 1 << 20


def channel_label(index: int, names: Sequence[str]) -> str:
    """The speaker label of a channel: its given name, else `channel_N`."""
    return names[index] if names else f"channel_{index}"


def check_channel_names(names: Sequence[str], channels: int) -> None:
    """`channel_names`, when given, name every channel of the audio, one each."""
    if names and len(names) != channels:
        raise InvalidValue(
            f"channel_names has {len(names)} names but the audio has {channels} channels; "
            "give one name per channel.",
            param="channel_names",
        )


def select_channels(
    channels: Sequence[DecodedAudio],
) -> tuple[list[int], list[TranscriptWarning]]:
    """The indices of channels to transcribe, and a warning for each one skipped.

    When every channel is silent the first one is still transcribed, so the result is an
    ordinary (empty) transcript rather than an error.
    """
    kept: list[int] = []
    warnings: list[TranscriptWarning] = []
    for index, audio in enumerate(channels):
        reason = _skip_reason(audio.samples, [channels[k].samples for k in kept], kept)
        if reason is None:
            kept.append(index)
        else:
            warnings.append(_skipped(index, reason, audio.duration))
    if not kept:  # all silent
        return [0], warnings[1:]
    return kept, warnings


def _skip_reason(
    samples: npt.NDArray[np.float32], others: list[npt.NDArray[np.float32]], indices: list[int]
) -> str | None:
    if _rms(samples) < _SILENCE_RMS:
        return "is silent"
    for index, other in zip(indices, others, strict=True):
        if _correlation(samples, other) >= _DUPLICATE_CORRELATION:
            return f"duplicates channel {index}"
    return None


def _skipped(index: int, reason: str, duration: float) -> TranscriptWarning:
    return TranscriptWarning(
        WarningCode.CHANNEL_SKIPPED,
        f"Channel {index} {reason}; it was not transcribed.",
        0.0,
        duration,
    )


def _rms(samples: npt.NDArray[np.float32]) -> float:
    if len(samples) == 0:
        return 0.0
    total = sum(_dot(block, block) for block in _blocks(samples))
    return math.sqrt(total / len(samples))


def _correlation(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """Cosine similarity of two channels (1.0 for a copy at any gain)."""
    size = min(len(a), len(b))
    cross = energy_a = energy_b = 0.0
    for start in range(0, size, _BLOCK):
        block_a, block_b = a[start : start + _BLOCK], b[start : start + _BLOCK]
        cross += _dot(block_a, block_b)
        energy_a += _dot(block_a, block_a)
        energy_b += _dot(block_b, block_b)
    if energy_a == 0.0 or energy_b == 0.0:
        return 0.0
    return cross / math.sqrt(energy_a * energy_b)


def _blocks(samples: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
    return [samples[start : start + _BLOCK] for start in range(0, len(samples), _BLOCK)]


def _dot(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    return float(np.dot(a.astype(np.float64), b.astype(np.float64)))


def tag_channel(transcript: Transcript, index: int, label: str) -> Transcript:
    """Every segment and word marked with its channel, and the channel's label as speaker."""
    return dataclasses.replace(
        transcript, segments=tuple(_tagged(s, index, label) for s in transcript.segments)
    )


def _tagged(segment: Segment, index: int, label: str) -> Segment:
    words = tuple(dataclasses.replace(w, channel=index, speaker=label) for w in segment.words)
    return dataclasses.replace(segment, words=words, channel=index, speaker=label)


def drop_crosstalk(
    transcript: Transcript, index: int, channels: Sequence[DecodedAudio], kept: Sequence[int]
) -> Transcript:
    """`transcript` of channel `index` without the words that another kept channel says
    much louder at the same time (the other party leaking into this microphone); a segment
    left without words goes. Segments without word times are judged over their whole span."""
    others = [channels[k].samples for k in kept if k != index]
    own = channels[index].samples

    def leaked(start: float, end: float) -> bool:
        level = _span_rms(own, start, end)
        loudest = max((_span_rms(o, start, end) for o in others), default=0.0)
        return loudest > 0.0 and 20 * math.log10(loudest / max(level, 1e-9)) >= _CROSSTALK_DB

    segments = []
    for segment in transcript.segments:
        if not segment.words:
            if not leaked(segment.start, segment.end):
                segments.append(segment)
            continue
        words = tuple(w for w in segment.words if not leaked(w.start, w.end))
        if len(words) == len(segment.words):
            segments.append(segment)
        elif words:
            text = "".join(w.text for w in words)
            segments.append(
                dataclasses.replace(
                    segment, words=words, text=text, start=words[0].start, end=words[-1].end
                )
            )
    return dataclasses.replace(transcript, segments=tuple(segments))


def _span_rms(samples: npt.NDArray[np.float32], start: float, end: float) -> float:
    low = max(0, int(start * SAMPLE_RATE))
    high = min(len(samples), max(low + 1, int(end * SAMPLE_RATE)))
    span = samples[low:high]
    return math.sqrt(_dot(span, span) / len(span)) if len(span) else 0.0


def merge_channels(
    parts: Sequence[Transcript], warnings: Sequence[TranscriptWarning]
) -> Transcript:
    """One transcript: segments of every channel in time order (ids renumbered); the language
    is the one of the channel that says the most."""
    segments = sorted(
        (s for part in parts for s in part.segments), key=lambda s: (s.start, s.channel or 0)
    )
    main = max(parts, key=lambda part: len(part.text))
    return dataclasses.replace(
        main,
        duration=max(part.duration for part in parts),
        segments=tuple(dataclasses.replace(s, id=i) for i, s in enumerate(segments)),
        speaker_embeddings={},
        warnings=(*main.warnings, *warnings),
    )
