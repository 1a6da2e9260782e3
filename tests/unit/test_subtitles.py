"""Cue layout: one test per rule, pathological cases, and the output through real parsers."""

from __future__ import annotations

import itertools
import re

import pytest
import srt
import webvtt

from tests.unit.transcripts import ALIGNED, FIXED, LONG, PLAIN
from whisperx_api.domain.formats import OutputFormat
from whisperx_api.domain.options import SubtitleOptions
from whisperx_api.domain.transcript import Segment, Task, Transcript, Word
from whisperx_api.formatters import render
from whisperx_api.formatters.subtitles import (
    MAX_CHARS_PER_SECOND,
    MAX_CUE_SECONDS,
    Cue,
    build_cues,
    speaker_prefix,
)
from whisperx_api.formatters.vtt import escape_vtt

PREFIX = re.compile(r"^\[[^\]]+\]: ")
UNDERLINED = re.compile(r"<u>(.*?)</u>")
DEFAULT = SubtitleOptions()


def cue_words(cue: Cue) -> list[str]:
    return PREFIX.sub("", UNDERLINED.sub(r"\1", cue.text)).split()


def lines(cue: Cue) -> list[str]:
    return cue.text.split("\n")


def spoken_chars(cue: Cue) -> int:
    return len(" ".join(PREFIX.sub("", cue.text).split("\n")))


def timed_words(text: str, start: float = 0.0, step: float = 0.3) -> tuple[Word, ...]:
    return tuple(
        Word(f" {t}", round(start + i * step, 3), round(start + (i + 1) * step, 3))
        for i, t in enumerate(text.split())
    )


def one_segment(
    text: str,
    words: tuple[Word, ...] = (),
    speaker: str | None = None,
    span: tuple[float, float] | None = None,
    language: str = "en",
) -> Transcript:
    start, end = span or ((words[0].start, words[-1].end) if words else (0.0, 1.0))
    segment = Segment(0, start, end, text, words, speaker)
    return Transcript(Task.TRANSCRIBE, language, end + 5.0, (segment,))


def no_overlap(cues: tuple[Cue, ...]) -> bool:
    return all(a.end <= b.start for a, b in itertools.pairwise(cues))


STORY = (
    "It was a bright cold day in April, and the clocks were striking thirteen. "
    "Winston Smith, his chin nuzzled into his breast in an effort to escape the vile wind, "
    "slipped quickly through the glass doors of Victory Mansions, though not quickly enough "
    "to prevent a swirl of gritty dust from entering along with him."
)
STORY_WORDS = timed_words(STORY, step=0.32)


# --- properties over many shapes -------------------------------------------------------------

SHAPES = [(w, c) for w in (1, 5, 10, 16, 25, 42, 80) for c in (None, 1, 2, 3)]
STORY_T = one_segment(" " + STORY, STORY_WORDS)


@pytest.mark.parametrize(("width", "count"), SHAPES)
@pytest.mark.parametrize("transcript", [PLAIN, ALIGNED, LONG, STORY_T])
def test_lines_fit_the_width_unless_one_word_is_longer(
    transcript: Transcript, width: int, count: int | None
) -> None:
    options = SubtitleOptions(max_line_width=width, max_line_count=count)
    for cue in build_cues(transcript, options):
        for line in lines(cue):
            assert len(line) <= width or len(PREFIX.sub("", line).split()) == 1, line


@pytest.mark.parametrize(("width", "count"), SHAPES)
@pytest.mark.parametrize("transcript", [PLAIN, ALIGNED, LONG, STORY_T])
def test_no_cue_has_more_lines_than_the_count(
    transcript: Transcript, width: int, count: int | None
) -> None:
    cues = build_cues(transcript, SubtitleOptions(max_line_width=width, max_line_count=count))
    assert all(1 <= len(lines(cue)) <= (count or 2) for cue in cues)


