"""The default aligner: faster-whisper's word times, snapped to the pauses in the signal.

faster-whisper times words from cross-attention (DTW over attention weights). Those times are
good to a few hundred milliseconds inside fluent speech, but adjacent words share one boundary:
after every pause the next word's start is glued to the previous word's end (or the previous
word's end is stretched to the next start), so the pause lands inside a word. Here each word
boundary is matched to the silence in the audio that best explains it, and the word times move
to that silence's edges: the earlier word ends where the silence begins and the next word starts
where it ends. Boundaries with no silence near them keep faster-whisper's times.

Speech and silence come from frame energy (10 ms frames, a threshold between the noise floor and
the speech level of the file itself), vetoed by Silero VAD speech probabilities (the ONNX model
faster-whisper ships) so that a noise burst or a beep inside a pause still counts as a pause.
Three details tell a pause between words from a stop consonant's closure inside one: a longer
pause wins over a slightly nearer short one, a pause as short as a closure (under 70 ms) must
lie within 100 ms of the transcriber's boundary, and the transcriber's typical offset from the
pauses is measured on the file itself (base runs early, tiny late) and corrected for.

Inside connected speech (no pause between two words) there is no silence to snap to, yet the
transcriber's boundaries there are off in the same direction as at the pauses, by less: each
such boundary moves by half the median move the real pauses caused in the same file. On the
karaoke fixtures (`tests/data/make_karaoke.py`, `bench/word_timing.py`) this takes word
starts within 100 ms on connected speech from 80 % to 92 % with Whisper base (together with
the closure rule above).

Pure numpy apart from the VAD call. Per 10 minutes of audio the energy part takes about 0.05 s
and the VAD about 2.5 s on one CPU thread (`use_vad=False` skips it); transcribing those
10 minutes with Whisper base and word timestamps takes about a minute on two cores.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from whisperx_api.domain.audio import SAMPLE_RATE, DecodedAudio
from whisperx_api.domain.transcript import Segment, Transcript, Word
from whisperx_api.errors import NotFound
from whisperx_api.pipeline.catalog import language_code
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.vad_probs import WINDOW, speech_probabilities

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RefinerConfig:
    """Tuning of the boundary refiner; the defaults suit speech at 16 kHz."""

    frame_s: float = 0.01  # energy frame
    min_silence_s: float = 0.04  # shortest pause worth snapping to
    min_snr_db: float = 8.0  # speech is at least this far above the noise floor...
    threshold_share: float = 0.3  # ...and this share of the way up to the speech level
    edge_reach_s: float = 1.0  # how far before the first word / after the last to look
    reach_share: float = 0.75  # a pause may reach this far into a neighbouring word
    split_gap_s: float = 0.5  # a wider gap between two words is matched as an end and a start
    max_distance_s: float = 0.3  # a pause must come this close to the boundary
    closure_s: float = 0.07  # a shorter pause may be a stop consonant's closure...
    closure_distance_s: float = 0.1  # ...so it must come this close
    length_weight: float = 0.1  # seconds of distance forgiven per second of pause length...
    length_cap_s: float = 0.4  # ...counting at most this much of it
    bias_s: float | None = None  # the transcriber's offset; None measures it
    max_bias_s: float = 0.25
    use_vad: bool = True
    vad_silence_prob: float = 0.1  # below this Silero probability a frame is never speech
    connected_share: float = 0.5  # share of the offset at the pauses applied between words
    evidence_gap_s: float = 0.1  # pauses at least this long measure that offset
    min_word_s: float = 0.03  # a shifted boundary leaves each word at least this long
    sound_db: float = 45.0  # a word's edge by a pause follows sound this close to the speech level
    max_follow_s: float = 0.5  # ...by at most this much


@dataclass(frozen=True, slots=True)
class Pause:
    """A stretch of silence in seconds."""

    start: float
    end: float


@dataclass(frozen=True, slots=True)
class _Boundary:
    """Where faster-whisper put one word boundary, and how far a pause may be from it.

    `ends`/`starts` index the word whose end/start the matched pause sets. A pause must leave
    the words around it some of their span: it may not begin before the earlier word's start
    (`floor`) nor end after the later word's end (`ceiling`), give or take `max_distance_s`.
    So where the signal shows no speech under the words at all (music the VAD rejects, say),
    nothing moves.
    """

    low: float
    high: float
    reach_low: float
    reach_high: float
    ends: int | None = None
    starts: int | None = None
    floor: float = -math.inf
    ceiling: float = math.inf


def speech_mask(samples: npt.NDArray[np.float32], config: RefinerConfig) -> BoolArray:
    """Per-frame speech flags from energy against the file's own noise floor and speech level."""
    level = frame_levels_db(samples, config.frame_s)
    if level.size == 0:
        return np.zeros(0, dtype=np.bool_)
    floor, loud = np.percentile(level, [10.0, 99.0])
    threshold = floor + max(config.min_snr_db, config.threshold_share * (loud - floor))
    mask: BoolArray = level > threshold
    if config.use_vad:
        mask &= _vad_speech(samples, len(mask), config)
    return mask


