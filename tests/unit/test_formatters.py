"""Every output format, rendered from hand-built transcripts and read back by real parsers."""

from __future__ import annotations

import json
import math

import pytest
import srt
import webvtt
from openai.types.audio import TranscriptionDiarized, TranscriptionVerbose

from tests.unit.transcripts import ALIGNED, ALL, EMPTY, FIXED, LONG, PLAIN
from whisperx_api.domain.formats import OutputFormat
from whisperx_api.domain.options import SubtitleOptions
from whisperx_api.domain.transcript import Segment, Task, Transcript, Word
from whisperx_api.formatters import RENDERERS, Rendered, render, render_job_json

MEDIA_TYPES = {
    OutputFormat.JSON: "application/json",
    OutputFormat.TEXT: "text/plain",
    OutputFormat.TXT: "text/plain",
    OutputFormat.VERBOSE_JSON: "application/json",
    OutputFormat.VTT_JSON: "application/json",
    OutputFormat.SRT: "text/plain",
    OutputFormat.VTT: "text/vtt",
    OutputFormat.AUD: "text/plain",
    OutputFormat.TSV: "text/plain",
    OutputFormat.DIARIZED_JSON: "application/json",
}


def body(
    transcript: Transcript,
    fmt: OutputFormat,
    max_line_width: int | None = None,
    max_line_count: int | None = None,
) -> str:
    options = SubtitleOptions(max_line_width=max_line_width, max_line_count=max_line_count)
    return render(transcript, fmt, options).body


def as_json(transcript: Transcript, fmt: OutputFormat) -> dict[str, object]:
    loaded = json.loads(body(transcript, fmt))
    assert isinstance(loaded, dict)
    return loaded


# --- the registry ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(OutputFormat))
@pytest.mark.parametrize("transcript", ALL)
def test_every_format_renders_every_transcript(fmt: OutputFormat, transcript: Transcript) -> None:
    rendered = render(transcript, fmt)
    assert isinstance(rendered, Rendered)
    assert isinstance(rendered.body, str)
    assert rendered.media_type == MEDIA_TYPES[fmt]


def test_registry_has_exactly_the_enum() -> None:
    assert set(RENDERERS) == set(OutputFormat)


@pytest.mark.parametrize("fmt", [f for f in OutputFormat if MEDIA_TYPES[f] == "application/json"])
def test_json_formats_are_valid_json_with_raw_unicode(fmt: OutputFormat) -> None:
    text = body(FIXED, fmt)
    json.loads(text)
    assert "à" in text
    assert "\\u00e0" not in text


# --- byte-for-byte goldens on FIXED ---------------------------------------------------------

GOLDEN_SRT = (
    "1\n00:00:00,100 --> 00:00:02,400\n[SPEAKER_00]: Bonjour à tous.\n\n"
    "2\n00:00:03,000 --> 00:00:05,250\n[SPEAKER_01]: Ça va bien ?\n\n"
    "3\n01:02:03,456 --> 01:02:05,500\nUne heure plus tard.\n\n"
)

GOLDEN_VTT = (
    "WEBVTT\n\n"
    "00:00:00.100 --> 00:00:02.400\n[SPEAKER_00]: Bonjour à tous.\n\n"
    "00:00:03.000 --> 00:00:05.250\n[SPEAKER_01]: Ça va bien ?\n\n"
    "01:02:03.456 --> 01:02:05.500\nUne heure plus tard.\n\n"
)

GOLDEN_AUD = (
    "0.000000\t2.500000\t[[SPEAKER_00]]Bonjour à tous.\n"
    "3.000000\t5.250000\t[[SPEAKER_01]]Ça va bien ?\n"
    "3723.456000\t3725.500000\tUne heure plus tard.\n"
)

GOLDEN_TSV = (
    "start\tend\ttext\n"
    "0\t2500\tBonjour à tous.\n"
    "3000\t5250\tÇa va bien ?\n"
    "3723456\t3725500\tUne heure plus tard.\n"
)

