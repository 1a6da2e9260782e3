"""Wire models: the forms clients post and the JSON bodies we answer with."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from starlette.datastructures import UploadFile

from whisperx_api.api.channel_fields import ChannelFields
from whisperx_api.api.cleanup_fields import CleanupFields
from whisperx_api.api.forms import COMMA_SEPARATED
from whisperx_api.api.label_fields import labels_field
from whisperx_api.api.openai_extras import (
    INCLUDABLE,
    MAX_KNOWN_SPEAKERS,
    MAX_SPEAKER_NAME,
    parse_chunking_strategy,
    parse_known_speakers,
    wants_logprobs,
)
from whisperx_api.domain.audio import ClipDecoder
from whisperx_api.domain.formats import OutputFormat
from whisperx_api.domain.job import JobSpec, ResultStyle
from whisperx_api.domain.languages import WHISPER_LANGUAGES
from whisperx_api.domain.options import SubtitleOptions, TranscriptionOptions
from whisperx_api.domain.transcript import Task
from whisperx_api.domain.voices import MAX_KNOWN_SPEAKER_IDS
from whisperx_api.errors import InvalidRequest
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


# `format: binary` and `contentMediaType`: OpenAPI 3.0 and 3.1 tools each read one of them.
_BINARY = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}
Upload = Annotated[UploadFile, BeforeValidator(_require_upload), WithJsonSchema(_BINARY)]
LanguageCode = Annotated[
    str,
    AfterValidator(_language_code),
    WithJsonSchema({"type": "string", "enum": sorted(WHISPER_LANGUAGES)}),
]
ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
LANGUAGES_DOC = (
    "Candidate languages (ISO-639-1): each stretch of speech is detected among these only, and "
    "decoded in its own. Repeat the field (or send `languages[]`, or comma-join the codes). "
    "Cannot be combined with `language`."
)
Granularity = Literal["segment", "word"]
DEFAULT_MODEL = "whisper-1"
_WORDLESS_FORMATS = frozenset({OutputFormat.JSON, OutputFormat.TEXT, OutputFormat.TXT})
# Whisper's decoder keeps at most 223 prompt tokens (half its 448-token context, less one) and
# silently drops the rest from the front; 896 characters is about 224 tokens of English text.
MAX_PROMPT_CHARS = 896
PROMPT_DOC = (
    "Text that guides the style or vocabulary of the transcript; at most "
    f"{MAX_PROMPT_CHARS} characters (Whisper uses at most 223 tokens of prompt)."
)


def check_prompt(value: str | None) -> str | None:
    """A prompt the model can use whole; a longer one is refused rather than cut."""
    if value is not None and len(value) > MAX_PROMPT_CHARS:
        raise ValueError(
            f"is {len(value)} characters; the limit is {MAX_PROMPT_CHARS} characters (Whisper "
            "uses at most 223 tokens of prompt and would drop the rest)"
        )
    return value


_STREAMABLE_FORMATS = frozenset({OutputFormat.JSON, OutputFormat.TEXT})
MAX_URL_LENGTH = 2048
# Checked (with messages naming the rule) by `openai_extras` when the job is built.
Includable = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(INCLUDABLE)})]
# `auto`, JSON text, or the `name[key]` fields `parse_form` folds into an object.
ChunkingStrategy = Annotated[str | dict[str, str], WithJsonSchema({"type": "string"})]
Url = Annotated[str, StringConstraints(max_length=MAX_URL_LENGTH)]
FILE_DOC = (
    "The audio (or video) file: any format ffmpeg decodes. Send either `file` or `audio_url`."
)
AUDIO_URL_DOC = (
    "Instead of `file`: a public http(s) URL the server downloads the audio from (bounded by "
    "`MAX_FILE_SIZE`; private addresses are refused). Send either `file` or `audio_url`."
)
# Exactly one of the two audio sources; the parser takes either as optional and
# `audio_source.check_one_source` enforces the rule.
ONE_AUDIO_SOURCE: dict[str, Any] = {"oneOf": [{"required": ["file"]}, {"required": ["audio_url"]}]}
WEBHOOK_DOC = (
    "An http(s) URL that receives a signed `POST` when the job ends (completed, failed or "
    "cancelled); needs a server with a webhook secret."
)
# Beyond these a layout is no longer subtitles; such values are refused, not clamped.
MAX_LINE_WIDTH = 500
MAX_LINE_COUNT = 20
MAX_WORDS_PER_LINE = 100


class AudioSourceFields(BaseModel):
    """The audio of a request: an upload, or a URL the server downloads; exactly one."""

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        arbitrary_types_allowed=True,
        json_schema_extra=ONE_AUDIO_SOURCE,
    )

    file: Upload | None = Field(default=None, description=FILE_DOC)
    audio_url: Url | None = Field(default=None, description=AUDIO_URL_DOC)


class SubtitleFields(BaseModel):
    """Cue layout fields, on every form whose result may be srt or vtt."""

    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)

    highlight_words: bool = Field(
        default=False,
        description="srt/vtt: repeat each cue once per word, that word underlined (karaoke).",
    )
    max_line_width: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LINE_WIDTH,
        description="srt/vtt: the most characters on one cue line (42 when omitted).",
    )
    max_line_count: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LINE_COUNT,
        description="srt/vtt: the most lines in one cue (2 when omitted).",
    )
    max_words_per_line: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WORDS_PER_LINE,
        description="srt/vtt: the most words on one cue line.",
    )

    def subtitle_options(self) -> SubtitleOptions:
        """How srt/vtt cues are shaped."""
        return SubtitleOptions(
            highlight_words=self.highlight_words,
            max_line_width=self.max_line_width,
            max_line_count=self.max_line_count,
            max_words_per_line=self.max_words_per_line,
        )


# The audio source's fields come first (fields of the last base are declared first).
class AudioForm(ChannelFields, CleanupFields, SubtitleFields, AudioSourceFields):
    """Fields shared by transcription and translation requests."""

    model: str = Field(
        default=DEFAULT_MODEL,
        description="A model name from `GET /v1/models`; `whisper-1` means the server's default.",
    )
    prompt: str | None = Field(default=None, description=PROMPT_DOC)
    _prompt_fits = field_validator("prompt")(check_prompt)
    response_format: OutputFormat = Field(
        default=OutputFormat.JSON,
        description="The response body: `json`, `verbose_json`, `diarized_json` and `vtt_json` "
        "are JSON; `text`, `txt`, `srt`, `aud`, `tsv` are text/plain; `vtt` is text/vtt.",
    )
    temperature: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Sampling temperature; 0 decodes greedily."
    )
    timestamp_granularities: Annotated[tuple[Granularity, ...], COMMA_SEPARATED] = Field(
        default=("segment",),
        description="`word` adds word timings to `verbose_json`. Repeat the field (or send "
        "`timestamp_granularities[]`) for several values.",
    )
    suppress_numerals: bool = Field(
        default=False, description="Spell numbers out as words instead of digits."
    )
    hotwords: str | None = Field(
        default=None, description="Words or phrases the decoder should favour."
    )
    batch_size: int | None = Field(
        default=None, ge=1, le=256, description="Audio chunks decoded at once (server default)."
    )
    chunk_size: int | None = Field(
        default=None, ge=1, le=30, description="Longest audio chunk, in seconds (server default)."
    )
    stream: bool = Field(
        default=False,
        description="Send the text as server-sent events while it is decoded (json/text only).",
    )
    is_async: bool = Field(
        default=False,
        alias="async",
        description="Answer 202 with a job id at once; fetch the result from the job endpoints.",
    )
    webhook_url: Url | None = Field(default=None, description=WEBHOOK_DOC + " Needs `async=true`.")
    chunking_strategy: ChunkingStrategy | None = Field(
        default=None,
        description="How the audio is cut at pauses: `auto` (the server's voice detection), or "
        'a `server_vad` object as JSON text, e.g. `{"type": "server_vad", "threshold": 0.5, '
        '"prefix_padding_ms": 300, "silence_duration_ms": 500}` (`threshold` 0..1, the two '
        "durations 0..10000). The object may also come as one field per key, "
        "`chunking_strategy[threshold]=0.5`, as OpenAI's SDKs send it.",
    )
    include: Annotated[tuple[Includable, ...], COMMA_SEPARATED] = Field(
        default=(),
        description="`logprobs` adds each token's log probability to a `json` response "
        "(not streamed). Also sent as `include[]`.",
    )

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

    async def with_voices(self, spec: JobSpec, decoder: ClipDecoder) -> JobSpec:
        """`spec` with whatever inline audio the form carries decoded (none here)."""
        return spec

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
        if self.stream and self.multichannel:
            raise InvalidRequest(
                "stream=true cannot be combined with multichannel=true: channels are "
                "transcribed one after another, so their text does not arrive in time order.",
                param="stream",
            )
        self.check_speakers_format(self.response_format, self.wants_speakers())

    def wants_speakers(self) -> bool:
        """True when the request asks for diarization."""
        return False

    def speaker_ids(self) -> tuple[str, ...]:
        """Saved voices (`known_speaker_ids[]`) to name speakers with; none here."""
        return ()

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

    language: LanguageCode | None = Field(
        default=None,
        description="The spoken language (ISO-639-1, case-insensitive); detected when omitted.",
    )
    languages: Annotated[tuple[LanguageCode, ...], COMMA_SEPARATED] = Field(
        default=(), description=LANGUAGES_DOC
    )
    align: bool = Field(
        default=True, description="Refine word timings with a forced aligner, when one is set up."
    )
    diarize: bool = Field(default=False, description="Find who spoke when (needs `align`).")
    min_speakers: int | None = Field(
        default=None, ge=1, description="Diarization: at least this many speakers."
    )
    max_speakers: int | None = Field(
        default=None, ge=1, description="Diarization: at most this many speakers."
    )
    speaker_embeddings: bool = Field(
        default=False, description="Diarization: add each speaker's voice embedding."
    )
    known_speaker_names: tuple[str, ...] = labels_field(
        MAX_KNOWN_SPEAKERS,
        MAX_SPEAKER_NAME,
        "Diarization: names for voices given in `known_speaker_references` (same order, "
        "distinct); speakers that match are labelled with them. Repeat the field (or send "
        "`known_speaker_names[]`).",
    )
    known_speaker_references: tuple[str, ...] = Field(
        default=(),
        json_schema_extra={"maxItems": MAX_KNOWN_SPEAKERS},
        description="One reference clip per name: a data URL (`data:audio/wav;base64,...`) of "
        "2 to 10 s of that voice. Repeat the field (or send `known_speaker_references[]`).",
    )
    known_speaker_ids: tuple[str, ...] = Field(
        default=(),
        json_schema_extra={"maxItems": MAX_KNOWN_SPEAKER_IDS},
        description="Diarization: ids of this key's saved voices (`POST /v1/speakers`); "
        "speakers that match are labelled with their names. Repeat the field (or send "
        "`known_speaker_ids[]`).",
    )

    def speaker_ids(self) -> tuple[str, ...]:
        return self.known_speaker_ids

    def wants_speakers(self) -> bool:
        return self.diarize

    def check_supported(self) -> None:
        super().check_supported()
        check_languages(self.language, self.languages)
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
            languages=candidate_languages(self.languages),
        )
        if (self.known_speaker_names or self.known_speaker_references) and not self.diarize:
            raise InvalidRequest("Known speakers need diarize=true.", param="known_speaker_names")
        return replace(spec, options=speakers)

    async def with_voices(self, spec: JobSpec, decoder: ClipDecoder) -> JobSpec:
        """`spec` with the named reference voices, decoded by the runtime's `decoder`."""
        voices = await parse_known_speakers(
            self.known_speaker_names, self.known_speaker_references, decoder
        )
        return replace(spec, options=replace(spec.options, known_speakers=voices))


