"""Shared fixtures (settings in a temp dir, an app on the fake backend, an ASGI client) and the
suite's one rule about skips: there are none.

A skipped test is a check that silently did not run (a missing tool, package or network
feature), so any skip, at collection or at run time, fails the run: the suite passes on a fresh
machine only if every test ran there. pytest's own exit code 5 (no tests collected) is a failure
already.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.fakes import FakeDiarizer, FakeTranscriber
from whisperx_api.api.app import create_app
from whisperx_api.config import Settings
from whisperx_api.pipeline.registry import default_registry
from whisperx_api.runtime.embedded import build_embedded


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Any skipped test fails the run (on an xdist controller, the workers' reports count)."""
    if hasattr(session.config, "workerinput"):  # an xdist worker: its controller decides
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == pytest.ExitCode.OK:
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
