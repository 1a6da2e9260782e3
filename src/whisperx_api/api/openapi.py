"""What `/openapi.json` declares beyond FastAPI's defaults: form bodies, errors, media types.

Routes read their forms with `api.forms` (streamed behind the size limit), so FastAPI sees no
body parameter; each form's request body is generated here from the same model the parser
reads. Validation errors are 400s in OpenAI's envelope, so FastAPI's 422 never appears.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from whisperx_api.api.schemas import JobAccepted
from whisperx_api.formatters import RENDERERS

JsonDict = dict[str, Any]
Responses = dict[int | str, JsonDict]


class ErrorDetail(BaseModel):
    """One error, as OpenAI's SDKs read it."""

    message: str = Field(description="What went wrong, for a person.")
    type: str = Field(description="`invalid_request_error`, `authentication_error`, ...")
    param: str | None = Field(description="The form field at fault, when there is one.")
    code: str | None = Field(description="A stable machine-readable code, when there is one.")


class ErrorEnvelope(BaseModel):
    """OpenAI's error body: every error of every endpoint has this shape."""

    error: ErrorDetail


class SyncTimeoutEnvelope(ErrorEnvelope):
    """A sync wait ran out; the job goes on and can be polled."""

    job_id: str = Field(description="The job that is still running.")
    status_url: str = Field(description="Where to poll it.")


class TranscriptJson(BaseModel):
    """A JSON transcript; `verbose_json`, `vtt_json` and `diarized_json` add segments, words,
    language and usage to the text."""

    model_config = ConfigDict(extra="allow")

    text: str = Field(description="The whole transcript.")


_ERRORS: dict[int, tuple[type[ErrorEnvelope], str]] = {
    400: (ErrorEnvelope, "Invalid request: a bad field (see `param`), or not audio."),
    401: (ErrorEnvelope, "Missing or unknown API key."),
    403: (ErrorEnvelope, "A valid key without the admin right (model load/unload)."),
    404: (ErrorEnvelope, "No such job or model (a job of another key counts as none)."),
    409: (ErrorEnvelope, "The resource is in the wrong state (job not ready, model in use)."),
    413: (ErrorEnvelope, "The upload is larger than the server's `MAX_FILE_SIZE`."),
    500: (ErrorEnvelope, "The job failed, or the server had an error."),
    503: (
        ErrorEnvelope,
        "Too much work is queued, or every model slot is in use; retry after `Retry-After` "
        "seconds.",
    ),
    507: (ErrorEnvelope, "The job storage is full; nothing was queued (`insufficient_storage`)."),
    504: (SyncTimeoutEnvelope, "A sync wait ran out; the job goes on (see `job_id`)."),
}

JSON = "application/json"
EVENT_STREAM = "text/event-stream"


def error_responses(*statuses: int) -> Responses:
    """The envelope-shaped error responses a route can answer with."""
    return {s: {"model": _ERRORS[s][0], "description": _ERRORS[s][1]} for s in statuses}


def transcript_responses(*, streams: bool) -> Responses:
    """200 in every format's media type (plus server-sent events), and 202 for a queued job."""
    content: JsonDict = {
        media: {"schema": {"type": "string", "description": f"Formats {', '.join(formats)}."}}
        for media, formats in _formats_by_media_type().items()
        if media != JSON  # described by the model
    }
    if streams:
        content[EVENT_STREAM] = {
            "schema": {
                "type": "string",
                "description": "With `stream=true`: `transcript.text.delta` events, then "
                "`transcript.text.done` (or an event holding the error envelope).",
            }
        }
    return {
        200: {
            "model": TranscriptJson,
            "description": "The transcript, in the media type of its `response_format`.",
            "content": content,
        },
        202: {"model": JobAccepted, "description": "The job was queued (`async` or not `sync`)."},
    }


def _formats_by_media_type() -> dict[str, list[str]]:
    """From the formatters' table, so a new format is documented with its media type."""
    grouped: dict[str, list[str]] = {}
    for fmt, formatter in RENDERERS.items():
        grouped.setdefault(formatter.media_type, []).append(f"`{fmt.value}`")
    return grouped


def form_body(model: type[BaseModel], *, urlencoded: bool = False) -> JsonDict:
    """`openapi_extra` declaring `model` as the route's (multipart) request body."""
    schema = form_schema(model)
    content: JsonDict = {"multipart/form-data": {"schema": schema}}
    if urlencoded:
        content["application/x-www-form-urlencoded"] = {"schema": schema}
    return {"requestBody": {"required": True, "content": content}}


def form_schema(model: type[BaseModel]) -> JsonDict:
    """The model's JSON schema as a self-contained form: no `$defs`, no `null` values."""
    schema = model.model_json_schema(schema_generator=_FormJsonSchema)
    definitions = schema.pop("$defs", {})
    inlined: JsonDict = _inline(schema, definitions)
    required = set(inlined.get("required", ()))
    for name, prop in inlined["properties"].items():
        if name not in required and "default" not in prop:
            # The parser reads an empty field as "not given", so "" is a valid wire value here;
            # as the example, it also keeps Swagger UI from pre-filling a made-up value.
            prop["examples"] = [""]
    return inlined


class _FormJsonSchema(GenerateJsonSchema):
    """A form field is sent or left out; it cannot be `null`, so optional means "not required"."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        if schema.get("default") is None:
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)


def _inline(node: Any, definitions: JsonDict) -> Any:
    """Replace `#/$defs/...` references (enums) by the definitions themselves."""
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        siblings = {k: _inline(v, definitions) for k, v in node.items() if k != "$ref"}
        return {**target, **siblings}
    return {k: _inline(v, definitions) for k, v in node.items()}


def install_openapi(app: FastAPI) -> None:
    """Serve FastAPI's schema without the 422 responses this API never sends."""
    build: Callable[[], JsonDict] = app.openapi

    def openapi() -> JsonDict:
        if app.openapi_schema is None:
            app.openapi_schema = _without_422(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _without_422(schema: JsonDict) -> JsonDict:
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            operation.get("responses", {}).pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema
