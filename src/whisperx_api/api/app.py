"""`create_app(settings)`: the FastAPI application and its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Scope

from whisperx_api import __version__
from whisperx_api.api.auth import KeyRing
from whisperx_api.api.client_secrets import ClientSecrets
from whisperx_api.api.cors import Cors
from whisperx_api.api.docs import install_docs
from whisperx_api.api.errors import install_error_handlers
from whisperx_api.api.http_metrics import HttpMetrics
from whisperx_api.api.limits import BodySizeLimit
from whisperx_api.api.observe import ResponseObserver
from whisperx_api.api.openapi import install_openapi
from whisperx_api.api.routes import (
    admin,
    client_secrets,
    health,
    jobs,
    metrics,
    models,
    openai_audio,
    realtime,
    speakers,
)
from whisperx_api.api.routes.web import mount_web
from whisperx_api.config import Settings
from whisperx_api.runtime.base import Runtime
from whisperx_api.runtime.extras import require_distributed_extra

log = logging.getLogger("whisperx_api.access")

API_DESCRIPTION = (
    "OpenAI-compatible speech to text (faster-whisper, word alignment, diarization) and an "
    "async job API. Every error is OpenAI's error envelope. Try an upload from `/docs`."
)


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """Build the app; the runtime (models, workers) starts with the lifespan."""
    if runtime is None:
        runtime = build_runtime(settings)
    app = WhisperXApp(
        title="whisperx-api",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.keyring = build_keyring(settings)
    app.state.client_secrets = ClientSecrets(settings.realtime.max_client_secrets_per_key)
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    routers = (
        health,
        openai_audio,
        models,
        jobs,
        metrics,
        realtime,
        client_secrets,
        speakers,
        admin,
    )
    for module in routers:
        app.include_router(module.router)
    mount_web(app)
    app.add_middleware(HttpMetrics)
    app.add_middleware(BodySizeLimit, max_file_size=settings.limits.max_file_size)
    return app


class WhisperXApp(FastAPI):
    """FastAPI with the access log and CORS outside Starlette's error middleware, so that every
    response carries CORS (even a 500, which that middleware renders outside the user
    middleware) and every request is logged (even a preflight, which CORS answers itself)."""

    def build_middleware_stack(self) -> ASGIApp:
        settings: Settings = self.state.settings
        stack = super().build_middleware_stack()
        return AccessLog(Cors(stack, settings.server.cors_origins, self.routes))


def build_runtime(settings: Settings) -> Runtime:
    """The composition root's one choice: embedded, or an API replica of the distributed mode."""
    if settings.mode == "distributed":
        require_distributed_extra()
        from whisperx_api.distributed.runtime import build_distributed_api

        return build_distributed_api(settings)
    from whisperx_api.runtime.embedded import build_embedded

    return build_embedded(settings)


def build_keyring(settings: Settings) -> KeyRing:
    """Keys from API_KEY, ADMIN_API_KEY and API_KEYS_FILE; auth is on when enabled or when a
    key exists."""
    key = settings.api_key.get_secret_value() if settings.api_key else None
    admin = settings.admin_api_key.get_secret_value() if settings.admin_api_key else None
    return KeyRing(key, settings.api_keys_file, settings.auth_enabled, admin_key=admin)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime: Runtime = app.state.runtime
    await runtime.start()
    try:
        yield
    finally:
        await runtime.stop()


class AccessLog(ResponseObserver):
    """One log line per request, with the client's name (never its key)."""

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        client = scope.get("state", {}).get("client_name", "-")
        log.info(
            "%s %s %d %.0fms client=%s",
            scope["method"],
            scope["path"],
            status,
            seconds * 1000,
            client,
        )