GOLDEN_VTT_JSON = (
    '{"task": "transcribe", "language": "fr", "duration": 3725.5, '
    '"text": "Bonjour à tous. Ça\\tva\\nbien ? Une heure plus tard.", "segments": ['
    '{"id": 0, "seek": 0, "start": 0.0, "end": 2.5, "text": " Bonjour à tous.", '
    '"tokens": [50364, 1, 2], "temperature": 0.0, "avg_logprob": -0.25, '
    '"compression_ratio": 1.1, "no_speech_prob": 0.01, "language": "fr", '
    '"speaker": "SPEAKER_00"}, '
    '{"id": 1, "seek": 0, "start": 3.0, "end": 5.25, "text": " Ça\\tva\\nbien ?", '
    '"tokens": [], "temperature": 0.0, "avg_logprob": 0.0, "compression_ratio": 0.0, '
    '"no_speech_prob": 0.0, "language": "fr", "speaker": "SPEAKER_01"}, '
    '{"id": 2, "seek": 0, "start": 3723.456, "end": 3725.5, "text": " Une heure plus tard.", '
    '"tokens": [], "temperature": 0.0, "avg_logprob": 0.0, "compression_ratio": 0.0, '
    '"no_speech_prob": 0.0, "language": "fr"}], '
    '"words": [{"word": "Bonjour", "start": 0.1, "end": 0.6, "score": 0.91}, '
    '{"word": "à", "start": 0.7, "end": 0.8}, '
    '{"word": "tous.", "start": 0.9, "end": 2.4, "score": 0.75, "speaker": "SPEAKER_00"}], '
    '"usage": {"type": "duration", "seconds": 3726}, "language_probability": 0.98, '
    '"warnings": [], "vtt_text": "WEBVTT\\n\\n'
    "00:00:00.100 --> 00:00:02.400\\n[SPEAKER_00]: Bonjour à tous.\\n\\n"
    "00:00:03.000 --> 00:00:05.250\\n[SPEAKER_01]: Ça va bien ?\\n\\n"
    '01:02:03.456 --> 01:02:05.500\\nUne heure plus tard.\\n\\n"}'
)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (OutputFormat.SRT, GOLDEN_SRT),
        (OutputFormat.VTT, GOLDEN_VTT),
        (OutputFormat.AUD, GOLDEN_AUD),
        (OutputFormat.TSV, GOLDEN_TSV),
        (OutputFormat.VTT_JSON, GOLDEN_VTT_JSON),
    ],
)
def test_golden(fmt: OutputFormat, expected: str) -> None:
    assert body(FIXED, fmt) == expected


def test_vtt_json_embeds_the_vtt_document_with_the_same_options() -> None:
    options = SubtitleOptions(max_line_width=20, max_line_count=1, highlight_words=True)
    vtt_json = json.loads(render(ALIGNED, OutputFormat.VTT_JSON, options).body)
    assert vtt_json["vtt_text"] == render(ALIGNED, OutputFormat.VTT, options).body
    del vtt_json["vtt_text"]
    assert vtt_json == as_json(ALIGNED, OutputFormat.VERBOSE_JSON)


# --- text, json --------------------------------------------------------------------------------


def test_text_and_txt_are_the_text_and_a_newline() -> None:
    expected = (
        "The quick brown fox jumps over the lazy dog. "
        "Pack my box with five dozen liquor jugs, said the naïve café owner.\n"
    )
    assert body(PLAIN, OutputFormat.TEXT) == expected
    assert body(PLAIN, OutputFormat.TXT) == expected
    assert body(EMPTY, OutputFormat.TEXT) == "\n"


def test_json_is_only_the_text() -> None:
    assert as_json(FIXED, OutputFormat.JSON) == {"text": FIXED.text}


# --- verbose_json -------------------------------------------------------------------------------


def test_verbose_json_parses_with_the_openai_sdk() -> None:
    parsed = TranscriptionVerbose.model_validate(
        json.loads(body(ALIGNED, OutputFormat.VERBOSE_JSON))
    )
    assert parsed.language == "en"
    assert parsed.duration == 12.0
    assert parsed.text == ALIGNED.text
    assert parsed.segments is not None
    assert [s.id for s in parsed.segments] == [0, 1]
    assert [s.text for s in parsed.segments] == [s.text for s in ALIGNED.segments]
    assert parsed.segments[1].start == 4.5
    assert parsed.words is not None
    assert [w.word for w in parsed.words] == [w.text.strip() for w in ALIGNED.words]
    assert parsed.words[0].start == 0.2
    assert parsed.usage is not None
    assert parsed.usage.seconds == 12


