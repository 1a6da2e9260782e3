"""Schema-driven fuzzing: schemathesis generates requests for every operation `/openapi.json`
publishes and sends them to the real app and runtime (real store, queue, decoder and forms)
with the fast fake transcriber of tests/fakes.py in place of a model.

Every answer must be below 500, and every error must be OpenAI's envelope. The run is
derandomized (the same examples on every run, for CI) and bounded per operation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.generation.modes import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.audio import DATA
from tests.conftest import fake_app
from tests.fakes import FakeTranscriber
from whisperx_api.config import Settings

KEY = "sk-fuzz"
EXAMPLES_PER_OPERATION = 30
AUDIO = (DATA / "good_short.mp3").read_bytes()
UPLOADS = ("/v1/audio/", "/transcription")
ENVELOPE_KEYS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenApiSchema]:
    """The app's own `/openapi.json`, served by the app it describes (its lifespan runs in
    schemathesis' ASGI client until the module ends)."""
    root = tmp_path_factory.mktemp("fuzz")
    app_settings = Settings(
        api_key=KEY,
        jobs={"data_dir": root / "data"},
        whisper={"cache_dir": root / "cache"},
        fetch={
            "connect_timeout_seconds": 1,
            "read_timeout_seconds": 1,
            "total_timeout_seconds": 2,
        },
    )
    app = fake_app(app_settings, FakeTranscriber())
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        shutdown_lifespans()


def operations(schema: OpenApiSchema) -> list[APIOperation]:
    return [result.ok() for result in schema.get_all_operations()]


def cases(operation: APIOperation) -> st.SearchStrategy[Case]:
    """The operation's generated requests; where a form takes a `file`, every other one carries
    real speech instead of random bytes, so the fields are also fuzzed past the decoder."""
    generated = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    if operation.method != "post" or not operation.path.startswith(UPLOADS):
        return generated
    return st.tuples(generated, st.booleans()).map(lambda pair: _with_audio(*pair))


def _with_audio(case: Case, real: bool) -> Case:
    if real and isinstance(case.body, dict):
        case.body.pop("audio_url", None)
        case.body.pop("webhook_url", None)  # random text, refused before anything else
        case.body["file"] = AUDIO
    return case


def test_every_operation_answers_below_500_and_errors_in_the_envelope(
    api_schema: OpenApiSchema,
) -> None:
    """One bounded, derandomized hypothesis run per operation; every failure is reported."""
    failures: dict[str, str] = {}
    for operation in operations(api_schema):

        @given(case=cases(operation))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {KEY}"})
            assert response.status_code < 500, describe(case, response)
            if response.status_code >= 400:
                assert_envelope(case, response)

        try:
            fuzz()
        except Exception as exc:  # an assertion, or an error while sending
            failures[operation.label] = f"{type(exc).__name__}: {exc}"
    assert not failures, "\n\n".join(f"{label}: {why}" for label, why in failures.items())


def assert_envelope(case: Case, response: Response) -> None:
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), describe(case, response)
    body: Any = json.loads(response.content)
    assert isinstance(body, dict), describe(case, response)
    assert isinstance(body.get("error"), dict), describe(case, response)
    error = body["error"]
    assert set(error) == ENVELOPE_KEYS, describe(case, response)
    assert isinstance(error["message"], str), describe(case, response)
    assert error["message"], describe(case, response)
    assert isinstance(error["type"], str), describe(case, response)
    assert error["param"] is None or isinstance(error["param"], str), describe(case, response)
    assert error["code"] is None or isinstance(error["code"], str), describe(case, response)


def describe(case: Case, response: Response) -> str:
    """What was sent and what came back, to reproduce a failure with curl."""
    return (
        f"{case.method} {case.formatted_path} -> {response.status_code}\n"
        f"{case.as_curl_command()}\n{response.content[:2000]!r}"
    )


def test_the_fuzzed_schema_covers_every_published_operation(api_schema: OpenApiSchema) -> None:
    published = api_schema.raw_schema["paths"]
    published_operations = {
        (method.upper(), path)
        for path, item in published.items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete", "options", "head"}
    }
    fuzzed = {(op.method.upper(), op.path) for op in operations(api_schema)}
    assert fuzzed == published_operations
    assert len(fuzzed) >= 20
