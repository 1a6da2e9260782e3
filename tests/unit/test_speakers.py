"""Speaker assignment onto transcripts, and the numpy-only helpers of the senko backend."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from whisperx_api.domain.speakers import Diarization, SpeakerTurn, speaker_label
from whisperx_api.domain.transcript import Segment, Task, Transcript, Word
from whisperx_api.errors import InvalidRequest, MissingExtra
from whisperx_api.pipeline.speakers import assign_speakers
from whisperx_api.pipeline.stages.extras import require
from whisperx_api.pipeline.stages.senko_diarizer import (
    FRAME_SHIFT,
    Window,
    build_diarization,
    check_speaker_bounds,
    constrain_speaker_count,
    frame_labels,
    frame_windows,
    kmeans,
    merge_closest,
    spectral_labels,
    turns_from_windows,
    unit_rows,
)

A, B, C = "SPEAKER_00", "SPEAKER_01", "SPEAKER_02"


def word(text: str, start: float, end: float) -> Word:
    return Word(text=f" {text}", start=start, end=end, score=0.9)


def transcript(*segments: Segment) -> Transcript:
    return Transcript(task=Task.TRANSCRIBE, language="en", duration=10.0, segments=segments)


def segment(i: int, start: float, end: float, *words: Word) -> Segment:
    return Segment(id=i, start=start, end=end, text="x", words=words)


def turns(*spans: tuple[float, float, str]) -> Diarization:
    return Diarization(turns=tuple(SpeakerTurn(s, e, spk) for s, e, spk in spans))


# --- assign_speakers -----------------------------------------------------------------------


def test_words_take_the_turn_they_overlap_most():
    diar = turns((0.0, 2.0, A), (2.0, 5.0, B))
    result = assign_speakers(
        transcript(segment(0, 0.0, 4.0, word("a", 0.1, 0.5), word("b", 1.8, 2.6))), diar
    )
    assert [w.speaker for w in result.words] == [A, B]


def test_overlap_is_summed_over_turns_of_one_speaker():
    # A: 0.3 + 0.3 = 0.6 s of the word; B: 0.4 s.
    diar = turns((0.0, 1.3, A), (1.3, 1.7, B), (1.7, 2.0, A))
    result = assign_speakers(transcript(segment(0, 0.0, 2.0, word("w", 1.0, 2.0))), diar)
    assert result.words[0].speaker == A


def test_a_word_in_a_pause_takes_the_nearest_turn():
    diar = turns((0.0, 1.0, A), (3.0, 4.0, B))
    result = assign_speakers(
        transcript(segment(0, 0.0, 4.0, word("early", 1.2, 1.4), word("late", 2.5, 2.9))), diar
    )
    assert [w.speaker for w in result.words] == [A, B]


def test_a_zero_length_word_inside_a_turn_takes_it():
    diar = turns((0.0, 1.0, A), (1.0, 2.0, B))
    result = assign_speakers(transcript(segment(0, 0.0, 2.0, word("x", 1.5, 1.5))), diar)
    assert result.words[0].speaker == B


def test_segment_takes_the_duration_weighted_majority_of_its_words():
    diar = turns((0.0, 1.0, A), (1.0, 5.0, B))
    # Two short words of A (0.4 s in all) against one long word of B (2 s).
    seg = segment(0, 0.0, 4.0, word("a", 0.1, 0.3), word("b", 0.5, 0.7), word("c", 1.5, 3.5))
    result = assign_speakers(transcript(seg), diar)
    assert result.segments[0].speaker == B
    assert [w.speaker for w in result.words] == [A, A, B]


def test_segment_vote_tie_goes_to_the_first_speaker_heard():
    diar = turns((0.0, 1.0, A), (1.0, 2.0, B))
    seg = segment(0, 0.0, 2.0, word("a", 0.5, 1.0), word("b", 1.0, 1.5))
    assert assign_speakers(transcript(seg), diar).segments[0].speaker == A


def test_segment_without_words_uses_its_own_span():
    diar = turns((0.0, 1.0, A), (1.0, 4.0, B), (6.0, 7.0, C))
    result = assign_speakers(transcript(segment(0, 0.5, 3.0), segment(1, 8.0, 9.0)), diar)
    assert [s.speaker for s in result.segments] == [B, C]


def test_everything_else_is_kept_and_input_is_untouched():
    diar = Diarization(turns=(SpeakerTurn(0.0, 3.0, A),), embeddings={A: (0.6, 0.8)})
    original = transcript(segment(0, 0.0, 2.0, word("a", 0.1, 0.4)))
    result = assign_speakers(original, diar)
    assert result.speaker_embeddings == {A: (0.6, 0.8)}
    assert result.words[0].score == 0.9
    assert result.words[0].text == " a"
    assert (result.language, result.duration) == ("en", 10.0)
    assert original.segments[0].speaker is None
    assert original.words[0].speaker is None
    assert result.has_speakers


def test_a_turn_boundary_a_little_off_does_not_split_a_sentence():
    # The diarizer's change to B comes 0.25 s early, inside A's sentence.
    diar = turns((0.0, 2.75, A), (2.75, 5.0, B))
    seg = segment(
        0,
        0.5,
        4.5,
        word("I", 0.5, 0.7),
        word("am", 0.75, 1.0),
        word("from", 1.05, 2.4),
        word("Chicago.", 2.45, 3.0),
        word("Me", 3.2, 3.6),
        word("too.", 3.65, 4.5),
    )
    result = assign_speakers(transcript(seg), diar)
    assert [w.speaker for w in result.words] == [A, A, A, A, B, B]


def test_a_one_word_reply_between_sentences_keeps_its_speaker():
    diar = turns((0.0, 2.0, A), (2.1, 2.5, B), (2.6, 4.5, A))
    seg = segment(
        0,
        0.0,
        4.5,
        word("We", 0.0, 0.4),
        word("lost", 0.45, 1.0),
        word("it.", 1.05, 2.0),
        word("Okay.", 2.1, 2.5),
        word("Then", 2.6, 3.0),
        word("left.", 3.05, 4.5),
    )
    result = assign_speakers(transcript(seg), diar)
    assert [w.speaker for w in result.words] == [A, A, A, B, A, A]


def test_a_long_enough_change_inside_a_phrase_is_kept():
    # No sentence end and no pause, but 2 s of B: more than a switch costs.
    diar = turns((0.0, 2.0, A), (2.0, 4.0, B))
    seg = segment(0, 0.0, 4.0, word("and", 0.0, 2.0), word("so", 2.0, 4.0))
    result = assign_speakers(transcript(seg), diar)
    assert [w.speaker for w in result.words] == [A, B]


def test_no_turns_leaves_speakers_unset():
    result = assign_speakers(transcript(segment(0, 0.0, 1.0, word("a", 0.0, 1.0))), turns())
    assert not result.has_speakers
    assert result.words[0].speaker is None


def test_diarization_lists_speakers_by_first_appearance():
    diar = turns((0.0, 1.0, B), (1.0, 2.0, A), (2.0, 3.0, B))
    assert diar.speakers == (B, A)
    assert speaker_label(0) == A
    assert speaker_label(12) == "SPEAKER_12"


# --- senko backend helpers (numpy only) ------------------------------------------------------


def blobs(centres: int, per: int, dim: int = 16, spread: float = 0.15) -> tuple[np.ndarray, list]:
    """Unit vectors around `centres` random directions; returns them and their true groups."""
    rng = np.random.default_rng(7)
    axes = unit_rows(rng.normal(size=(centres, dim)))
    points = np.concatenate(
        [axes[c] + spread * rng.normal(size=(per, dim)) for c in range(centres)]
    )
    return unit_rows(points), [c for c in range(centres) for _ in range(per)]


def same_partition(labels: np.ndarray, truth: list) -> bool:
    pairs = set(zip(labels.tolist(), truth, strict=True))
    return len(pairs) == len(set(truth)) == len(set(labels.tolist()))


def test_spectral_labels_recover_the_groups():
    points, truth = blobs(4, 20)
    assert same_partition(spectral_labels(points, 4), truth)


def test_kmeans_gives_exactly_k_clusters_even_with_duplicates():
    points = np.array([[0.0, 0.0]] * 5 + [[1.0, 1.0]])
    assert len(set(kmeans(points, 3).tolist())) == 3


def test_merge_closest_joins_the_most_similar_clusters():
    points, truth = blobs(3, 10)
    # Make group 2 nearly the same voice as group 0.
    points[20:] = unit_rows(points[:10] + 0.05)
    merged = merge_closest(np.array(truth), points, 2)
    assert len(set(merged.tolist())) == 2
    assert len(set(merged[:10].tolist()) | set(merged[20:].tolist())) == 1


def test_count_within_bounds_is_kept():
    points, truth = blobs(3, 10)
    labels = np.array(truth)
    assert constrain_speaker_count(labels, points, 2, 4).tolist() == truth
    assert constrain_speaker_count(labels, points, None, None).tolist() == truth


def test_too_many_clusters_are_merged_down_to_max():
    points, truth = blobs(4, 10)
    assert len(set(constrain_speaker_count(np.array(truth), points, None, 2).tolist())) == 2


def test_too_few_clusters_are_split_up_to_min():
    points, truth = blobs(4, 10)
    one = np.zeros(len(truth), dtype=np.int64)
    labels = constrain_speaker_count(one, points, 4, None)
    assert same_partition(labels, truth)


def test_min_speakers_is_capped_by_the_number_of_windows():
    points, _ = blobs(2, 1)
    labels = constrain_speaker_count(np.zeros(2, dtype=np.int64), points, 5, 5)
    assert sorted(labels.tolist()) == [0, 1]


@pytest.mark.parametrize(("low", "high"), [(0, None), (None, 0), (3, 2)])
def test_bad_speaker_bounds_are_refused(low, high):
    with pytest.raises(InvalidRequest):
        check_speaker_bounds(low, high)


def test_windows_split_at_midpoints_and_join_runs_of_one_cluster():
    regions = [(0.0, 3.0), (5.0, 5.8)]
    windows = [
        Window(0.0, 1.5, 0),
        Window(0.6, 2.1, 0),
        Window(1.5, 3.0, 0),
        Window(4.7, 6.2, 1),  # a short region's window reaches outside it
    ]
    labels = np.array([1, 1, 0, 1])
    assert turns_from_windows(regions, windows, labels) == [
        (0.0, 1.8, 1),
        (1.8, 3.0, 0),
        (5.0, 5.8, 1),
    ]


def test_build_diarization_labels_by_first_appearance_with_unit_embeddings():
    regions = [(0.0, 1.0), (2.0, 3.0)]
    windows = [Window(0.0, 1.0, 0), Window(2.0, 3.0, 1)]
    units = np.array([[0.0, 2.0], [3.0, 4.0]])
    result = build_diarization(regions, windows, np.array([1, 0]), units)
    assert [(t.start, t.end, t.speaker) for t in result.turns] == [(0.0, 1.0, A), (2.0, 3.0, B)]
    assert result.embeddings == {A: (0.0, 1.0), B: (0.6, 0.8)}
    assert build_diarization(regions, windows, np.array([1, 0]), None).embeddings == {}


def test_frames_cover_each_region_and_a_short_region_is_one_frame():
    frames = frame_windows([(0.0, 1.0), (2.0, 2.3)])
    assert [f.region for f in frames] == [0] * 6 + [1]
    assert frames[0] == Window(0.0, 0.5, 0)
    assert frames[5].end == pytest.approx(1.0)
    assert frames[-1] == Window(2.0, 2.3, 1)


def test_frames_find_a_short_reply_the_long_windows_missed():
    regions = [(0.0, 3.0), (4.0, 6.0)]
    windows = [Window(0.0, 3.0, 0), Window(4.0, 6.0, 1)]
    labels = np.array([0, 1])
    window_units = np.array([[1.0, 0.0], [0.0, 1.0]])
    frames = frame_windows(regions)
    reply = range(10, 15)  # five frames of region 0 (1.0-1.9 s) sound like cluster 1
    units = np.array(
        [[0.0, 1.0] if i in reply or f.region == 1 else [1.0, 0.0] for i, f in enumerate(frames)]
    )
    coarse = build_diarization(regions, windows, labels, None)
    assert [t.speaker for t in coarse.turns] == [A, B]
    refined = build_diarization(
        regions, windows, labels, None, frames=(frames, units, window_units)
    )
    assert [t.speaker for t in refined.turns] == [A, B, A, B]
    start, end = refined.turns[1].start, refined.turns[1].end
    assert 1.0 <= start <= 1.3
    assert 1.6 <= end <= 1.9


def test_frames_blips_shorter_than_a_run_are_smoothed_away():
    centroids = np.array([[1.0, 0.0], [0.0, 1.0]])
    frames = frame_windows([(0.0, 3.0)])
    blip = round(1.0 / FRAME_SHIFT)  # one frame sounds like cluster 1
    units = np.array([[0.0, 1.0] if i == blip else [1.0, 0.0] for i in range(len(frames))])
    labels = frame_labels([(0.0, 3.0, 0)], frames, units, centroids)
    assert set(labels.tolist()) == {0}


def test_a_coarse_label_wins_when_a_frame_is_nearly_undecided():
    centroids = np.array([[1.0, 0.0], [0.0, 1.0]])
    frames = frame_windows([(0.0, 1.0)])
    units = np.tile(np.array([0.70, 0.72]), (len(frames), 1))
    assert set(frame_labels([(0.0, 1.0, 0)], frames, units, centroids).tolist()) == {0}


def test_require_names_the_extra():
    with pytest.raises(MissingExtra) as info:
        require("no_such_module_for_tests", "diarization", param="diarize")
    assert info.value.code == "missing_extra"
    assert info.value.param == "diarize"
    assert "pip install 'whisperx-api[diarization]'" in info.value.message


def test_senko_backend_without_the_extra_says_what_to_install(monkeypatch):
    from whisperx_api.pipeline.stages.senko_diarizer import SenkoDiarizer

    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "senko", None)
    with pytest.raises(MissingExtra) as info:
        SenkoDiarizer("cpu").load()
    assert "whisperx-api[diarization]" in info.value.message
