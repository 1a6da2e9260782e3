"""Client secrets (`POST /v1/realtime/client_secrets`): minted by a key, they open one live
session on `/v1/realtime` and nothing else. The real app over a real uvicorn WebSocket, with the
fake transcription backend in the real registry."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.audio import DATA
from tests.conftest import fake_app
from tests.fakes import FakeTranscriber
from tests.realtime_client import next_event, open_session, serve_in_thread
from whisperx_api.api.client_secrets import ClientSecrets
from whisperx_api.config import Settings
from whisperx_api.pipeline.hub import HubProbe
from whisperx_api.pipeline.registry import model_catalog
from whisperx_api.runtime.models import ModelAccess

pytestmark = pytest.mark.anyio

KEY = "sk-minter"
ADMIN = "sk-admin"
SUBPROTOCOL = "openai-insecure-api-key."
SESSION = {
    "type": "transcription",
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 16000},
            "transcription": {"model": "whisper-1", "language": "en", "prompt": "Acme"},
            "turn_detection": None,
        }
    },
}


class Clock:
    """Stands in for the store's wall clock, so that expiry needs no waiting."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Server:
    ws_url: str
    http_url: str
    clock: Clock
    app: FastAPI

    def mint(self, body: dict[str, Any] | None = None, key: str = KEY) -> httpx.Response:
        return httpx.post(
            f"{self.http_url}/v1/realtime/client_secrets",
            json=body if body is not None else {},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )

    def secret(self, body: dict[str, Any] | None = None) -> str:
        response = self.mint(body)
        assert response.status_code == 200, response.text
        return str(response.json()["value"])


@contextmanager
def secrets_server(
    make_settings: Callable[..., Settings], max_per_key: int = 16, **groups: Any
) -> Iterator[Server]:
    groups.setdefault("api_key", KEY)
    realtime = {"max_client_secrets_per_key": max_per_key, **groups.pop("realtime", {})}
    settings = make_settings(realtime=realtime, **groups)
    app: FastAPI = fake_app(settings, FakeTranscriber())
    clock = Clock()
    app.state.client_secrets = ClientSecrets(max_per_key, clock=clock)
    with serve_in_thread(app) as url:
        http = url.replace("ws://", "http://").split("/v1/")[0]
        yield Server(url, http, clock, app)


def refusal(refused: pytest.ExceptionInfo[InvalidStatus]) -> tuple[int, dict[str, Any]]:
    response = refused.value.response
    return response.status_code, json.loads(response.body)["error"]


async def test_a_minted_secret_opens_one_session_with_its_configuration(
    make_settings: Callable[..., Settings],
) -> None:
    with secrets_server(make_settings) as server:
        response = server.mint({"session": SESSION, "expires_after": {"seconds": 120}})
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"value", "expires_at", "session"}
        assert body["value"].startswith("ek_")
        assert body["expires_at"] == int(server.clock.now) + 120
        minted = body["session"]
        assert minted["type"] == "transcription"
        assert minted["audio"]["input"]["format"]["rate"] == 16000
        assert minted["audio"]["input"]["turn_detection"] is None
        protocols = ["realtime", SUBPROTOCOL + body["value"]]
        async with open_session(server.ws_url, headers={}, subprotocols=protocols) as ws:
            assert ws.subprotocol == "realtime"
            created = await next_event(ws)
        assert created["type"] == "session.created"
        assert created["session"]["id"] == minted["id"]
        audio = created["session"]["audio"]["input"]
        assert audio["format"] == {"type": "audio/pcm", "rate": 16000}
        assert audio["transcription"] == {"model": "whisper-1", "language": "en", "prompt": "Acme"}
        assert audio["turn_detection"] is None


async def test_a_secret_works_as_a_bearer_header_too_and_defaults_to_ten_minutes(
    make_settings: Callable[..., Settings],
) -> None:
    with secrets_server(make_settings) as server:
        response = server.mint()
        assert response.status_code == 200, response.text
        assert response.json()["expires_at"] == int(server.clock.now) + 600
        async with open_session(server.ws_url, response.json()["value"]) as ws:
            created = await next_event(ws)
        assert created["type"] == "session.created"
        assert created["session"]["audio"]["input"]["format"]["rate"] == 24000


async def test_a_used_secret_is_refused_with_a_clear_401(
    make_settings: Callable[..., Settings],
) -> None:
    with secrets_server(make_settings) as server:
        secret = server.secret()
        async with open_session(server.ws_url, secret) as ws:
            assert (await next_event(ws))["type"] == "session.created"
        with pytest.raises(InvalidStatus) as refused:
            async with open_session(server.ws_url, secret):
                pass
    status, error = refusal(refused)
    assert status == 401
    assert refused.value.response.headers["WWW-Authenticate"] == "Bearer"
    assert error["code"] == "invalid_client_secret"
    assert "already used" in error["message"]


