"""`POST /v1/realtime/client_secrets`: a normal key mints a short-lived secret that opens one
live session (OpenAI's shape), for pages and apps that must not hold the key itself."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from whisperx_api.api.auth import Client
from whisperx_api.api.client_secrets import (
    DEFAULT_SECONDS,
    MAX_SECONDS,
    MIN_SECONDS,
    ClientSecrets,
)
from whisperx_api.api.deps import ClientDep
from whisperx_api.api.openapi import error_responses
from whisperx_api.config import Settings
from whisperx_api.errors import (
    PayloadTooLarge,
    RealtimeUnavailable,
    UnsupportedParameter,
    WhisperXApiError,
)
from whisperx_api.realtime.session_config import SessionConfig, apply_update, session_object
from whisperx_api.runtime.base import Runtime

router = APIRouter(tags=["realtime"])

_TRANSCRIPTION_PARAM = "session.audio.input.transcription"
_MODEL_PARAM = f"{_TRANSCRIPTION_PARAM}.model"


class ExpiresAfter(BaseModel):
    """When the secret stops opening sessions (a session it opened runs on)."""

    model_config = ConfigDict(extra="forbid")

    anchor: Literal["created_at"] = "created_at"
    seconds: int = Field(default=DEFAULT_SECONDS, ge=MIN_SECONDS, le=MAX_SECONDS)


class ClientSecretRequest(BaseModel):
    """OpenAI's request: both fields optional."""

    expires_after: ExpiresAfter | None = None
    session: dict[str, Any] | None = Field(
        default=None,
        description="A transcription session's configuration (as `session.update` takes it); "
        "the session the secret opens starts with it.",
    )


class ClientSecretResponse(BaseModel):
    """The secret (shown once), when it expires, and the session it will open."""

    value: str
    expires_at: int
    session: dict[str, Any]


_BODY = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": ClientSecretRequest.model_json_schema()}},
    }
}


@router.post(
    "/v1/realtime/client_secrets",
    responses=error_responses(400, 401, 413, 500),
    openapi_extra=_BODY,
)
async def create_client_secret(request: Request, client: ClientDep) -> ClientSecretResponse:
    """Mint a client secret for one live session (see docs/live-captions.md)."""
    settings: Settings = request.app.state.settings
    runtime: Runtime = request.app.state.runtime
    store: ClientSecrets = request.app.state.client_secrets
    params = _parse(await _body(request, settings.limits.max_field_bytes))
    engine = runtime.live
    if engine is None or settings.realtime.max_sessions == 0:
        raise RealtimeUnavailable(
            "This server opens no live sessions (MODE=kafka without "
            "REALTIME__ALLOW_IN_KAFKA_MODE, or REALTIME__MAX_SESSIONS=0): a client secret "
            "would open nothing."
        )
    config = SessionConfig(model=settings.whisper.model)
    if params.session is not None:
        config = apply_update(config, params.session)
        await engine.resolve_model(config.decode_model, _MODEL_PARAM)
        await _check_speakers(config, runtime, client)
    seconds = (params.expires_after or ExpiresAfter()).seconds
    value, secret = store.mint(client, seconds, config)
    return ClientSecretResponse(
        value=value,
        expires_at=int(secret.expires_at),
        session={
            **session_object(config, secret.session_id),
            "expires_at": int(secret.expires_at),
        },
    )


async def _check_speakers(config: SessionConfig, runtime: Runtime, client: Client) -> None:
    """Refuse now what the session would refuse: speaker labels on a server without a speaker
    model, a saved voice this key does not own (the session fetches its voices again)."""
    if not config.diarize or runtime.live is None:
        return
    try:
        runtime.live.voice_threshold()
    except WhisperXApiError as exc:
        exc.param = f"{_TRANSCRIPTION_PARAM}.diarize"
        raise
    ids = config.known_speaker_ids
    if ids:
        param = f"{_TRANSCRIPTION_PARAM}.known_speaker_ids"
        if runtime.voices is None:
            raise UnsupportedParameter("This server keeps no saved voices.", param=param)
        await runtime.voices.known_voices(client.owner, ids, param)


async def _body(request: Request, limit: int) -> bytes:
    """The JSON body, read only up to `limit` bytes (it is a few hundred at most)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            too_large = PayloadTooLarge(
                f"A client secret request is at most {limit} bytes (LIMITS__MAX_FIELD_BYTES)."
            )
            too_large.param = None
            raise too_large
    return bytes(body)


def _parse(body: bytes) -> ClientSecretRequest:
    try:
        return ClientSecretRequest.model_validate_json(body.strip() or b"{}")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