@pytest.mark.parametrize(("width", "count"), SHAPES)
@pytest.mark.parametrize("transcript", [PLAIN, ALIGNED, LONG, STORY_T])
def test_shaping_keeps_every_word_in_order(
    transcript: Transcript, width: int, count: int | None
) -> None:
    cues = build_cues(transcript, SubtitleOptions(max_line_width=width, max_line_count=count))
    assert [w for cue in cues for w in cue_words(cue)] == transcript.text.split()
    assert no_overlap(cues)


@pytest.mark.parametrize("words", [1, 2, 3, 5])
def test_max_words_per_line_is_honoured(words: int) -> None:
    cues = build_cues(STORY_T, SubtitleOptions(max_words_per_line=words))
    assert all(len(line.split()) <= words for cue in cues for line in lines(cue))
    assert all(len(line) <= 42 for cue in cues for line in lines(cue))
    assert [w for cue in cues for w in cue_words(cue)] == STORY.split()


# --- the defaults ----------------------------------------------------------------------------


def test_defaults_are_two_lines_of_42_and_seven_seconds() -> None:
    cues = build_cues(STORY_T, DEFAULT)
    assert len(cues) > 3
    assert all(len(line) <= 42 for cue in cues for line in lines(cue))
    assert all(len(lines(cue)) <= 2 for cue in cues)
    assert all(cue.end - cue.start <= MAX_CUE_SECONDS for cue in cues)


def test_a_short_segment_is_one_cue_on_one_line_timed_by_its_words() -> None:
    words = timed_words("Good morning everyone.", start=1.0, step=0.5)
    cues = build_cues(one_segment(" Good morning everyone.", words, span=(0.0, 3.0)), DEFAULT)
    assert cues == (Cue(1.0, 2.5, "Good morning everyone."),)


def test_cues_split_at_the_sentence_end_and_the_comma() -> None:
    cues = build_cues(STORY_T, DEFAULT)
    assert cues[0].text.endswith("April,") or cues[0].text.endswith("thirteen.")
    assert any(cue.text.startswith("Winston Smith,") for cue in cues)


def test_lines_are_balanced_and_broken_after_punctuation() -> None:
    text = " Pack my box with five dozen liquor jugs, said the naïve café owner."
    cue = build_cues(one_segment(text, timed_words(text)), DEFAULT)[0]
    assert lines(cue) == ["Pack my box with five dozen liquor jugs,", "said the naïve café owner."]


def test_lines_break_before_a_conjunction_rather_than_mid_phrase() -> None:
    text = " The committee approved the new budget proposal and the revised schedule"
    cue = build_cues(one_segment(text, timed_words(text)), DEFAULT)[0]
    assert lines(cue) == [
        "The committee approved the new budget",
        "proposal and the revised schedule",
    ]
    balanced = " We will travel to the northern mountains in the early days of summer"
    cue = build_cues(one_segment(balanced, timed_words(balanced)), DEFAULT)[0]
    assert lines(cue) == ["We will travel to the northern mountains", "in the early days of summer"]


def test_a_cue_that_fits_one_line_is_not_broken() -> None:
    text = " This line has exactly forty-two letters."
    assert len(text.strip()) <= 42
    cue = build_cues(one_segment(text, timed_words(text)), DEFAULT)[0]
    assert lines(cue) == [text.strip()]


def test_the_speaker_prefix_counts_towards_the_width() -> None:
    segment = Segment(0, 0.0, 1.0, " ab cd ef", speaker="S")
    transcript = Transcript(task=Task.TRANSCRIBE, language="en", duration=1.0, segments=(segment,))
    cues = build_cues(transcript, SubtitleOptions(max_line_width=8))
    assert speaker_prefix("S") == "[S]: "
    assert [c.text for c in cues] == ["[S]: ab\ncd ef"]


def test_every_cue_of_a_diarized_segment_names_its_speaker_within_the_width() -> None:
    cues = build_cues(one_segment(" " + STORY, STORY_WORDS, speaker="SPEAKER_00"), DEFAULT)
    assert len(cues) > 3
    assert all(cue.text.startswith("[SPEAKER_00]: ") for cue in cues)
    assert all(len(line) <= 42 for cue in cues for line in lines(cue))


# --- timing ----------------------------------------------------------------------------------