def check_languages(language: str | None, languages: tuple[str, ...]) -> None:
    """`language` fixes the language; `languages[]` lets it be detected among a few: not both."""
    if language is not None and languages:
        raise InvalidRequest(
            "Send either language (one language) or languages[] (candidates to detect among), "
            "not both.",
            param="languages",
        )


def candidate_languages(languages: tuple[str, ...]) -> tuple[str, ...]:
    """The candidates once each, in the order first given."""
    return tuple(dict.fromkeys(languages))


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
        model=form.model,
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
        cleanup=form.cleanup_options(),
        multichannel=form.multichannel,
        channel_names=form.checked_channel_names(),
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


class JobAccepted(BaseModel):
    """202 body for an accepted async job."""

    job_id: str = Field(description="The job's id.")
    status_url: str = Field(description="Where to poll the job: `/transcription/{job_id}`.")


JobStatusName = Literal["Queued", "Processing", "Completed", "Failed", "Cancelled"]


class WebhookView(BaseModel):
    """A job's webhook delivery, as `GET /transcription/{job_id}` shows it."""

    attempts: int = Field(description="Delivery attempts so far.")
    last_status: int | None = Field(
        description="The HTTP status of the last attempt; null before one, or with no answer."
    )
    delivered: bool = Field(description="A 2xx answer was received.")


