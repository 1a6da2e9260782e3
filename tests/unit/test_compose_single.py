"""compose.yaml (one server, profiles cpu and cuda) and .env.example, checked by Compose v2's own
`docker compose config` (see test_compose_file.py for how the CLI is provided)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.unit.test_compose_file import (
    API_KEY_REQUIRED,
    DEFAULT_API_KEY,
    REPO,
    run_compose,
    setting_names,
)
from tests.unit.test_compose_file import COMPOSE_FILE as KAFKA_FILE
from whisperx_api.settings_loader import load_settings

SINGLE_FILE = REPO / "compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
SERVERS = {"server-cpu": "cpu", "server-cuda": "cuda"}
NOT_SETTINGS = {"NVIDIA_DRIVER_CAPABILITIES"}
DATA_DIR = "/var/lib/whisperx-api"  # the image's JOBS__DATA_DIR
CACHE_DIR = "/cache"  # the image's WHISPER__CACHE_DIR and HF_HOME live here


def render(tmp_path: Path, *profiles: str, file: Path = SINGLE_FILE, **env: str) -> Any:
    args = [arg for profile in profiles for arg in ("--profile", profile)]
    done = run_compose(tmp_path, *args, "config", "--format", "json", file=file, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def variables(tmp_path: Path, file: Path) -> set[str]:
    """Every variable the file interpolates, as Compose itself lists them."""
    done = run_compose(tmp_path, "config", "--variables", "--format", "json", file=file)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


def documented() -> dict[str, bool]:
    """Names in .env.example -> whether the line is active (not commented out)."""
    names: dict[str, bool] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"(#\s*)?([A-Z][A-Z0-9_]*)=.*", line.strip())
        if match:
            names[match.group(2)] = match.group(1) is None
    return names


def test_config_passes_for_each_profile(tmp_path: Path) -> None:
    for profile in ("cpu", "cuda"):
        done = run_compose(tmp_path, "--profile", profile, "config", file=SINGLE_FILE)
        assert done.returncode == 0, done.stderr
        assert "WARN" not in done.stderr, "every variable the file uses needs a default"


def test_refuses_to_start_without_an_api_key(tmp_path: Path) -> None:
    for profile in ("cpu", "cuda"):
        for key in (None, ""):
            done = run_compose(
                tmp_path, "--profile", profile, "config", file=SINGLE_FILE, api_key=key
            )
            assert done.returncode != 0, (profile, key)
            assert API_KEY_REQUIRED in done.stderr, done.stderr
    with_key = run_compose(tmp_path, "--profile", "cpu", "config", file=SINGLE_FILE, api_key="k")
    assert with_key.returncode == 0, with_key.stderr


def test_each_profile_starts_one_server(tmp_path: Path) -> None:
    for service, profile in SERVERS.items():
        services = render(tmp_path, profile)["services"]
        assert set(services) == {service}, profile
        server = services[service]
        assert server["profiles"] == [profile]
        assert server["command"][:2] == ["whisperx-api", "serve"]
        assert server["ports"][0]["target"] == 8000
        assert server["ports"][0]["published"] == "8000"
    done = run_compose(tmp_path, "config", "--services", file=SINGLE_FILE)
    assert done.stdout.split() == [], "without a profile nothing starts"


def test_volumes_keep_jobs_and_models(tmp_path: Path) -> None:
    rendered = render(tmp_path, "cpu", "cuda")
    assert set(rendered["volumes"]) == {"jobs-data", "model-cache"}
    for service in SERVERS:
        mounts = {v["target"]: v["source"] for v in rendered["services"][service]["volumes"]}
        assert mounts == {DATA_DIR: "jobs-data", CACHE_DIR: "model-cache"}


def test_healthcheck_asks_the_health_endpoint(tmp_path: Path) -> None:
    services = render(tmp_path, "cpu", "cuda")["services"]
    for service in SERVERS:
        check = services[service]["healthcheck"]
        assert check["test"][0] == "CMD"
        assert "http://127.0.0.1:8000/health" in " ".join(check["test"])
        assert check["retries"] >= 3


def test_environment_is_real_settings_that_load(tmp_path: Path) -> None:
    services = render(tmp_path, "cpu", "cuda")["services"]
    known = setting_names()
    for service in SERVERS:
        environment = services[service]["environment"]
        unknown = set(environment) - known - NOT_SETTINGS
        assert not unknown, f"{service} sets {unknown}, which the app does not read"
        settings = load_settings(environment, cwd=tmp_path)
        assert settings.mode == "embedded"
        assert settings.api_key is not None
        assert settings.api_key.get_secret_value() == DEFAULT_API_KEY
        assert settings.metrics.public is False
    assert services["server-cpu"]["environment"]["WHISPER__INFERENCE_DEVICE"] == "cpu"
    cuda = services["server-cuda"]
    assert cuda["environment"]["WHISPER__INFERENCE_DEVICE"] == "cuda"
    (device,) = cuda["deploy"]["resources"]["reservations"]["devices"]
    assert (device["driver"], device["capabilities"], device["device_ids"]) == (
        "nvidia",
        ["gpu"],
        ["0"],
    )


def test_environment_reaches_the_settings(tmp_path: Path) -> None:
    env = {"API_KEY": "t-key", "METRICS__PUBLIC": "true", "WHISPER__MODEL": "tiny.en"}
    services = render(tmp_path, "cpu", **env, API_PORT="8282", WHISPER_CUDA_GPU="2")["services"]
    settings = load_settings(services["server-cpu"]["environment"], cwd=tmp_path)
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "t-key"
    assert settings.metrics.public is True
    assert settings.whisper.model == "tiny.en"
    assert services["server-cpu"]["ports"][0]["published"] == "8282"


def test_kafka_workers_expose_metrics(tmp_path: Path) -> None:
    services = render(tmp_path, "cpu", "cuda", file=KAFKA_FILE)["services"]
    for worker in ("worker-cpu", "worker-cuda"):
        settings = load_settings(services[worker]["environment"], cwd=tmp_path)
        assert settings.worker.metrics_port == 9100


def test_env_example_lists_every_variable_either_file_reads(tmp_path: Path) -> None:
    read = variables(tmp_path, SINGLE_FILE) | variables(tmp_path, KAFKA_FILE)
    listed = documented()
    assert read - set(listed) == set(), "undocumented in .env.example"
    assert set(listed) - read == set(), "documented but read by neither file"


def test_env_example_values_are_the_defaults(tmp_path: Path) -> None:
    """Copying .env.example to .env changes nothing until someone edits it."""
    for file in (SINGLE_FILE, KAFKA_FILE):
        command = ("--profile", "cpu", "--profile", "cuda", "config", "--format", "json")
        plain = run_compose(tmp_path, *command, file=file)
        example = run_compose(tmp_path, "--env-file", str(ENV_EXAMPLE), *command, file=file)
        assert plain.returncode == 0, plain.stderr
        assert example.returncode == 0, example.stderr
        assert json.loads(example.stdout) == json.loads(plain.stdout), file.name
