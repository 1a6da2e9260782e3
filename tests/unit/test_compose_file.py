"""compose-kafka.yaml: valid for `docker compose config`, and wired the way the app reads settings.

`docker compose config` is Compose v2 itself resolving the file: the Compose schema, `${VAR:-x}`
interpolation, YAML merge keys and profiles, exactly as `docker compose up` would, with no engine
needed. `make install-test` puts the v2 plugin in the venv (`lib/docker/cli-plugins`, found by
docker through DOCKER_CONFIG); without it these tests fail, they do not skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from whisperx_api.config import Settings, env_names, load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose-kafka.yaml"
DOCKER_CONFIG = Path(sys.prefix) / "lib" / "docker"
PLUGIN = DOCKER_CONFIG / "cli-plugins" / "docker-compose"

APP_SERVICES = ("api", "worker-cpu", "worker-cuda")
WORKERS = {"worker-cpu": "cpu", "worker-cuda": "cuda"}
# Every app process gets these (the table in docs/distributed.md).
APP_ENV = {
    "MODE",
    "KAFKA__BOOTSTRAP_SERVERS",
    "KAFKA__REQUEST_TOPIC",
    "KAFKA__DEAD_LETTER_TOPIC",
    "KAFKA__CONSUMER_GROUP",
    "KAFKA__PARTITIONS",
    "KAFKA__LEASE_SECONDS",
    "S3__ENDPOINT_URL",
    "S3__BUCKET",
    "S3__ACCESS_KEY_ID",
    "S3__SECRET_ACCESS_KEY",
    "S3__REGION",
    "WHISPER__MODEL",
    "JOBS__MAX_ATTEMPTS",
    "API_KEY",
}
# What the tests run compose with unless they say otherwise: both files refuse to start without.
DEFAULT_API_KEY = "t-default-key"
API_KEY_REQUIRED = "set API_KEY (the bearer key clients must send)"
# Set for the container runtime, not read by the app.
NOT_SETTINGS = {"NVIDIA_DRIVER_CAPABILITIES"}

# Values unlike every default, so a misspelt name or a lost `${...}` cannot pass unnoticed.
OVERRIDES = {
    "KAFKA__REQUEST_TOPIC": "t.jobs",
    "KAFKA__DEAD_LETTER_TOPIC": "t.jobs.dead",
    "KAFKA__CONSUMER_GROUP": "t-workers",
    "KAFKA__PARTITIONS": "7",
    "KAFKA__LEASE_SECONDS": "45",
    "S3__BUCKET": "t-bucket",
    "S3__ACCESS_KEY_ID": "t-access",
    "S3__SECRET_ACCESS_KEY": "t-secret-key",
    "S3__REGION": "eu-west-3",
    "WHISPER__MODEL": "tiny.en",
    "WHISPER__CPU_THREADS": "2",
    "JOBS__MAX_ATTEMPTS": "5",
    "API_KEY": "t-key",
    "WORKER_CPU_REPLICAS": "4",
    "WORKER_CUDA_REPLICAS": "3",
    "WORKER_CUDA_GPU": "1",
    "API_PORT": "8181",
}


def compose_command() -> list[str]:
    """`docker compose` with the venv's plugin; the bare plugin (same program) if no docker CLI."""
    if not PLUGIN.is_file():
        pytest.fail(f"no Compose v2 plugin at {PLUGIN}: run `make install-test`")
    docker = shutil.which("docker")
    return [docker, "compose"] if docker else [str(PLUGIN)]


