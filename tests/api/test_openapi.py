"""`/openapi.json`: a valid document whose form bodies are exactly what the parser reads, whose
constraints the server enforces, and from which a working upload can be built."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from starlette.datastructures import FormData

from tests.audio import DATA
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from tests.openapi_forms import form_schema, is_binary, upload_from_schema
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio

AUDIO = DATA / "en_espeak.flac"
OPENAI_FORMS = ("/v1/audio/transcriptions", "/v1/audio/translations")
FORM_ENDPOINTS = (
    *OPENAI_FORMS,
    "/transcription",
    "/models/load",
    "/models/unload",
    "/align_models/load",
    "/align_models/unload",
    "/diarize_models/load",
    "/diarize_models/unload",
    "/admin/erase_key",
)


@pytest.fixture
def schema(make_settings: Callable[..., Settings]) -> dict[str, Any]:
    document: dict[str, Any] = fake_app(make_settings(), FakeTranscriber()).openapi()
    return document


async def test_document_validates_and_docs_page_serves_it(
    make_settings: Callable[..., Settings],
) -> None:
    app = fake_app(make_settings(api_key="sk-a"), FakeTranscriber())
    async with running(app) as client:
        served = await client.get("/openapi.json")
        docs = await client.get("/docs")
        script = await client.get("/docs-assets/swagger-ui-bundle.js")
        redoc = await client.get("/redoc")
    assert served.status_code == 200
    document = served.json()
    validate(document)
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
    assert "swagger-ui" in docs.text
    assert "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text + redoc.text  # the pages work without internet access
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.text
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)


def test_every_form_field_is_typed_and_described(schema: dict[str, Any]) -> None:
    for path in FORM_ENDPOINTS:
        body = form_schema(schema, path)
        assert body["type"] == "object"
        for name, prop in body["properties"].items():
            assert prop.get("description"), (path, name)
            assert "type" in prop or "enum" in prop, (path, name)
            assert "anyOf" not in prop, (path, name)  # a form value is never `null`
    for path in OPENAI_FORMS:
        properties = form_schema(schema, path)["properties"]
        assert properties["response_format"]["default"] == "json"
        assert "vtt" in properties["response_format"]["enum"]
        assert is_binary(properties["file"])
    for path in (*OPENAI_FORMS, "/transcription"):
        body = form_schema(schema, path)
        assert "required" not in body  # `file`, or `audio_url` instead: exactly one of them
        assert body["oneOf"] == [{"required": ["file"]}, {"required": ["audio_url"]}]


def test_error_responses_use_the_envelope(schema: dict[str, Any]) -> None:
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path in (*OPENAI_FORMS, "/transcription"):
        responses = schema["paths"][path]["post"]["responses"]
        for status in ("400", "401", "409", "413", "500", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == envelope
        timeout = responses["504"]["content"]["application/json"]["schema"]["$ref"]
        assert timeout == "#/components/schemas/SyncTimeoutEnvelope"
        media = set(responses["200"]["content"])
        assert {"application/json", "text/plain", "text/vtt"} <= media
    assert (
        "text/event-stream"
        in schema["paths"]["/v1/audio/transcriptions"]["post"]["responses"]["200"]["content"]
    )
    job = schema["paths"]["/transcription/{job_id}"]
    assert job["get"]["responses"]["404"]["content"]["application/json"]["schema"] == envelope
    detail = schema["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"message", "type", "param", "code"}


@pytest.fixture
def names_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every form field name the server's parser looks up, in order."""
    seen: list[str] = []
    original = FormData.getlist

    def recording(self: FormData, key: Any) -> list[Any]:
        seen.append(str(key))
        return original(self, key)

    monkeypatch.setattr(FormData, "getlist", recording)
    return seen


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
async def test_documented_fields_are_exactly_the_fields_parsed(
    make_settings: Callable[..., Settings],
    schema: dict[str, Any],
    names_read: list[str],
    path: str,
) -> None:
    app = fake_app(make_settings(), FakeTranscriber())
    async with running(app) as client:
        names_read.clear()
        await client.post(path, files={"file": ("a.flac", b"not read", "audio/flac")})
    properties = form_schema(schema, path)["properties"]
    arrays = {f"{n}[]" for n, p in properties.items() if p.get("type") == "array"}
    assert set(names_read) == set(properties) | arrays
    if path.startswith(("/models", "/admin")) or "_models/" in path:
        encoded = form_schema(schema, path, "application/x-www-form-urlencoded")
        assert encoded == form_schema(schema, path)