async def test_an_expired_secret_is_refused_with_a_clear_401(
    make_settings: Callable[..., Settings],
) -> None:
    with secrets_server(make_settings) as server:
        secret = server.secret({"expires_after": {"anchor": "created_at", "seconds": 10}})
        server.clock.now += 10
        with pytest.raises(InvalidStatus) as refused:
            async with open_session(server.ws_url, secret):
                pass
    status, error = refusal(refused)
    assert (status, error["code"]) == (401, "invalid_client_secret")
    assert "expired" in error["message"]


async def test_an_unknown_secret_is_refused(make_settings: Callable[..., Settings]) -> None:
    with secrets_server(make_settings) as server, pytest.raises(InvalidStatus) as refused:
        async with open_session(server.ws_url, "ek_made_up"):
            pass
    status, error = refusal(refused)
    assert (status, error["code"]) == (401, "invalid_client_secret")
    assert "Unknown client secret" in error["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models"),
        ("POST", "/v1/audio/transcriptions"),
        ("GET", "/transcription/nope"),
        ("POST", "/v1/realtime/client_secrets"),
    ],
)
async def test_a_secret_on_any_other_endpoint_is_a_clear_401(
    make_settings: Callable[..., Settings], method: str, path: str
) -> None:
    with secrets_server(make_settings) as server:
        secret = server.secret()
        files = {"file": ("a.flac", (DATA / "en_recorded.flac").read_bytes())}
        response = httpx.request(
            method,
            server.http_url + path,
            headers={"Authorization": f"Bearer {secret}"},
            files=files if path == "/v1/audio/transcriptions" else None,
            data={"model": "whisper-1"} if path == "/v1/audio/transcriptions" else None,
            timeout=60,
        )
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"] == "Bearer"
        error = response.json()["error"]
        assert error["code"] == "invalid_client_secret"
        assert "/v1/realtime" in error["message"]
        # Refused there, it still opens its one session.
        async with open_session(server.ws_url, secret) as ws:
            assert (await next_event(ws))["type"] == "session.created"


async def test_a_disallowed_origin_is_refused_and_leaves_the_secret_unused(
    make_settings: Callable[..., Settings],
) -> None:
    cors = {"cors_origins": ["https://app.example"]}
    with secrets_server(make_settings, server=cors) as server:
        secret = server.secret()
        protocols = [SUBPROTOCOL + secret]
        with pytest.raises(InvalidStatus) as refused:
            async with open_session(
                server.ws_url, headers={"Origin": "https://evil.example"}, subprotocols=protocols
            ):
                pass
        status, error = refusal(refused)
        assert (status, error["code"], error["param"]) == (400, "cors_not_allowed", "Origin")
        headers = {"Origin": "https://app.example"}
        async with open_session(server.ws_url, headers=headers, subprotocols=protocols) as ws:
            assert (await next_event(ws))["type"] == "session.created"


async def test_minting_needs_a_key_and_a_valid_request(
    make_settings: Callable[..., Settings],
) -> None:
    with secrets_server(make_settings) as server:
        assert server.mint(key="sk-wrong").status_code == 401
        for body, param in [
            ({"expires_after": {"seconds": 5}}, "expires_after"),
            ({"expires_after": {"seconds": 7201}}, "expires_after"),
            ({"expires_after": {"anchor": "now", "seconds": 60}}, "expires_after"),
            ({"session": {"type": "realtime"}}, "session.type"),
            ({"session": {"audio": {"input": {"format": {"rate": 8000}}}}}, None),
        ]:
            response = server.mint(body)
            assert response.status_code == 400, (body, response.text)
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error"
            assert param is None or error["param"] == param, (body, error)
        huge = httpx.post(
            f"{server.http_url}/v1/realtime/client_secrets",
            content=b"{" + b" " * (70 * 1024) + b"}",
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
            timeout=60,
        )
        assert huge.status_code == 413, huge.text


async def test_a_key_holds_a_bounded_number_of_unused_secrets(
    make_settings: Callable[..., Settings],
) -> None:
    with secrets_server(make_settings, max_per_key=2) as server:
        first = server.secret()
        server.secret()
        response = server.mint()
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "too_many_client_secrets"
        assert "REALTIME__MAX_CLIENT_SECRETS_PER_KEY" in error["message"]
        async with open_session(server.ws_url, first) as ws:  # spending one frees a place
            assert (await next_event(ws))["type"] == "session.created"
        assert server.mint().status_code == 200
        server.clock.now += 601  # so does expiry
        assert server.mint().status_code == 200
        assert server.mint().status_code == 200


