"""OpenAI's JSON shapes: `json`, `verbose_json`, `vtt_json` and `diarized_json`.

Extras WhisperX adds (speakers, word scores, language probability, speaker embeddings) ride
as additional keys only, so the official SDK models still parse every body.
"""

from __future__ import annotations

import json
import math

from whisperx_api.domain.options import SubtitleOptions
from whisperx_api.domain.transcript import Segment, Transcript, Word
from whisperx_api.formatters.timestamps import round_seconds
from whisperx_api.formatters.vtt import render_vtt

JsonObject = dict[str, object]

UNKNOWN_SPEAKER = "unknown"
"""`diarized_json` requires a speaker on every segment; this one stands in where none was found."""


def dump(payload: JsonObject) -> str:
    """UTF-8 text as-is: transcripts are mostly not ASCII, and escapes only bloat them."""
    return json.dumps(payload, ensure_ascii=False)


def _finite(value: float) -> float:
    """JSON has no NaN or infinity; a decoder statistic that is one reads as 0."""
    return value if math.isfinite(value) else 0.0


def usage(transcript: Transcript) -> JsonObject:
    """OpenAI bills audio by whole seconds, rounded up."""
    return {"type": "duration", "seconds": math.ceil(round_seconds(transcript.duration))}


def render_json(transcript: Transcript) -> str:
    """OpenAI's default format: only the text."""
    return dump({"text": transcript.text})


def segment_language(segment: Segment, transcript: Transcript) -> str:
    """The language a segment was decoded in (the transcript's when the backend says none)."""
    return segment.language or transcript.language


def warnings_payload(transcript: Transcript) -> list[JsonObject]:
    """What the server removed or doubts, each over a time span."""
    return [
        {
            "code": w.code.value,
            "message": w.message,
            "start": round_seconds(w.start),
            "end": round_seconds(w.end),
        }
        for w in transcript.warnings
    ]


def _verbose_segment(segment: Segment, language: str) -> JsonObject:
    """OpenAI's segment fields, in its order, plus its language and the speaker if any."""
    body: JsonObject = {
        "id": segment.id,
        "seek": segment.seek,
        "start": round_seconds(segment.start),
        "end": round_seconds(segment.end),
        "text": segment.text,
        "tokens": list(segment.tokens),
        "temperature": _finite(segment.temperature),
        "avg_logprob": _finite(segment.avg_logprob),
        "compression_ratio": _finite(segment.compression_ratio),
        "no_speech_prob": _finite(segment.no_speech_prob),
        "language": language,
    }
    if segment.speaker is not None:
        body["speaker"] = segment.speaker
    if segment.channel is not None:
        body["channel"] = segment.channel
    return body


def _verbose_word(word: Word) -> JsonObject:
    """OpenAI's words have no leading space; score and speaker only when known."""
    body: JsonObject = {
        "word": word.text.strip(),
        "start": round_seconds(word.start),
        "end": round_seconds(word.end),
    }
    if word.score is not None:
        body["score"] = _finite(word.score)
    if word.speaker is not None:
        body["speaker"] = word.speaker
    if word.channel is not None:
        body["channel"] = word.channel
    return body


def verbose_payload(transcript: Transcript) -> JsonObject:
    """The `verbose_json` object, kept as a dict so `vtt_json` can extend it."""
    body: JsonObject = {
        "task": transcript.task.value,
        "language": transcript.language,
        "duration": round_seconds(transcript.duration),
        "text": transcript.text,
        "segments": [
            _verbose_segment(s, segment_language(s, transcript)) for s in transcript.segments
        ],
    }
    if transcript.words:
        body["words"] = [_verbose_word(w) for w in transcript.words]
    body["usage"] = usage(transcript)
    if transcript.language_probability is not None:
        body["language_probability"] = transcript.language_probability
    if transcript.speaker_embeddings:
        body["speaker_embeddings"] = {k: list(v) for k, v in transcript.speaker_embeddings.items()}
    body["warnings"] = warnings_payload(transcript)
    return body


def render_verbose_json(transcript: Transcript) -> str:
    """OpenAI's `verbose_json`."""
    return dump(verbose_payload(transcript))


def render_vtt_json(transcript: Transcript, options: SubtitleOptions) -> str:
    """`vtt_json`: `verbose_json` plus the WebVTT document in `vtt_text` (docs/api.md)."""
    return dump({**verbose_payload(transcript), "vtt_text": render_vtt(transcript, options)})


def _diarized_segment(segment: Segment, language: str) -> JsonObject:
    """OpenAI's diarized segment: a string id and a speaker on every one; plus its language
    (and its channel, on multichannel audio)."""
    body: JsonObject = {
        "id": f"seg_{segment.id}",
        "start": round_seconds(segment.start),
        "end": round_seconds(segment.end),
        "speaker": segment.speaker if segment.speaker is not None else UNKNOWN_SPEAKER,
        "text": segment.text.strip(),
        "type": "transcript.text.segment",
        "language": language,
    }
    if segment.channel is not None:
        body["channel"] = segment.channel
    return body


def render_diarized_json(transcript: Transcript) -> str:
    """OpenAI's `diarized_json`."""
    return dump(
        {
            "task": transcript.task.value,
            "duration": round_seconds(transcript.duration),
            "text": transcript.text,
            "segments": [
                _diarized_segment(s, segment_language(s, transcript)) for s in transcript.segments
            ],
            "usage": usage(transcript),
            "warnings": warnings_payload(transcript),
        }
    )
