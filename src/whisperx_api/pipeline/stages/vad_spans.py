"""Speech spans of a whole file from streamed Silero probabilities, without whole-file copies.

faster-whisper's `get_speech_timestamps` pads a copy of the file and hands it to a model call
that builds a second, larger input array (about 2.2 times the audio at once: ~500 MB for an
hour). Here the probabilities come from `speech_probabilities`, which builds its model input
batch by batch from views, and the spans follow the same rules as that function, so the
transcription sees exactly the same speech:

- a span opens at the first window whose probability reaches `threshold`;
- it closes where the probability first fell below `neg_threshold`, once that silence has lasted
  `min_silence_duration_ms`; spans not longer than `min_speech_duration_ms` are dropped;
- a span that would outgrow `max_speech_duration_s` (less one window and both paddings) is cut
  at the start of its last silence longer than 98 ms, continuing where speech came back, or
  hard at the current window when it had no such silence;
- finally each span is widened by `speech_pad_ms` on both sides, or, where two spans are closer
  than two paddings, both meet in the middle of the gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from whisperx_api.domain.audio import SAMPLE_RATE
from whisperx_api.pipeline.stages.vad_probs import WINDOW, speech_probabilities

_PAUSE_TO_CUT_MS = 98  # a silence this long may end a span that reaches the maximum length


@dataclass(frozen=True, slots=True)
class SpanRules:
    """The VAD options in samples, as the span rules use them."""

    threshold: float
    neg_threshold: float
    min_speech: float
    max_speech: float
    min_silence: float
    pause_to_cut: float
    padding: float

    @classmethod
    def of(cls, options: Any) -> SpanRules:
        """From faster-whisper's `VadOptions` (or anything with the same attributes)."""
        per_ms = SAMPLE_RATE / 1000
        padding = options.speech_pad_ms * per_ms
        negative = options.neg_threshold
        return cls(
            threshold=options.threshold,
            neg_threshold=max(options.threshold - 0.15, 0.01) if negative is None else negative,
            min_speech=options.min_speech_duration_ms * per_ms,
            max_speech=SAMPLE_RATE * options.max_speech_duration_s - WINDOW - 2 * padding,
            min_silence=options.min_silence_duration_ms * per_ms,
            pause_to_cut=_PAUSE_TO_CUT_MS * per_ms,
            padding=padding,
        )


def speech_timestamps(samples: npt.NDArray[np.float32], options: Any) -> list[dict[str, int]]:
    """Speech spans of `samples` (16 kHz) as `{"start", "end"}` sample indices, in order.

    The same spans as `faster_whisper.vad.get_speech_timestamps(samples, options)`; that call
    always pads by 1..512 samples, so the probabilities here cover the same windows.
    """
    probs = speech_probabilities(samples, windows=len(samples) // WINDOW + 1)
    return speech_spans(probs, len(samples), SpanRules.of(options))


def speech_spans(
    probs: npt.NDArray[np.float32], length: int, rules: SpanRules
) -> list[dict[str, int]]:
    """Padded speech spans from one probability per 512-sample window of `length` samples."""
    raw = _raw_spans(probs, length, rules)
    return _padded(raw, length, rules.padding)


def _raw_spans(
    probs: npt.NDArray[np.float32], length: int, rules: SpanRules
) -> list[tuple[int, int]]:
    """Unpadded spans: the threshold, silence, minimum and maximum length rules."""
    loud = (probs >= rules.threshold).tolist()
    quiet = (probs < rules.neg_threshold).tolist()
    spans: list[tuple[int, int]] = []
    start: int | None = None  # the open span's first sample
    silent_since = 0  # where the current silence began (0: not in a silence)
    last_pause = 0  # start of the open span's latest silence longer than `pause_to_cut`
    resumed_at = 0  # where speech came back after that silence
    for index, (is_loud, is_quiet) in enumerate(zip(loud, quiet, strict=True)):
        at = index * WINDOW
        if is_loud and silent_since:
            silent_since = 0
            if resumed_at < last_pause:
                resumed_at = at
        if start is None:
            if is_loud:
                start = at
            continue
        if at - start > rules.max_speech:
            if not last_pause:  # no pause to cut at: cut here, reopen on later speech
                spans.append((start, at))
                start = None
                silent_since = last_pause = resumed_at = 0
                continue
            spans.append((start, last_pause))
            start = resumed_at if resumed_at >= last_pause else None
            silent_since = last_pause = resumed_at = 0
            if start is None:
                continue
        if not is_quiet:
            continue
        if not silent_since:
            silent_since = at
        if at - silent_since > rules.pause_to_cut:
            last_pause = silent_since
        if at - silent_since < rules.min_silence:
            continue
        if silent_since - start > rules.min_speech:
            spans.append((start, silent_since))
        start = None
        silent_since = last_pause = resumed_at = 0
    if start is not None and length - start > rules.min_speech:
        spans.append((start, length))
    return spans


def _padded(spans: list[tuple[int, int]], length: int, padding: float) -> list[dict[str, int]]:
    """Each span widened by `padding`, or to the middle of a gap narrower than two paddings."""
    starts = [start for start, _ in spans]
    ends = [end for _, end in spans]
    if starts:
        starts[0] = int(max(0, starts[0] - padding))
    for i in range(len(spans)):
        if i == len(spans) - 1:
            ends[i] = int(min(length, ends[i] + padding))
            break
        gap = starts[i + 1] - ends[i]
        if gap < 2 * padding:
            ends[i] += int(gap // 2)
            starts[i + 1] = int(max(0, starts[i + 1] - gap // 2))
        else:
            ends[i] = int(min(length, ends[i] + padding))
            starts[i + 1] = int(max(0, starts[i + 1] - padding))
    return [{"start": s, "end": e} for s, e in zip(starts, ends, strict=True)]
