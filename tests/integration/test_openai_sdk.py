"""End to end: a real server process with the bundled base model, driven by the official
`openai` SDK, on real speech fixtures."""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import srt
import webvtt
from openai import OpenAI
from openai.types.audio import TranscriptionTextDeltaEvent, TranscriptionTextDoneEvent

from tests.audio import DATA
from tests.distributed_stack import build_speech
from tests.server import ServerProcess, serving
from tests.wer import normalized_wer

pytestmark = pytest.mark.slow

KEY = "sk-integration"
HEADERS = {"Authorization": f"Bearer {KEY}"}
ENGLISH = ["en_espeak", "en_recorded"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("openai-server")
    env = {
        "API_KEY": KEY,
        "WHISPER_TMP_FILES": str(root / "data"),
        "WHISPER__CACHE_DIR": str(root / "cache"),
        "WHISPER__MODEL": "base",
    }
    with serving(env, root / "server.log") as running:
        yield running


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(api_key=KEY, base_url=f"{server.base_url}/v1", max_retries=0, timeout=300)


def reference(name: str) -> str:
    return (DATA / f"{name}.txt").read_text()


def duration_of(name: str) -> float:
    import av

    with av.open(str(DATA / f"{name}.flac")) as container:
        return float(container.duration or 0) / 1_000_000


@pytest.mark.parametrize("name", ENGLISH)
def test_json_transcript_is_accurate(client: OpenAI, name: str) -> None:
    with (DATA / f"{name}.flac").open("rb") as f:
        result = client.audio.transcriptions.create(model="whisper-1", file=f)
    assert normalized_wer(reference(name), result.text) <= 0.10, result.text


def test_text_format(client: OpenAI) -> None:
    with (DATA / "en_espeak.flac").open("rb") as f:
        text = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="text")
    assert isinstance(text, str)
    assert normalized_wer(reference("en_espeak"), text) <= 0.10


def test_verbose_json_with_words(client: OpenAI) -> None:
    with (DATA / "en_recorded.flac").open("rb") as f:
        result = client.audio.transcriptions.create(
            model="whisper-1",
            file=f,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    duration = duration_of("en_recorded")
    assert result.language == "en"
    assert result.duration == pytest.approx(duration, abs=0.1)
    assert result.segments
    assert result.words
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= duration + 0.05 for w in result.words)
    assert normalized_wer(reference("en_recorded"), " ".join(w.word for w in result.words)) <= 0.10
    assert result.usage is not None


def test_srt_and_vtt_parse_with_monotonic_in_range_cues(client: OpenAI) -> None:
    duration = duration_of("en_espeak")
    with (DATA / "en_espeak.flac").open("rb") as f:
        srt_text = client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="srt"
        )
    with (DATA / "en_espeak.flac").open("rb") as f:
        vtt_text = client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="vtt"
        )
    cues = list(srt.parse(str(srt_text)))
    assert cues
    srt_times = [(c.start.total_seconds(), c.end.total_seconds()) for c in cues]
    vtt_cues = webvtt.from_buffer(io.StringIO(str(vtt_text)))
    vtt_times = [(c.start_in_seconds, c.end_in_seconds) for c in vtt_cues]
    for times in (srt_times, vtt_times):
        assert [s for s, _ in times] == sorted(s for s, _ in times)
        assert all(0 <= s <= e <= duration + 0.05 for s, e in times)
    text = " ".join(c.content for c in cues)
    assert normalized_wer(reference("en_espeak"), text) <= 0.10


def test_translation_to_english(client: OpenAI) -> None:
    with (DATA / "fr_espeak.flac").open("rb") as f:
        result = client.audio.translations.create(model="whisper-1", file=f)
    words = set(result.text.lower().replace(".", " ").replace(",", " ").split())
    assert {"paris", "family"} <= words, result.text
    english = (DATA / "fr_espeak.en.txt").read_text()
    assert normalized_wer(english, result.text) <= 0.5, result.text


