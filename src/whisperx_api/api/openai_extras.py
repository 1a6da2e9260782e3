"""OpenAI's newer transcription fields: `chunking_strategy`, `include[]`, known speakers.

Each parser turns raw form values into domain options or an `InvalidRequest` naming the field.
Voice references are audio the client chose: they are decoded by the runtime's `ClipDecoder`
(off the event loop, under a time limit and packet budget), never here.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from whisperx_api.api.label_fields import checked_labels
from whisperx_api.domain.audio import ClipDecoder
from whisperx_api.domain.speakers import KnownSpeaker
from whisperx_api.errors import AudioTooLong, InvalidRequest, InvalidValue

MAX_KNOWN_SPEAKERS = 4
MAX_SPEAKER_NAME = 32
MIN_REFERENCE_SECONDS = 2.0
MAX_REFERENCE_SECONDS = 10.0
INCLUDABLE = frozenset({"logprobs"})
_DATA_URL = re.compile(
    r"^data:(?P<media>[\w.+-]+/[\w.+-]+)?(?:;[^,;]*)*;base64,(?P<data>.*)$", re.S
)
_NAMES = "known_speaker_names"
_REFERENCES = "known_speaker_references"
REFERENCE_FIELDS = frozenset({_REFERENCES, f"{_REFERENCES}[]"})
_CHUNKING = "chunking_strategy"


@dataclass(frozen=True, slots=True)
class VadChoice:
    """The VAD fields of a `server_vad` strategy; all None for `auto`."""

    threshold: float | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None


class _ServerVad(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = "server_vad"
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    prefix_padding_ms: int | None = Field(default=None, ge=0, le=10_000)
    silence_duration_ms: int | None = Field(default=None, ge=0, le=10_000)


def parse_chunking_strategy(raw: str | dict[str, str] | None) -> VadChoice:
    """`auto` (or nothing) keeps the server's VAD; a `server_vad` object tunes it.

    The object comes as JSON text (curl) or as `chunking_strategy[threshold]=...` fields
    (the official SDK's multipart encoding).
    """
    if raw is None or (isinstance(raw, str) and raw.strip() == "auto"):
        return VadChoice()
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
        vad = _ServerVad.model_validate(data)
    except (json.JSONDecodeError, ValidationError) as exc:
        raise _bad_chunking() from exc
    if vad.type != "server_vad":
        raise _bad_chunking()
    return VadChoice(vad.threshold, vad.prefix_padding_ms, vad.silence_duration_ms)


def _bad_chunking() -> InvalidRequest:
    return InvalidValue(
        "Invalid 'chunking_strategy': use \"auto\" or a JSON object "
        '{"type": "server_vad", "threshold": 0..1, "prefix_padding_ms": int, '
        '"silence_duration_ms": int}.',
        param=_CHUNKING,
    )


def wants_logprobs(include: Sequence[str]) -> bool:
    """True when `include[]` asks for logprobs; unknown entries are refused."""
    unknown = sorted(set(include) - INCLUDABLE)
    if unknown:
        raise InvalidValue(
            f"Invalid 'include': {', '.join(unknown)}; this server can include: logprobs.",
            param="include",
        )
    return "logprobs" in include


async def parse_known_speakers(
    names: Sequence[str], references: Sequence[str], decoder: ClipDecoder
) -> tuple[KnownSpeaker, ...]:
    """Names with their reference clips, checked (count, lengths, decodable, 2-10 s); every
    cheap check runs before the first clip is decoded."""
    if not names and not references:
        return ()
    for values, param in ((names, _NAMES), (references, _REFERENCES)):
        if len(values) > MAX_KNOWN_SPEAKERS:
            raise InvalidRequest(
                f"At most {MAX_KNOWN_SPEAKERS} known speakers, got {len(values)} {param}.",
                param=param,
            )
    names = checked_labels(names, _NAMES, MAX_KNOWN_SPEAKERS, MAX_SPEAKER_NAME)
    if len(names) != len(references):
        raise InvalidRequest(
            f"{len(names)} known_speaker_names but {len(references)} known_speaker_references; "
            "give one reference per name.",
            param=_REFERENCES,
        )
    clips = [_reference_bytes(ref, index) for index, ref in enumerate(references)]
    return tuple(
        [
            KnownSpeaker.from_samples(name, await _reference_samples(clip, index, decoder))
            for index, (name, clip) in enumerate(zip(names, clips, strict=True))
        ]
    )


def _reference_bytes(reference: str, index: int) -> bytes:
    match = _DATA_URL.match(reference.strip())
    if match is None:
        raise _bad_reference(index, "is not a base64 data URL (data:audio/wav;base64,...)")
    try:
        return base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad_reference(index, "has invalid base64 data") from exc


async def _reference_samples(
    clip: bytes, index: int, decoder: ClipDecoder
) -> npt.NDArray[np.float32]:
    try:
        audio = await decoder.decode_clip(clip, MAX_REFERENCE_SECONDS + 0.5)
    except AudioTooLong as exc:
        raise _bad_reference(index, "is not audio of at most 10 s") from exc
    except InvalidRequest as exc:
        raise _bad_reference(index, f"is not audio of at most 10 s ({exc.message})") from exc
    if not MIN_REFERENCE_SECONDS <= audio.duration <= MAX_REFERENCE_SECONDS + 0.05:
        raise _bad_reference(index, f"lasts {audio.duration:.1f} s; references must be 2-10 s")
    return audio.samples


def _bad_reference(index: int, why: str) -> InvalidRequest:
    return InvalidRequest(f"known_speaker_references[{index}] {why}.", param=_REFERENCES)