def frame_levels_db(samples: npt.NDArray[np.float32], frame_s: float) -> FloatArray:
    """RMS level of consecutive frames, in dB."""
    size = max(1, round(frame_s * SAMPLE_RATE))
    count = len(samples) // size
    frames = samples[: count * size].reshape(count, size)
    power = np.einsum("ij,ij->i", frames, frames).astype(np.float64) / size
    levels: FloatArray = 10.0 * np.log10(power + 1e-12)
    return levels


def pauses(mask: BoolArray, config: RefinerConfig) -> list[Pause]:
    """Runs of non-speech frames at least `min_silence_s` long (file edges included)."""
    padded = np.concatenate(([True], mask, [True])).astype(np.int8)
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == -1)
    ends = np.flatnonzero(edges == 1)
    min_frames = max(1, round(config.min_silence_s / config.frame_s))
    return [
        Pause(float(a) * config.frame_s, float(b) * config.frame_s)
        for a, b in zip(starts, ends, strict=True)
        if b - a >= min_frames or a == 0 or b == len(mask)
    ]


def refine_word_times(
    transcript: Transcript, audio: DecodedAudio, config: RefinerConfig | None = None
) -> Transcript:
    """Move every word start forward past silence and every end back before it."""
    config = config or RefinerConfig()
    words = transcript.words
    if not words:
        return transcript
    found = pauses(speech_mask(audio.samples, config), config)
    raw = [(w.start, w.end) for w in words]
    bias = config.bias_s
    if bias is None:
        first = snap_to_pauses(raw, found, config, audio.duration)
        bias = timing_bias(raw, first, config.max_bias_s)
    snapped = snap_to_pauses(raw, found, config, audio.duration, bias)
    shifted = shift_connected(raw, snapped, config)
    return _with_times(transcript, follow_sound(shifted, sound_mask(audio.samples, config), config))


def sound_mask(samples: npt.NDArray[np.float32], config: RefinerConfig) -> BoolArray:
    """Frames with any sound of speech: within `sound_db` of the speech level and above the
    noise floor by `min_snr_db`. Far more sensitive than `speech_mask`, and with no VAD veto:
    it keeps the faint ends of words (a final stop's release, a fading fricative or nasal)."""
    level = frame_levels_db(samples, config.frame_s)
    if level.size == 0:
        return np.zeros(0, dtype=np.bool_)
    floor, loud = np.percentile(level, [10.0, 99.0])
    mask: BoolArray = level > max(loud - config.sound_db, floor + config.min_snr_db)
    return mask


