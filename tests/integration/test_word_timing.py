"""Word timing quality: the boundary refiner on synthetic signals (fast), and the measurable bar
on `word_timing.flac`, whose every true word boundary is exact (slow: runs Whisper base).

The bar: at least 90% of the matched words have start AND end within 200 ms of the truth.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.audio import DATA
from whisperx_api.domain.audio import SAMPLE_RATE, DecodedAudio
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Segment, Task, Transcript, Word
from whisperx_api.errors import NotFound
from whisperx_api.pipeline.catalog import ModelCatalog
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.boundary_refiner import (
    EnergyAligner,
    RefinerConfig,
    follow_sound,
    refine_word_times,
    shift_connected,
    sound_mask,
)
from whisperx_api.pipeline.stages.decode import decode_audio
from whisperx_api.pipeline.stages.faster_whisper import DeviceConfig, FasterWhisperBackend

TOLERANCE_S = 0.2
BAR = 0.90
TimedWord = tuple[str, float, float]


# --- the metric (also used by the HTTP-level variant) -----------------------------------------


def load_truth(name: str = "word_timing") -> list[dict[str, object]]:
    """The exact word times that `tests/data/make_word_timing.py` wrote."""
    truth: list[dict[str, object]] = json.loads((DATA / f"{name}.json").read_text())
    return truth


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9']", "", text.lower())


def timing_accuracy(
    truth: Sequence[Mapping[str, object]], words: Sequence[TimedWord], tolerance: float = 0.2
) -> tuple[float, int]:
    """Share of matched words whose start and end are both within `tolerance` of the truth,
    and how many words matched. Words are matched on normalised text by sequence alignment, so
    recognition errors only drop words from the count."""
    wanted = [_norm(str(t["word"])) for t in truth]
    heard = [_norm(w[0]) for w in words]
    matcher = difflib.SequenceMatcher(a=wanted, b=heard, autojunk=False)
    pairs = [
        (truth[block.a + k], words[block.b + k])
        for block in matcher.get_matching_blocks()
        for k in range(block.size)
    ]
    good = sum(
        abs(float(str(t["start"])) - w[1]) <= tolerance
        and abs(float(str(t["end"])) - w[2]) <= tolerance
        for t, w in pairs
    )
    return (good / len(pairs) if pairs else 0.0), len(pairs)


def timed(transcript: Transcript) -> list[TimedWord]:
    return [(w.text, w.start, w.end) for w in transcript.words]


# --- fast: the refiner on synthetic "speech" --------------------------------------------------

# (start, end) of each burst of voiced sound; gaps of 100 ms, 800 ms, 100 ms, 600 ms.
SPANS = ((0.5, 0.9), (1.0, 1.4), (2.2, 2.5), (2.6, 3.1), (3.7, 4.2))
NO_VAD = RefinerConfig(use_vad=False)


def voiced(spans: Sequence[tuple[float, float]], seconds: float, seed: int = 0) -> DecodedAudio:
    """Harmonic bursts (a 120 Hz buzz with 10 ms ramps) over faint noise."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0.0, 0.001, int(seconds * SAMPLE_RATE))
    for start, end in spans:
        t = np.arange(int((end - start) * SAMPLE_RATE)) / SAMPLE_RATE
        buzz = sum(np.sin(2 * np.pi * 120 * h * t) / h for h in range(1, 8))
        ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01)
        first = int(start * SAMPLE_RATE)
        samples[first : first + len(t)] += 0.2 * buzz * ramp
    return DecodedAudio(samples.astype(np.float32))


def glued(spans: Sequence[tuple[float, float]], early: float = 0.15) -> Transcript:
    """Word times the way cross-attention gives them: each start glued to the previous end,
    ends a little early."""
    words: list[Word] = []
    previous = max(0.0, spans[0][0] - 0.3)
    for index, (_, end) in enumerate(spans):
        words.append(Word(f" w{index}", previous, end - early))
        previous = end - early
    segment = Segment(
        0, words[0].start, words[-1].end, " ".join(w.text for w in words), tuple(words)
    )
    return Transcript(Task.TRANSCRIBE, "en", 5.0, (segment,))


