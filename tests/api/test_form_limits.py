"""Form text fields are bounded by name while the body is parsed, and a prompt the model could
only use in part is refused with its limit."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from whisperx_api.api.schemas import MAX_PROMPT_CHARS
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio

URL = "/v1/audio/transcriptions"
FIELD_LIMIT = 4096
REFERENCE_LIMIT = 20_000


def limited(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        limits={"max_field_bytes": FIELD_LIMIT, "max_voice_reference_bytes": REFERENCE_LIMIT}
    )


async def post(settings: Settings, tmp_path: Path, data: Any, as_files: bool = True) -> Any:
    backend = FakeTranscriber()
    async with running(fake_app(settings, backend)) as client:
        if as_files:
            files = {"file": ("a.wav", tone_bytes(tmp_path, 2.0))}
            return await client.post(URL, files=files, data=data), backend
        return await client.post(URL, data=data), backend


@pytest.mark.parametrize("as_files", [True, False], ids=["multipart", "urlencoded"])
async def test_a_field_past_its_limit_is_a_400_naming_it_and_setting(
    make_settings: Callable[..., Settings], tmp_path: Path, as_files: bool
) -> None:
    response, backend = await post(
        limited(make_settings), tmp_path, {"junk": "x" * (FIELD_LIMIT + 1)}, as_files
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "junk"
    assert "LIMITS__MAX_FIELD_BYTES" in error["message"]
    assert str(FIELD_LIMIT) in error["message"]
    assert backend.calls == []


async def test_fields_within_the_limit_are_accepted(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    response, backend = await post(
        limited(make_settings), tmp_path, {"junk": "x" * FIELD_LIMIT, "language": "en"}
    )
    assert response.status_code == 200, response.text
    assert len(backend.calls) == 1


async def test_voice_references_have_their_own_larger_limit(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = limited(make_settings)
    clip = "data:audio/wav;base64," + base64.b64encode(b"\0" * 9000).decode()  # 12 kB
    fits, _ = await post(settings, tmp_path, {"known_speaker_references[]": [clip]})
    too_big = "data:audio/wav;base64," + "A" * REFERENCE_LIMIT
    refused, _ = await post(settings, tmp_path, {"known_speaker_references": too_big})
    # The clip passes the parser (and then fails as a known-speaker field without diarize).
    assert fits.status_code == 400
    assert fits.json()["error"]["param"] == "known_speaker_names", fits.text
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "known_speaker_references"
    assert "LIMITS__MAX_VOICE_REFERENCE_BYTES" in refused.json()["error"]["message"]


async def test_many_references_are_bounded_together(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    clip = "data:audio/wav;base64," + "A" * (REFERENCE_LIMIT - 100)
    response, _ = await post(
        limited(make_settings), tmp_path, {"known_speaker_references[]": [clip] * 5}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "known_speaker_references"
    assert "together" in error["message"]


async def test_a_prompt_longer_than_the_model_can_use_is_a_400_stating_the_limit(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    fits, backend = await post(settings, tmp_path, {"prompt": "w" * MAX_PROMPT_CHARS})
    assert fits.status_code == 200, fits.text
    assert backend.calls[0].prompt == "w" * MAX_PROMPT_CHARS
    for url in (URL, "/transcription"):
        async with running(fake_app(settings, FakeTranscriber())) as client:
            response = await client.post(
                url,
                files={"file": ("a.wav", tone_bytes(tmp_path, 2.0))},
                data={"prompt": "w" * (MAX_PROMPT_CHARS + 1)},
            )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == "prompt"
        assert f"limit is {MAX_PROMPT_CHARS} characters" in error["message"]