def run_compose(
    tmp_path: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    file: Path = COMPOSE_FILE,
    api_key: str | None = DEFAULT_API_KEY,
) -> subprocess.CompletedProcess[str]:
    """Run compose on `file` with only `env` set: nothing leaks in from the caller's shell.

    Both files require API_KEY; `api_key` sets it (None leaves it unset), `env` may override."""
    env_file = tmp_path / "empty.env"  # instead of a `.env` a developer may keep in the repo
    env_file.touch()
    environ = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DOCKER_CONFIG": str(DOCKER_CONFIG),
        **({} if api_key is None else {"API_KEY": api_key}),
        **(env or {}),
    }
    command = [*compose_command(), "--env-file", str(env_file), "--project-directory", str(REPO)]
    return subprocess.run(
        [*command, "-f", str(file), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def render(tmp_path: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The resolved file, both worker profiles on."""
    done = run_compose(
        tmp_path, "--profile", "cpu", "--profile", "cuda", "config", "--format", "json", env=env
    )
    assert done.returncode == 0, done.stderr
    rendered: dict[str, Any] = json.loads(done.stdout)
    return rendered


def setting_names() -> set[str]:
    """Every environment name the settings tree reads, nested names and flat aliases."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            for sub in group.model_fields:
                names.update(env_names((name, sub)))
        else:
            names.update(env_names((name,)))
    return names


def plain(value: object) -> object:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def test_config_accepts_the_file_with_both_profiles(tmp_path: Path) -> None:
    done = run_compose(tmp_path, "--profile", "cpu", "--profile", "cuda", "config")
    assert done.returncode == 0, done.stderr
    assert "WARN" not in done.stderr, "every variable the file uses needs a default"


def test_services_and_profiles(tmp_path: Path) -> None:
    services = render(tmp_path)["services"]
    assert set(services) == {"kafka", "minio", "api", *WORKERS}
    for name, profile in WORKERS.items():
        assert services[name]["profiles"] == [profile]
        assert services[name]["command"] == ["whisperx-api", "worker"]
    for name in ("kafka", "minio", "api"):
        assert "profiles" not in services[name]
    assert services["api"]["command"][:2] == ["whisperx-api", "serve"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_without_a_profile_no_worker_starts(tmp_path: Path) -> None:
    done = run_compose(tmp_path, "config", "--services")
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) == {"kafka", "minio", "api"}


def test_app_services_get_every_setting_and_only_real_ones(tmp_path: Path) -> None:
    services = render(tmp_path)["services"]
    known = setting_names()
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        assert environment.keys() >= APP_ENV, name
        assert environment["MODE"] == "kafka"
        unknown = set(environment) - known - NOT_SETTINGS
        assert not unknown, f"{name} sets {unknown}, which the app does not read"


def test_workers_pick_their_device(tmp_path: Path) -> None:
    services = render(tmp_path)["services"]
    cpu = services["worker-cpu"]["environment"]
    assert cpu["WHISPER__INFERENCE_DEVICE"] == "cpu"
    assert cpu["WHISPER__CPU_THREADS"] == "1"
    cuda = services["worker-cuda"]
    assert cuda["environment"]["WHISPER__INFERENCE_DEVICE"] == "cuda"
    assert cuda["environment"]["WHISPER__COMPUTE_TYPE"] == "float16"
    (device,) = cuda["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]


def test_defaults_build_settings_the_app_accepts(tmp_path: Path) -> None:
    services = render(tmp_path)["services"]
    for name in APP_SERVICES:
        settings = load_settings(services[name]["environment"], cwd=tmp_path)
        assert settings.mode == "kafka"
        assert settings.kafka.bootstrap_servers == "kafka:9092"
        assert settings.kafka.request_topic == "whisperx.jobs"
        assert settings.kafka.dead_letter_topic == "whisperx.jobs.dlq"
        assert settings.kafka.partitions == 6
        assert settings.s3.endpoint_url == "http://minio:9000"
        assert plain(settings.api_key) == DEFAULT_API_KEY
    assert services["worker-cpu"]["deploy"]["replicas"] == 2
    assert services["worker-cuda"]["deploy"]["replicas"] == 1


def test_environment_reaches_the_settings(tmp_path: Path) -> None:
    services = render(tmp_path, OVERRIDES)["services"]
    expected = {
        ("kafka", "request_topic"): "t.jobs",
        ("kafka", "dead_letter_topic"): "t.jobs.dead",
        ("kafka", "consumer_group"): "t-workers",
        ("kafka", "partitions"): 7,
        ("kafka", "lease_seconds"): 45.0,
        ("s3", "bucket"): "t-bucket",
        ("s3", "access_key_id"): "t-access",
        ("s3", "secret_access_key"): "t-secret-key",
        ("s3", "region"): "eu-west-3",
        ("whisper", "model"): "tiny.en",
        ("jobs", "max_attempts"): 5,
    }
    for name in APP_SERVICES:
        settings = load_settings(services[name]["environment"], cwd=tmp_path)
        for (group, field), value in expected.items():
            assert plain(getattr(getattr(settings, group), field)) == value, (name, group, field)
        assert plain(settings.api_key) == "t-key"
    cpu_worker = load_settings(services["worker-cpu"]["environment"], cwd=tmp_path)
    assert cpu_worker.whisper.cpu_threads == 2
    minio = services["minio"]["environment"]
    assert (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]) == ("t-access", "t-secret-key")
    assert services["worker-cpu"]["deploy"]["replicas"] == 4
    assert services["worker-cuda"]["deploy"]["replicas"] == 3
    (device,) = services["worker-cuda"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["device_ids"] == ["1"]
    assert services["api"]["ports"][0]["published"] == "8181"


def test_refuses_to_start_without_an_api_key(tmp_path: Path) -> None:
    for key in (None, ""):
        done = run_compose(tmp_path, "--profile", "cpu", "config", api_key=key)
        assert done.returncode != 0, key
        assert API_KEY_REQUIRED in done.stderr, done.stderr
    assert run_compose(tmp_path, "--profile", "cpu", "config", api_key="k").returncode == 0


def test_config_rejects_a_broken_file(tmp_path: Path) -> None:
    """The check can fail: a misspelt key (`profile:`) is a schema error, not a warning."""
    broken = tmp_path / "compose-kafka.yaml"
    text = COMPOSE_FILE.read_text()
    assert "profiles: [cpu]" in text
    broken.write_text(text.replace("profiles: [cpu]", "profile: [cpu]"))
    done = run_compose(tmp_path, "--profile", "cpu", "config", file=broken)
    assert done.returncode != 0
    assert "profile" in done.stderr


def test_the_minio_image_is_past_the_session_policy_escalation_fix() -> None:
    # CVE-2025-62506 (service/STS accounts escaping their session policy) was fixed in
    # RELEASE.2025-10-15T17-29-55Z; the tags sort by date.
    for path in (COMPOSE_FILE, REPO / ".env.example"):
        tags = re.findall(r"minio/minio:(RELEASE\.[0-9TZ-]+)", path.read_text())
        assert tags, path
        assert all(tag >= "RELEASE.2025-10-15T17-29-55Z" for tag in tags), (path, tags)
