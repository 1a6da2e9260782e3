"""The DER scoring's pause rule on the output side (tests/der.py): a short pause between two
spans of one speaker is no break, a long one or another speaker between them is."""

from __future__ import annotations

from tests.der import PAUSE_SECONDS, bridged


def test_a_short_pause_between_one_speakers_spans_is_bridged() -> None:
    spans = [(1.0, 2.0, "A"), (0.0, 0.9, "A")]
    assert bridged(spans) == [(0.0, 2.0, "A")]


def test_a_pause_of_the_rule_s_length_or_more_stays_a_break() -> None:
    spans = [(0.0, 1.0, "A"), (1.0 + PAUSE_SECONDS, 2.0, "A")]
    assert bridged(spans) == spans


def test_another_speaker_between_two_spans_keeps_them_apart() -> None:
    spans = [(0.0, 1.0, "A"), (1.05, 1.2, "B"), (1.25, 2.0, "A")]
    assert bridged(spans) == spans
