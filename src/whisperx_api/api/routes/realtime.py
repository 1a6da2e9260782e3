"""`GET /v1/realtime?intent=transcription`: live transcription sessions over a WebSocket,
speaking OpenAI's Realtime protocol. Authentication happens at the handshake (a 401 in the
error envelope), by an API key or a client secret; everything after it is an event, errors
included. A client secret is checked at the handshake and spent when its session is admitted,
so a refused handshake or a full server leaves it unused."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers

from whisperx_api.api.auth import CLIENT_SECRET_PREFIX, Client, KeyRing
from whisperx_api.api.client_secrets import ClientSecret, ClientSecrets
from whisperx_api.api.deps import may_download
from whisperx_api.api.errors import error_response, error_status
from whisperx_api.config import Settings
from whisperx_api.errors import (
    AuthenticationFailed,
    ClientSecretRefused,
    CorsNotAllowed,
    InvalidValue,
    Overloaded,
    RealtimeUnavailable,
    WhisperXApiError,
)
from whisperx_api.realtime.session import LiveSession, VoiceResolver, new_id
from whisperx_api.runtime.base import Runtime

router = APIRouter(tags=["realtime"])
log = logging.getLogger(__name__)

KEY_PROTOCOL = "openai-insecure-api-key."  # how browsers, which cannot set headers, send a key
SUBPROTOCOL = "realtime"
CLOSE_POLICY = 1008
CLOSE_TRY_LATER = 1013
# A page served by this server to its own user: DNS rebinding cannot give a page these origins.
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    """Open a transcription session (see docs/live-captions.md)."""
    keyring: KeyRing = websocket.app.state.keyring
    settings: Settings = websocket.app.state.settings
    try:
        check_origin(websocket.headers, settings.server.cors_origins)
        client, claim = _identify(websocket, keyring, websocket.app.state.client_secrets)
        intent = websocket.query_params.get("intent", "transcription")
        if intent != "transcription":
            raise InvalidValue(
                f"Only transcription sessions are served here (intent=transcription), "
                f"not intent={intent!r}.",
                param="intent",
            )
    except WhisperXApiError as exc:
        await _deny(websocket, error_response(exc))
        return
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    log.info("live session opened client=%s", client.name)
    try:
        with contextlib.suppress(WebSocketDisconnect):
            await _serve(websocket, client, claim)
    finally:
        log.info("live session closed client=%s", client.name)


# Spends a client secret: the session's configuration and id (None: a key's new session).
Claim = Callable[[], ClientSecret | None]


def _identify(websocket: WebSocket, keyring: KeyRing, store: ClientSecrets) -> tuple[Client, Claim]:
    """Who opens the session: an API key's client, or the client of the key that minted the
    client secret presented (checked here, spent by the claim once the session is admitted)."""
    header = _authorization(websocket)
    scheme, _, token = (header or "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    if not token.startswith(CLIENT_SECRET_PREFIX):
        return keyring.identify(header), lambda: None
    try:
        secret = store.check(token)
    except ClientSecretRefused:
        if keyring.enabled:  # a configured key that merely looks like a secret
            with contextlib.suppress(AuthenticationFailed):
                return keyring.identify(header), lambda: None
        raise
    owner = secret.client.owner
    if keyring.enabled and owner is not None and not keyring.holds(owner):
        raise ClientSecretRefused("The API key that minted this client secret was revoked.")
    return secret.client, lambda: store.redeem(token)


async def _serve(websocket: WebSocket, client: Client, claim: Claim) -> None:
    runtime: Runtime = websocket.app.state.runtime
    settings: Settings = websocket.app.state.settings
    channel = _Socket(websocket)
    engine = runtime.live
    try:
        if engine is None:
            raise RealtimeUnavailable(
                "This API replica holds no transcription model (MODE=distributed): live sessions "
                "need a server with a model; see REALTIME__ALLOW_IN_KAFKA_MODE."
            )
        with engine.admit():
            secret = claim()
            admit = partial(runtime.models.admit, may_download=may_download(websocket, client))
            await LiveSession(
                engine,
                channel,
                _error_fields,
                settings.whisper.model,
                admit,
                config=secret.session if secret else None,
                session_id=secret.session_id if secret else None,
                voices=_voices_of(runtime, client),
            ).run()
    except WhisperXApiError as exc:
        code = CLOSE_TRY_LATER if isinstance(exc, Overloaded) else CLOSE_POLICY
        await channel.send_error(exc)
        await channel.close(code, exc.code or "error")


def _voices_of(runtime: Runtime, client: Client) -> VoiceResolver | None:
    """The saved voices a session of `client` may name speakers with: its key's own."""
    voices = runtime.voices
    if voices is None:
        return None
    return lambda ids, param: voices.known_voices(client.owner, ids, param)


def _error_fields(exc: WhisperXApiError) -> dict[str, Any]:
    """OpenAI's error object for `exc` (the same table as HTTP answers)."""
    _, body = error_status(exc)
    fields: dict[str, Any] = body["error"]  # type: ignore[assignment]
    if type(exc) is WhisperXApiError or fields["type"] == "server_error":
        log.warning("live session error: %s", exc.message)
    return dict(fields)


def check_origin(headers: Headers, allowed: Sequence[str]) -> None:
    """A browser page may open a session only from an origin in `SERVER__CORS_ORIGINS` (or
    from the server's own loopback origin): otherwise any site the user visits could use a
    local server, whose auth may be off. Clients that are not browsers send no `Origin`."""
    origin = headers.get("origin")
    if origin is None or "*" in allowed or origin in allowed:
        return
    host = headers.get("host", "")
    parts = urlsplit(origin)
    if parts.netloc == host and parts.hostname in _LOOPBACK_NAMES:
        return
    raise CorsNotAllowed(
        f"Origin {origin!r} may not open live sessions; add it to SERVER__CORS_ORIGINS.",
        param="Origin",
    )


def _authorization(websocket: WebSocket) -> str | None:
    """The bearer header, else a key sent as an `openai-insecure-api-key.<key>` subprotocol."""
    header = websocket.headers.get("authorization")
    if header:
        return header
    for protocol in websocket.scope.get("subprotocols", []):
        if protocol.startswith(KEY_PROTOCOL):
            return f"Bearer {protocol.removeprefix(KEY_PROTOCOL)}"
    return None


async def _deny(websocket: WebSocket, response: JSONResponse) -> None:
    """Refuse the handshake with an HTTP answer where the server can send one."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(response)
    else:
        await websocket.close(CLOSE_POLICY)


class _Socket:
    """The session's channel over a Starlette WebSocket."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket

    async def receive(self) -> str | None:
        while True:
            message = await self._websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            if message.get("text") is not None:
                return str(message["text"])
            if message.get("bytes") is not None:
                return bytes(message["bytes"]).decode("utf-8", errors="replace")

    async def send(self, text: str) -> None:
        await self._websocket.send_text(text)

    async def send_error(self, exc: WhisperXApiError) -> None:
        event = {
            "type": "error",
            "event_id": new_id("event"),
            "error": {**_error_fields(exc), "event_id": None},
        }
        await self.send(json.dumps(event))

    async def close(self, code: int, reason: str) -> None:
        await self._websocket.close(code, reason)
