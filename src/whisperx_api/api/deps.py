"""Request-scoped dependencies: the runtime the app was built with, and the calling client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import FormData

from whisperx_api.api.auth import Client, KeyRing
from whisperx_api.api.form_limits import FieldLimits, limited_form
from whisperx_api.errors import PermissionDenied
from whisperx_api.executors import run_io

if TYPE_CHECKING:
    from whisperx_api.runtime.base import Runtime

MAX_FORM_FIELDS = 64


def get_runtime(request: Request) -> Runtime:
    """The runtime wired by the app factory."""
    runtime: Runtime = request.app.state.runtime
    return runtime


# Declares the bearer scheme in the OpenAPI schema (the Authorize button of `/docs`); the
# header itself is checked by the key ring, which words its own 401s.
BEARER = HTTPBearer(auto_error=False, description="An API key, when the server has any.")


def require_client(request: Request) -> Client:
    """Authenticate the caller (a no-op when auth is disabled)."""
    keyring: KeyRing = request.app.state.keyring
    client = keyring.identify(request.headers.get("authorization"))
    request.state.client_name = client.name
    return client


@asynccontextmanager
async def multipart_form(request: Request) -> AsyncIterator[FormData]:
    """The request's form; its spooled upload files are closed (deleted) on exit."""
    limits = request.app.state.settings.limits
    field_limits = FieldLimits(limits.max_field_bytes, limits.max_voice_reference_bytes)
    async with limited_form(request, field_limits, max_files=1, max_fields=MAX_FORM_FIELDS) as form:
        yield form


def bearer_client(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Client:
    """`require_client`, declared in the schema as needing the bearer key."""
    return require_client(request)


def admin_client(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Client:
    """`require_client`, then 403 unless the key is an admin's (when auth is on)."""
    client = require_client(request)
    keyring: KeyRing = request.app.state.keyring
    if keyring.enabled and not client.admin:
        raise PermissionDenied(
            "This needs an admin key (ADMIN_API_KEY, or a keys-file entry with "
            '"admin": true): loading and unloading models, erasing a key\'s data.'
        )
    return client


def may_download(request: Request | WebSocket, client: Client) -> bool:
    """Whether this caller may make the server fetch any hub model: admin keys, and everyone
    while auth is off (the names in MODELS__ALLOWED are open to every key regardless)."""
    keyring: KeyRing = request.app.state.keyring
    return client.admin or not keyring.enabled


async def admit_model(request: Request, runtime: Runtime, client: Client, model: str) -> None:
    """Refuse at submit a model this caller cannot be served now (off the loop: it may ask
    the model hub whether it answers)."""
    await run_io(runtime.models.admit, model, may_download(request, client))


RuntimeDep = Annotated["Runtime", Depends(get_runtime)]
ClientDep = Annotated[Client, Depends(bearer_client)]
AdminDep = Annotated[Client, Depends(admin_client)]
