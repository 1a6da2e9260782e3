"""Cue shaping, timing and karaoke highlighting, checked on the cues and through the parsers."""

from __future__ import annotations

import itertools
import re

import pytest
import srt
import webvtt

from tests.unit.transcripts import ALIGNED, LONG, PLAIN
from whisperx_api.domain.formats import OutputFormat
from whisperx_api.domain.options import SubtitleOptions
from whisperx_api.domain.transcript import Segment, Task, Transcript, Word
from whisperx_api.formatters import render
from whisperx_api.formatters.subtitles import Cue, build_cues, speaker_prefix
from whisperx_api.formatters.vtt import escape_vtt

PREFIX = re.compile(r"^\[[^\]]+\]: ")
UNDERLINED = re.compile(r"<u>(.*?)</u>")


def cue_words(cue: Cue) -> list[str]:
    return PREFIX.sub("", UNDERLINED.sub(r"\1", cue.text)).split()


SHAPES = [(w, c) for w in (1, 5, 10, 16, 25, 42, 80) for c in (None, 1, 2, 3)]


@pytest.mark.parametrize(("width", "count"), SHAPES)
@pytest.mark.parametrize("transcript", [PLAIN, ALIGNED, LONG])
def test_lines_fit_the_width_unless_one_word_is_longer(
    transcript: Transcript, width: int, count: int | None
) -> None:
    options = SubtitleOptions(max_line_width=width, max_line_count=count)
    for cue in build_cues(transcript, options):
        for line in cue.text.split("\n"):
            assert len(line) <= width or len(PREFIX.sub("", line).split()) == 1, line


@pytest.mark.parametrize(("width", "count"), [(w, c) for w, c in SHAPES if c is not None])
@pytest.mark.parametrize("transcript", [PLAIN, ALIGNED, LONG])
def test_no_cue_has_more_lines_than_the_count(
    transcript: Transcript, width: int, count: int
) -> None:
    cues = build_cues(transcript, SubtitleOptions(max_line_width=width, max_line_count=count))
    assert all(1 <= len(cue.text.split("\n")) <= count for cue in cues)


@pytest.mark.parametrize(("width", "count"), SHAPES)
@pytest.mark.parametrize("transcript", [PLAIN, ALIGNED, LONG])
def test_shaping_keeps_every_word_in_order(
    transcript: Transcript, width: int, count: int | None
) -> None:
    cues = build_cues(transcript, SubtitleOptions(max_line_width=width, max_line_count=count))
    assert [w for cue in cues for w in cue_words(cue)] == transcript.text.split()


def test_width_without_count_wraps_lines_inside_one_cue_per_segment() -> None:
    cues = build_cues(PLAIN, SubtitleOptions(max_line_width=20))
    assert [c.text for c in cues] == [
        "The quick brown fox\njumps over the lazy\ndog.",
        "Pack my box with\nfive dozen liquor\njugs, said the naïve\ncafé owner.",
    ]
    assert [(c.start, c.end) for c in cues] == [(0.0, 4.0), (4.5, 9.75)]


def test_split_cues_take_their_times_from_their_words() -> None:
    cues = build_cues(ALIGNED, SubtitleOptions(max_line_width=30, max_line_count=1))
    assert cues == (
        Cue(0.2, 1.2, "[SPEAKER_00]: The quick brown"),
        Cue(1.3, 2.4, "[SPEAKER_00]: fox jumps over"),
        Cue(2.45, 3.8, "[SPEAKER_00]: the lazy dog."),
        Cue(4.6, 5.8, "[SPEAKER_01]: Pack my box with"),
        Cue(5.9, 6.7, "[SPEAKER_01]: five dozen"),
        Cue(6.8, 7.7, "[SPEAKER_01]: liquor jugs,"),
        Cue(8.0, 8.9, "[SPEAKER_01]: said the naïve"),
        Cue(9.0, 9.7, "[SPEAKER_01]: café owner."),
    )


def test_a_segment_that_fits_one_cue_keeps_the_segment_times() -> None:
    cues = build_cues(ALIGNED, SubtitleOptions(max_line_width=30, max_line_count=2))
    assert cues[0] == Cue(0.0, 4.0, "[SPEAKER_00]: The quick brown\nfox jumps over the lazy dog.")
    assert (cues[1].start, cues[1].end) == (4.6, 8.2)
    assert (cues[2].start, cues[2].end) == (8.25, 9.7)