def test_cue_times_come_from_their_words() -> None:
    cues = build_cues(ALIGNED, SubtitleOptions(max_line_width=30, max_line_count=1))
    words = iter(ALIGNED.words)
    for cue in cues:
        own = [next(words) for _ in cue_words(cue)]
        assert cue.start == own[0].start
        assert cue.end >= own[-1].end
    assert next(words, None) is None


def test_a_fast_cue_is_held_into_the_following_silence() -> None:
    words = (Word(" Absolutely", 1.0, 1.2), Word(" fantastic!", 1.2, 1.4))
    later = Segment(1, 5.0, 5.5, " Next.", (Word(" Next.", 5.0, 5.5),))
    transcript = Transcript(
        Task.TRANSCRIBE, "en", 6.0, (Segment(0, 1.0, 1.4, " Absolutely fantastic!", words), later)
    )
    first, second = build_cues(transcript, DEFAULT)
    assert first.start == 1.0
    assert first.end == pytest.approx(
        1.0 + len("Absolutely fantastic!") / MAX_CHARS_PER_SECOND, abs=0.002
    )
    assert spoken_chars(first) / (round(first.end, 3) - first.start) <= MAX_CHARS_PER_SECOND
    assert second.start == 5.0


def test_a_fast_cue_is_held_no_further_than_the_next_cue() -> None:
    words = (Word(" Absolutely", 1.0, 1.2), Word(" fantastic!", 1.2, 1.4))
    later = Segment(1, 1.6, 2.0, " Next.", (Word(" Next.", 1.6, 2.0),))
    transcript = Transcript(
        Task.TRANSCRIBE, "en", 6.0, (Segment(0, 1.0, 1.4, " Absolutely fantastic!", words), later)
    )
    first, second = build_cues(transcript, DEFAULT)
    assert (first.end, second.start) == (1.6, 1.6)


def test_a_forty_second_segment_without_words_is_cut_into_short_cues() -> None:
    text = " " + " ".join(["and then we talked about the weather for a while"] * 10)
    cues = build_cues(one_segment(text, span=(0.0, 40.0)), DEFAULT)
    assert len(cues) >= 6
    assert all(cue.end - cue.start <= MAX_CUE_SECONDS for cue in cues)
    assert cues[0].start == 0.0
    assert cues[-1].end == pytest.approx(40.0)
    assert all(a.end == pytest.approx(b.start) for a, b in itertools.pairwise(cues))
    assert [w for cue in cues for w in cue_words(cue)] == text.split()


def test_one_long_word_without_times_stays_one_cue() -> None:
    cues = build_cues(one_segment(" Hmmmmmmmm", span=(0.0, 40.0)), DEFAULT)
    assert cues == (Cue(0.0, 40.0, "Hmmmmmmmm"),)


# --- pathological words ----------------------------------------------------------------------


def test_a_sixty_character_word_gets_its_own_line_and_is_never_split() -> None:
    giant = "Pneumonoultramicroscopicsilicovolcanoconiosis" + "x" * 15
    assert len(giant) == 60
    text = f" The word {giant} is long."
    cues = build_cues(one_segment(text, timed_words(text)), DEFAULT)
    assert any(line == giant for cue in cues for line in lines(cue))
    assert [w for cue in cues for w in cue_words(cue)] == text.split()
    assert all(len(line) <= 42 for cue in cues for line in lines(cue) if line != giant)


def test_a_url_stays_whole() -> None:
    url = "https://example.com/docs/subtitles/layout?lang=en&page=2"
    text = f" Read the guide at {url} before you start."
    cues = build_cues(one_segment(text, timed_words(text)), DEFAULT)
    assert sum(line.count(url) for cue in cues for line in lines(cue)) == 1
    assert [w for cue in cues for w in cue_words(cue)] == text.split()


def test_numbers_stay_whole() -> None:
    text = " It cost 1,234.56 dollars in 2024, or 3.5 percent more than the 1999 price of 1,192.50."
    cues = build_cues(one_segment(text, timed_words(text)), DEFAULT)
    words = [w for cue in cues for w in cue_words(cue)]
    assert "1,234.56" in words
    assert "3.5" in words
    assert "1,192.50." in words


