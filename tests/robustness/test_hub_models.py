"""Hub model names on a real `whisperx-api serve` process with downloads on, offline
(`HF_HUB_OFFLINE=1`, as `tests.server` starts every server): only an admin key, or a name in
`MODELS__ALLOWED`, may make the server fetch a model, and a name it cannot get now is refused
at submit in both endpoint families and in a live `session.update`, never a failed job later,
never a 500, never library text."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio import DATA
from tests.realtime_client import next_event, open_session, send
from tests.server import ServerProcess, serving

pytestmark = pytest.mark.slow

USER = {"Authorization": "Bearer sk-user"}
ADMIN = {"Authorization": "Bearer sk-admin"}
ENDPOINTS = ("/v1/audio/transcriptions", "/transcription")
# What an exception's class name or a hub client's own words look like in a message.
LIBRARY_TEXT = re.compile(r"[A-Za-z]+(Error|Exception)\b|Errno|huggingface|Traceback")


def env(root: Path, **extra: str) -> dict[str, str]:
    return {
        "JOBS__DATA_DIR": str(root / "data"),
        "WHISPER__CACHE_DIR": str(root / "cache"),
        "WHISPER__MODEL": "tiny.en",
        "WHISPER__DOWNLOAD": "true",
        **extra,
    }


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("hub-keyed")
    settings = env(
        root, API_KEY="sk-user", ADMIN_API_KEY="sk-admin", MODELS__ALLOWED="small,medium.en"
    )
    with serving(settings, root / "server.log") as running:
        yield running


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("hub-open")
    with serving(env(root), root / "server.log") as running:
        yield running


def submit(server: ServerProcess, path: str, model: str, headers: dict[str, str]) -> Any:
    form = {"model": model}
    if path == "/transcription":
        form["sync"] = "false"
    return httpx.post(
        server.base_url + path,
        files={"file": ("a.mp3", (DATA / "good_short.mp3").read_bytes())},
        data=form,
        headers=headers,
        timeout=120,
    )


def refusal(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, "model"), error
    message: str = error["message"]
    assert not LIBRARY_TEXT.search(message), message
    return message


def queued_jobs(server: ServerProcess, headers: dict[str, str]) -> int:
    status = httpx.get(f"{server.base_url}/status", headers=headers).json()
    counts: int = status["queue_state"]["queued_jobs"]
    return counts


@pytest.mark.parametrize("path", ENDPOINTS)
def test_an_ordinary_key_cannot_make_the_server_download(keyed: ServerProcess, path: str) -> None:
    message = refusal(submit(keyed, path, "large-v3", USER), 403, "admin_key_required")
    assert "MODELS__ALLOWED" in message
    assert "tiny.en" in message  # what is available instead


@pytest.mark.parametrize("path", ENDPOINTS)
def test_an_admin_key_offline_gets_model_not_found_listing_what_is_available(
    keyed: ServerProcess, path: str
) -> None:
    message = refusal(submit(keyed, path, "large-v3", ADMIN), 400, "model_not_found")
    assert "large-v3" in message
    assert "Available models: base, tiny.en" in message or "tiny.en" in message


@pytest.mark.parametrize("path", ENDPOINTS)
def test_an_allowed_name_is_open_to_every_key_but_offline_is_not_found(
    keyed: ServerProcess, path: str
) -> None:
    message = refusal(submit(keyed, path, "small", USER), 400, "model_not_found")
    assert "cannot be reached" in message


@pytest.mark.parametrize("path", ENDPOINTS)
def test_without_keys_offline_hub_names_are_model_not_found_at_submit(
    open_server: ServerProcess, path: str
) -> None:
    message = refusal(submit(open_server, path, "large-v3", {}), 400, "model_not_found")
    assert "tiny.en" in message
    assert queued_jobs(open_server, {}) == 0  # refused at submit: no job to fail later


def test_local_names_still_pass_for_every_key(keyed: ServerProcess) -> None:
    for model in ("whisper-1", "tiny.en"):
        accepted = submit(keyed, "/transcription", model, USER)
        assert accepted.status_code == 202, accepted.text


def test_models_list_offers_whisper_1(keyed: ServerProcess) -> None:
    names = [m["id"] for m in httpx.get(f"{keyed.base_url}/v1/models", headers=USER).json()["data"]]
    assert "whisper-1" in names
    assert "tiny.en" in names


async def live_refusal(server: ServerProcess, key: str, model: str) -> dict[str, Any]:
    url = server.base_url.replace("http", "ws") + "/v1/realtime?intent=transcription"
    update = {"type": "transcription", "audio": {"input": {"transcription": {"model": model}}}}
    async with open_session(url, key) as ws:
        await next_event(ws, "session.created")
        await send(ws, {"type": "session.update", "session": update})
        event = await next_event(ws, "error", "session.updated")
    return event


@pytest.mark.parametrize(
    ("key", "code"), [("sk-user", "admin_key_required"), ("sk-admin", "model_not_found")]
)
def test_a_live_session_update_is_gated_the_same_way(
    keyed: ServerProcess, key: str, code: str
) -> None:
    event = asyncio.run(live_refusal(keyed, key, "large-v3"))
    assert event["type"] == "error", event
    assert event["error"]["code"] == code, event
    assert event["error"]["param"] == "session.audio.input.transcription.model", event
    assert not LIBRARY_TEXT.search(event["error"]["message"]), event
