"""Multipart (or URL-encoded) forms into their pydantic models.

The form model is the one source of truth: the names this parser reads are the model's fields
(by alias), and the OpenAPI request body is generated from the same model, so a field added to
a model is parsed and documented at once. The body itself is read by Starlette's streaming
parser behind the `BodySizeLimit` middleware; nothing here buffers an upload.
"""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from whisperx_api.api.deps import multipart_form
from whisperx_api.errors import InvalidRequest, InvalidValue

F = TypeVar("F", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class CommaSeparated:
    """Field metadata: a list whose values may also come comma-joined (as Swagger UI sends
    them); only for values that never hold a comma themselves."""


COMMA_SEPARATED = CommaSeparated()


@dataclass(frozen=True, slots=True)
class FormField:
    """One form field: its name on the wire, and how its values are gathered."""

    key: str
    repeated: bool  # a list: every value counts (also sent as `key[]`)
    comma_separated: bool  # list values may be comma-joined
    has_members: bool  # an object: may also come as `key[member]=value` fields

    def spellings(self) -> tuple[str, ...]:
        """A list may also come as `key[]` (OpenAI's SDKs send `timestamp_granularities[]`)."""
        return (self.key, f"{self.key}[]") if self.repeated else (self.key,)

    def member(self, name: str) -> str | None:
        """The member `name` spells (`chunking_strategy[threshold]`), if it is one of ours."""
        prefix = f"{self.key}["
        if self.has_members and name.startswith(prefix) and name.endswith("]"):
            member = name[len(prefix) : -1]
            return member if member else None
        return None


def form_fields(model: type[BaseModel]) -> tuple[FormField, ...]:
    """The fields `parse_form` reads for `model`, in declaration order."""
    return tuple(
        FormField(
            key=info.alias or name,
            repeated=_has_origin(info.annotation, (tuple, list)),
            comma_separated=COMMA_SEPARATED in info.metadata,
            has_members=_has_origin(info.annotation, (dict,)),
        )
        for name, info in model.model_fields.items()
    )


def parse_form(model: type[F], form: FormData) -> F:
    """Validate a form into `model`; empty strings count as "not given", other names are ignored.

    A repeated field takes every value given; any other field takes the last one. An object
    field given as `key[member]` fields becomes a dict of them (OpenAI's SDKs encode
    `chunking_strategy` that way), which wins over a plain `key` value.
    """
    data: dict[str, Any] = {}
    for field in form_fields(model):
        values = [v for s in field.spellings() for v in form.getlist(s) if v != ""]
        if values:
            data[field.key] = _values(field, values) if field.repeated else values[-1]
        members = _members(field, form)
        if members:
            data[field.key] = members
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


@asynccontextmanager
async def read_form(request: Request, model: type[F]) -> AsyncIterator[F]:
    """The request's form as `model`; its spooled upload is deleted on exit."""
    async with multipart_form(request) as raw:
        yield parse_form(model, raw)


def _has_origin(annotation: Any, origins: tuple[type, ...]) -> bool:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _has_origin(get_args(annotation)[0], origins)
    if origin in (Union, types.UnionType):
        return any(_has_origin(arg, origins) for arg in get_args(annotation))
    return origin in origins


def _values(field: FormField, values: list[Any]) -> tuple[Any, ...]:
    if not field.comma_separated:
        return tuple(values)
    parts: list[Any] = []
    for value in values:
        if isinstance(value, str):
            parts.extend(p.strip() for p in value.split(",") if p.strip())
        else:
            parts.append(value)
    return tuple(parts)


def _members(field: FormField, form: FormData) -> dict[str, Any]:
    members: dict[str, Any] = {}
    if not field.has_members:
        return members
    for name in form:
        member = field.member(name)
        values = [v for v in form.getlist(name) if v != ""] if member else []
        if member and values:
            members[member] = values[-1]
    return members


def _invalid(exc: ValidationError) -> InvalidRequest:
    first = exc.errors()[0]
    param = str(first["loc"][0]) if first["loc"] else None
    if first["type"] == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    message = str(first["msg"]).removeprefix("Value error, ")
    return InvalidValue(f"Invalid '{param}': {message}", param=param)
