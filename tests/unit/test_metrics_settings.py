"""The metrics settings: read from the environment by their nested names, checked at startup."""

from __future__ import annotations

from pathlib import Path

import pytest

from whisperx_api.errors import ConfigError
from whisperx_api.settings_loader import load_settings


def test_defaults_keep_metrics_keyed_and_the_worker_port_off(tmp_path: Path) -> None:
    settings = load_settings({}, cwd=tmp_path)
    assert settings.metrics.public is False
    assert settings.worker.metrics_port is None


def test_environment_sets_them(tmp_path: Path) -> None:
    env = {
        "METRICS__PUBLIC": "true",
        "WORKER__METRICS_PORT": "9100",
        "WORKER__METRICS_HOST": "127.0.0.1",
    }
    settings = load_settings(env, cwd=tmp_path)
    assert settings.metrics.public is True
    assert settings.worker.metrics_port == 9100
    assert settings.worker.metrics_host == "127.0.0.1"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WORKER__METRICS_PORT", "70000"),
        ("WORKER__METRICS_PORT", "0"),
        ("METRICS__PUBLIC", "maybe"),
    ],
)
def test_a_bad_value_names_its_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value}, cwd=tmp_path)