# --- speakers --------------------------------------------------------------------------------


def test_a_speaker_change_mid_sentence_starts_a_new_cue() -> None:
    first = Segment(0, 0.0, 0.9, " I think that", timed_words("I think that"), "SPEAKER_00")
    rest = Segment(1, 0.9, 1.5, " is right.", timed_words("is right.", start=0.9), "SPEAKER_01")
    transcript = Transcript(Task.TRANSCRIBE, "en", 2.0, (first, rest))
    cues = build_cues(transcript, DEFAULT)
    assert [c.text for c in cues] == ["[SPEAKER_00]: I think that", "[SPEAKER_01]: is right."]


def test_overlapping_speech_gives_cues_that_never_overlap_or_mix_speakers() -> None:
    alice = Segment(
        0,
        0.0,
        3.0,
        " I was saying that we should go.",
        timed_words("I was saying that we should go.", 0.0, 0.42),
        "A",
    )
    bob = Segment(1, 1.0, 2.0, " Yes, yes.", timed_words("Yes, yes.", 1.0, 0.5), "B")
    transcript = Transcript(Task.TRANSCRIBE, "en", 4.0, (alice, bob))
    cues = build_cues(transcript, DEFAULT)
    assert no_overlap(cues)
    assert all(c.end > c.start for c in cues)
    assert all(len(set(re.findall(r"\[(\w+)\]", c.text))) == 1 for c in cues)
    assert {c.text for c in cues} == {"[A]: I was saying that we should go.", "[B]: Yes, yes."}


def test_overlapping_word_times_never_make_cues_overlap() -> None:
    segment = Segment(
        0,
        0.0,
        3.0,
        " one two three",
        (Word(" one", 0.0, 2.0), Word(" two", 1.0, 1.5), Word(" three", 2.5, 3.0)),
    )
    transcript = Transcript(task=Task.TRANSCRIBE, language="en", duration=3.0, segments=(segment,))
    cues = build_cues(transcript, SubtitleOptions(max_line_width=3, max_line_count=1))
    assert [c.text for c in cues] == ["one", "two", "three"]
    assert no_overlap(cues)


# --- scripts without spaces ------------------------------------------------------------------


def test_chinese_without_words_is_measured_and_joined_by_characters() -> None:
    text = "我们明天早上八点在公司门口见面，然后一起坐车去机场接客户。" * 2
    cues = build_cues(one_segment(text, span=(0.0, 6.0), language="zh"), DEFAULT)
    assert "".join("".join(lines(c)) for c in cues) == text
    assert all(" " not in c.text for c in cues)
    assert all(len(line) <= 42 for cue in cues for line in lines(cue))


def test_japanese_words_are_joined_without_spaces() -> None:
    words = (Word("元気", 0.0, 0.4), Word("です", 0.4, 0.7), Word("か？", 0.7, 1.0))
    cues = build_cues(one_segment("元気ですか？", words, language="ja"), DEFAULT)
    assert [c.text for c in cues] == ["元気ですか？"]


# --- the empty transcript and the parsers ----------------------------------------------------


def test_empty_transcript() -> None:
    empty = Transcript(Task.TRANSCRIBE, "en", 0.0, ())
    assert build_cues(empty, DEFAULT) == ()
    assert render(empty, OutputFormat.SRT).body == ""
    assert render(empty, OutputFormat.VTT).body == "WEBVTT\n\n"


def parsed(text: str, fmt: OutputFormat) -> list[tuple[float, float, str]]:
    if fmt is OutputFormat.SRT:
        return [
            (c.start.total_seconds(), c.end.total_seconds(), c.content) for c in srt.parse(text)
        ]
    return [
        (c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000, c.raw_text)
        for c in webvtt.from_string(text).captions
    ]