def test_verbose_json_extras_ride_as_additional_keys() -> None:
    payload = as_json(ALIGNED, OutputFormat.VERBOSE_JSON)
    segments = payload["segments"]
    words = payload["words"]
    assert isinstance(segments, list)
    assert isinstance(words, list)
    assert {s["speaker"] for s in segments} == {"SPEAKER_00", "SPEAKER_01"}
    assert all(w["score"] == 0.9 for w in words)
    assert "speaker" not in words[0]
    assert "language_probability" not in payload
    assert "speaker_embeddings" not in payload


def test_verbose_json_without_words_or_speakers_has_neither_key() -> None:
    payload = as_json(PLAIN, OutputFormat.VERBOSE_JSON)
    assert "words" not in payload
    segments = payload["segments"]
    assert isinstance(segments, list)
    assert all("speaker" not in s for s in segments)
    assert len(segments) == len(PLAIN.segments)
    assert list(payload) == [
        "task",
        "language",
        "duration",
        "text",
        "segments",
        "usage",
        "warnings",
    ]
    assert payload["warnings"] == []


def test_verbose_json_reports_language_probability_and_speaker_embeddings() -> None:
    transcript = Transcript(
        task=Task.TRANSCRIBE,
        language="en",
        duration=1.0,
        segments=(Segment(0, 0.0, 1.0, " Hi.", speaker="SPEAKER_00"),),
        language_probability=0.75,
        speaker_embeddings={"SPEAKER_00": (0.25, -0.5)},
    )
    payload = as_json(transcript, OutputFormat.VERBOSE_JSON)
    assert payload["language_probability"] == 0.75
    assert payload["speaker_embeddings"] == {"SPEAKER_00": [0.25, -0.5]}
    TranscriptionVerbose.model_validate(payload)


def test_verbose_json_rounds_times_and_bills_whole_seconds_up() -> None:
    transcript = Transcript(
        task=Task.TRANSLATE,
        language="de",
        duration=2.00049,
        segments=(Segment(0, 0.12345, 1.98765, " Hello."),),
    )
    payload = as_json(transcript, OutputFormat.VERBOSE_JSON)
    assert payload["task"] == "translate"
    assert payload["duration"] == 2.0
    assert payload["usage"] == {"type": "duration", "seconds": 2}
    segments = payload["segments"]
    assert isinstance(segments, list)
    assert (segments[0]["start"], segments[0]["end"]) == (0.123, 1.988)
    longer = Transcript(task=Task.TRANSCRIBE, language="en", duration=2.0011, segments=())
    assert as_json(longer, OutputFormat.VERBOSE_JSON)["usage"] == {"type": "duration", "seconds": 3}


def test_verbose_json_replaces_non_finite_statistics() -> None:
    segment = Segment(0, 0.0, 1.0, " x", avg_logprob=-math.inf, compression_ratio=math.nan)
    transcript = Transcript(task=Task.TRANSCRIBE, language="en", duration=1.0, segments=(segment,))
    text = body(transcript, OutputFormat.VERBOSE_JSON)
    assert "Infinity" not in text
    assert "NaN" not in text
    segments = json.loads(text)["segments"]
    assert (segments[0]["avg_logprob"], segments[0]["compression_ratio"]) == (0.0, 0.0)


# --- diarized_json -------------------------------------------------------------------------------


def test_diarized_json_parses_with_the_openai_sdk() -> None:
    parsed = TranscriptionDiarized.model_validate(
        json.loads(body(FIXED, OutputFormat.DIARIZED_JSON))
    )
    assert parsed.task == "transcribe"
    assert parsed.text == FIXED.text
    assert parsed.duration == 3725.5
    assert [s.id for s in parsed.segments] == ["seg_0", "seg_1", "seg_2"]
    assert [s.speaker for s in parsed.segments] == ["SPEAKER_00", "SPEAKER_01", "unknown"]
    assert parsed.segments[0].text == "Bonjour à tous."
    assert {s.type for s in parsed.segments} == {"transcript.text.segment"}
    assert parsed.usage is not None
    assert parsed.usage.type == "duration"


