"""Typed (de)serialisation of job specs and transcripts: versioned JSON, never raw dicts."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from whisperx_api.domain.cleanup import CleanupOptions, Redaction
from whisperx_api.domain.formats import OutputFormat
from whisperx_api.domain.job import JobSpec, ResultStyle
from whisperx_api.domain.options import SubtitleOptions, TranscriptionOptions
from whisperx_api.domain.speakers import KnownSpeaker, KnownVoice
from whisperx_api.domain.transcript import (
    Segment,
    Task,
    Transcript,
    TranscriptWarning,
    WarningCode,
    Word,
)

SCHEMA_VERSION = 1


def dump_spec(spec: JobSpec) -> str:
    """JSON for a job spec."""
    return json.dumps({"v": SCHEMA_VERSION, **asdict(spec)})


def load_spec(text: str) -> JobSpec:
    """Inverse of `dump_spec`."""
    data = _versioned(text)
    options = dict(data["options"])
    options["task"] = Task(options["task"])
    options["known_speakers"] = tuple(KnownSpeaker(**k) for k in options.get("known_speakers", ()))
    options["known_voices"] = tuple(
        KnownVoice(v["name"], tuple(v["embedding"])) for v in options.get("known_voices", ())
    )
    options["cleanup"] = _cleanup(options.get("cleanup"))  # absent from specs before clean-up
    options["languages"] = tuple(options.get("languages", ()))
    options["channel_names"] = tuple(options.get("channel_names", ()))
    return JobSpec(
        options=TranscriptionOptions(**options),
        response_format=OutputFormat(data["response_format"]),
        subtitles=SubtitleOptions(**data["subtitles"]),
        style=ResultStyle(data["style"]),
        owner=data["owner"],
        streamed=data.get("streamed", False),  # absent from specs written before streaming
        webhook_url=data.get("webhook_url"),  # absent from specs written before webhooks
    )


def _cleanup(data: dict[str, Any] | None) -> CleanupOptions:
    if data is None:
        return CleanupOptions()
    return CleanupOptions(
        replacements=tuple((source, target) for source, target in data["replacements"]),
        redact=tuple(Redaction(kind) for kind in data["redact"]),
    )


def dump_transcript(transcript: Transcript) -> str:
    """JSON for a transcript; tuples become lists."""
    return json.dumps({"v": SCHEMA_VERSION, **asdict(transcript)}, ensure_ascii=False)


def load_transcript(text: str) -> Transcript:
    """Inverse of `dump_transcript`."""
    data = _versioned(text)
    return Transcript(
        task=Task(data["task"]),
        language=data["language"],
        duration=data["duration"],
        segments=tuple(_segment(s) for s in data["segments"]),
        language_probability=data["language_probability"],
        speaker_embeddings={k: tuple(v) for k, v in data["speaker_embeddings"].items()},
        warnings=tuple(_warning(w) for w in data.get("warnings", ())),  # absent before warnings
    )


def _warning(data: dict[str, Any]) -> TranscriptWarning:
    return TranscriptWarning(WarningCode(data["code"]), data["message"], data["start"], data["end"])


def _segment(data: dict[str, Any]) -> Segment:
    fields = dict(data)
    fields["words"] = tuple(Word(**w) for w in data["words"])
    fields["tokens"] = tuple(data["tokens"])
    return Segment(**fields)


def _versioned(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    version = data.pop("v", None)
    if version != SCHEMA_VERSION:
        raise ValueError(f"unsupported message version {version!r}")
    return data
