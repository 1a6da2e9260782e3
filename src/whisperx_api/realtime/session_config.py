"""A transcription session's configuration, and `session.update` applied to it.

Only the fields present in an update change (OpenAI's rule); `turn_detection: null` switches to
manual commits. The beta `transcription_session.update` shape (`input_audio_format`,
`input_audio_transcription`, top-level `turn_detection`) is read too.

Live speaker labels are this server's extension: `diarize` and `known_speaker_ids` beside the
transcription `model` (the fields of the same names on file transcriptions). OpenAI's SDKs send
a session's fields as given, so a client of theirs can set them; a server without them would
ignore them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from whisperx_api.domain.languages import WHISPER_LANGUAGES
from whisperx_api.domain.voices import MAX_KNOWN_SPEAKER_IDS, is_voice_id
from whisperx_api.errors import InvalidEvent, InvalidRequest, InvalidValue, UnsupportedParameter

PCM_RATES = (24_000, 16_000)
# OpenAI's hosted transcription models: a client written for OpenAI names one of these; here
# they all mean the server's configured default model.
HOSTED_MODELS = frozenset(
    {
        "whisper-1",
        "gpt-4o-transcribe",
        "gpt-4o-mini-transcribe",
        "gpt-4o-mini-transcribe-2025-12-15",
        "gpt-4o-transcribe-diarize",
        "gpt-transcribe",
        "gpt-live-transcribe",
        "gpt-realtime-whisper",
    }
)
_INPUT = "session.audio.input"


@dataclass(frozen=True, slots=True)
class ServerVad:
    """OpenAI's `server_vad` turn detection, on Silero VAD probabilities."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What one live session decodes and how it cuts turns."""

    model: str  # as the client named it (reported back); "" = the server's default
    rate: int = 24_000
    turn_detection: ServerVad | None = ServerVad()
    language: str | None = None
    prompt: str = ""
    diarize: bool = False  # label each completed turn with its speaker
    known_speaker_ids: tuple[str, ...] = ()  # saved voices that name speakers (needs diarize)

    @property
    def decode_model(self) -> str:
        """The name handed to the transcription backend ("" = its default)."""
        return "" if self.model in HOSTED_MODELS else self.model


def apply_update(config: SessionConfig, session: object, *, beta: bool = False) -> SessionConfig:
    """`config` with the fields `session` names changed; raises with the offending `param`."""
    fields = _mapping(session, "session")
    if beta:
        return _apply_beta(config, fields)
    kind = fields.get("type")
    if kind is not None and kind != "transcription":
        raise UnsupportedParameter(
            f"Only transcription sessions are served here (session.type 'transcription'), "
            f"not {kind!r}.",
            param="session.type",
        )
    audio = _mapping(fields.get("audio", {}), "session.audio")
    audio_input = _mapping(audio.get("input", {}), _INPUT)
    if "format" in audio_input:
        config = replace(config, rate=_format(audio_input["format"], f"{_INPUT}.format"))
    if "turn_detection" in audio_input:
        config = replace(
            config,
            turn_detection=_turn_detection(
                audio_input["turn_detection"], config.turn_detection, f"{_INPUT}.turn_detection"
            ),
        )
    if "transcription" in audio_input:
        config = _transcription(config, audio_input["transcription"], f"{_INPUT}.transcription")
    return _checked(config, f"{_INPUT}.transcription")


def _apply_beta(config: SessionConfig, fields: dict[str, Any]) -> SessionConfig:
    if "input_audio_format" in fields:
        if fields["input_audio_format"] != "pcm16":
            raise UnsupportedParameter(
                "Only 'pcm16' audio is accepted.", param="session.input_audio_format"
            )
        config = replace(config, rate=24_000)
    if "turn_detection" in fields:
        config = replace(
            config,
            turn_detection=_turn_detection(
                fields["turn_detection"], config.turn_detection, "session.turn_detection"
            ),
        )
    if "input_audio_transcription" in fields:
        config = _transcription(
            config, fields["input_audio_transcription"], "session.input_audio_transcription"
        )
    return _checked(config, "session.input_audio_transcription")


def _format(value: object, param: str) -> int:
    fields = _mapping(value, param)
    kind = fields.get("type", "audio/pcm")
    if kind != "audio/pcm":
        raise UnsupportedParameter(
            f"Only 'audio/pcm' (16-bit little-endian mono) is accepted, not {kind!r}.",
            param=f"{param}.type",
        )
    rate = fields.get("rate", 24_000)
    if rate not in PCM_RATES or isinstance(rate, bool):
        raise InvalidValue(
            f"The PCM sample rate must be 24000 (OpenAI's) or 16000, not {rate!r}.",
            param=f"{param}.rate",
        )
    return int(rate)