def assert_sane(transcript: Transcript, duration: float) -> None:
    words = transcript.words
    assert all(0.0 <= w.start <= w.end <= duration for w in words)
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))


def test_glued_boundaries_snap_to_the_pauses() -> None:
    audio = voiced(SPANS, 5.0)
    refined = refine_word_times(glued(SPANS), audio, NO_VAD)
    for word, (start, end) in zip(refined.words, SPANS, strict=True):
        assert word.start == pytest.approx(start, abs=0.03)
        assert word.end == pytest.approx(end, abs=0.03)
    assert refined.segments[0].start == refined.words[0].start
    assert refined.segments[0].end == refined.words[-1].end
    assert_sane(refined, 5.0)


def test_a_pause_between_words_beats_a_slightly_nearer_stop_closure() -> None:
    # Word A is 0.5-1.0 s, word B 1.3-1.8 s with a 50 ms closure at 1.45 s. Whisper put the
    # boundary at 1.38 s: 70 ms before the closure, 80 ms after the real pause.
    audio = voiced(((0.5, 1.0), (1.3, 1.45), (1.5, 1.8)), 3.0)
    words = (Word(" a", 0.3, 1.38), Word(" b", 1.38, 1.9))
    hypothesis = Transcript(Task.TRANSCRIBE, "en", 3.0, (Segment(0, 0.3, 1.9, "a b", words),))
    refined = refine_word_times(hypothesis, audio, RefinerConfig(use_vad=False, bias_s=0.0))
    assert [(w.start, w.end) for w in refined.words] == [
        pytest.approx((0.5, 1.0), abs=0.02),
        pytest.approx((1.3, 1.8), abs=0.02),
    ]


def test_a_closure_far_from_a_glued_boundary_is_not_taken_for_a_pause() -> None:
    # Two words run into each other at 1.0 s; 200 ms later the second one has a 50 ms stop
    # closure. A 150 ms pause at the same place would be a word boundary worth snapping to.
    words = (Word(" a", 0.5, 1.0), Word(" b", 1.0, 1.6))
    hypothesis = Transcript(Task.TRANSCRIBE, "en", 3.0, (Segment(0, 0.5, 1.6, "a b", words),))
    config = RefinerConfig(use_vad=False, bias_s=0.0, connected_share=0.0)
    closure = voiced(((0.5, 1.2), (1.25, 1.6)), 3.0)
    refined = refine_word_times(hypothesis, closure, config)
    assert refined.words[1].start == pytest.approx(1.0, abs=0.02)
    pause = voiced(((0.5, 1.2), (1.35, 1.6)), 3.0)
    refined = refine_word_times(hypothesis, pause, config)
    assert (refined.words[0].end, refined.words[1].start) == (
        pytest.approx(1.2, abs=0.02),
        pytest.approx(1.35, abs=0.02),
    )


def test_without_speech_in_the_signal_nothing_moves() -> None:
    silence = DecodedAudio(np.random.default_rng(1).normal(0, 0.001, 80_000).astype(np.float32))
    hypothesis = glued(SPANS)
    refined = refine_word_times(hypothesis, silence, RefinerConfig())
    assert timed(refined) == timed(hypothesis)


def test_random_hypotheses_stay_ordered_inside_the_file() -> None:
    audio = voiced(SPANS, 5.0)
    rng = np.random.default_rng(7)
    for _ in range(50):
        edges = np.sort(rng.uniform(0.0, 5.2, size=2 * 6))
        words = tuple(
            Word(f" w{i}", float(a), float(b)) for i, (a, b) in enumerate(edges.reshape(-1, 2))
        )
        transcript = Transcript(Task.TRANSCRIBE, "en", 5.0, (Segment(0, 0.0, 5.0, "x", words),))
        refined = refine_word_times(transcript, audio, NO_VAD)
        assert len(refined.words) == len(words)
        assert_sane(refined, 5.0)


