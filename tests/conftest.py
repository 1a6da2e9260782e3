"""Shared fixtures (settings in a temp dir, an app on the fake backend, an ASGI client), the
markers every test gets from where it lives and what it uses, and the suite's one rule about
skips: there are none.

Markers (`-m` selects on them; `make check` runs what has none of them):
- `server`: lives in tests/integration, tests/robustness or tests/browser (real processes, the
  whole stack end to end);
- `kafka`: uses the `kafka_bootstrap` broker (a distributed deployment);
- `model`: runs real models or real processes (`slow` is its older spelling, still accepted);
- `browser`: drives Chromium (tests/browser).

Parallel runs (pytest-xdist, `--dist loadgroup`): a test that uses a module- or class-scoped
fixture (a shared server, a Kafka deployment, a loaded model) is put in its module's
`xdist_group`, so one worker builds that fixture once; a test that uses a session fixture named
in `SESSION_GROUPS` (the shared Kafka deployment) goes to that fixture's group, across modules;
every other test goes to whichever worker is free (tests/xdist_groups.py carries the groups to
the scheduler).

A skipped test is a check that silently did not run (a missing tool, package or network
feature), so any skip, at collection or at run time, fails the run: the suite passes on a fresh
machine only if every test ran there. pytest's own exit code 5 (no tests collected) is a failure
already.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.fakes import FakeDiarizer, FakeTranscriber
from tests.shared_stack import XDIST_GROUP as SHARED_STACK_GROUP
from whisperx_api.api.app import create_app
from whisperx_api.config import Settings
from whisperx_api.pipeline.registry import default_registry
from whisperx_api.runtime.embedded import build_embedded

# OpenMP threads (torch's, CTranslate2's) spin while they wait for work unless told otherwise. A
# run of the suite has more busy processes than cores, so a spinning thread takes the CPU from one
# with work to do: on a loaded 2-core machine, diarizing a 24 s call cost 20-25 CPU-s with the
# default policy and 3 CPU-s with PASSIVE (same result). Set here, before any test loads an OpenMP
# runtime; every server, worker and command the tests start inherits it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

TESTS = Path(__file__).parent
SERVER_DIRS = frozenset({"integration", "robustness", "browser"})
SHARED_SCOPES = frozenset({"class", "module", "package"})
# Session fixtures built once per xdist worker: every test that uses one goes to one worker.
SESSION_GROUPS = {"shared_stack": SHARED_STACK_GROUP}
# `SUITE_CPU_LOG=<file>`: each test's wall and CPU seconds (tests/cpu_log.py).
pytest_plugins = ["tests.cpu_log"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Markers from each test's place and fixtures; one xdist group per module whose tests
    share a fixture wider than a test."""
    for item in items:
        parts = item.path.relative_to(TESTS).parts
        if parts[0] in SERVER_DIRS:
            item.add_marker(pytest.mark.server)
        if parts[0] == "browser":
            item.add_marker(pytest.mark.browser)
        if "kafka_bootstrap" in item.fixturenames:
            item.add_marker(pytest.mark.kafka)
        if item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.model)
        if item.get_closest_marker("xdist_group") is None:
            group = _xdist_group(item)
            if group is not None:
                item.add_marker(pytest.mark.xdist_group(name=group))
    if hasattr(config, "workerinput"):  # an xdist worker
        from tests.xdist_groups import write_groups

        items.sort(key=_heaviness(items))
        write_groups(config, items)


def _heaviness(items: list[pytest.Item]) -> Callable[[pytest.Item], int]:
    """Sort key for a parallel run: modules with a Kafka deployment first, then those with real
    servers or models, then the rest, so the long tests start early and the quick ones fill the
    workers at the end. One key per module (its heaviest test's), so a module stays together and
    its module-scoped fixtures are built once."""
    weight: dict[Path, int] = {}
    for item in items:
        if item.get_closest_marker("kafka"):
            own = 0
        elif item.get_closest_marker("server") or item.get_closest_marker("model"):
            own = 1
        else:
            own = 2
        weight[item.path] = min(own, weight.get(item.path, own))
    return lambda item: weight[item.path]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """On the controller, for `--dist loadgroup`: the scheduler that reads the workers' groups."""
    if config.getoption("dist") != "loadgroup":
        return None
    from tests.xdist_groups import GroupScheduling

    return GroupScheduling(config, log, _groups_dir(config))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """On the controller: tell each worker where to write its groups."""
    from tests.xdist_groups import configure_node

    configure_node(node, _groups_dir(node.config))


_GROUPS_DIR = pytest.StashKey[Path]()


def _groups_dir(config: pytest.Config) -> Path:
    """The controller's directory for the workers' group files, made once per run."""
    if _GROUPS_DIR not in config.stash:
        config.stash[_GROUPS_DIR] = Path(tempfile.mkdtemp(prefix="xdist-groups-"))
    return config.stash[_GROUPS_DIR]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _GROUPS_DIR in config.stash:
        shutil.rmtree(config.stash[_GROUPS_DIR], ignore_errors=True)


def _xdist_group(item: pytest.Item) -> str | None:
    """The group of a test that uses a shared session fixture, else its module's if it uses a
    fixture wider than a test, else none."""
    for fixture, group in SESSION_GROUPS.items():
        if fixture in item.fixturenames:
            return group
    return item.nodeid.split("::", 1)[0] if _shares_a_fixture(item) else None


def _shares_a_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        definitions[-1].scope in SHARED_SCOPES
        for definitions in info.name2fixturedefs.values()
        if definitions
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Any skipped test fails the run (on an xdist controller, the workers' reports count); a
    run whose every module was skipped at import fails the same way, not as "no tests"."""
    if hasattr(session.config, "workerinput"):  # an xdist worker: its controller decides
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        if reporter is not None:
            reporter.write_sep(
                "=", f"{len(skipped)} skipped: the suite allows none (tests/conftest.py)", red=True
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings rooted in this test's temp dir; keyword groups override defaults."""

    def build(**groups: Any) -> Settings:
        jobs = {"data_dir": tmp_path / "data", **groups.pop("jobs", {})}
        whisper = {"cache_dir": tmp_path / "cache", **groups.pop("whisper", {})}
        return Settings(jobs=jobs, whisper=whisper, **groups)

    return build


def fake_app(
    settings: Settings, backend: FakeTranscriber, diarizer: FakeDiarizer | None = None
) -> FastAPI:
    """The real app and runtime with fake backends registered in the real registry."""
    registry = default_registry()
    registry.register_transcription("fake", lambda _settings: backend)
    registry.diarization_backends.register("fake", lambda _settings: diarizer or FakeDiarizer())
    backends = settings.backends.model_copy(update={"transcription": "fake", "diarization": "fake"})
    settings = settings.model_copy(update={"backends": backends})
    return create_app(settings, build_embedded(settings, registry))


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give an in-process client."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