def _turn_detection(value: object, current: ServerVad | None, param: str) -> ServerVad | None:
    if value is None:
        return None
    fields = _mapping(value, param)
    kind = fields.get("type", "server_vad")
    if kind != "server_vad":
        raise UnsupportedParameter(
            f"Turn detection must be 'server_vad' or null, not {kind!r}.", param=f"{param}.type"
        )
    vad = current or ServerVad()
    if fields.get("threshold") is not None:
        vad = replace(vad, threshold=_number(fields["threshold"], f"{param}.threshold", 0.0, 1.0))
    for name in ("prefix_padding_ms", "silence_duration_ms"):
        if fields.get(name) is not None:
            ms = int(_number(fields[name], f"{param}.{name}", 0, 10_000, integer=True))
            vad = replace(vad, **{name: ms})
    return vad


def _transcription(config: SessionConfig, value: object, param: str) -> SessionConfig:
    if value is None:  # "off" makes no sense for a transcription session: keep the defaults
        return config
    fields = _mapping(value, param)
    if "model" in fields:
        config = replace(config, model=_string(fields["model"], f"{param}.model"))
    if "language" in fields:
        config = replace(config, language=_language(fields["language"], f"{param}.language"))
    if "prompt" in fields:
        config = replace(config, prompt=_string(fields["prompt"], f"{param}.prompt"))
    if "diarize" in fields:
        config = replace(config, diarize=_flag(fields["diarize"], f"{param}.diarize"))
    if "known_speaker_ids" in fields:
        ids = _voice_ids(fields["known_speaker_ids"], f"{param}.known_speaker_ids")
        config = replace(config, known_speaker_ids=ids)
    return config


def _checked(config: SessionConfig, param: str) -> SessionConfig:
    """Refuse saved voices without speaker labels (as file transcriptions do)."""
    if config.known_speaker_ids and not config.diarize:
        raise InvalidRequest(
            "known_speaker_ids need diarize: true (send known_speaker_ids: [] to drop them).",
            param=f"{param}.known_speaker_ids",
        )
    return config


def _flag(value: object, param: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidValue(f"'{param}' must be true or false.", param=param)
    return value


def _voice_ids(value: object, param: str) -> tuple[str, ...]:
    """Saved voice ids (`spk_...`), each once, at most `MAX_KNOWN_SPEAKER_IDS`."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidValue(f"'{param}' must be a list of saved speaker ids.", param=param)
    if len(value) > MAX_KNOWN_SPEAKER_IDS:
        raise InvalidValue(
            f"At most {MAX_KNOWN_SPEAKER_IDS} known_speaker_ids, got {len(value)}.", param=param
        )
    for item in value:
        if not isinstance(item, str) or not is_voice_id(item):
            raise InvalidValue(
                f"'{param}' holds {str(item)[:40]!r}, which is not a saved speaker id (spk_...).",
                param=param,
            )
    return tuple(dict.fromkeys(value))


def _language(value: object, param: str) -> str | None:
    if value is None or value == "":
        return None
    code = _string(value, param).strip().lower()
    if code not in WHISPER_LANGUAGES:
        raise InvalidValue(
            f"'{value}' is not a language code Whisper knows (ISO-639-1).", param=param
        )
    return code


def _mapping(value: object, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidEvent(f"'{param}' must be an object.", param=param)
    return value


def _string(value: object, param: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidValue(f"'{param}' must be a string.", param=param)
    return value


def _number(value: object, param: str, low: float, high: float, *, integer: bool = False) -> float:
    kind = "an integer" if integer else "a number"
    problem = InvalidValue(f"'{param}' must be {kind} from {low:g} to {high:g}.", param=param)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise problem
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise problem
    if integer and not number.is_integer():
        raise problem
    return number


def session_object(config: SessionConfig, session_id: str) -> dict[str, Any]:
    """The effective configuration, as `session.created` and `session.updated` carry it."""
    vad = config.turn_detection
    transcription: dict[str, Any] = {
        "model": config.model,
        "language": config.language,
        "prompt": config.prompt,
    }
    if config.diarize:  # (the extension is shown only when used: other sessions are unchanged)
        transcription.update(diarize=True, known_speaker_ids=list(config.known_speaker_ids))
    return {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": session_id,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": config.rate},
                "noise_reduction": None,
                "transcription": transcription,
                "turn_detection": None
                if vad is None
                else {
                    "type": "server_vad",
                    "threshold": vad.threshold,
                    "prefix_padding_ms": vad.prefix_padding_ms,
                    "silence_duration_ms": vad.silence_duration_ms,
                },
            }
        },
        "include": [],
    }