def test_energy_aligner_is_a_model_free_backend() -> None:
    aligner = EnergyAligner(NO_VAD)
    audio = voiced(SPANS, 5.0)
    hypothesis = glued(SPANS)
    assert timed(aligner.align(hypothesis, audio, StageContext())) == timed(
        refine_word_times(hypothesis, audio, NO_VAD)
    )
    assert aligner.loaded_models() == []
    assert aligner.load_model("en") == "en"
    with pytest.raises(NotFound):
        aligner.unload_model("en")
    empty = Transcript(Task.TRANSCRIBE, "en", 5.0, (Segment(0, 0.0, 1.0, ""),))
    assert aligner.align(empty, audio, StageContext()) == empty


def test_glued_boundaries_move_by_half_the_offset_seen_at_the_pauses() -> None:
    raw = [(0.3, 0.8), (0.8, 1.2), (1.2, 1.7)]
    # The pauses moved the first start and the last end 100 ms later.
    snapped = [(0.4, 0.8), (0.8, 1.2), (1.2, 1.8)]
    shifted = shift_connected(raw, snapped, RefinerConfig())
    assert shifted == [
        pytest.approx((0.4, 0.85)),
        pytest.approx((0.85, 1.25)),
        pytest.approx((1.25, 1.8)),
    ]
    assert shift_connected(raw, snapped, RefinerConfig(connected_share=0.0)) == snapped


def test_boundaries_a_pause_claimed_or_short_words_limit_the_shift() -> None:
    raw = [(0.3, 0.8), (0.8, 0.84), (0.84, 1.5), (1.5, 2.0)]
    # Pauses moved the first start by 50 ms, and the last boundary 50 and 150 ms later: a
    # median of 50 ms, so glued boundaries move 25 ms (word 1 keeps 30 ms, though).
    snapped = [(0.35, 0.8), (0.8, 0.84), (0.84, 1.55), (1.65, 2.0)]
    shifted = shift_connected(raw, snapped, RefinerConfig(min_word_s=0.03))
    assert shifted[0] == pytest.approx((0.35, 0.81))
    assert shifted[1] == pytest.approx((0.81, 0.865))
    assert shifted[2] == pytest.approx((0.865, 1.55))
    assert shifted[3] == (1.65, 2.0)  # a pause claimed this boundary
    assert shift_connected(raw, raw, RefinerConfig()) == raw  # no pause, no evidence


def test_a_stop_closure_snapped_inside_fluent_speech_is_no_evidence_of_the_offset() -> None:
    raw = [(0.3, 0.8), (0.8, 1.2), (1.2, 1.6), (1.6, 2.0)]
    # A 100 ms pause moved the first start 100 ms; a 40 ms closure took the boundary between
    # words 1 and 2 200 ms later. Only the pause counts: the glued boundaries move 50 ms.
    snapped = [(0.4, 0.8), (0.8, 1.38), (1.42, 1.6), (1.6, 2.0)]
    shifted = shift_connected(raw, snapped, RefinerConfig(evidence_gap_s=0.1))
    assert shifted == [
        pytest.approx((0.4, 0.85)),
        pytest.approx((0.85, 1.38)),
        pytest.approx((1.42, 1.65)),
        pytest.approx((1.65, 2.0)),
    ]


def faint(audio: DecodedAudio, spans: Sequence[tuple[float, float]]) -> DecodedAudio:
    """`audio` with a faint hiss (about 32 dB under the voiced bursts) over each span: the
    release of a final stop, a fading fricative."""
    samples = audio.samples.copy()
    rng = np.random.default_rng(3)
    for start, end in spans:
        first, last = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
        samples[first:last] += rng.normal(0.0, 0.004, last - first).astype(np.float32)
    return DecodedAudio(samples)