def bad_values(prop: dict[str, Any]) -> list[str | list[str]]:
    """Values the schema itself rules out, as a form would carry them; none for free text."""
    kind = prop.get("type")
    items = prop.get("items", {})
    values: list[str | list[str]] = []
    if "enum" in prop or "enum" in items:
        values.append("not-a-choice")
    if kind == "boolean":
        values.append("maybe")
    if kind == "integer":
        values.append("1.5")
    if kind == "number":
        values.append("one")
    if kind in ("integer", "number") and "minimum" in prop:
        values.append(str(int(prop["minimum"]) - 1))
    if kind in ("integer", "number") and "maximum" in prop:
        values.append(str(int(prop["maximum"]) + 1))
    if kind == "string" and prop.get("minLength", 0) >= 1:
        values.append(" ")
    if kind == "string" and "maxLength" in prop:
        values.append("x" * (prop["maxLength"] + 1))
    if kind == "array" and "maxItems" in prop:
        values.append([f"v{i}" for i in range(prop["maxItems"] + 1)])
    if kind == "array" and items.get("minLength", 0) >= 1:
        values.append([" "])
    if kind == "array" and "maxLength" in items:
        values.append(["x" * (items["maxLength"] + 1)])
    return values


# Fields that apply only together with another one: sent with it, so that the constraint on
# the field itself is what the server has to refuse.
NEEDS = {
    "known_speaker_names": {"diarize": "true"},
    "known_speaker_references": {"diarize": "true"},
}


@pytest.mark.parametrize(
    "path", [*FORM_ENDPOINTS[:3], "/models/load", "/align_models/load", "/admin/erase_key"]
)
async def test_documented_constraints_are_enforced_with_their_param(
    make_settings: Callable[..., Settings], schema: dict[str, Any], path: str
) -> None:
    body = form_schema(schema, path)
    audio = {"file": ("a.flac", AUDIO.read_bytes(), "audio/flac")}
    checked: list[tuple[str, str | list[str], int, str | None]] = []
    app = fake_app(make_settings(), FakeTranscriber())
    async with running(app) as client:
        for name, prop in body["properties"].items():
            if is_binary(prop):  # a text value where the file belongs
                response = await client.post(path, data={name: "not a file"})
                checked.append((name, "text", response.status_code, _param(response)))
                continue
            files = audio if any(is_binary(p) for p in body["properties"].values()) else None
            for value in bad_values(prop):
                data = {**NEEDS.get(name, {}), name: value}
                response = await client.post(path, data=data, files=files)
                checked.append((name, value, response.status_code, _param(response)))
    assert checked
    assert [c for c in checked if c[2:] != (400, c[0])] == []
    constrained = {c[0] for c in checked}
    if path in OPENAI_FORMS or path == "/transcription":
        assert {"webhook_url", "audio_url"} <= constrained
    if path == "/v1/audio/transcriptions":
        assert {"include", "known_speaker_names", "known_speaker_references"} <= constrained


def _param(response: httpx.Response) -> str | None:
    param: str | None = response.json()["error"]["param"]
    return param


@pytest.mark.parametrize("path", OPENAI_FORMS)
async def test_an_upload_built_from_the_schema_transcribes(
    make_settings: Callable[..., Settings], schema: dict[str, Any], path: str
) -> None:
    data, files = upload_from_schema(schema, path, AUDIO)
    backend = FakeTranscriber()
    async with running(fake_app(make_settings(), backend)) as client:
        response = await client.post(path, data=data, files=files)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["text"].strip()
    assert backend.calls[-1].model == "base"  # `whisper-1`, the documented default


def _media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0]


async def test_every_documented_format_answers_in_a_documented_media_type(
    make_settings: Callable[..., Settings], schema: dict[str, Any]
) -> None:
    path = "/v1/audio/transcriptions"
    documented = set(schema["paths"][path]["post"]["responses"]["200"]["content"])
    formats = form_schema(schema, path)["properties"]["response_format"]["enum"]
    answered: dict[str, str] = {}
    async with running(fake_app(make_settings(), FakeTranscriber())) as client:
        for fmt in formats:
            # diarized_json also needs diarize=true: a rule across fields, not in the schema.
            extra = {"diarize": "true"} if fmt == "diarized_json" else {}
            data, files = upload_from_schema(schema, path, AUDIO, response_format=fmt, **extra)
            response = await client.post(path, data=data, files=files)
            assert response.status_code == 200, (fmt, response.text)
            answered[fmt] = _media_type(response)
        streamed = await client.post(
            path, data={"stream": "true"}, files={"file": (AUDIO.name, AUDIO.read_bytes())}
        )
    assert set(answered.values()) <= documented
    assert answered["vtt"] == "text/vtt"
    assert _media_type(streamed) == "text/event-stream"
    assert "text/event-stream" in documented


async def test_a_job_built_from_the_schema_completes(
    make_settings: Callable[..., Settings], schema: dict[str, Any]
) -> None:
    data, files = upload_from_schema(schema, "/transcription", AUDIO)
    async with running(fake_app(make_settings(), FakeTranscriber())) as client:
        accepted = await client.post("/transcription", data=data, files=files)
        assert accepted.status_code == 202, accepted.text
        status_url = accepted.json()["status_url"]
        for _ in range(400):
            status = (await client.get(status_url)).json()
            if status["status"] == "Completed":
                break
            await asyncio.sleep(0.025)
        result = await client.get(f"{status_url}/result")
    assert status["status"] == "Completed"
    assert result.status_code == 200
    assert "fake backend" in result.text  # the server's default format