def follow_sound(
    times: Sequence[tuple[float, float]], sound: BoolArray, config: RefinerConfig
) -> list[tuple[float, float]]:
    """Word edges that face a pause, moved over the sound that continues them.

    The speech mask and the transcriber both lose a word's faint edges: the release of a final
    "k" after its closure, the tail of a nasal or a fricative, a weak onset such as "th". A word
    followed by a pause of at least `min_silence_s` therefore ends where the sound after it
    stops for `closure_s` (a stop's closure is shorter), if it stops within `max_follow_s` and
    before the next word's start; a word after such a pause starts where the sound before it
    begins, by the same rules. Sound that runs on past that reach, into the neighbouring word
    or longer than any word's tail (a hum, noise), with no quiet stretch, moves no edge.
    """
    result = list(times)
    if sound.size == 0:
        return result
    end_of_file = len(sound) * config.frame_s
    for k, (start, end) in enumerate(result):
        limit = result[k + 1][0] if k + 1 < len(result) else end_of_file
        if limit - end >= config.min_silence_s:
            end = _sound_edge(sound, end, min(limit, end + config.max_follow_s), config)
        before = result[k - 1][1] if k else 0.0
        if start - before >= config.min_silence_s:
            start = _sound_edge(sound, start, max(before, start - config.max_follow_s), config)
        result[k] = (start, end)
    return result


def _sound_edge(sound: BoolArray, edge: float, limit: float, config: RefinerConfig) -> float:
    """Where the sound that runs on from `edge` towards `limit` (either side) stops.

    It stops at a quiet stretch of `closure_s`; reaching `limit` with none found, the edge moves
    to the start of the last quiet stretch passed, or stays where nothing was quiet.
    """
    frame = config.frame_s
    step = 1 if limit > edge else -1
    first = math.floor(edge / frame) if step > 0 else math.ceil(edge / frame) - 1
    stop = math.floor(limit / frame) if step > 0 else math.ceil(limit / frame) - 1
    needed = max(1, round(config.closure_s / frame))
    reached, quiet_from, quiet = edge, None, 0
    for index in range(first, stop, step):
        if not 0 <= index < len(sound):
            break
        if sound[index]:
            reached, quiet = (index + 1) * frame if step > 0 else index * frame, 0
            continue
        if quiet == 0:
            quiet_from = reached
        quiet += 1
        if quiet >= needed:
            return _outward(reached, edge, step)
    return edge if quiet_from is None else _outward(quiet_from, edge, step)


def _outward(candidate: float, edge: float, step: int) -> float:
    """`candidate`, unless it lies inside the word (the edge never moves inwards)."""
    return round(max(candidate, edge) if step > 0 else min(candidate, edge), 3)


def timing_bias(
    raw: Sequence[tuple[float, float]], snapped: Sequence[tuple[float, float]], limit: float
) -> float:
    """How far the transcriber's times typically sit from the pauses, in seconds.

    Whisper models differ: base's cross-attention times run a little early, tiny's late. The
    median move of a first, unbiased pass measures it on this very file; the second pass then
    prefers pauses on that side, which tells a real gap from a stop consonant's closure.
    """
    moves = [
        new - old
        for old_pair, new_pair in zip(raw, snapped, strict=True)
        for old, new in zip(old_pair, new_pair, strict=True)
    ]
    return float(np.clip(np.median(moves), -limit, limit))


def shift_connected(
    raw: Sequence[tuple[float, float]],
    snapped: Sequence[tuple[float, float]],
    config: RefinerConfig,
) -> list[tuple[float, float]]:
    """Move the boundaries between words that run into each other by the offset seen at pauses.

    Where a word follows another with no pause, the signal has no silence to snap to, but the
    transcriber's times there are off in the same direction as at the pauses of the same file
    (Whisper base's run early, tiny's late), by less. So every boundary that faster-whisper
    glued (one word's end is the next one's start) and that no pause claimed moves by
    `connected_share` of the median move at the real pauses (at least `evidence_gap_s` long:
    a stop consonant's closure snapped inside fluent speech says nothing about the offset),
    keeping each word at least `min_word_s` long.
    """
    moves = _pause_moves(raw, snapped, config.evidence_gap_s)
    if not moves or config.connected_share == 0.0:
        return list(snapped)
    limit = config.max_bias_s
    shift = config.connected_share * float(np.clip(np.median(moves), -limit, limit))
    result = list(snapped)
    for k in range(1, len(result)):
        (start_before, end_before), (start, end) = result[k - 1], result[k]
        glued = raw[k - 1][1] == raw[k][0] == end_before == start
        low, high = start_before + config.min_word_s, end - config.min_word_s
        if not glued or low > high:
            continue
        moved = min(max(start + shift, low), high)
        result[k - 1], result[k] = (start_before, moved), (moved, end)
    return result