@pytest.mark.parametrize("fmt", [OutputFormat.SRT, OutputFormat.VTT])
@pytest.mark.parametrize("transcript", [FIXED, PLAIN, ALIGNED, LONG, STORY_T])
def test_the_parsers_read_back_the_cues(fmt: OutputFormat, transcript: Transcript) -> None:
    cues = build_cues(transcript, DEFAULT)
    read = parsed(render(transcript, fmt).body, fmt)
    assert [(s, e) for s, e, _ in read] == [(round(c.start, 3), round(c.end, 3)) for c in cues]
    assert [t for _, _, t in read] == [c.text for c in cues]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(read))


# --- karaoke --------------------------------------------------------------------------------------


def test_highlight_words_underlines_each_word_for_its_own_time() -> None:
    cues = build_cues(ALIGNED, SubtitleOptions(highlight_words=True))
    underlined = [(c.start, c.end, UNDERLINED.findall(c.text)) for c in cues if "<u>" in c.text]
    expected = [(w.start, w.end, [w.text.strip()]) for s in ALIGNED.segments for w in s.words]
    assert underlined == expected
    assert all(c.text.count("<u>") <= 1 for c in cues)
    assert no_overlap(cues)


def test_highlight_cues_cover_the_cue_without_gaps() -> None:
    plain = build_cues(ALIGNED, DEFAULT)
    cues = build_cues(ALIGNED, SubtitleOptions(highlight_words=True))
    first = [c for c in cues if c.end <= plain[0].end]
    assert first[0].start == plain[0].start
    assert first[-1].end == plain[0].end
    assert all(a.end == b.start for a, b in itertools.pairwise(first))
    assert first[0].text == "[SPEAKER_00]: <u>The</u> quick brown\nfox jumps over the lazy dog."
    assert first[1].text == plain[0].text


def test_highlight_with_shaping_highlights_within_each_cue() -> None:
    options = SubtitleOptions(highlight_words=True, max_line_width=30, max_line_count=1)
    cues = build_cues(ALIGNED, options)
    assert cues[0] == Cue(0.2, 0.4, "[SPEAKER_00]: <u>The</u> quick brown")
    assert cues[1] == Cue(0.4, 0.45, "[SPEAKER_00]: The quick brown")
    assert cues[2] == Cue(0.45, 0.8, "[SPEAKER_00]: The <u>quick</u> brown")
    assert all(len(line) <= 30 for c in cues for line in UNDERLINED.sub(r"\1", c.text).split("\n"))


def test_highlight_without_word_timings_falls_back_to_plain_cues() -> None:
    with_highlight = build_cues(PLAIN, SubtitleOptions(highlight_words=True))
    assert with_highlight == build_cues(PLAIN, SubtitleOptions())


def test_highlight_skips_words_with_no_duration() -> None:
    segment = Segment(
        0, 0.0, 2.0, " a b c", (Word(" a", 0.0, 1.0), Word(" b", 1.0, 1.0), Word(" c", 1.0, 2.0))
    )
    transcript = Transcript(task=Task.TRANSCRIBE, language="en", duration=2.0, segments=(segment,))
    cues = build_cues(transcript, SubtitleOptions(highlight_words=True))
    assert [c.text for c in cues] == ["<u>a</u> b c", "a b <u>c</u>"]


@pytest.mark.parametrize("fmt", [OutputFormat.SRT, OutputFormat.VTT])
def test_highlight_cues_parse(fmt: OutputFormat) -> None:
    options = SubtitleOptions(highlight_words=True, max_line_width=24, max_line_count=2)
    read = parsed(render(ALIGNED, fmt, options).body, fmt)
    assert len(read) == len(build_cues(ALIGNED, options))
    assert sum("<u>" in t for _, _, t in read) == len(ALIGNED.words)
    assert all(start < end for start, end, _ in read)
    assert [s for s, _, _ in read] == sorted(s for s, _, _ in read)


def test_vtt_escaping_happens_before_underlining() -> None:
    segment = Segment(0, 0.0, 1.0, " R&D", (Word(" R&D", 0.0, 1.0),))
    transcript = Transcript(task=Task.TRANSCRIBE, language="en", duration=1.0, segments=(segment,))
    cues = build_cues(transcript, SubtitleOptions(highlight_words=True), escape_vtt)
    assert [c.text for c in cues] == ["<u>R&amp;D</u>"]