def test_a_word_before_a_pause_keeps_its_faint_end_and_onset() -> None:
    # Word a sounds 0.5-0.9 s, then a 50 ms closure and a faint release to 1.05 s; word b
    # begins with a faint onset at 1.55 s before its voiced part at 1.6 s.
    audio = faint(voiced(((0.5, 0.9), (1.6, 2.0)), 3.0), ((0.95, 1.05), (1.55, 1.6)))
    config = RefinerConfig(use_vad=False)
    found = follow_sound([(0.5, 0.9), (1.6, 2.0)], sound_mask(audio.samples, config), config)
    assert found == [pytest.approx((0.5, 1.05), abs=0.015), pytest.approx((1.55, 2.0), abs=0.015)]


def test_sound_running_into_the_next_word_moves_no_edge() -> None:
    # One continuous stretch of sound 0.5-1.5 s; whisper split it into two words with a gap.
    audio = voiced(((0.5, 1.5),), 3.0)
    config = RefinerConfig(use_vad=False)
    times = [(0.5, 0.9), (1.0, 1.5)]
    assert follow_sound(times, sound_mask(audio.samples, config), config) == times


def test_sound_that_runs_on_past_the_limit_or_after_a_quiet_stretch_is_not_followed() -> None:
    config = RefinerConfig(use_vad=False)
    # Faint sound from 0.9 s to 2.0 s, longer than any word's tail (hum, noise): no move.
    audio = faint(voiced(((0.5, 0.9),), 3.0), ((0.9, 2.0),))
    assert follow_sound([(0.5, 0.9)], sound_mask(audio.samples, config), config) == [(0.5, 0.9)]
    # Sound after a 200 ms quiet stretch is not this word's either.
    audio = faint(voiced(((0.5, 0.9),), 3.0), ((1.1, 1.3),))
    assert follow_sound([(0.5, 0.9)], sound_mask(audio.samples, config), config) == [
        pytest.approx((0.5, 0.9), abs=0.015)
    ]


def test_the_metric_matches_words_by_text() -> None:
    truth = [
        {"word": "Hello,", "start": 1.0, "end": 1.4},
        {"word": "world.", "start": 2.0, "end": 2.5},
    ]
    assert timing_accuracy(truth, [(" hello", 1.1, 1.5), (" world", 2.3, 2.5)]) == (0.5, 2)
    assert timing_accuracy(truth, [(" hi", 1.0, 1.4), (" world!", 2.0, 2.5)]) == (1.0, 1)


# --- slow: the bar on real transcription ------------------------------------------------------


@pytest.mark.slow
def test_refined_word_times_meet_the_bar(tmp_path: Path) -> None:
    backend = FasterWhisperBackend(ModelCatalog("base", cache_dir=tmp_path), DeviceConfig("cpu"))
    audio = decode_audio(DATA / "word_timing.flac", 600)
    options = TranscriptionOptions(model="base", word_timestamps=True)
    began = time.perf_counter()
    raw = backend.transcribe(audio, options, StageContext())
    transcribed = time.perf_counter()
    refined = EnergyAligner().align(raw, audio, StageContext())
    refined_at = time.perf_counter()
    backend.close()

    truth = load_truth()
    raw_share, matched = timing_accuracy(truth, timed(raw), TOLERANCE_S)
    refined_share, _ = timing_accuracy(truth, timed(refined), TOLERANCE_S)
    print(
        f"\nword timing within {TOLERANCE_S * 1000:.0f} ms ({matched}/{len(truth)} words matched): "
        f"faster-whisper raw {raw_share:.1%}, refined {refined_share:.1%}; "
        f"transcription {transcribed - began:.2f} s, refinement {refined_at - transcribed:.3f} s"
    )
    assert matched >= 0.8 * len(truth)
    assert refined_share >= BAR
    assert refined_share > raw_share
    assert refined_at - transcribed < (transcribed - began) / 5
    assert_sane(refined, audio.duration)