def test_diarized_json_keys_in_openai_order() -> None:
    payload = as_json(ALIGNED, OutputFormat.DIARIZED_JSON)
    assert list(payload) == ["task", "duration", "text", "segments", "usage", "warnings"]
    segments = payload["segments"]
    assert isinstance(segments, list)
    assert list(segments[0]) == ["id", "start", "end", "speaker", "text", "type", "language"]


# --- the job endpoints' JSON ---------------------------------------------------------------------


def test_job_json_has_text_language_and_plain_segments() -> None:
    rendered = render_job_json(FIXED)
    assert rendered.media_type == "application/json"
    assert json.loads(rendered.body) == {
        "text": FIXED.text,
        "language": "fr",
        "segments": [
            {
                "start": 0.0,
                "end": 2.5,
                "text": "Bonjour à tous.",
                "language": "fr",
                "speaker": "SPEAKER_00",
            },
            {
                "start": 3.0,
                "end": 5.25,
                "text": "Ça\tva\nbien ?",
                "language": "fr",
                "speaker": "SPEAKER_01",
            },
            {"start": 3723.456, "end": 3725.5, "text": "Une heure plus tard.", "language": "fr"},
        ],
    }


def test_job_json_without_speakers_has_no_speaker_key() -> None:
    segments = json.loads(render_job_json(PLAIN).body)["segments"]
    assert all(set(s) == {"start", "end", "text", "language"} for s in segments)


# --- aud and tsv ----------------------------------------------------------------------------------


def test_aud_and_tsv_skip_empty_segments_and_keep_one_row_each() -> None:
    aud = body(PLAIN, OutputFormat.AUD).splitlines()
    tsv = body(PLAIN, OutputFormat.TSV).splitlines()
    assert len(aud) == 2
    assert tsv[0] == "start\tend\ttext"
    assert tsv[1:] == [
        "0\t4000\tThe quick brown fox jumps over the lazy dog.",
        "4500\t9750\tPack my box with five dozen liquor jugs, said the naïve café owner.",
    ]
    assert all(len(row.split("\t")) == 3 for row in aud + tsv)


def test_aud_and_tsv_of_an_hour_long_segment() -> None:
    assert body(LONG, OutputFormat.AUD).splitlines()[1].startswith("3599.999600\t3725.250000\t")
    assert body(LONG, OutputFormat.TSV).splitlines()[2].startswith("3600000\t3725250\t")


# --- srt and vtt read back by real parsers --------------------------------------------------------

OPTION_SETS = [
    SubtitleOptions(),
    SubtitleOptions(max_line_width=16),
    SubtitleOptions(max_line_width=20, max_line_count=2),
    SubtitleOptions(max_line_width=8, max_line_count=1),
    SubtitleOptions(highlight_words=True),
    SubtitleOptions(highlight_words=True, max_line_width=24, max_line_count=1),
]


def srt_cues(text: str) -> list[tuple[int, int, str]]:
    return [
        (round(c.start.total_seconds() * 1000), round(c.end.total_seconds() * 1000), c.content)
        for c in srt.parse(text)
    ]


def vtt_cues(text: str) -> list[tuple[int, int, str]]:
    return [
        (c.start_time.in_milliseconds(), c.end_time.in_milliseconds(), c.raw_text)
        for c in webvtt.from_string(text).captions
    ]


def assert_well_timed(cues: list[tuple[int, int, str]], transcript: Transcript) -> None:
    starts = [start for start, _, _ in cues]
    assert starts == sorted(starts)
    limit = round(max([transcript.duration, *(s.end for s in transcript.segments)]) * 1000)
    assert all(0 <= start <= end <= limit for start, end, _ in cues)


@pytest.mark.parametrize("options", OPTION_SETS)
@pytest.mark.parametrize("transcript", ALL)
def test_srt_and_vtt_parse_with_real_parsers(
    transcript: Transcript, options: SubtitleOptions
) -> None:
    srt_text = render(transcript, OutputFormat.SRT, options).body
    vtt_text = render(transcript, OutputFormat.VTT, options).body
    from_srt, from_vtt = srt_cues(srt_text), vtt_cues(vtt_text)
    assert vtt_text.startswith("WEBVTT\n\n")
    assert [c.index for c in srt.parse(srt_text)] == list(range(1, len(from_srt) + 1))
    assert_well_timed(from_srt, transcript)
    assert [(s, e) for s, e, _ in from_srt] == [(s, e) for s, e, _ in from_vtt]
    assert all(text and text == text.strip() for _, _, text in from_srt)


