"""Model management abuse against a real `whisperx-api serve` process, on the real catalog.

A client names what the server loads only from the allow-list; ordinary keys cannot load or
unload; spellings never add copies; `MODELS__MAX_LOADED` never evicts a model a job is using;
a device the machine lacks is refused. Every case asserts the exact answer and what is loaded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio import DATA, looped_flac
from tests.server import ServerProcess, serving
from whisperx_api.pipeline.catalog import ModelCatalog

pytestmark = pytest.mark.slow

USER = {"Authorization": "Bearer sk-user"}
BOB = {"Authorization": "Bearer sk-bob"}  # a plain keys-file entry
ADMIN = {"Authorization": "Bearer sk-admin"}  # ADMIN_API_KEY
OPS = {"Authorization": "Bearer sk-ops"}  # a keys-file entry marked admin
MANAGEMENT = [
    ("/models/load", {"model": "mini"}),
    ("/models/unload", {"model": "mini"}),
    ("/align_models/load", {"language": "en"}),
    ("/align_models/unload", {"language": "en"}),
    ("/diarize_models/load", {"model": "senko"}),
    ("/diarize_models/unload", {"model": "senko"}),
]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory with two real models (copies of the bundled tiny.en, by link), a keys
    file with one admin entry and one plain entry, and a model cache shared by the servers."""
    root = tmp_path_factory.mktemp("model-abuse")
    bundled = Path(ModelCatalog("tiny.en", root / "cache").resolve("tiny.en").source)
    for name in ("mini", "mini2"):
        target = root / "models" / name
        target.mkdir(parents=True)
        for item in bundled.iterdir():
            (target / item.name).symlink_to(item)
    keys = {"sk-ops": {"name": "ops", "admin": True}, "sk-bob": "bob"}
    (root / "keys.json").write_text(json.dumps(keys), encoding="utf-8")
    return root


def server_env(root: Path, data: str, **extra: str) -> dict[str, str]:
    return {
        "API_KEY": "sk-user",
        "ADMIN_API_KEY": "sk-admin",
        "API_KEYS_FILE": str(root / "keys.json"),
        "WHISPER_TMP_FILES": str(root / data),
        "WHISPER__CACHE_DIR": str(root / "cache"),
        "WHISPER_MODELS_DIR": str(root / "models"),
        "WHISPER__MODEL": "tiny.en",
        "WHISPER__DOWNLOAD": "false",
        "WHISPER_DEVICE": "cpu",
        "MODELS__MAX_LOADED": "2",
        **extra,
    }


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServerProcess]:
    with serving(server_env(root, "data"), root / "server.log") as running:
        yield running


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    """A client on a server with nothing loaded (each case starts from the same state)."""
    with httpx.Client(base_url=server.base_url, timeout=300) as http:
        for model in http.get("/models/list", headers=ADMIN).json()["models"]:
            assert http.post("/models/unload", data={"model": model}, headers=ADMIN).is_success
        yield http


def error_of(response: httpx.Response) -> tuple[int, str, str | None, str | None]:
    error = response.json()["error"]
    return response.status_code, error["type"], error["code"], error["param"]


def loaded(client: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/models/list", headers=USER).json()
    return body


MODEL_NOT_FOUND = (400, "invalid_request_error", "model_not_found", "model")


def test_a_path_to_a_real_model_directory_is_refused_in_every_spelling(
    client: httpx.Client, root: Path
) -> None:
    models = root / "models"
    for spelling in (
        str(models / "mini"),
        f"{models}//mini",
        f"{models}/./mini",
        f"{models}/mini2/../mini",
        "./mini",
        "mini/",
    ):
        answer = client.post("/models/load", data={"model": spelling}, headers=ADMIN)
        assert error_of(answer) == MODEL_NOT_FOUND, spelling
    listing = loaded(client)
    assert listing["models"] == []
    assert listing["loads"]["mini"] == 0


def test_dot_dot_in_an_alignment_language_is_refused(client: httpx.Client) -> None:
    for language in ("../../tmp", "..", "en/../..", "/tmp"):
        answer = client.post("/align_models/load", data={"language": language}, headers=ADMIN)
        assert error_of(answer) == (400, "invalid_request_error", "model_not_found", "language")
    assert client.get("/align_models/list", headers=USER).json() == {"models": []}


def test_spellings_of_one_model_load_one_copy(client: httpx.Client, root: Path) -> None:
    answers = [
        client.post("/models/load", data={"model": spelling}, headers=ADMIN)
        for spelling in ("mini", " mini", "mini\t", "mini ")
    ]
    refused = client.post("/models/load", data={"model": f"{root}/models//mini"}, headers=ADMIN)
    assert [a.json() for a in answers] == [{"status": "success", "model": "mini"}] * 4
    assert error_of(refused) == MODEL_NOT_FOUND
    listing = loaded(client)
    assert listing["models"] == ["mini"]
    assert listing["loads"]["mini"] == 1


def test_unknown_names_and_hub_names_without_downloads_are_refused(client: httpx.Client) -> None:
    audio = (DATA / "good_short.mp3").read_bytes()
    for name in ("no-such-model", "large-v3", "Systran/faster-whisper-large-v3"):
        load = client.post("/models/load", data={"model": name}, headers=ADMIN)
        submit = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.mp3", audio)},
            data={"model": name},
            headers=USER,
        )
        assert error_of(load) == MODEL_NOT_FOUND, name
        assert error_of(submit) == MODEL_NOT_FOUND, name
    diarize = client.post(
        "/diarize_models/load", data={"model": "pyannote/speaker-diarization-3.1"}, headers=ADMIN
    )
    assert error_of(diarize) == MODEL_NOT_FOUND
    assert loaded(client)["models"] == []
    assert client.get("/diarize_models/list", headers=USER).json() == {"models": []}


