"""The import-linter contracts in pyproject.toml hold today, and break on the imports they forbid.

Each case copies the package, injects one import and runs `lint-imports` on the copy, so a
contract that had silently stopped checking anything would be caught here.
"""

from __future__ import annotations

import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import whisperx_api

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(whisperx_api.__file__).parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
LAYERS = "Layers: nothing imports upward"
BOUNDARY = "Only the runtime selector and the worker command import the distributed package"
INTAKE = "The HTTP layer reaches the pipeline only through the runtime's services"
CONTRACTS = (LAYERS, BOUNDARY, INTAKE)

LAZY_DISTRIBUTED_IMPORT = """

def _injected() -> None:
    from whisperx_api.distributed import runtime  # noqa: F401
"""


def lint_copy(tmp_path: Path, injections: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run lint-imports with our contracts on a copy of the package with `injections` appended."""
    shutil.copytree(PACKAGE, tmp_path / "whisperx_api", ignore=shutil.ignore_patterns("*.pyc"))
    for module, code in injections.items():
        with (tmp_path / "whisperx_api" / module).open("a", encoding="utf-8") as source:
            source.write(code)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def verdicts(output: str) -> dict[str, str]:
    """Each contract's name -> KEPT or BROKEN, from lint-imports' summary lines."""
    found = {}
    for line in output.splitlines():
        for name in CONTRACTS:
            if line.startswith(name + " "):
                found[name] = line[len(name) + 1 :].split()[0]
    return found


def test_the_contracts_name_every_top_level_module() -> None:
    """A new package or module outside both contracts would be checked by neither."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}
    everything = {f"whisperx_api.{m.name}" for m in pkgutil.iter_modules([str(PACKAGE)])}
    layered = {name for layer in contracts["layers"]["layers"] for name in re.split(r"[|:]", layer)}
    assert {name.strip() for name in layered} == everything
    sources = set(contracts["distributed-boundary"]["source_modules"])
    assert sources == everything - {"whisperx_api.distributed"}


def test_the_contracts_hold_on_the_package(tmp_path: Path) -> None:
    done = lint_copy(tmp_path, {})
    assert done.returncode == 0, done.stdout + done.stderr
    assert verdicts(done.stdout) == dict.fromkeys(CONTRACTS, "KEPT")


@pytest.mark.parametrize(
    ("module", "code", "broken"),
    [
        pytest.param(
            "jobs/service.py",
            "\nimport whisperx_api.distributed.kafka_queue\n",
            {LAYERS, BOUNDARY},
            id="core-module-imports-distributed",
        ),
        pytest.param(
            "api/routes/jobs.py",
            LAZY_DISTRIBUTED_IMPORT,
            {BOUNDARY},
            id="route-imports-distributed-lazily",
        ),
        pytest.param(
            "pipeline/runner.py",
            "\nimport whisperx_api.jobs.service\n",
            {LAYERS},
            id="pipeline-imports-jobs",
        ),
        pytest.param(
            "domain/job.py",
            "\nfrom whisperx_api.config import Settings\n",
            {LAYERS},
            id="domain-imports-config",
        ),
        pytest.param(
            "realtime/session.py",
            "\nimport whisperx_api.api.routes.realtime\n",
            {LAYERS},
            id="realtime-imports-api",
        ),
        pytest.param(
            "realtime/engine.py",
            LAZY_DISTRIBUTED_IMPORT,
            {LAYERS, BOUNDARY},
            id="realtime-imports-distributed-lazily",
        ),
        pytest.param(
            "api/audio_source.py",
            "\nfrom whisperx_api.pipeline.stages.duration import declared_seconds\n",
            {INTAKE},
            id="api-imports-pipeline",
        ),
        pytest.param(
            "api/routes/models.py",
            "\n\ndef _lazy() -> None:\n    import whisperx_api.pipeline.runner  # noqa: F401\n",
            {INTAKE},
            id="route-imports-pipeline-lazily",
        ),
        pytest.param(
            "distributed/kafka_worker.py",
            "\nimport whisperx_api.api.app\n",
            {LAYERS},
            id="distributed-imports-api",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, code: str, broken: set[str]
) -> None:
    done = lint_copy(tmp_path, {module: code})
    assert done.returncode != 0, done.stdout
    expected = {name: "BROKEN" if name in broken else "KEPT" for name in CONTRACTS}
    assert verdicts(done.stdout) == expected, done.stdout


def test_embedded_mode_never_imports_the_distributed_package(tmp_path: Path) -> None:
    """The selector and the CLI import it lazily: an embedded server and CLI load none of it."""
    probe = (
        "import json, sys\n"
        "import whisperx_api.cli\n"
        "from whisperx_api.api.app import create_app\n"
        "from whisperx_api.settings_loader import load_settings\n"
        "create_app(load_settings())\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('whisperx_api'))))\n"
    )
    env = {
        **os.environ,
        "MODE": "direct",
        "JOBS__DATA_DIR": str(tmp_path / "data"),
        "WHISPER__CACHE_DIR": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "whisperx_api.api.app" in loaded
    assert [m for m in loaded if m.startswith("whisperx_api.distributed")] == []
