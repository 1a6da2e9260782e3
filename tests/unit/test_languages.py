"""Which language each stretch is decoded in, the file's main language, and where it switches:
the pure rules, on detections shaped like Whisper base's (measured on the mixed fixture)."""

from __future__ import annotations

import json

from whisperx_api.domain.transcript import (
    Segment,
    Task,
    Transcript,
    TranscriptWarning,
    WarningCode,
    Word,
)
from whisperx_api.jobs.messages import dump_transcript, load_transcript
from whisperx_api.pipeline.batching.languages import (
    MAX_GROUPS,
    Detection,
    LanguageChoice,
    choose_chunk_language,
    choose_piece_language,
    probe_groups,
)
from whisperx_api.pipeline.segmentation import resegment
from whisperx_api.pipeline.spoken_languages import language_switches, spoken_longest

# A chunk of sentences alternating four languages, as base detected it: unsure.
MIXED = Detection((("en", 0.45), ("la", 0.42), ("cy", 0.04), ("de", 0.03), ("fr", 0.02)))
ENGLISH = Detection((("en", 0.99), ("ja", 0.005), ("de", 0.003)))
# A German sentence alone: German, but not confidently; Latin close behind.
GERMAN_PIECE = Detection((("la", 0.41), ("de", 0.21), ("nn", 0.06), ("en", 0.05)))
SECOND = 16_000


def test_a_sure_chunk_keeps_its_language() -> None:
    assert choose_chunk_language(ENGLISH, ()) == LanguageChoice("en", 0.99)


def test_an_unsure_chunk_is_checked_piece_by_piece() -> None:
    assert choose_chunk_language(MIXED, ()) is None


def test_a_chunk_sure_of_a_language_outside_the_candidates_is_checked_piece_by_piece() -> None:
    assert choose_chunk_language(ENGLISH, ("de", "fr")) is None
    assert choose_chunk_language(ENGLISH, ("en", "de")) == LanguageChoice("en", 0.99)


def test_a_piece_takes_its_language_only_when_confident() -> None:
    fallback = LanguageChoice("en", 0.45)
    assert choose_piece_language(GERMAN_PIECE, (), fallback).language == "en"
    sure = Detection((("es", 0.87), ("la", 0.03)))
    assert choose_piece_language(sure, (), fallback) == LanguageChoice("es", 0.87)


def test_candidates_restrict_and_renormalise_the_detection() -> None:
    choice = choose_piece_language(GERMAN_PIECE, ("en", "de", "fr", "es"), LanguageChoice("en", 0))
    assert choice.language == "de"
    assert abs(choice.probability - 0.21 / 0.26) < 1e-9
    assert GERMAN_PIECE.among(()).ranked == GERMAN_PIECE.ranked
    assert Detection((("en", 1.0),)).among(("sw",)).top == ("sw", 0.0)


def test_short_pieces_join_the_neighbour_they_are_closer_to() -> None:
    # "Je voudrais un café," (1.4 s), 0.3 s pause, "s'il vous plaît." (0.9 s), 0.6 s, 2 s more.
    cafe = (0, int(1.4 * SECOND))
    plait = (int(1.7 * SECOND), int(2.6 * SECOND))
    playa = (int(3.2 * SECOND), int(5.2 * SECOND))
    assert probe_groups((cafe, plait, playa)) == [(cafe, plait), (playa,)]
    # Twenty 2-s sentences with 1-s pauses: at most ten groups, neighbours paired.
    many = tuple((i * 3 * SECOND, (i * 3 + 2) * SECOND) for i in range(20))
    groups = probe_groups(many)
    assert len(groups) == MAX_GROUPS
    assert [piece for group in groups for piece in group] == list(many)
    alone = (0, SECOND // 2)
    assert probe_groups((alone,)) == [(alone,)]
    assert probe_groups(()) == []


def segment(start: float, end: float, language: str | None, text: str = " x") -> Segment:
    return Segment(id=0, start=start, end=end, text=text, language=language)


def test_main_language_is_the_one_spoken_longest() -> None:
    segments = [segment(0, 2, "en"), segment(3, 9, "de"), segment(10, 12, "en")]
    language, probability = spoken_longest(segments, [0.9, 0.6, 0.8], ("en", 0.9))
    assert (language, round(probability, 2)) == ("de", 0.6)
    assert spoken_longest(segments[:1], [0.9], ("en", 0.95)) == ("en", 0.95)
    assert spoken_longest([], [], ("fr", 0.0)) == ("fr", 0.0)


def test_one_language_switch_warning_per_run_in_another_language() -> None:
    segments = [
        segment(0, 2, "en"),
        segment(3, 5, "de"),
        segment(5.5, 6, "de"),
        segment(7, 8, "fr"),
        segment(9, 10, "en"),
    ]
    warnings = language_switches(segments, "en")
    assert [(w.code, w.start, w.end) for w in warnings] == [
        (WarningCode.LANGUAGE_SWITCH, 3, 6),
        (WarningCode.LANGUAGE_SWITCH, 7, 8),
    ]
    assert "'de'" in warnings[0].message
    assert language_switches(segments[:1], "en") == ()


def test_segments_never_mix_languages() -> None:
    english = Segment(
        0,
        0.0,
        1.0,
        " Good morning",
        words=(Word(" Good", 0.0, 0.4), Word(" morning", 0.5, 1.0)),
        language="en",
    )
    german = Segment(
        1,
        1.1,
        2.0,
        " guten Tag",
        words=(Word(" guten", 1.1, 1.5), Word(" Tag", 1.6, 2.0)),
        language="de",
    )
    transcript = Transcript(Task.TRANSCRIBE, "en", 2.0, (english, german))
    rebuilt = resegment(transcript)
    assert [(s.text.strip(), s.language) for s in rebuilt.segments] == [
        ("Good morning", "en"),
        ("guten Tag", "de"),
    ]


def test_languages_and_warnings_survive_the_job_store() -> None:
    warning = TranscriptWarning(WarningCode.LANGUAGE_SWITCH, "Speech in 'de'.", 3.0, 5.0)
    transcript = Transcript(
        Task.TRANSCRIBE,
        "en",
        6.0,
        (segment(0, 2, "en"), segment(3, 5, "de")),
        0.9,
        warnings=(warning,),
    )
    assert load_transcript(dump_transcript(transcript)) == transcript


def test_results_stored_before_languages_still_load() -> None:
    old = json.loads(
        dump_transcript(Transcript(Task.TRANSCRIBE, "en", 1.0, (segment(0, 1, None),)))
    )
    del old["warnings"]
    del old["segments"][0]["language"]
    loaded = load_transcript(json.dumps(old))
    assert loaded.warnings == ()
    assert loaded.segments[0].language is None
