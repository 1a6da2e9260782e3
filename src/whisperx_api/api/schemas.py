"""Wire models: the forms clients post and the JSON bodies we answer with."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from starlette.datastructures import FormData, UploadFile

from whisperx_api.api.openai_extras import (
    parse_chunking_strategy,
    parse_known_speakers,
    wants_logprobs,
)
from whisperx_api.domain.formats import OutputFormat
from whisperx_api.domain.job import JobSpec, ResultStyle
from whisperx_api.domain.languages import WHISPER_LANGUAGES
from whisperx_api.domain.options import SubtitleOptions, TranscriptionOptions
from whisperx_api.domain.speakers import KnownSpeaker
from whisperx_api.domain.transcript import Task
from whisperx_api.errors import InvalidRequest, InvalidValue
from whisperx_api.net_guard import check_url_syntax


def _require_upload(value: object) -> object:
    if not isinstance(value, UploadFile):
        raise ValueError("must be an uploaded file")
    return value


def _language_code(value: str) -> str:
    code = value.strip().lower()
    if code not in WHISPER_LANGUAGES:
        raise ValueError(f"'{value}' is not a language code Whisper knows (ISO-639-1)")
    return code


Upload = Annotated[UploadFile, BeforeValidator(_require_upload)]
LanguageCode = Annotated[str, AfterValidator(_language_code)]
Granularity = Literal["segment", "word"]
F = TypeVar("F", bound=BaseModel)
_WORDLESS_FORMATS = frozenset({OutputFormat.JSON, OutputFormat.TEXT, OutputFormat.TXT})
_STREAMABLE_FORMATS = frozenset({OutputFormat.JSON, OutputFormat.TEXT})
MAX_URL_LENGTH = 2048
_LIST_FIELDS = {
    name: (f"{name}[]", name)
    for name in (
        "timestamp_granularities",
        "include",
        "known_speaker_names",
        "known_speaker_references",
    )
}
_OBJECT_FIELD = re.compile(r"^(?P<name>\w+)\[(?P<key>\w+)\]$")
# Beyond these a layout is no longer subtitles; such values are refused, not clamped.
MAX_LINE_WIDTH = 500
MAX_LINE_COUNT = 20
MAX_WORDS_PER_LINE = 100


class SubtitleFields(BaseModel):
    """Cue layout fields, on every form whose result may be srt or vtt."""

    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)

    highlight_words: bool = False
    max_line_width: int | None = Field(default=None, ge=1, le=MAX_LINE_WIDTH)
    max_line_count: int | None = Field(default=None, ge=1, le=MAX_LINE_COUNT)
    max_words_per_line: int | None = Field(default=None, ge=1, le=MAX_WORDS_PER_LINE)

    def subtitle_options(self) -> SubtitleOptions:
        """How srt/vtt cues are shaped."""
        return SubtitleOptions(
            highlight_words=self.highlight_words,
            max_line_width=self.max_line_width,
            max_line_count=self.max_line_count,
            max_words_per_line=self.max_words_per_line,
        )


class AudioForm(SubtitleFields):
    """Fields shared by transcription and translation requests."""

    file: Upload | None = None
    audio_url: str | None = None  # instead of `file`: the server downloads it
    model: str | None = None
    prompt: str | None = None
    response_format: OutputFormat = OutputFormat.JSON
    temperature: float = Field(default=0.0, ge=0.0, le=1.0)
    timestamp_granularities: tuple[Granularity, ...] = ("segment",)
    suppress_numerals: bool = False
    hotwords: str | None = None
    batch_size: int | None = Field(default=None, ge=1, le=256)
    chunk_size: int | None = Field(default=None, ge=1, le=30)
    stream: bool = False
    is_async: bool = Field(default=False, alias="async")
    webhook_url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    chunking_strategy: str | dict[str, str] | None = None
    include: tuple[str, ...] = ()

    @field_validator("temperature")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number between 0 and 1")
        return value

    def word_timestamps(self, align: bool) -> bool:
        """Words are computed when asked for (karaoke cues need them too), unless the reply
        could never show them."""
        wanted = align or "word" in self.timestamp_granularities or self.highlight_words
        return wanted and (self.is_async or self.response_format not in _WORDLESS_FORMATS)

    def to_spec(self, owner: str | None) -> JobSpec:
        """The job this request asks for."""
        raise NotImplementedError

    def check_supported(self) -> None:
        """Refuse what this server does not offer, or combinations that cannot work."""
        if self.stream and self.is_async:
            raise InvalidRequest(
                "stream=true and async=true cannot be combined: a job's result is fetched later.",
                param="stream",
            )
        if self.webhook_url is not None:
            check_url_syntax(self.webhook_url, "webhook_url")
            if not self.is_async:
                raise InvalidRequest(
                    "webhook_url needs async=true: the webhook announces a job's end.",
                    param="webhook_url",
                )
        if self.stream and self.response_format not in _STREAMABLE_FORMATS:
            raise InvalidRequest(
                "stream=true sends text events; response_format must be json or text.",
                param="response_format",
            )
        if self.response_format is OutputFormat.DIARIZED_JSON and not self.wants_speakers():
            raise InvalidRequest(
                "response_format=diarized_json needs diarize=true.", param="response_format"
            )

    def wants_speakers(self) -> bool:
        """True when the request asks for diarization."""
        return False

    def wants_logprobs(self) -> bool:
        """`include[]=logprobs`: only `json` bodies carry them, as in OpenAI's API."""
        logprobs = wants_logprobs(self.include)
        if logprobs and (self.response_format is not OutputFormat.JSON or self.stream):
            raise InvalidRequest(
                "include=logprobs needs response_format=json (and no stream).", param="include"
            )
        return logprobs


