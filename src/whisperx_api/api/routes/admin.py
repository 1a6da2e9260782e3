"""Erasing everything the server stores for one API key (an admin key's request): the key's
jobs with their audio and results, and its saved voices."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from whisperx_api.api.auth import KeyRing, owner_of
from whisperx_api.api.deps import AdminDep, RuntimeDep
from whisperx_api.api.forms import read_form
from whisperx_api.api.openapi import error_responses, form_body
from whisperx_api.errors import InvalidRequest

router = APIRouter(tags=["admin"])

MAX_KEY_CHARS = 1024


class EraseKeyForm(BaseModel):
    """`POST /admin/erase_key`: the key whose data to delete."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    api_key: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_KEY_CHARS)
    ] = Field(
        description="The API key whose jobs and saved voices to delete; it may already be "
        "removed from the server's keys."
    )


class KeyErased(BaseModel):
    """What was erased for the key."""

    object: Literal["key.erased"] = "key.erased"
    jobs_deleted: int = Field(description="Jobs deleted with their audio and results.")
    jobs_processing: int = Field(
        description="Jobs still running: each is deleted with its files as soon as it ends."
    )
    speakers_deleted: int = Field(description="Saved voices deleted.")


@router.post(
    "/admin/erase_key",
    openapi_extra=form_body(EraseKeyForm, urlencoded=True),
    responses=error_responses(400, 401, 403, 413, 500),
)
async def erase_key(request: Request, runtime: RuntimeDep, _: AdminDep) -> KeyErased:
    """Delete every job and saved voice of a key (admin key)."""
    async with read_form(request, EraseKeyForm) as form:
        owner = owner_of(form.api_key)
    keyring: KeyRing = request.app.state.keyring
    if not keyring.enabled:
        raise InvalidRequest(
            "Authentication is off: no job or saved voice belongs to a key, so there is "
            "nothing to erase for one.",
            param="api_key",
        )
    deleted, processing = await runtime.jobs.erase_owner(owner)
    voices = [] if runtime.voices is None else await runtime.voices.delete_all(owner)
    return KeyErased(jobs_deleted=deleted, jobs_processing=processing, speakers_deleted=len(voices))