async def test_a_session_opened_by_a_secret_is_the_minting_key_s_and_dies_with_it(
    make_settings: Callable[..., Settings], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({KEY: "captions-page"}))
    with secrets_server(make_settings, api_key=None, api_keys_file=keys) as server:
        secret = server.secret()
        with caplog.at_level(logging.INFO, logger="whisperx_api.api.routes.realtime"):
            async with open_session(server.ws_url, secret) as ws:
                assert (await next_event(ws))["type"] == "session.created"
        assert "live session opened client=captions-page" in caplog.text
        revoked = server.secret()
        keys.write_text(json.dumps({"sk-other": "someone else"}))
        with pytest.raises(InvalidStatus) as refused:
            async with open_session(server.ws_url, revoked):
                pass
    status, error = refusal(refused)
    assert (status, error["code"]) == (401, "invalid_client_secret")
    assert "revoked" in error["message"]


async def test_a_server_that_opens_no_sessions_mints_no_secrets(
    make_settings: Callable[..., Settings],
) -> None:
    """An API replica in MODE=kafka without a model (its runtime has no live engine)."""
    settings = make_settings(api_key=KEY)
    app = fake_app(settings, FakeTranscriber())
    app.state.runtime.live = None
    with serve_in_thread(app) as url:
        response = httpx.post(
            url.replace("ws://", "http://").split("/v1/")[0] + "/v1/realtime/client_secrets",
            json={},
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=60,
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "realtime_unavailable"
    assert "REALTIME__ALLOW_IN_KAFKA_MODE" in error["message"]


async def test_with_auth_off_a_presented_secret_is_still_checked_and_applied(
    make_settings: Callable[..., Settings],
) -> None:
    with secrets_server(make_settings, api_key=None) as server:
        secret = server.secret({"session": SESSION})
        async with open_session(server.ws_url, secret) as ws:
            created = await next_event(ws)
        assert created["session"]["audio"]["input"]["format"]["rate"] == 16000
        with pytest.raises(InvalidStatus) as refused:
            async with open_session(server.ws_url, secret):
                pass
        assert refusal(refused)[1]["code"] == "invalid_client_secret"
        async with open_session(server.ws_url) as ws:  # no secret, no key: auth is off
            assert (await next_event(ws))["type"] == "session.created"


class OfflineHub(HubProbe):
    """No hub model is cached and the hub never answers (no test reaches the network)."""

    def cached(self, name: str) -> bool:
        return False

    def _ask(self, name: str) -> bool:
        return False


async def test_a_secret_session_keeps_the_minting_key_s_model_rights(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A plain key's secret may not make the server fetch a hub model (`admin_key_required`,
    as the key itself gets); an admin key's secret may (here the offline hub then refuses it as
    `model_not_found`), so the right comes from the minting key, not from the secret."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({KEY: "captions-page", ADMIN: {"name": "ops", "admin": True}}))
    update = {
        "type": "session.update",
        "session": {"audio": {"input": {"transcription": {"model": "small"}}}},
    }
    with secrets_server(make_settings, api_key=None, api_keys_file=keys) as server:
        # The fake backend has no hub gate of its own: give it faster-whisper's, offline.
        settings = server.app.state.settings
        gate = ModelAccess(model_catalog(settings), settings.models.allowed, OfflineHub())
        server.app.state.runtime.models._access = gate
        codes = {}
        for key in (KEY, ADMIN):
            minted = server.mint(key=key)
            assert minted.status_code == 200, minted.text
            async with open_session(server.ws_url, minted.json()["value"]) as ws:
                assert (await next_event(ws))["type"] == "session.created"
                await ws.send(json.dumps(update))
                error = (await next_event(ws, "error"))["error"]
                codes[key] = error["code"]
                assert error["param"] == "session.audio.input.transcription.model"
    assert codes == {KEY: "admin_key_required", ADMIN: "model_not_found"}


async def test_a_secret_refused_at_max_sessions_stays_unused(
    make_settings: Callable[..., Settings],
) -> None:
    with secrets_server(make_settings, realtime={"max_sessions": 1}) as server:
        secret = server.secret()
        async with open_session(server.ws_url, KEY) as first:
            assert (await next_event(first))["type"] == "session.created"
            async with open_session(server.ws_url, secret) as refused:
                error = await next_event(refused)
                assert error["type"] == "error"
                assert error["error"]["code"] == "too_many_sessions"
                with pytest.raises(ConnectionClosed) as closed:
                    await next_event(refused)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013
        async with open_session(server.ws_url, secret) as later:  # the slot is free again
            assert (await next_event(later))["type"] == "session.created"
        with pytest.raises(InvalidStatus) as spent:  # and now it is spent
            async with open_session(server.ws_url, secret):
                pass
    assert refusal(spent)[1]["code"] == "invalid_client_secret"