def test_streamed_text_arrives_while_decoding(
    client: OpenAI, server: ServerProcess, tmp_path: Path
) -> None:
    """stream=true through the SDK: deltas come while the job still runs and add up to `done`."""
    speech = build_speech(tmp_path / "speech.wav", 60)
    deltas: list[str] = []
    done: list[str] = []
    processing_at_first_delta = None
    with speech.path.open("rb") as f:
        # batch_size=1: each VAD chunk is a batch of its own, so segments come out in turn.
        stream = client.audio.transcriptions.create(
            model="whisper-1", file=f, stream=True, extra_body={"batch_size": 1}
        )
        for event in stream:
            if isinstance(event, TranscriptionTextDeltaEvent):
                if not deltas:
                    status = httpx.get(f"{server.base_url}/status", headers=HEADERS).json()
                    processing_at_first_delta = status["queue_state"]["processing_jobs"]
                deltas.append(event.delta)
            else:
                assert isinstance(event, TranscriptionTextDoneEvent)
                done.append(event.text)
    assert processing_at_first_delta == 1
    assert len(deltas) >= 2
    assert done == ["".join(deltas)]
    assert normalized_wer(speech.reference, done[0]) <= 0.10, done[0]


def test_ten_concurrent_requests_share_one_model(server: ServerProcess) -> None:
    audio = (DATA / "en_numbers.flac").read_bytes()  # 3 s: the point is the ten, not the length
    headers = {"Authorization": f"Bearer {KEY}"}

    def one(_: int) -> httpx.Response:
        return httpx.post(
            f"{server.base_url}/v1/audio/transcriptions",
            headers=headers,
            files={"file": ("en_numbers.flac", audio)},
            data={"model": "whisper-1"},
            timeout=300,
        )

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(one, range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    texts = [r.json()["text"] for r in responses]
    assert normalized_wer(reference("en_numbers"), texts[0]) <= 0.2, texts[0]  # 1 word in 8
    assert texts == [texts[0]] * 10  # batched together, each reads as the others do
    models = httpx.get(f"{server.base_url}/models/list", headers=headers).json()
    assert models["models"] == ["base"]
    assert models["loads"]["base"] == 1


def test_bad_inputs_against_the_real_server(server: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    url = f"{server.base_url}/v1/audio/transcriptions"
    truncated = httpx.post(
        url, headers=headers, files={"file": ("t.mp3", (DATA / "bad_truncated.mp3").read_bytes())}
    )
    unknown = httpx.post(
        url,
        headers=headers,
        files={"file": ("g.mp3", (DATA / "good_short.mp3").read_bytes())},
        data={"model": "large-v9"},
    )
    assert truncated.status_code == 400
    assert truncated.json()["error"]["code"] == "invalid_audio"
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "model_not_found"
    assert "base" in unknown.json()["error"]["message"]


def test_no_files_left_behind(
    server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data_dirs = list(Path(tmp_path_factory.getbasetemp()).glob("openai-server*/data/jobs"))
    assert data_dirs
    assert all(list(d.iterdir()) == [] for d in data_dirs)


@pytest.mark.parametrize("name", ["narration", "en_recorded"])
def test_verbose_json_segments_are_the_srt_cue_boundaries(client: OpenAI, name: str) -> None:
    with (DATA / f"{name}.flac").open("rb") as f:
        verbose = client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json"
        )
    with (DATA / f"{name}.flac").open("rb") as f:
        srt_text = client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="srt"
        )
    segments = verbose.segments or []
    cues = list(srt.parse(str(srt_text)))
    assert len(segments) >= 5
    assert [s.id for s in segments] == list(range(len(segments)))
    assert all(s.seek == round(s.start * 100) for s in segments)
    assert all(s.end - s.start <= 7.0 for s in segments)
    assert " ".join(s.text.strip() for s in segments) == verbose.text
    # Every segment starts a cue, and the cues up to the next segment spell exactly its text.
    bounds = [*(s.start for s in segments), float("inf")]
    for segment, upto in zip(segments, bounds[1:], strict=True):
        own = [c for c in cues if segment.start <= c.start.total_seconds() < upto]
        assert own, segment
        assert own[0].start.total_seconds() == pytest.approx(segment.start, abs=0.0015)
        assert " ".join(" ".join(c.content for c in own).split()) == segment.text.strip()
