"""The stores every contract test runs against: SQLite, and S3 on one moto server per session
(the job stores, and the saved-voice stores beside them)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.s3_server import s3_endpoint
from whisperx_api.config import S3Settings
from whisperx_api.distributed.s3 import ensure_bucket, make_s3_client
from whisperx_api.distributed.s3_store import S3JobStore
from whisperx_api.distributed.s3_voices import S3VoiceStore
from whisperx_api.jobs.ports import JobStore
from whisperx_api.jobs.store import SqliteJobStore
from whisperx_api.voices.ports import VoiceStore
from whisperx_api.voices.sqlite import SqliteVoiceStore

__all__ = ["s3_endpoint"]

OpenStore = Callable[[], JobStore]
OpenVoiceStore = Callable[[], VoiceStore]


def _opener(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite: Callable[[Path], Any], s3: Any
) -> Iterator[Callable[[], Any]]:
    """Opens another handle on one fresh store, as another process (or replica) would."""
    opened: list[Any] = []
    if request.param == "sqlite":
        path = tmp_path / "jobs.sqlite3"

        def open_one() -> Any:
            opened.append(sqlite(path))
            return opened[-1]

    else:
        endpoint = request.getfixturevalue("s3_endpoint")  # one moto server for the session
        settings = S3Settings(endpoint_url=endpoint, access_key_id="t", secret_access_key="t")
        bucket = f"c-{uuid.uuid4().hex[:16]}"
        ensure_bucket(make_s3_client(settings), bucket)

        def open_one() -> Any:
            opened.append(s3(make_s3_client(settings), bucket))
            return opened[-1]

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture(params=["sqlite", "s3"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    yield from _opener(request, tmp_path, SqliteJobStore, S3JobStore)


@pytest.fixture
def store(open_store: OpenStore) -> JobStore:
    return open_store()


@pytest.fixture(params=["sqlite", "s3"])
def open_voice_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenVoiceStore]:
    yield from _opener(request, tmp_path, SqliteVoiceStore, S3VoiceStore)


@pytest.fixture
def voice_store(open_voice_store: OpenVoiceStore) -> VoiceStore:
    return open_voice_store()