@pytest.mark.parametrize("transcript", [FIXED, PLAIN, ALIGNED])
def test_short_segments_are_one_cue_each_timed_by_their_words(transcript: Transcript) -> None:
    expected = []
    for s in transcript.segments:
        if not s.text.strip():
            continue
        start, end = (s.words[0].start, s.words[-1].end) if s.words else (s.start, s.end)
        text = " ".join(s.text.split())
        expected.append(
            (
                round(start * 1000),
                round(end * 1000),
                f"[{s.speaker}]: {text}" if s.speaker else text,
            )
        )
    unbroken = [
        (a, b, t.replace("\n", " ")) for a, b, t in srt_cues(body(transcript, OutputFormat.SRT))
    ]
    assert unbroken == expected
    unbroken = [
        (a, b, t.replace("\n", " ")) for a, b, t in vtt_cues(body(transcript, OutputFormat.VTT))
    ]
    assert unbroken == expected


def test_timestamps_past_an_hour() -> None:
    assert srt_cues(body(LONG, OutputFormat.SRT))[1][0] == 3_600_000
    assert srt_cues(body(LONG, OutputFormat.SRT))[-1][1] == 3_725_250
    assert "\n01:00:00,000 --> " in body(LONG, OutputFormat.SRT)
    assert " --> 01:02:05,250\n" in body(LONG, OutputFormat.SRT)
    assert "\n01:00:00.000 --> " in body(LONG, OutputFormat.VTT)


def test_speaker_prefix_only_when_diarized() -> None:
    aligned_srt = body(ALIGNED, OutputFormat.SRT, max_line_width=30, max_line_count=1)
    assert all(text.startswith("[SPEAKER_0") for _, _, text in srt_cues(aligned_srt))
    assert "[SPEAKER" not in body(PLAIN, OutputFormat.SRT)
    assert "[SPEAKER" not in body(PLAIN, OutputFormat.VTT)


def test_vtt_escapes_markup_characters_but_srt_keeps_them() -> None:
    segment = Segment(0, 0.0, 1.0, " a <b> & c --> d", speaker="A&B")
    transcript = Transcript(task=Task.TRANSCRIBE, language="en", duration=1.0, segments=(segment,))
    vtt_text = body(transcript, OutputFormat.VTT)
    assert "[A&amp;B]: a &lt;b&gt; &amp; c --&gt; d\n" in vtt_text
    assert len(vtt_cues(vtt_text)) == 1
    assert srt_cues(body(transcript, OutputFormat.SRT))[0][2] == "[A&B]: a <b> & c --> d"


def test_empty_transcript_subtitles() -> None:
    assert body(EMPTY, OutputFormat.SRT) == ""
    assert body(EMPTY, OutputFormat.VTT) == "WEBVTT\n\n"
    assert body(EMPTY, OutputFormat.AUD) == ""
    assert body(EMPTY, OutputFormat.TSV) == "start\tend\ttext\n"


def test_words_without_leading_spaces_are_spaced_by_the_segment_text() -> None:
    segment = Segment(
        0, 0.0, 1.0, "Hello world", (Word("Hello", 0.0, 0.4), Word("world", 0.5, 1.0))
    )
    transcript = Transcript(task=Task.TRANSCRIBE, language="en", duration=1.0, segments=(segment,))
    assert srt_cues(body(transcript, OutputFormat.SRT))[0][2] == "Hello world"


def test_unspaced_scripts_are_not_spaced() -> None:
    segment = Segment(0, 0.0, 1.0, "你好世界", (Word("你好", 0.0, 0.4), Word("世界", 0.5, 1.0)))
    transcript = Transcript(task=Task.TRANSCRIBE, language="zh", duration=1.0, segments=(segment,))
    assert srt_cues(body(transcript, OutputFormat.SRT))[0][2] == "你好世界"
    cues = srt_cues(body(transcript, OutputFormat.SRT, max_line_width=2, max_line_count=1))
    assert cues == [(0, 400, "你好"), (500, 1000, "世界")]
