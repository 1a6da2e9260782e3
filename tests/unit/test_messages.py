"""Specs and transcripts survive the trip through their JSON messages unchanged."""

from __future__ import annotations

import json

import pytest

from whisperx_api.domain.formats import OutputFormat
from whisperx_api.domain.job import JobSpec, ResultStyle
from whisperx_api.domain.options import SubtitleOptions, TranscriptionOptions
from whisperx_api.domain.transcript import Segment, Task, Transcript, Word
from whisperx_api.jobs.messages import dump_spec, dump_transcript, load_spec, load_transcript


def test_spec_round_trip() -> None:
    spec = JobSpec(
        options=TranscriptionOptions(
            model="tiny.en", task=Task.TRANSLATE, language="fr", hotwords="a,b"
        ),
        response_format=OutputFormat.SRT,
        subtitles=SubtitleOptions(
            highlight_words=True, max_line_width=42, max_line_count=2, max_words_per_line=7
        ),
        style=ResultStyle.JOBS,
        owner="abc",
        streamed=True,
    )
    assert load_spec(dump_spec(spec)) == spec


def test_a_spec_from_before_streaming_loads_as_not_streamed() -> None:
    old = json.loads(dump_spec(JobSpec(options=TranscriptionOptions(model="base"))))
    del old["streamed"]
    assert load_spec(json.dumps(old)).streamed is False


def test_transcript_round_trip() -> None:
    words = (Word(" héllo", 0.0, 0.5, 0.9), Word(" there", 0.5, 1.0, None, "SPEAKER_01"))
    transcript = Transcript(
        task=Task.TRANSCRIBE,
        language="en",
        duration=1.0,
        segments=(Segment(0, 0.0, 1.0, "héllo there", words, tokens=(1, 2)),),
        language_probability=0.5,
    )
    assert load_transcript(dump_transcript(transcript)) == transcript


def test_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        load_spec('{"v": 99}')
