"""Local agreement: the words two successive decodes of a growing turn agree on are final."""

from __future__ import annotations

from whisperx_api.domain.options import Task
from whisperx_api.domain.transcript import Segment, Transcript, Word
from whisperx_api.realtime.agreement import MARGIN_SECONDS, Agreement, TimedWord, hypothesis

SR = 16_000


def words(text: str, start: float = 0.0, step: float = 0.5) -> list[TimedWord]:
    """Words of `step` s each from `start` s, 0.1 s apart."""
    return [
        TimedWord(w, round((start + k * step) * SR), round((start + k * step + step - 0.1) * SR))
        for k, w in enumerate(text.split())
    ]


def update(agreement: Agreement, hypothesis: list[TimedWord]) -> list[TimedWord]:
    """A hypothesis of audio that ends the margin after its last word: any word may agree."""
    return agreement.update(hypothesis, hypothesis[-1].end + round(MARGIN_SECONDS * SR))


def test_the_first_hypothesis_confirms_nothing() -> None:
    agreement = Agreement()
    assert update(agreement, words("the quick brown")) == []
    assert agreement.text == ""
    assert agreement.cut == 0


def test_the_prefix_two_hypotheses_agree_on_is_confirmed_and_the_tail_starts_after_it() -> None:
    agreement = Agreement()
    update(agreement, words("the quick brown"))
    second = words("The quick, brown fox jumps")
    newly = update(agreement, second)
    assert [w.text for w in newly] == ["The", "quick,", "brown"]  # case and punctuation ignored
    assert agreement.text == "The quick, brown"
    # Halfway between "brown" (ends 1.4 s) and "fox" (starts 1.5 s).
    assert agreement.cut == (second[2].end + second[3].start) // 2 == round(1.45 * SR)


def test_words_after_a_disagreement_wait_for_the_next_hypothesis() -> None:
    agreement = Agreement()
    update(agreement, words("the quick brown fox"))
    assert [w.text for w in update(agreement, words("the quack brown fox jumps"))] == ["the"]
    # The next decode reads the tail only; its words are compared with the rest of the last one.
    assert [w.text for w in update(agreement, words("quack brown fox jumps over", 0.5))] == [
        "quack",
        "brown",
        "fox",
        "jumps",
    ]
    assert agreement.text == "the quack brown fox jumps"


def test_a_hypothesis_s_last_word_is_never_confirmed() -> None:
    agreement = Agreement()
    update(agreement, words("hello there"))
    assert [w.text for w in update(agreement, words("hello there"))] == ["hello"]
    assert agreement.text == "hello"
    assert update(agreement, words("there", 0.5)) == []  # alone, it is the last word


def test_words_in_the_last_second_of_the_audio_wait_even_when_they_agree() -> None:
    agreement = Agreement()
    hypothesis = words("one two three four")  # "two" ends at 0.9 s, "three" at 1.4 s
    agreement.update(hypothesis, round(2.0 * SR))
    assert agreement.update(hypothesis, round(2.0 * SR)) == hypothesis[:2]  # ended by 1.0 s
    assert agreement.text == "one two"


def test_a_tail_that_hears_the_last_confirmed_word_again_drops_it() -> None:
    agreement = Agreement()
    update(agreement, words("one two three"))
    update(agreement, words("one two three"))
    assert agreement.text == "one two"
    again = [TimedWord("two", agreement.cut, agreement.cut + 800), *words("three four", 1.0)]
    assert agreement.tail_words(again) == again[1:]
    later = [TimedWord("two", agreement.cut + SR, agreement.cut + 2 * SR)]  # said twice: kept
    assert agreement.tail_words(later) == later


def test_the_prompt_and_the_transcript_join_the_confirmed_words() -> None:
    agreement = Agreement()
    assert agreement.prompt(None) is None
    assert agreement.prompt("Names: Ada.") == "Names: Ada."
    update(agreement, words("alpha beta gamma"))
    update(agreement, words("alpha beta gamma"))
    assert agreement.prompt("Names: Ada.") == "Names: Ada. alpha beta"
    assert agreement.transcript(" gamma delta.") == "alpha beta gamma delta."
    assert Agreement().transcript("just the tail") == "just the tail"


def test_a_hypothesis_is_timed_from_the_turn_s_start() -> None:
    segment = Segment(0, 0.0, 1.0, " a b", words=(Word(" a", 0.0, 0.4), Word(" b", 0.5, 1.0)))
    transcript = Transcript(Task.TRANSCRIBE, "en", 1.0, (segment,))
    assert hypothesis(transcript, 8000) == [
        TimedWord("a", 8000, 8000 + 6400),
        TimedWord("b", 8000 + 8000, 8000 + 16000),
    ]
