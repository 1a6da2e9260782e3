"""Requests built from `/openapi.json` alone, as Swagger UI's "Try it out" builds them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

FormData = dict[str, str | list[str]]
Files = dict[str, tuple[str, bytes, str]]


def form_schema(schema: dict[str, Any], path: str, media: str = "multipart/form-data") -> Any:
    """The request body schema of `POST path`."""
    return schema["paths"][path]["post"]["requestBody"]["content"][media]["schema"]


def is_binary(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "string" and (
        prop.get("format") == "binary" or "contentMediaType" in prop
    )


def upload_from_schema(
    schema: dict[str, Any], path: str, audio: Path, **chosen: str
) -> tuple[FormData, Files]:
    """Every binary property gets `audio`; the rest their default (or, when required, the first
    enum value); `chosen` overrides a field by name and must name a documented property."""
    body = form_schema(schema, path)
    properties: dict[str, Any] = body["properties"]
    unknown = set(chosen) - set(properties)
    assert not unknown, f"not documented for {path}: {unknown}"
    data: FormData = {}
    files: Files = {}
    for name, prop in properties.items():
        if is_binary(prop):
            files[name] = (audio.name, audio.read_bytes(), "application/octet-stream")
        elif name in chosen:
            data[name] = chosen[name]
        elif "default" in prop:
            data[name] = _form_value(prop["default"])
        elif name in body.get("required", ()):
            data[name] = _form_value(prop["enum"][0])
    return data, files


def _form_value(value: Any) -> str | list[str]:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [str(_form_value(v)) for v in value]
    return str(value)