class JobStatusView(BaseModel):
    """`GET /transcription/{job_id}`."""

    job_id: str
    status: JobStatusName
    queue_position: int | None = Field(
        default=None,
        description="While queued: the place in line (1 is next; counted in batches of "
        "`MAX_CONCURRENT_JOBS` in concurrent mode).",
    )
    progress: float | None = Field(default=None, description="While processing: 0 to 1.")
    error: str | None = Field(default=None, description="When failed: why.")
    attempts: int = Field(description="How many times a worker has started the job.")
    webhook: WebhookView | None = Field(
        default=None, description="With `webhook_url`: where its delivery stands."
    )


class JobCancelledView(BaseModel):
    """`DELETE /transcription/{job_id}`."""

    success: bool
    message: str


class ModelTargetForm(BaseModel):
    """The form of a model load or unload: one field naming the model."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    def target(self) -> str:
        """The model named."""
        raise NotImplementedError


class ModelForm(ModelTargetForm):
    """`POST /models/load|unload` and `/diarize_models/load|unload`."""

    model: ModelName = Field(description="The model's name, as listed by the matching `list`.")

    def target(self) -> str:
        return self.model


class AlignModelForm(ModelTargetForm):
    """`POST /align_models/load|unload`: alignment models are keyed by language."""

    language: ModelName = Field(description="The language whose alignment model to load.")

    def target(self) -> str:
        return self.language


class JobForm(ChannelFields, CleanupFields, SubtitleFields, AudioSourceFields):
    """`POST /transcription`, the job API's form (docs/jobs.md)."""

    language: LanguageCode | None = Field(
        default=None,
        description="The spoken language (ISO-639-1, case-insensitive); detected when omitted.",
    )
    languages: Annotated[tuple[LanguageCode, ...], COMMA_SEPARATED] = Field(
        default=(), description=LANGUAGES_DOC
    )
    model: str = Field(
        default=DEFAULT_MODEL,
        description="A model name from `GET /v1/models`; `whisper-1` means the server's default.",
    )
    diarize: bool = Field(default=False, description="Find who spoke when.")
    prompt: str | None = Field(default=None, description=PROMPT_DOC)
    _prompt_fits = field_validator("prompt")(check_prompt)
    hf_token: str | None = Field(
        default=None,
        description="A Hugging Face token for gated diarization models; used only with "
        "`diarize=true`, and never stored in readable form.",
    )
    response_format: OutputFormat | None = Field(
        default=None,
        description="The result's format; the server's `OUTPUT_FORMAT` when omitted.",
    )
    device: Literal["cpu", "cuda", "auto"] | None = Field(
        default=None, description="Where to run this job; the server's device when omitted."
    )
    device_index: int | None = Field(
        default=None, ge=0, description="Which GPU, with `device=cuda`."
    )
    sync: bool | None = Field(
        default=None,
        description="Wait and answer with the result (true) or answer 202 with a job id "
        "(false); when omitted, the server's `DEFAULT_SYNC_MODE`, or 202 with `webhook_url`.",
    )
    webhook_url: Url | None = Field(
        default=None, description=WEBHOOK_DOC + " Cannot be combined with `sync=true`."
    )

    def wants_sync(self, default: bool) -> bool:
        """`sync` if given, else async with a webhook, else the configured DEFAULT_SYNC_MODE."""
        if self.sync is None:
            return default and self.webhook_url is None
        return self.sync

    def to_spec(self, owner: str | None, default_format: str) -> JobSpec:
        """The job this request asks for."""
        fmt = self.response_format or OutputFormat(default_format)
        check_languages(self.language, self.languages)
        self.check_speakers_format(fmt, self.diarize)
        if self.webhook_url is not None:
            check_url_syntax(self.webhook_url, "webhook_url")
            if self.sync:
                raise InvalidRequest(
                    "webhook_url cannot be combined with sync=true: the webhook announces "
                    "the end of an async job.",
                    param="webhook_url",
                )
        options = TranscriptionOptions(
            model=self.model,
            language=self.language,
            languages=candidate_languages(self.languages),
            prompt=self.prompt,
            word_timestamps=True,
            device=self.device,
            device_index=self.device_index,
            diarize=self.diarize,
            hf_token=self.hf_token,
            cleanup=self.cleanup_options(),
            multichannel=self.multichannel,
            channel_names=self.checked_channel_names(),
        )
        return JobSpec(
            options=options,
            response_format=fmt,
            subtitles=self.subtitle_options(),
            style=ResultStyle.JOBS,
            owner=owner,
            webhook_url=self.webhook_url,
        )
