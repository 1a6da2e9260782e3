"""Request-scoped dependencies: the runtime the app was built with, and the calling client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from whisperx_api.api.auth import Client, KeyRing

if TYPE_CHECKING:
    from whisperx_api.runtime.base import Runtime

MAX_FORM_FIELDS = 64
# A text field may be this large: a known-speaker reference is up to 10 s of audio as a data URL.
MAX_FIELD_BYTES = 8 * 1024 * 1024


def get_runtime(request: Request) -> Runtime:
    """The runtime wired by the app factory."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def require_client(request: Request) -> Client:
    """Authenticate the caller (a no-op when auth is disabled)."""
    keyring: KeyRing = request.app.state.keyring
    client = keyring.identify(request.headers.get("authorization"))
    request.state.client_name = client.name
    return client


@asynccontextmanager
async def multipart_form(request: Request) -> AsyncIterator[FormData]:
    """The request's form; its spooled upload files are closed (deleted) on exit."""
    async with request.form(
        max_files=1, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FIELD_BYTES
    ) as form:
        yield form


RuntimeDep = Annotated["Runtime", Depends(get_runtime)]
ClientDep = Annotated[Client, Depends(require_client)]
