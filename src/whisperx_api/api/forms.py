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
from typing import Any, TypeVar, Union, get_args, get_origin

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from whisperx_api.api.deps import multipart_form
from whisperx_api.errors import InvalidRequest

F = TypeVar("F", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class FormField:
    """One form field: its name on the wire, and whether it repeats."""

    key: str
    repeated: bool

    def spellings(self) -> tuple[str, ...]:
        """A list may also come as `key[]` (OpenAI's SDKs send `timestamp_granularities[]`)."""
        return (self.key, f"{self.key}[]") if self.repeated else (self.key,)


def form_fields(model: type[BaseModel]) -> tuple[FormField, ...]:
    """The fields `parse_form` reads for `model`, in declaration order."""
    return tuple(
        FormField(info.alias or name, _is_list(info.annotation))
        for name, info in model.model_fields.items()
    )


def parse_form(model: type[F], form: FormData) -> F:
    """Validate a form into `model`; empty strings count as "not given", other names are ignored.

    A repeated field takes every value given (comma-separated lists, as Swagger UI sends them,
    are split); any other field takes the last one.
    """
    data: dict[str, Any] = {}
    for field in form_fields(model):
        values = [v for s in field.spellings() for v in form.getlist(s) if v != ""]
        if values:
            data[field.key] = _split(values) if field.repeated else values[-1]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


@asynccontextmanager
async def read_form(request: Request, model: type[F]) -> AsyncIterator[F]:
    """The request's form as `model`; its spooled upload is deleted on exit."""
    async with multipart_form(request) as raw:
        yield parse_form(model, raw)


def _is_list(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_is_list(arg) for arg in get_args(annotation))
    return origin in (tuple, list)


def _split(values: list[Any]) -> tuple[Any, ...]:
    parts: list[Any] = []
    for value in values:
        if isinstance(value, str):
            parts.extend(p.strip() for p in value.split(",") if p.strip())
        else:
            parts.append(value)
    return tuple(parts)


def _invalid(exc: ValidationError) -> InvalidRequest:
    first = exc.errors()[0]
    param = str(first["loc"][0]) if first["loc"] else None
    if first["type"] == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    message = str(first["msg"]).removeprefix("Value error, ")
    return InvalidRequest(f"Invalid '{param}': {message}", param=param, code="invalid_value")