class TranscriptionForm(AudioForm):
    """`POST /v1/audio/transcriptions`."""

    language: LanguageCode | None = None
    align: bool = True
    diarize: bool = False
    min_speakers: int | None = Field(default=None, ge=1)
    max_speakers: int | None = Field(default=None, ge=1)
    speaker_embeddings: bool = False
    known_speaker_names: tuple[str, ...] = ()
    known_speaker_references: tuple[str, ...] = ()

    def wants_speakers(self) -> bool:
        return self.diarize

    def check_supported(self) -> None:
        super().check_supported()
        check_speaker_fields(self.diarize, self.min_speakers, self.max_speakers)
        if self.speaker_embeddings and not self.diarize:
            raise InvalidRequest(
                "speaker_embeddings needs diarize=true.", param="speaker_embeddings"
            )
        if self.diarize and not self.align:
            raise InvalidRequest(
                "diarize needs align=true (speakers are given per word).", param="align"
            )

    def to_spec(self, owner: str | None) -> JobSpec:
        """The job this request asks for."""
        self.check_supported()
        spec = _spec(self, owner, Task.TRANSCRIBE, self.language, self.word_timestamps(self.align))
        speakers = replace(
            spec.options,
            diarize=self.diarize,
            min_speakers=self.min_speakers,
            max_speakers=self.max_speakers,
            speaker_embeddings=self.speaker_embeddings,
            word_timestamps=spec.options.word_timestamps or self.diarize,
            known_speakers=self.known_speakers(),
        )
        return replace(spec, options=speakers)

    def known_speakers(self) -> tuple[KnownSpeaker, ...]:
        """The named reference voices; they need diarization."""
        if (self.known_speaker_names or self.known_speaker_references) and not self.diarize:
            raise InvalidRequest("Known speakers need diarize=true.", param="known_speaker_names")
        return parse_known_speakers(self.known_speaker_names, self.known_speaker_references)


def check_speaker_fields(diarize: bool, low: int | None, high: int | None) -> None:
    """Speaker counts need diarization, and the lower bound cannot pass the upper one."""
    if (low is not None or high is not None) and not diarize:
        raise InvalidRequest(
            "min_speakers/max_speakers need diarize=true.",
            param="min_speakers" if low is not None else "max_speakers",
        )
    if low is not None and high is not None and low > high:
        raise InvalidRequest(
            f"min_speakers ({low}) is larger than max_speakers ({high}).", param="min_speakers"
        )


class TranslationForm(AudioForm):
    """`POST /v1/audio/translations`: output is English."""

    def to_spec(self, owner: str | None) -> JobSpec:
        """The job this request asks for."""
        self.check_supported()
        return _spec(self, owner, Task.TRANSLATE, None, self.word_timestamps(False))


