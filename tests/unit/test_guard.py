"""Repetition loops, hallucinations on non-speech and low-confidence words: removed or flagged,
each with a warning. Inputs are shaped like faster-whisper's output for base on real audio."""

from __future__ import annotations

import dataclasses

from whisperx_api.domain.transcript import Segment, WarningCode, Word
from whisperx_api.pipeline.guard import collapse_loops, guard, is_hallucination


def words(
    text: str, start: float = 0.0, step: float = 0.3, probability: float = 0.9
) -> tuple[Word, ...]:
    return tuple(
        Word(
            f" {w}", start + i * step, start + i * step + 0.25, probability, probability=probability
        )
        for i, w in enumerate(text.split())
    )


def spoken(text: str, start: float = 0.0, **stats: float) -> Segment:
    made = words(text, start)
    return Segment(0, made[0].start, made[-1].end, f" {text}", words=made, **stats)  # type: ignore[arg-type]


# How base loops on a call's hold music: one phrase over and over until the window ends.
LOOP = "I'm going to go ahead and get you. " * 6


def test_a_loop_becomes_one_copy_and_a_warning() -> None:
    segment = spoken("Thank you for calling. " + LOOP.strip(), 10.0, compression_ratio=3.9)
    kept, warnings = guard([segment], "en")
    assert kept[0].text.strip() == "Thank you for calling. I'm going to go ahead and get you."
    assert [w.text for w in kept[0].words][-1] == " you."
    assert [(w.code, w.start, w.end) for w in warnings] == [
        (WarningCode.REPETITION_REMOVED, kept[0].start, kept[0].end)
    ]
    assert "40 words" in warnings[0].message


def test_a_loop_without_words_is_cut_in_the_text() -> None:
    segment = Segment(0, 0.0, 30.0, " " + ("la " * 40).strip())
    kept, warnings = guard([segment], "en")
    assert kept[0].text == "la"
    assert warnings[0].code is WarningCode.REPETITION_REMOVED


def test_what_people_repeat_is_kept() -> None:
    for text in ("no, no, no, not that one", "thank you, thank you, thank you", "very very good"):
        keep, dropped = collapse_loops(text.split())
        assert dropped == 0, text
        assert len(keep) == len(text.split())


def test_decoder_doubt_over_non_speech_is_removed() -> None:
    music = spoken("Thank you for watching!", 40.0, no_speech_prob=0.2, avg_logprob=-0.9)
    doubted = spoken("And then.", 50.0, no_speech_prob=0.8, avg_logprob=-1.4)
    said = spoken("Thank you for watching!", 60.0, no_speech_prob=0.05, avg_logprob=-0.2)
    assert is_hallucination(music)
    assert is_hallucination(doubted)
    assert not is_hallucination(said)
    kept, warnings = guard([music, doubted, said], "en")
    assert [s.start for s in kept] == [said.start]
    assert [s.id for s in kept] == [0]
    removed = [w for w in warnings if w.code is WarningCode.HALLUCINATION_REMOVED]
    assert [(w.start, w.end) for w in removed] == [
        (music.start, music.end),
        (doubted.start, doubted.end),
    ]


def test_low_confidence_words_are_kept_and_reported_per_run() -> None:
    sure = words("the account number is", 0.0)
    unsure = words("four seven", 1.2, probability=0.2)
    after = words("thank you", 1.8)
    segment = Segment(
        0, 0.0, 2.35, " the account number is four seven thank you", words=(*sure, *unsure, *after)
    )
    kept, warnings = guard([segment], "en")
    assert kept[0].text == segment.text
    assert [(w.code, w.start, w.end) for w in warnings] == [
        (WarningCode.LOW_CONFIDENCE, unsure[0].start, unsure[-1].end)
    ]
    assert "'four seven'" in warnings[0].message


def test_a_number_read_digit_by_digit_is_not_a_loop() -> None:
    for spoken in (
        "the card is 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 thanks",
        "call one one one one one one one one two",
        "it is 1111, 1111, 1111, 1111, 1111 now",
    ):
        tokens = spoken.split()
        assert collapse_loops(tokens) == (list(range(len(tokens))), 0), spoken