def _pause_moves(
    raw: Sequence[tuple[float, float]], snapped: Sequence[tuple[float, float]], min_gap: float
) -> list[float]:
    """How far snapping moved the word edges that now face a pause of at least `min_gap`."""
    moves = []
    for k, ((old_start, old_end), (start, end)) in enumerate(zip(raw, snapped, strict=True)):
        gap_before = start - snapped[k - 1][1] if k else math.inf
        gap_after = snapped[k + 1][0] - end if k + 1 < len(snapped) else math.inf
        if start != old_start and gap_before >= min_gap:
            moves.append(start - old_start)
        if end != old_end and gap_after >= min_gap:
            moves.append(end - old_end)
    return moves


def snap_to_pauses(
    times: Sequence[tuple[float, float]],
    found: Sequence[Pause],
    config: RefinerConfig,
    duration: float,
    bias: float = 0.0,
) -> list[tuple[float, float]]:
    """Word (start, end) pairs after matching each boundary to at most one pause, in order."""
    starts = [s for s, _ in times]
    ends = [e for _, e in times]
    pause_ends = [p.end for p in found]
    used = -1
    for boundary in _boundaries(times, config):
        first = max(used + 1, bisect.bisect_right(pause_ends, boundary.reach_low))
        choice = _best_pause(boundary, found, first, config, bias)
        if choice is None:
            continue
        if boundary.ends is not None:
            ends[boundary.ends] = found[choice].start
        if boundary.starts is not None:
            starts[boundary.starts] = found[choice].end
        # An end matched alone leaves its pause to the start that follows it.
        used = choice - 1 if boundary.starts is None else choice
    return _ordered(starts, ends, duration)


def _boundaries(times: Sequence[tuple[float, float]], config: RefinerConfig) -> list[_Boundary]:
    """Boundary k sits between word k-1 and word k; the first and last face the file edges.

    Where faster-whisper itself left a long gap between two words (speech it did not
    transcribe, usually), the end and the start are matched to pauses separately.
    """
    share, reach = config.reach_share, config.edge_reach_s
    (start, first_end), (last_start, end) = times[0], times[-1]
    head = _Boundary(start, start, start - reach, _into(times[0], share))
    found = [dataclasses.replace(head, starts=0, ceiling=first_end)]
    for k in range(1, len(times)):
        found.extend(_between(times[k - 1], times[k], k, config))
    tail = _Boundary(end, end, _into(times[-1], 1 - share), end + reach)
    found.append(dataclasses.replace(tail, ends=len(times) - 1, floor=last_start))
    return found


def _between(
    before: tuple[float, float], after: tuple[float, float], k: int, config: RefinerConfig
) -> list[_Boundary]:
    """The boundary between word k-1 and word k, or an end and a start when they are far apart."""
    low, high = sorted((before[1], after[0]))
    reach_low, reach_high = _into(before, 1 - config.reach_share), _into(after, config.reach_share)
    if high - low <= config.split_gap_s:
        joint = _Boundary(low, high, reach_low, reach_high)
        return [dataclasses.replace(joint, ends=k - 1, starts=k, floor=before[0], ceiling=after[1])]
    middle = (low + high) / 2
    end = _Boundary(low, low, reach_low, middle, ends=k - 1, floor=before[0])
    start = _Boundary(high, high, middle, reach_high, starts=k, ceiling=after[1])
    return [end, start]


def _into(span: tuple[float, float], share: float) -> float:
    """The time `share` of the way through a word."""
    return span[0] + share * (span[1] - span[0])