def _spec(
    form: AudioForm, owner: str | None, task: Task, language: str | None, words: bool
) -> JobSpec:
    vad = parse_chunking_strategy(form.chunking_strategy)
    logprobs = form.wants_logprobs()
    options = TranscriptionOptions(
        model=form.model or "",
        task=task,
        language=language,
        prompt=form.prompt,
        temperature=form.temperature,
        word_timestamps=words or logprobs,
        vad_threshold=vad.threshold,
        vad_prefix_padding_ms=vad.prefix_padding_ms,
        vad_silence_duration_ms=vad.silence_duration_ms,
        include_logprobs=logprobs,
        hotwords=form.hotwords,
        suppress_numerals=form.suppress_numerals,
        batch_size=form.batch_size,
        chunk_size=form.chunk_size,
    )
    return JobSpec(
        options=options,
        response_format=form.response_format,
        subtitles=form.subtitle_options(),
        style=ResultStyle.OPENAI,
        owner=owner,
        streamed=form.stream,
        webhook_url=form.webhook_url,
    )


def parse_form(model: type[F], form: FormData) -> F:
    """Validate multipart fields into `model`; empty strings count as "not given"."""
    data: dict[str, Any] = {}
    for key in form:
        values = [v for v in form.getlist(key) if v != ""]
        if values and key not in _LIST_ALIASES:
            data[key] = values[-1]
        if values and (member := _OBJECT_FIELD.match(key)):  # `name[key]=v`: an object field
            fields = data.get(member["name"])
            if not isinstance(fields, dict):
                fields = data[member["name"]] = {}
            fields[member["key"]] = values[-1]
    for name, spellings in _LIST_FIELDS.items():
        values = [v for s in spellings for v in form.getlist(s) if v != ""]
        if values:
            data[name] = tuple(values)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


_LIST_ALIASES = frozenset(s for spellings in _LIST_FIELDS.values() for s in spellings)


def _invalid(exc: ValidationError) -> InvalidRequest:
    first = exc.errors()[0]
    param = str(first["loc"][0]) if first["loc"] else None
    if first["type"] == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    message = str(first["msg"]).removeprefix("Value error, ")
    return InvalidValue(f"Invalid '{param}': {message}", param=param)


class JobAccepted(BaseModel):
    """202 body for an accepted async job."""

    job_id: str
    status_url: str


class JobForm(SubtitleFields):
    """`POST /transcription`, the job API's form (docs/jobs.md)."""

    file: Upload | None = None
    audio_url: str | None = None  # instead of `file`: the server downloads it
    language: LanguageCode | None = None
    model: str | None = None
    diarize: bool = False
    prompt: str | None = None
    hf_token: str | None = None
    response_format: OutputFormat | None = None
    device: Literal["cpu", "cuda", "auto"] | None = None
    device_index: int | None = Field(default=None, ge=0)
    sync: bool | None = None
    webhook_url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)

    def wants_sync(self, default: bool) -> bool:
        """`sync` if given, else async with a webhook, else the configured DEFAULT_SYNC_MODE."""
        if self.sync is None:
            return default and self.webhook_url is None
        return self.sync

    def to_spec(self, owner: str | None, default_format: str) -> JobSpec:
        """The job this request asks for."""
        fmt = self.response_format or OutputFormat(default_format)
        if fmt is OutputFormat.DIARIZED_JSON and not self.diarize:
            raise InvalidRequest(
                "response_format=diarized_json needs diarize=true.", param="response_format"
            )
        if self.webhook_url is not None:
            check_url_syntax(self.webhook_url, "webhook_url")
            if self.sync:
                raise InvalidRequest(
                    "webhook_url cannot be combined with sync=true: the webhook announces "
                    "the end of an async job.",
                    param="webhook_url",
                )
        options = TranscriptionOptions(
            model=self.model or "",
            language=self.language,
            prompt=self.prompt,
            word_timestamps=True,
            device=self.device,
            device_index=self.device_index,
            diarize=self.diarize,
            hf_token=self.hf_token,
        )
        return JobSpec(
            options=options,
            response_format=fmt,
            subtitles=self.subtitle_options(),
            style=ResultStyle.JOBS,
            owner=owner,
            webhook_url=self.webhook_url,
        )
