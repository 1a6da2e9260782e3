"""End to end: what `/docs` does, on a real server with the bundled base model. The upload is
built from the served `/openapi.json` alone and transcribes real speech."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from tests.audio import DATA
from tests.openapi_forms import upload_from_schema
from tests.server import serving
from tests.wer import normalized_wer

pytestmark = pytest.mark.slow

KEY = "sk-openapi"
PATH = "/v1/audio/transcriptions"


def test_an_upload_built_from_the_served_schema_transcribes(tmp_path: Path) -> None:
    env = {
        "API_KEY": KEY,
        "WHISPER_TMP_FILES": str(tmp_path / "data"),
        "WHISPER__CACHE_DIR": str(tmp_path / "cache"),
        "WHISPER__MODEL": "base",
    }
    with serving(env, tmp_path / "server.log") as server:
        client = httpx.Client(base_url=server.base_url, timeout=300)
        schema = client.get("/openapi.json").json()
        docs = client.get("/docs")
        data, files = upload_from_schema(schema, PATH, DATA / "en_espeak.flac")
        # The schema's security scheme is a bearer token: what Swagger's "Authorize" sends.
        assert schema["paths"][PATH]["post"]["security"] == [{"HTTPBearer": []}]
        response = client.post(
            PATH, data=data, files=files, headers={"Authorization": f"Bearer {KEY}"}
        )
    validate(schema)
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
    assert data["model"] == "whisper-1"
    assert data["response_format"] == "json"
    assert response.status_code == 200, response.text
    reference = (DATA / "en_espeak.txt").read_text()
    assert normalized_wer(reference, response.json()["text"]) <= 0.10, response.text