def test_a_whole_sentence_looped_is_one_copy() -> None:
    """Base loops on sentences longer than a few words (seen over a murmur of voices)."""
    loop = "We will not be able to make any noise. " * 7
    segment = spoken("Thank you for calling. " + loop.strip(), 4.0, compression_ratio=5.7)
    kept, warnings = guard([segment], "en")
    assert kept[0].text.strip() == "Thank you for calling. We will not be able to make any noise."
    assert [w.code for w in warnings] == [WarningCode.REPETITION_REMOVED]
    assert "54 words" in warnings[0].message


def test_what_the_voice_detector_did_not_hear_and_the_decoder_doubts_is_removed() -> None:
    """Either half of Whisper's rule is enough once the voice detector heard no speech; either
    half alone, where it did hear speech, is not."""
    static = spoken("1 cm x 2 cm", 4.0, no_speech_prob=0.8, avg_logprob=-0.5)
    mumbled = spoken("and then we", 12.0, no_speech_prob=0.2, avg_logprob=-1.3)
    heard = spoken("over the noise", 20.0, no_speech_prob=0.8, avg_logprob=-0.5)
    kept, warnings = guard([static, mumbled, heard], "en", [0.0, 0.05, 0.9])
    assert [s.text for s in kept] == [heard.text]
    assert [(w.code, w.start) for w in warnings] == [
        (WarningCode.HALLUCINATION_REMOVED, static.start),
        (WarningCode.HALLUCINATION_REMOVED, mumbled.start),
    ]
    assert "'1 cm x 2 cm'" in warnings[0].message


def test_what_the_voice_detector_did_not_hear_but_the_decoder_read_surely_is_flagged() -> None:
    """Silero misses whispered speech that Whisper reads confidently: kept, and reported."""
    whispered = spoken("so we had lunch in the park", 1.0, no_speech_prob=0.07, avg_logprob=-0.2)
    kept, warnings = guard([whispered], "en", [0.02])
    assert [s.text for s in kept] == [whispered.text]
    assert [(w.code, w.start, w.end) for w in warnings] == [
        (WarningCode.LOW_CONFIDENCE, whispered.start, whispered.end)
    ]
    assert "voice detector heard almost no speech" in warnings[0].message


def test_without_the_voice_detector_only_whisper_rule_decides() -> None:
    doubted = spoken("1 cm x 2 cm", 4.0, no_speech_prob=0.8, avg_logprob=-0.5)
    kept, warnings = guard([doubted], "en")
    assert kept == (doubted,)
    assert warnings == ()


def test_text_that_repeats_itself_within_words_is_flagged() -> None:
    """Loops inside one word escape the phrase check; Whisper's compression-ratio rule sees
    them (base wrote both over noise)."""
    digits = spoken("1," + "5," * 60, 2.0, no_speech_prob=0.3, avg_logprob=-0.1)
    sound = Segment(0, 6.0, 9.0, " Yu" + "iu" * 40)
    normal = spoken("Thank you for calling Northwind billing, how can I help you today?", 10.0)
    kept, warnings = guard([digits, sound, normal], "en")
    assert kept == tuple(
        dataclasses.replace(s, id=i) for i, s in enumerate([digits, sound, normal])
    )
    assert [(w.code, w.start) for w in warnings] == [
        (WarningCode.LOW_CONFIDENCE, digits.start),
        (WarningCode.LOW_CONFIDENCE, sound.start),
    ]
    assert warnings[0].message.startswith("The text repeats itself: '1,5,5,5")


def test_repetitive_text_the_voice_detector_did_not_hear_is_removed() -> None:
    """Text that repeats itself is the decoder's doubt: with no speech heard, it goes."""
    digits = spoken("1," + "5," * 60, 2.0, no_speech_prob=0.3, avg_logprob=-0.1)
    kept, warnings = guard([digits], "en", [0.0])
    assert kept == ()
    assert [w.code for w in warnings] == [WarningCode.HALLUCINATION_REMOVED]
