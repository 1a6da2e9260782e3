"""The job endpoints' JSON result (docs/jobs.md): text, detected language, plain segments."""

from __future__ import annotations

from whisperx_api.domain.transcript import Segment, Transcript
from whisperx_api.formatters.openai_json import JsonObject, dump, segment_language
from whisperx_api.formatters.timestamps import round_seconds


def _job_segment(segment: Segment, language: str) -> JsonObject:
    """Times, stripped text, its language, and the speaker key only when diarized."""
    body: JsonObject = {
        "start": round_seconds(segment.start),
        "end": round_seconds(segment.end),
        "text": segment.text.strip(),
        "language": language,
    }
    if segment.speaker is not None:
        body["speaker"] = segment.speaker
    if segment.channel is not None:
        body["channel"] = segment.channel
    return body


def render_job_json_body(transcript: Transcript) -> str:
    """`{"text", "language", "segments"}`; the language is the detected one, not an echo."""
    return dump(
        {
            "text": transcript.text,
            "language": transcript.language,
            "segments": [
                _job_segment(s, segment_language(s, transcript)) for s in transcript.segments
            ],
        }
    )
