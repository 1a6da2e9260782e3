"""Live speaker labels through the real app, route, session and Silero VAD over a real uvicorn
WebSocket, with fake transcription and diarization backends in the real registry.

The diarizer here hears one voice per turn, the next of a script each time, so the labels a
session gives can be checked turn by turn; saved voices are enrolled through `/v1/speakers`,
where the fake embeds a clip of n whole seconds as (n - 2, 1). The real speaker model labels a
real call in tests/integration/test_live_speakers.py.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio import DATA, tone_bytes
from tests.conftest import fake_app
from tests.fakes import FakeDiarizer, FakeTranscriber
from tests.realtime_client import next_event, open_session, pcm16, send, serve_in_thread
from whisperx_api.config import Settings
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.speakers import Diarization, SpeakerTurn
from whisperx_api.pipeline.stage import DiarizationRequest, StageContext

pytestmark = pytest.mark.anyio

ALICE, BOB = "sk-alice", "sk-bob"
COMPLETED = "conversation.item.input_audio_transcription.completed"
TRANSCRIPTION = "session.audio.input.transcription"
ANN = (0.0, 1.0)  # the voice of a 2 s enrolment clip
OTHER = (1.0, 0.0)


class ScriptedVoices(FakeDiarizer):
    """Hears one voice in each turn: the next of `voices`, in turn."""

    def __init__(self, voices: Sequence[tuple[float, ...]]) -> None:
        super().__init__()
        self._voices = list(voices)
        self.turns = 0

    def diarize(
        self, audio: DecodedAudio, request: DiarizationRequest, ctx: StageContext
    ) -> Diarization:
        self.requests.append(request)
        voice = self._voices[self.turns % len(self._voices)]
        self.turns += 1
        turn = SpeakerTurn(0.0, audio.duration, "SPEAKER_00")
        return Diarization(turns=(turn,), embeddings={"SPEAKER_00": voice})


@contextmanager
def live_server(
    make_settings: Callable[..., Settings], tmp_path: Path, diarizer: FakeDiarizer
) -> Iterator[tuple[str, str]]:
    """A server with two keys; yields its WebSocket URL and its HTTP base URL."""
    keys = tmp_path / "keys.json"
    keys.write_text(f'{{"{ALICE}": "alice", "{BOB}": "bob"}}')
    settings = make_settings(api_keys_file=keys)
    app = fake_app(settings, FakeTranscriber(), diarizer)
    with serve_in_thread(app) as url:
        yield url, url.replace("ws://", "http://").partition("/v1/")[0]


def session(**transcription: Any) -> dict[str, Any]:
    """A `session.update` with manual commits and these transcription fields."""
    return {
        "type": "session.update",
        "session": {
            "type": "transcription",
            "audio": {"input": {"turn_detection": None, "transcription": transcription}},
        },
    }


def append(seconds: float) -> dict[str, Any]:
    pcm = pcm16(DATA / "en_recorded.flac", 24_000)[: 2 * int(seconds * 24_000)]
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}


async def turns(ws: Any, count: int, seconds: float = 1.5) -> list[dict[str, Any]]:
    """Speak and commit `count` turns; their completed events."""
    completed = []
    for _ in range(count):
        await send(ws, append(seconds))
        await send(ws, {"type": "input_audio_buffer.commit"})
        completed.append(await next_event(ws, COMPLETED, "error"))
    return completed


def enrol(base_url: str, key: str, name: str, seconds: float, tmp_path: Path) -> str:
    clip = tone_bytes(tmp_path, seconds, f"{name}.wav")
    answer = httpx.post(
        f"{base_url}/v1/speakers",
        data={"name": name},
        files={"file": ("voice.wav", clip)},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def test_turns_carry_stable_session_speakers(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    diarizer = ScriptedVoices([ANN, OTHER, ANN, OTHER])
    with live_server(make_settings, tmp_path, diarizer) as (url, _):
        async with open_session(url, ALICE) as ws:
            await next_event(ws, "session.created")
            await send(ws, session(diarize=True))
            updated = await next_event(ws, "session.updated")
            fields = updated["session"]["audio"]["input"]["transcription"]
            assert fields["diarize"] is True
            assert fields["known_speaker_ids"] == []
            completed = await turns(ws, 4)
    assert [c["speaker"] for c in completed] == ["SPEAKER_00", "SPEAKER_01"] * 2
    assert all(c["transcript"] for c in completed)


async def test_without_diarize_nothing_changes_and_no_voice_is_sought(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    diarizer = ScriptedVoices([ANN])
    with live_server(make_settings, tmp_path, diarizer) as (url, _):
        async with open_session(url, ALICE) as ws:
            created = await next_event(ws, "session.created")
            assert "diarize" not in created["session"]["audio"]["input"]["transcription"]
            await send(ws, session())
            await next_event(ws, "session.updated")
            completed = await turns(ws, 2)
            # Turned on, then off again: labels stop with it.
            await send(ws, session(diarize=True))
            await next_event(ws, "session.updated")
            [labelled] = await turns(ws, 1)
            await send(ws, session(diarize=False))
            await next_event(ws, "session.updated")
            [after] = await turns(ws, 1)
    assert all("speaker" not in c for c in [*completed, after])
    assert labelled["speaker"] == "SPEAKER_00"
    assert diarizer.turns == 1


async def test_saved_voices_name_speakers_and_another_keys_ids_are_refused(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    diarizer = ScriptedVoices([ANN, OTHER, ANN])
    with live_server(make_settings, tmp_path, diarizer) as (url, base_url):
        ann = enrol(base_url, ALICE, "Ann", 2.0, tmp_path)
        async with open_session(url, BOB) as ws:
            await next_event(ws, "session.created")
            await send(ws, session(diarize=True, known_speaker_ids=[ann]))
            refused = await next_event(ws, "error", "session.updated")
            assert refused["type"] == "error"
            assert refused["error"]["param"] == f"{TRANSCRIPTION}.known_speaker_ids"
            assert ann in refused["error"]["message"]
            # The refused update changed nothing: turns stay unlabelled.
            [plain] = await turns(ws, 1)
            assert "speaker" not in plain
        async with open_session(url, ALICE) as ws:
            await next_event(ws, "session.created")
            await send(ws, session(diarize=True, known_speaker_ids=[ann]))
            updated = await next_event(ws, "session.updated")
            fields = updated["session"]["audio"]["input"]["transcription"]
            assert fields["known_speaker_ids"] == [ann]
            completed = await turns(ws, 3)
    assert [c["speaker"] for c in completed] == ["Ann", "SPEAKER_00", "Ann"]
    assert diarizer.turns == 3  # (Bob's turn sought no voice)


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"diarize": "yes"}, "diarize", "invalid_value"),
        ({"known_speaker_ids": ["spk_" + "0" * 24]}, "known_speaker_ids", None),
        ({"diarize": True, "known_speaker_ids": "spk_1"}, "known_speaker_ids", "invalid_value"),
        ({"diarize": True, "known_speaker_ids": ["../etc"]}, "known_speaker_ids", "invalid_value"),
        (
            {"diarize": True, "known_speaker_ids": [f"spk_{n:024x}" for n in range(51)]},
            "known_speaker_ids",
            "invalid_value",
        ),
        ({"diarize": True, "known_speaker_ids": ["spk_" + "0" * 24]}, "known_speaker_ids", None),
    ],
)
async def test_bad_speaker_fields_are_error_events_naming_the_field(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    fields: dict[str, Any],
    param: str,
    code: str | None,
) -> None:
    with live_server(make_settings, tmp_path, ScriptedVoices([ANN])) as (url, _):
        async with open_session(url, ALICE) as ws:
            await next_event(ws, "session.created")
            await send(ws, session(**fields))
            error = (await next_event(ws, "error", "session.updated"))["error"]
            assert error["param"] == f"{TRANSCRIPTION}.{param}"
            assert error["type"] == "invalid_request_error"
            if code is not None:
                assert error["code"] == code
            await send(ws, session(diarize=True))  # the session goes on
            assert (await next_event(ws, "error", "session.updated"))["type"] == "session.updated"


async def test_a_client_secret_takes_the_minting_keys_voices_only(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    diarizer = ScriptedVoices([ANN, OTHER])
    with live_server(make_settings, tmp_path, diarizer) as (url, base_url):
        ann = enrol(base_url, ALICE, "Ann", 2.0, tmp_path)
        body = {
            "session": {
                "type": "transcription",
                "audio": {
                    "input": {
                        "turn_detection": None,
                        "transcription": {"diarize": True, "known_speaker_ids": [ann]},
                    }
                },
            }
        }
        minted = {}
        for key in (ALICE, BOB):
            minted[key] = httpx.post(
                f"{base_url}/v1/realtime/client_secrets",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
            )
        assert minted[BOB].status_code == 400
        assert minted[BOB].json()["error"]["param"] == f"{TRANSCRIPTION}.known_speaker_ids"
        assert minted[ALICE].status_code == 200, minted[ALICE].text
        secret = minted[ALICE].json()["value"]
        async with open_session(url, secret) as ws:
            created = await next_event(ws, "session.created")
            assert created["session"]["audio"]["input"]["transcription"]["diarize"] is True
            completed = await turns(ws, 2)
    assert [c["speaker"] for c in completed] == ["Ann", "SPEAKER_00"]