def _best_pause(
    boundary: _Boundary, found: Sequence[Pause], first: int, config: RefinerConfig, bias: float
) -> int | None:
    """The pause within reach nearest to the (bias-corrected) boundary, from index `first` on.

    A longer pause beats a slightly nearer short one: a stop consonant's closure is a short
    pause inside a word. For the same reason a pause shorter than `closure_s` is taken only
    when it is within `closure_distance_s` of the boundary: farther away, in fluent speech, it
    is far more often the closure of a "t" or "k" inside the next word than the word boundary.
    """
    low, high = boundary.low + bias, boundary.high + bias
    best: tuple[float, int] | None = None
    for index in range(first, len(found)):
        pause = found[index]
        if pause.start >= boundary.reach_high:
            break
        distance = max(0.0, pause.start - high, low - pause.end)
        slack = config.max_distance_s
        fits = boundary.floor - slack < pause.start and pause.end < boundary.ceiling + slack
        reach = config.max_distance_s
        if pause.end - pause.start < config.closure_s:
            reach = min(reach, config.closure_distance_s)
        if distance > reach or not fits:
            continue
        length = min(pause.end - pause.start, config.length_cap_s)
        key = (distance - config.length_weight * length, index)
        best = key if best is None or key < best else best
    return None if best is None else best[1]


def _ordered(
    starts: Sequence[float], ends: Sequence[float], duration: float
) -> list[tuple[float, float]]:
    """Clamp so that every word lies in the file, has start <= end and does not overlap the
    next one."""
    result: list[tuple[float, float]] = []
    floor = 0.0
    for start, end in zip(starts, ends, strict=True):
        begin = min(max(start, floor), duration)
        finish = min(max(end, begin), duration)
        result.append((begin, finish))
        floor = finish
    return result


def _with_times(transcript: Transcript, times: Sequence[tuple[float, float]]) -> Transcript:
    """The transcript with new word times; segment spans follow their words."""
    pending = iter(times)
    segments: list[Segment] = []
    for segment in transcript.segments:
        words = tuple(_retimed(w, next(pending)) for w in segment.words)
        segments.append(_segment_over(segment, words))
    return dataclasses.replace(transcript, segments=tuple(segments))


def _retimed(word: Word, span: tuple[float, float]) -> Word:
    return dataclasses.replace(word, start=round(span[0], 3), end=round(span[1], 3))


def _segment_over(segment: Segment, words: tuple[Word, ...]) -> Segment:
    if not words:
        return segment
    return dataclasses.replace(segment, start=words[0].start, end=words[-1].end, words=words)


def _vad_speech(samples: npt.NDArray[np.float32], frames: int, config: RefinerConfig) -> BoolArray:
    """Frames where Silero VAD does not rule speech out (its 32 ms windows, spread to frames).

    The probabilities come batch by batch from views of `samples`: no padded or context-laden
    copy of the whole file (that was 490 MB at once for an hour of audio).
    """
    probs = speech_probabilities(samples)
    frame_times = (np.arange(frames) + 0.5) * config.frame_s
    index = np.minimum((frame_times * SAMPLE_RATE / WINDOW).astype(np.int64), len(probs) - 1)
    allowed: BoolArray = probs[index] >= config.vad_silence_prob
    return allowed


class EnergyAligner:
    """Alignment backend "faster-whisper" (the default): refine the transcriber's own word
    times against the signal. It has no per-language models to manage."""

    def __init__(self, config: RefinerConfig | None = None) -> None:
        self._config = config or RefinerConfig()

    def align(self, transcript: Transcript, audio: DecodedAudio, ctx: StageContext) -> Transcript:
        """Refine every word's start and end; words never lose their times."""
        ctx.check_cancelled()
        return refine_word_times(transcript, audio, self._config)

    def loaded_models(self) -> list[str]:
        return []

    def load_model(self, name: str) -> str:
        """Nothing to load: every known language works with the transcriber's own timings."""
        return language_code(name) if name.strip() else ""

    def unload_model(self, name: str) -> str:
        raise NotFound(f"Model '{language_code(name)}' is not loaded.")

    def close(self) -> None:
        """Nothing to release."""
