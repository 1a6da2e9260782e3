"""Replacements and redaction on transcripts, texts and streamed text (`domain.cleanup`)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from whisperx_api.domain.cleanup import (
    Cleaner,
    CleanupOptions,
    Redaction,
    clean_transcript,
    stable_prefix,
)
from whisperx_api.domain.job import JobSpec
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import (
    Segment,
    Task,
    Transcript,
    TranscriptWarning,
    WarningCode,
    Word,
)
from whisperx_api.jobs.messages import dump_spec, load_spec

ALL = CleanupOptions(redact=tuple(Redaction))
SEVEN_DIGITS = re.compile(r"\d(?:[\s.,()/-]{0,3}\d){6,}")


def words_of(text: str, start: float = 0.0, step: float = 0.5) -> tuple[Word, ...]:
    return tuple(
        Word(f" {w}", start + i * step, start + (i + 1) * step - 0.1, score=0.9, probability=0.8)
        for i, w in enumerate(text.split())
    )


def segment(i: int, text: str, start: float) -> Segment:
    words = words_of(text, start)
    return Segment(i, words[0].start, words[-1].end, f" {text}", words, tokens=(1, 2, 3))


def transcript(*texts: str) -> Transcript:
    segments, start = [], 0.0
    for i, text in enumerate(texts):
        segments.append(segment(i, text, start))
        start = segments[-1].end + 1.0
    return Transcript(Task.TRANSCRIBE, "en", start, tuple(segments))


def clean(text: str, options: CleanupOptions = ALL) -> str:
    return Cleaner.build(options).text(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My card is 4111 1111 1111 1111.", "My card is [CARD_NUMBER]."),
        ("card 411111111111111 thanks", "card [CARD_NUMBER] thanks"),  # 15 digits, no checksum
        ("card 4111-1111-1111-1112, ok", "card [CARD_NUMBER], ok"),
        ("call 555-123-4567 now", "call [PHONE] now"),
        ("call (555) 123 4567.", "call [PHONE]."),
        ("call +44 20 7946 0958 now", "call [PHONE] now"),
        ("on to 0225550147.", "on to [PHONE]."),
        ("dial 5, 5, 5, 1, 2, 3, 4 please", "dial [PHONE] please"),
        ("it is five five five one two three four.", "it is [PHONE]."),
        ("SSN 123-45-6789 ok", "SSN [SSN] ok"),
        ("mail jane.doe+x@example.com today", "mail [EMAIL] today"),
        ("mail jane dot doe at example dot com today", "mail [EMAIL] today"),
        ("my email is janemiravethample.com.", "my email is [EMAIL]."),
        ("IBAN DE89 3704 0044 0532 0130 00 thanks", "IBAN [IBAN] thanks"),
        ("IBAN GB82WEST12345698765432 ok", "IBAN [IBAN] ok"),
    ],
)
def test_each_kind_is_found_as_asr_writes_it(text: str, expected: str) -> None:
    assert clean(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "In 2019, 1,000,000 people came to room 12.",
        "It costs $1234567 in total.",  # an amount, not a phone number
        "version 3.14 of 123456",  # six digits at most
        "We met at the station dot com was not there.",
        "She was born on 05/12/1980 and left on 2024-05-01.",  # dates, not phone numbers
    ],
)
def test_ordinary_numbers_and_words_are_left_alone(text: str) -> None:
    assert clean(text) == text


def test_only_the_kinds_asked_for_are_redacted() -> None:
    text = "card 4111 1111 1111 1111, phone 555 123 4567, mail a@b.com"
    assert clean(text, CleanupOptions(redact=(Redaction.PHONE,))) == (
        "card 4111 1111 1111 1111, phone [PHONE], mail a@b.com"
    )
    # A 9-digit run is a phone number when SSNs are not asked for.
    assert clean("id 123-45-6789", CleanupOptions(redact=(Redaction.PHONE,))) == "id [PHONE]"
    assert clean("id 123-45-6789", CleanupOptions(redact=(Redaction.CARD_NUMBER,))) == (
        "id 123-45-6789"
    )


def test_replacements_are_whole_words_case_insensitive_longest_first() -> None:
    options = CleanupOptions(
        replacements=(("acme", "ACME"), ("acme corp", "ACME Corporation"), ("um", ""))
    )
    assert clean("Um, acme  CORP and Acme, not acmeish or umbrella.", options) == (
        " ACME Corporation and ACME, not acmeish or umbrella."
    )


def test_replacement_output_is_redacted_too() -> None:
    options = CleanupOptions(replacements=(("my number", "555 123 4567"),), redact=ALL.redact)
    assert clean("call my number", options) == "call [PHONE]"


def test_a_redacted_span_becomes_one_word_with_the_span_times() -> None:
    before = transcript("my card is 4111 1111 1111 1111 thanks")
    after = clean_transcript(before, ALL)
    words = after.segments[0].words
    assert [w.text for w in words] == [" my", " card", " is", " [CARD_NUMBER]", " thanks"]
    digits = before.segments[0].words[3:7]
    assert (words[3].start, words[3].end) == (digits[0].start, digits[-1].end)
    assert after.segments[0].text == " my card is [CARD_NUMBER] thanks"
    assert after.segments[0].tokens == ()  # they would spell the digits
    assert after.text == "my card is [CARD_NUMBER] thanks"


def test_a_warning_that_quotes_the_text_is_redacted_too() -> None:
    doubt = TranscriptWarning(
        WarningCode.LOW_CONFIDENCE, "The model is unsure of ' 4111 1111 1111 1111'.", 1.0, 2.0
    )
    before = replace(transcript("my card is 4111 1111 1111 1111 thanks"), warnings=(doubt,))
    (after,) = clean_transcript(before, ALL).warnings
    assert "[CARD_NUMBER]" in after.message
    assert not re.search(r"\d", after.message)
    assert (after.code, after.start, after.end) == (doubt.code, doubt.start, doubt.end)


def test_a_match_across_segments_joins_the_first_and_the_rest_moves() -> None:
    before = transcript("please call 555 123", "4567 or later", "bye now")
    after = clean_transcript(before, ALL)
    assert [s.text for s in after.segments] == [
        " please call [PHONE]",
        " or later",
        " bye now",
    ]
    phone = after.segments[0].words[-1]
    assert phone.end == before.segments[1].words[0].end
    assert after.segments[0].end == phone.end
    assert after.segments[1].start == before.segments[1].words[1].start
    assert [s.id for s in after.segments] == [0, 1, 2]
    assert after.segments[2] == before.segments[2]  # untouched segments keep their tokens


def test_a_segment_left_empty_is_dropped_and_ids_renumbered() -> None:
    before = transcript("hello", "um", "bye")
    after = clean_transcript(before, CleanupOptions(replacements=(("um", ""),)))
    assert [(s.id, s.text) for s in after.segments] == [(0, " hello"), (1, " bye")]


def test_segments_without_words_are_cleaned_as_text() -> None:
    plain = Segment(0, 0.0, 4.0, " call 555 123 4567 please", tokens=(5,))
    before = Transcript(Task.TRANSCRIBE, "en", 4.0, (plain,))
    after = clean_transcript(before, ALL)
    assert after.segments[0].text == " call [PHONE] please"
    assert after.segments[0].tokens == ()


def test_nothing_asked_leaves_the_transcript_as_it_was() -> None:
    before = transcript("call 555 123 4567")
    assert clean_transcript(before, CleanupOptions()) is before


TEXT = (
    " Hello, my card is 4 1 1 1 1111 1111 1111 and my email is jane dot doe at example dot"
    " com. Call me on 555 123 4567 please, um, thanks a lot. Bye now."
)


def test_streamed_prefixes_never_show_digits_and_extend_to_the_final_text() -> None:
    options = CleanupOptions(
        replacements=(("thanks a lot", "thank you"), ("um", "")), redact=ALL.redact
    )
    cleaner = Cleaner.build(options)
    final = cleaner.text(TEXT)
    pieces = re.findall(r"\s*\S+", TEXT)
    shown = ""
    for end in range(1, len(pieces) + 1):
        prefix = stable_prefix("".join(pieces[:end]), cleaner)
        assert final.startswith(prefix), (prefix, final)
        assert len(prefix) >= len(shown)
        assert not SEVEN_DIGITS.search(prefix)
        assert "jane" not in prefix
        assert "doe" not in prefix
        shown = prefix
    for label in ("[CARD_NUMBER]", "[PHONE]", "[EMAIL]"):
        assert label in final


def test_cleanup_options_travel_with_the_job_spec() -> None:
    options = TranscriptionOptions(
        model="base",
        cleanup=CleanupOptions(replacements=(("a b", "c"),), redact=(Redaction.IBAN,)),
    )
    spec = JobSpec(options=options)
    assert load_spec(dump_spec(spec)) == spec


def test_specs_written_before_cleanup_still_load() -> None:
    text = dump_spec(JobSpec(options=TranscriptionOptions(model="base")))
    older = text.replace(', "cleanup": {"replacements": [], "redact": []}', "")
    assert "cleanup" not in older
    assert load_spec(older).options.cleanup == CleanupOptions()


def test_words_whisper_glued_together_are_read_as_one() -> None:
    words = (Word(" email", 0, 1), Word(" it", 1, 2), Word(" again", 2, 3), Word(".miller", 3, 4))
    glued = (*words, Word(".com.", 4, 5))
    seg = Segment(0, 0, 5, " email it again.miller.com.", glued)
    after = clean_transcript(Transcript(Task.TRANSCRIBE, "en", 5, (seg,)), ALL)
    assert [w.text for w in after.segments[0].words] == [" email", " it", " [EMAIL]."]
    assert after.segments[0].words[-1].start == 2


def test_replacements_match_letters_beyond_ascii() -> None:
    options = CleanupOptions(replacements=(("Straße", "Strasse"),))
    assert clean("in der STRAßE und straße", options) == "in der Strasse und Strasse"
    # Python's case-insensitive matching finds the long s (U+017F) for "s", though its lower
    # case is not "s": the entry is still the one that matched.
    long_s = "\u017f"
    assert clean(f"the {long_s}un", CleanupOptions(replacements=(("sun", "moon"),))) == "the moon"