def test_split_cues_without_words_share_the_segment_time_by_characters() -> None:
    cues = build_cues(PLAIN, SubtitleOptions(max_line_width=20, max_line_count=2))
    assert [c.text for c in cues] == [
        "The quick brown fox\njumps over the lazy",
        "dog.",
        "Pack my box with\nfive dozen liquor",
        "jugs, said the naïve\ncafé owner.",
    ]
    assert (cues[0].start, cues[1].end) == (0.0, 4.0)
    assert cues[0].end == cues[1].start == pytest.approx(4.0 * 32 / 36)
    assert (cues[2].start, cues[2].end, cues[3].end) == (4.5, cues[3].start, 9.75)


def test_overlapping_word_times_never_make_a_cue_start_before_the_last_ends() -> None:
    segment = Segment(
        0,
        0.0,
        3.0,
        " one two three",
        (Word(" one", 0.0, 2.0), Word(" two", 1.0, 1.5), Word(" three", 2.5, 3.0)),
    )
    transcript = Transcript(task=Task.TRANSCRIBE, language="en", duration=3.0, segments=(segment,))
    cues = build_cues(transcript, SubtitleOptions(max_line_width=3, max_line_count=1))
    assert [(c.start, c.end, c.text) for c in cues] == [
        (0.0, 2.0, "one"),
        (2.0, 2.0, "two"),
        (2.5, 3.0, "three"),
    ]


def test_the_speaker_prefix_counts_towards_the_width() -> None:
    segment = Segment(0, 0.0, 1.0, " ab cd ef", speaker="S")
    transcript = Transcript(task=Task.TRANSCRIBE, language="en", duration=1.0, segments=(segment,))
    cues = build_cues(transcript, SubtitleOptions(max_line_width=8))
    assert speaker_prefix("S") == "[S]: "
    assert [c.text for c in cues] == ["[S]: ab\ncd ef"]


# --- karaoke --------------------------------------------------------------------------------------


def test_highlight_words_underlines_each_word_for_its_own_time() -> None:
    cues = build_cues(ALIGNED, SubtitleOptions(highlight_words=True))
    underlined = [(c.start, c.end, UNDERLINED.findall(c.text)) for c in cues if "<u>" in c.text]
    expected = [(w.start, w.end, [w.text.strip()]) for s in ALIGNED.segments for w in s.words]
    assert underlined == expected
    plain = [c for c in cues if "<u>" not in c.text]
    full = {f"[{s.speaker}]: {s.text.strip()}" for s in ALIGNED.segments}
    assert {c.text for c in plain} <= full
    segment_words = [s.text.split() for s in ALIGNED.segments]
    assert all(cue_words(c) in segment_words for c in cues)


def test_highlight_cues_cover_the_segment_without_overlap() -> None:
    cues = build_cues(ALIGNED, SubtitleOptions(highlight_words=True))
    first = [c for c in cues if c.end <= ALIGNED.segments[0].end]
    assert first[0].start == 0.0
    assert first[-1].end == 4.0
    assert all(a.end == b.start for a, b in itertools.pairwise(first))
    assert first[0].text == "[SPEAKER_00]: The quick brown fox jumps over the lazy dog."
    assert first[1].text == "[SPEAKER_00]: <u>The</u> quick brown fox jumps over the lazy dog."


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
    text = render(ALIGNED, fmt, options).body
    if fmt is OutputFormat.SRT:
        parsed = [
            (c.start.total_seconds(), c.end.total_seconds(), c.content) for c in srt.parse(text)
        ]
    else:
        captions = webvtt.from_string(text).captions
        parsed = [
            (c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000, c.raw_text)
            for c in captions
        ]
    assert len(parsed) == len(build_cues(ALIGNED, options))
    assert sum("<u>" in t for _, _, t in parsed) == len(ALIGNED.words)
    assert all(start < end for start, end, _ in parsed)
    assert [s for s, _, _ in parsed] == sorted(s for s, _, _ in parsed)


def test_vtt_escaping_happens_before_underlining() -> None:
    segment = Segment(0, 0.0, 1.0, " R&D", (Word(" R&D", 0.0, 1.0),))
    transcript = Transcript(task=Task.TRANSCRIBE, language="en", duration=1.0, segments=(segment,))
    cues = build_cues(transcript, SubtitleOptions(highlight_words=True), escape_vtt)
    assert [c.text for c in cues] == ["<u>R&amp;D</u>"]