def test_an_ordinary_key_may_not_load_or_unload_and_no_key_is_401(client: httpx.Client) -> None:
    for route, form in MANAGEMENT:
        for headers in (USER, BOB):
            answer = client.post(route, data=form, headers=headers)
            assert error_of(answer) == (403, "permission_error", "admin_key_required", None)
        anonymous = client.post(route, data=form)
        assert error_of(anonymous) == (401, "authentication_error", "invalid_api_key", None)
        assert anonymous.headers["www-authenticate"] == "Bearer"
    assert loaded(client)["models"] == []


def test_admin_keys_load_and_unload(client: httpx.Client) -> None:
    by_env = client.post("/models/load", data={"model": "mini"}, headers=ADMIN)
    by_file = client.post("/models/load", data={"model": "mini2"}, headers=OPS)
    assert by_env.json() == {"status": "success", "model": "mini"}
    assert by_file.json() == {"status": "success", "model": "mini2"}
    assert loaded(client)["models"] == ["mini", "mini2"]
    unloaded = client.post("/models/unload", data={"model": "mini"}, headers=OPS)
    assert unloaded.json() == {"status": "success", "model": "mini"}
    assert loaded(client)["models"] == ["mini2"]


def test_a_device_the_machine_lacks_is_refused_and_no_job_is_made(
    client: httpx.Client, root: Path
) -> None:
    before = sorted((root / "data").rglob("*"))
    answer = client.post(
        "/transcription",
        files={"file": ("a.mp3", (DATA / "good_short.mp3").read_bytes())},
        data={"model": "mini", "device": "cuda", "device_index": "64"},
        headers=USER,
    )
    assert error_of(answer) == (400, "invalid_request_error", None, "device")
    assert "CUDA device 64 is not available" in answer.json()["error"]["message"]
    assert sorted((root / "data").rglob("*")) == before
    assert loaded(client)["models"] == []


def long_speech(path: Path, repeats: int) -> Path:
    """Real speech, `repeats` times the 48 s narration: minutes of work for the model."""
    return looped_flac(DATA / "narration.flac", path, repeats)


def test_max_loaded_evicts_the_least_recently_used_idle_model_never_one_in_use(
    root: Path, tmp_path: Path
) -> None:
    # One 30 s chunk per batch: progress shows from the first chunk on, and the job keeps its
    # model for the 19 chunks still to decode.
    env = server_env(root, "data-lru", WHISPER__BATCH_SIZE="1", JOBS__SHUTDOWN_GRACE_SECONDS="0")
    audio = long_speech(tmp_path / "long.flac", repeats=12).read_bytes()  # 10 minutes of speech
    with (
        serving(env, tmp_path / "server.log") as server,
        httpx.Client(base_url=server.base_url, timeout=300) as http,
    ):
        job = http.post(
            "/transcription",
            files={"file": ("long.flac", audio)},
            data={"model": "mini", "sync": "false"},
            headers=USER,
        ).json()
        status = wait_for_progress(http, job["status_url"])
        assert status["status"] == "Processing", status  # it holds `mini` now
        # Both slots: `mini` (in use, least recently used) and `tiny.en` (idle).
        first = http.post("/models/load", data={"model": "tiny.en"}, headers=ADMIN)
        # A third model evicts the idle one, never the one in use.
        second = http.post("/models/load", data={"model": "mini2"}, headers=ADMIN)
        listing = http.get("/models/list", headers=USER).json()
        refused = http.post("/models/unload", data={"model": "mini"}, headers=ADMIN)
        after = http.get(job["status_url"], headers=USER).json()
    assert first.json() == {"status": "success", "model": "tiny.en"}
    assert second.json() == {"status": "success", "model": "mini2"}
    assert listing["models"] == ["mini", "mini2"]
    assert {k: listing["loads"][k] for k in ("mini", "mini2", "tiny.en")} == {
        "mini": 1,
        "mini2": 1,
        "tiny.en": 1,
    }
    assert error_of(refused) == (409, "conflict_error", "conflict", None)
    assert after["status"] == "Processing", "the job must still hold its model for this check"


def wait_for_progress(http: httpx.Client, status_url: str) -> dict[str, Any]:
    """The job's status once it reports transcription progress (so it holds its model)."""
    deadline = time.monotonic() + 600
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = http.get(status_url, headers=USER).json()
        if status["status"] == "Processing" and (status.get("progress") or 0) > 0:
            return status
        assert status["status"] in ("Queued", "Processing"), status
        time.sleep(0.2)
    return status
