"""Live sessions on `/v1/realtime`: the real app, route, session logic and Silero VAD over a real
uvicorn WebSocket, with the fake transcription backend in the real registry."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.audio import DATA
from tests.conftest import fake_app
from tests.fakes import FakeTranscriber
from tests.realtime_client import (
    appends,
    next_event,
    open_session,
    pcm16,
    send,
    serve_in_thread,
    silence,
)
from tests.ws_flooder import flooding
from whisperx_api.config import Settings
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.pipeline.registry import default_registry
from whisperx_api.pipeline.stage import StageContext

pytestmark = pytest.mark.anyio

KEY = "sk-live"
COMPLETED = "conversation.item.input_audio_transcription.completed"
DELTA = "conversation.item.input_audio_transcription.delta"
MANUAL = {"type": "transcription", "audio": {"input": {"turn_detection": None}}}


@contextmanager
def live_server(
    make_settings: Callable[..., Settings],
    delay: float = 0.0,
    backend: FakeTranscriber | None = None,
    **realtime: Any,
) -> Iterator[str]:
    settings = make_settings(api_key=KEY, realtime=realtime)
    app = fake_app(settings, backend or FakeTranscriber(delay=delay))
    with serve_in_thread(app, ws_max_size=2 * settings.realtime.max_event_bytes) as url:
        yield url


def error_of(event: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    assert event["type"] == "error", event
    error = event["error"]
    assert set(error) == {"type", "code", "message", "param", "event_id"}
    assert error["message"]
    return error["code"], error["param"], error["event_id"]


def append(seconds: float, rate: int = 24_000) -> dict[str, Any]:
    """An append of `seconds` of a real recording (speech from the start)."""
    pcm = pcm16(DATA / "en_recorded.flac", rate)[: 2 * int(seconds * rate)]
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}


async def test_session_created_then_updated_with_the_effective_configuration(
    make_settings: Callable[..., Settings],
) -> None:
    with live_server(make_settings) as url:
        async with open_session(url, KEY) as ws:
            created = await next_event(ws)
            assert created["type"] == "session.created"
            audio = created["session"]["audio"]["input"]
            assert created["session"]["type"] == "transcription"
            assert audio["format"] == {"type": "audio/pcm", "rate": 24000}
            assert audio["turn_detection"] == {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 500,
            }
            update = {
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 16000},
                        "transcription": {"model": "gpt-4o-transcribe", "language": "EN"},
                        "turn_detection": {"type": "server_vad", "threshold": 0.6},
                    }
                },
            }
            await send(ws, {"type": "session.update", "session": update})
            updated = await next_event(ws)
            assert updated["type"] == "session.updated"
            audio = updated["session"]["audio"]["input"]
            assert audio["format"]["rate"] == 16000
            assert audio["transcription"] == {
                "model": "gpt-4o-transcribe",
                "language": "en",
                "prompt": "",
            }
            assert audio["turn_detection"]["threshold"] == 0.6
            assert audio["turn_detection"]["silence_duration_ms"] == 500  # unchanged


async def test_server_vad_turns_have_started_stopped_committed_deltas_and_completed(
    make_settings: Callable[..., Settings],
) -> None:
    pcm = pcm16(DATA / "en_recorded.flac")[: 2 * 24_000 * 6] + silence(1.5)
    with live_server(make_settings, delay=0.05) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            for event in appends(pcm):
                await send(ws, event)
            started = await next_event(ws, "input_audio_buffer.speech_started")
            item = started["item_id"]
            assert item.startswith("item_")
            assert 0 <= started["audio_start_ms"] < 1000
            events = []
            while True:
                event = await next_event(ws)
                events.append(event)
                if event["type"] == COMPLETED and event["item_id"] == item:
                    break
    by_type = {e["type"]: e for e in events if e.get("item_id") == item}
    stopped = by_type["input_audio_buffer.speech_stopped"]
    assert stopped["audio_end_ms"] > started["audio_start_ms"]
    assert by_type["input_audio_buffer.committed"]["previous_item_id"] is None
    completed = by_type[COMPLETED]
    assert completed["transcript"] == "hello from the fake backend says goodbye"
    assert completed["content_index"] == 0
    assert completed["usage"]["type"] == "duration"
    assert completed["usage"]["seconds"] == pytest.approx(
        (stopped["audio_end_ms"] - started["audio_start_ms"]) / 1000, abs=0.05
    )
    deltas = [e["delta"] for e in events if e["type"] == DELTA and e["item_id"] == item]
    assert deltas, "no delta before the completed transcript"
    assert "".join(deltas) == completed["transcript"]
    order = [e["type"] for e in events if e.get("item_id") == item]
    assert order.index("input_audio_buffer.speech_stopped") < order.index(
        "input_audio_buffer.committed"
    )


async def test_a_session_never_has_more_than_one_decode_in_flight(
    make_settings: Callable[..., Settings],
) -> None:
    """Appends far faster than real time: partial and final decodes queue, never overlap."""
    backend = FakeTranscriber(delay=0.3)
    pcm = pcm16(DATA / "en_recorded.flac")[: 2 * 24_000 * 12] + silence(1.5)
    with live_server(make_settings, backend=backend) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            for event in appends(pcm):
                await send(ws, event)
            stopped = []
            while True:
                event = await next_event(ws, "input_audio_buffer.committed", COMPLETED)
                if event["type"] != COMPLETED:
                    stopped.append(event["item_id"])
                elif event["item_id"] == stopped[-1]:
                    break
    assert len(stopped) >= 2
    assert len(backend.calls) > len(stopped)  # partial decodes ran too
    assert backend.max_running == 1
    # Partials are drafts (a short encoder window); each turn's final decode is a full one
    # (started early, at a silence that may yet end the turn, or once the turn is committed).
    assert True in backend.drafts
    assert backend.drafts.count(False) >= len(stopped)


async def wait_for_full_decodes(backend: FakeTranscriber, count: int) -> list[float]:
    """The backend's full (not draft) decodes, once there are `count` of them."""
    deadline = time.monotonic() + 60
    while len(found := backend.full_decodes()) < count:
        assert time.monotonic() < deadline, f"{count} full decode(s) never started: {found}"
        await asyncio.sleep(0.02)
    return found


async def pause_then(
    make_settings: Callable[..., Settings], backend: FakeTranscriber, speech: bytes, then: bytes
) -> tuple[float, dict[str, Any]]:
    """Stream `speech` and 350 ms of silence (past 40% of the 500-ms turn-ending silence); once
    the early final decode has started, stream `then`. Its audio length, and the completed
    event."""
    with live_server(make_settings, backend=backend) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            for event in appends(speech + silence(0.35)):
                await send(ws, event)
            [early] = await wait_for_full_decodes(backend, 1)  # the turn is still open
            for event in appends(then):
                await send(ws, event)
            return early, await next_event(ws, COMPLETED)


async def test_a_turn_s_final_decode_starts_when_its_closing_silence_begins(
    make_settings: Callable[..., Settings],
) -> None:
    """The final decode runs on the audio up to the silence while the silence is still being
    counted; the silence that follows ends the turn and the completed event uses that text."""
    backend = FakeTranscriber()
    speech = pcm16(DATA / "en_recorded.flac")[: 2 * 24_000 * 3]
    early, completed = await pause_then(make_settings, backend, speech, silence(1.5))
    assert early < completed["usage"]["seconds"]  # it decoded no more than up to the silence
    assert backend.full_decodes() == [early]  # and the turn's final decode was that one


async def test_speech_after_a_short_pause_makes_the_early_final_decode_stale(
    make_settings: Callable[..., Settings],
) -> None:
    backend = FakeTranscriber()
    speech = pcm16(DATA / "en_recorded.flac")[: 2 * 24_000 * 2]
    # The pause was shorter than 500 ms: the speech after it belongs to the same turn.
    stale, completed = await pause_then(make_settings, backend, speech, speech + silence(1.5))
    assert completed["usage"]["seconds"] > 4.0  # one turn, both stretches of speech
    used = backend.full_decodes()[-1]
    assert stale < 2.5 < 4.0 < used  # the completed text read the speech after the pause too


async def test_a_pause_within_a_sentence_starts_no_early_final_decode(
    make_settings: Callable[..., Settings],
) -> None:
    backend = FakeTranscriber()
    speech = pcm16(DATA / "en_recorded.flac")[: 2 * 24_000 * 2]
    with live_server(make_settings, backend=backend) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            for event in appends(speech + silence(0.1) + speech + silence(1.5)):
                await send(ws, event)
            completed = await next_event(ws, COMPLETED)
    assert completed["usage"]["seconds"] > 4.0
    [final] = backend.full_decodes()  # none for the 100-ms pause: only the turn's own
    assert final > 4.0


async def test_partial_deltas_arrive_while_the_turn_is_still_spoken(
    make_settings: Callable[..., Settings],
) -> None:
    """Speech with no pause for several seconds: deltas before any speech_stopped."""
    pcm = pcm16(DATA / "en_recorded.flac")[: 2 * 24_000 * 4]
    with live_server(make_settings) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            for event in appends(pcm):
                await send(ws, event)
            first = await next_event(ws, DELTA, "input_audio_buffer.speech_stopped")
    assert first["type"] == DELTA
    assert first["delta"] == "hello from the fake backend says"  # the last word held back


class SpeaksAfter(FakeTranscriber):
    """The fake backend, hearing no words in audio shorter than `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self._seconds = seconds

    def _work(
        self, audio: DecodedAudio, options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        if audio.duration < self._seconds:
            return Transcript(
                task=options.task, language="en", duration=audio.duration, segments=()
            )
        return super()._work(audio, options, ctx)


async def test_a_turn_is_drafted_more_often_until_its_first_delta(
    make_settings: Callable[..., Settings],
) -> None:
    """Drafts every REALTIME__FIRST_WORDS_INTERVAL_SECONDS from REALTIME__FIRST_PARTIAL_SECONDS
    until one has words, then every REALTIME__PARTIAL_INTERVAL_SECONDS."""
    backend = SpeaksAfter(0.75)
    realtime = {
        "first_partial_seconds": 0.4,
        "first_words_interval_seconds": 0.2,
        "partial_interval_seconds": 0.5,
    }
    drafted = [0.4, 0.6, 0.8, 1.3, 1.8]
    pcm = pcm16(DATA / "en_recorded.flac", 16_000)
    step = 2 * 1600  # 100 ms at 16 kHz (no resampling: lengths are exact)
    with live_server(make_settings, backend=backend, **realtime) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            session = {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}
            session["audio"]["input"]["turn_detection"] = None
            await send(ws, {"type": "session.update", "session": session})
            await next_event(ws, "session.updated")
            for n in range(1, 21):
                chunk = base64.b64encode(pcm[(n - 1) * step : n * step]).decode()
                await send(ws, {"type": "input_audio_buffer.append", "audio": chunk})
                if round(n / 10, 1) in drafted:  # this length's draft runs before more audio
                    await calls_reach(backend, drafted.index(round(n / 10, 1)) + 1)
                    await idle(backend)
            await send(ws, {"type": "input_audio_buffer.commit"})
            events = []
            while not events or events[-1]["type"] != COMPLETED:
                events.append(await next_event(ws, DELTA, COMPLETED))
    assert backend.seconds == [pytest.approx(s, abs=0.01) for s in [*drafted, 2.0]]
    assert backend.drafts == [True] * len(drafted) + [False]
    # The draft of 0.8 s had the first words (its last held back); the next agreed on it.
    assert [e.get("delta") for e in events[:-1]] == ["hello from the fake backend says", " goodbye"]


class HeldFinal(FakeTranscriber):
    """The fake backend, whose first full decode waits until the test lets it go."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay=delay)
        self.release = threading.Event()

    def _work(
        self, audio: DecodedAudio, options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        if not ctx.draft and len(self.full_decodes()) == 1:
            assert self.release.wait(60), "the test never released the first full decode"
        return super()._work(audio, options, ctx)


@pytest.mark.parametrize(("delay", "ahead"), [(0.0, True), (0.5, False)])
async def test_a_new_turn_s_first_draft_goes_before_a_waiting_final_decode_when_drafts_are_quick(
    make_settings: Callable[..., Settings], delay: float, ahead: bool
) -> None:
    """Turn A's final decode runs (held) while B is committed and C opens: C's first draft runs
    before B's final when A's first draft was quick (here, instant), after it when it was slow
    (0.5 s: the draft would hold B's completed event back that long)."""
    backend = HeldFinal(delay)
    pcm = pcm16(DATA / "en_recorded.flac", 16_000)
    second = 32_000  # bytes: 1 s at 16 kHz
    with live_server(make_settings, backend=backend, first_partial_seconds=1.5) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            session = {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}
            session["audio"]["input"]["turn_detection"] = None
            await send(ws, {"type": "session.update", "session": session})
            await next_event(ws, "session.updated")
            await send(ws, append_pcm(pcm[: 2 * second]))  # A: 2 s, past the first partial
            await calls_reach(backend, 1)
            await idle(backend)
            await send(ws, {"type": "input_audio_buffer.commit"})
            await calls_reach(backend, 2)  # A's final decode: held
            await send(ws, append_pcm(pcm[2 * second : 3 * second]))  # B: 1 s, no partial
            await send(ws, {"type": "input_audio_buffer.commit"})
            await send(ws, append_pcm(pcm[3 * second : 5 * second]))  # C: its first draft due
            await send(ws, {"type": "session.update", "session": session})
            await next_event(ws, "session.updated")  # (the appends were handled before this)
            backend.release.set()
            for _ in range(2):
                await next_event(ws, COMPLETED)  # A's and B's
            await calls_reach(backend, 4)  # C's draft, whichever went first
    calls = list(zip(backend.drafts, [round(s, 2) for s in backend.seconds], strict=True))
    a_draft, a_final, b_final, c_draft = (True, 2.0), (False, 2.0), (False, 1.0), (True, 2.0)
    assert calls[:2] == [a_draft, a_final]
    assert calls[2:4] == ([c_draft, b_final] if ahead else [b_final, c_draft])


def append_pcm(pcm: bytes) -> dict[str, Any]:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}


async def calls_reach(backend: FakeTranscriber, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(backend.calls) < count:
        assert time.monotonic() < deadline, f"{count} decodes never started: {backend.seconds}"
        await asyncio.sleep(0.01)


async def idle(backend: FakeTranscriber) -> None:
    deadline = time.monotonic() + 60
    while backend.running:
        assert time.monotonic() < deadline, "a decode never finished"
        await asyncio.sleep(0.01)


async def test_manual_commit_transcribes_the_buffer_and_chains_item_ids(
    make_settings: Callable[..., Settings],
) -> None:
    with live_server(make_settings) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            await send(ws, {"type": "session.update", "session": MANUAL})
            updated = await next_event(ws, "session.updated")
            assert updated["session"]["audio"]["input"]["turn_detection"] is None
            items = []
            for _ in range(2):
                await send(ws, append(1.0))
                await send(ws, {"type": "input_audio_buffer.commit"})
                committed = await next_event(ws, "input_audio_buffer.committed")
                completed = await next_event(ws, COMPLETED)
                assert completed["item_id"] == committed["item_id"]
                assert completed["usage"]["seconds"] == pytest.approx(1.0, abs=0.01)
                items.append(committed)
    assert items[0]["previous_item_id"] is None
    assert items[1]["previous_item_id"] == items[0]["item_id"]


async def test_a_commit_mid_speech_commits_the_turn_the_vad_opened(
    make_settings: Callable[..., Settings],
) -> None:
    with live_server(make_settings) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            await send(ws, append(2.0))
            started = await next_event(ws, "input_audio_buffer.speech_started")
            await send(ws, {"type": "input_audio_buffer.commit"})
            committed = await next_event(ws, "input_audio_buffer.committed")
            assert committed["item_id"] == started["item_id"]
            completed = await next_event(ws, COMPLETED)
            assert completed["item_id"] == started["item_id"]
            assert completed["usage"]["seconds"] == pytest.approx(
                2.0 - started["audio_start_ms"] / 1000, abs=0.05
            )
            await send(ws, append(2.0))  # the VAD listens again after the commit
            again = await next_event(ws, "input_audio_buffer.speech_started")
            assert again["item_id"] != started["item_id"]
            assert again["audio_start_ms"] >= 2000 - 300


async def test_commit_of_an_empty_or_cleared_buffer_is_an_error_event(
    make_settings: Callable[..., Settings],
) -> None:
    with live_server(make_settings) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            await send(ws, {"type": "session.update", "session": MANUAL})
            await next_event(ws, "session.updated")
            await send(ws, {"type": "input_audio_buffer.commit", "event_id": "evt_1"})
            assert error_of(await next_event(ws)) == (
                "input_audio_buffer_commit_empty",
                None,
                "evt_1",
            )
            await send(ws, append(1.0))  # a draft of it may come before the clear is heard
            await send(ws, {"type": "input_audio_buffer.clear"})
            cleared = await next_event(ws, "input_audio_buffer.cleared", "error")
            assert cleared["type"] == "input_audio_buffer.cleared"
            await send(ws, {"type": "input_audio_buffer.commit", "event_id": "evt_2"})
            assert error_of(await next_event(ws, "error"))[0] == "input_audio_buffer_commit_empty"


async def test_a_failed_decode_is_a_failed_event_and_the_session_goes_on(
    make_settings: Callable[..., Settings],
) -> None:
    """The fake backend fails on audio under 0.4 s."""
    with live_server(make_settings) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            await send(ws, {"type": "session.update", "session": MANUAL})
            await next_event(ws, "session.updated")
            await send(ws, append(0.2))
            await send(ws, {"type": "input_audio_buffer.commit"})
            failed = await next_event(ws, "conversation.item.input_audio_transcription.failed")
            assert failed["error"]["code"] == "backend_error"
            await send(ws, append(1.0))
            await send(ws, {"type": "input_audio_buffer.commit"})
            assert (await next_event(ws, COMPLETED))["transcript"]


@pytest.mark.parametrize(
    ("raw", "code", "param"),
    [
        ("{not json", "invalid_event", None),
        ("[1, 2]", "invalid_event", None),
        ('{"event_id": "e"}', "invalid_event", "type"),
        ('{"type": "response.create", "event_id": "e"}', "unknown_event_type", "type"),
        (
            '{"type": "input_audio_buffer.append", "audio": "@@not base64@@"}',
            "invalid_base64",
            "audio",
        ),
        ('{"type": "input_audio_buffer.append", "audio": 42}', "invalid_event", "audio"),
        (
            '{"type": "session.update", "session": {"type": "realtime"}}',
            "unsupported_parameter",
            "session.type",
        ),
        ('{"type": "session.update", "session": "x"}', "invalid_event", "session"),
        (
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 8000}}}
                    },
                }
            ),
            "invalid_value",
            "session.audio.input.format.rate",
        ),
        (
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"audio": {"input": {"format": {"type": "audio/pcmu"}}}},
                }
            ),
            "unsupported_parameter",
            "session.audio.input.format.type",
        ),
        (
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}},
                }
            ),
            "unsupported_parameter",
            "session.audio.input.turn_detection.type",
        ),
        (
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"audio": {"input": {"turn_detection": {"threshold": 1.5}}}},
                }
            ),
            "invalid_value",
            "session.audio.input.turn_detection.threshold",
        ),
        (
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "audio": {"input": {"turn_detection": {"silence_duration_ms": 2.5}}}
                    },
                }
            ),
            "invalid_value",
            "session.audio.input.turn_detection.silence_duration_ms",
        ),
        (
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"audio": {"input": {"transcription": {"model": "large-v9"}}}},
                }
            ),
            "model_not_found",
            "session.audio.input.transcription.model",
        ),
        (
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"audio": {"input": {"transcription": {"language": "xx"}}}},
                }
            ),
            "invalid_value",
            "session.audio.input.transcription.language",
        ),
    ],
)
async def test_a_bad_event_gets_an_error_event_and_the_session_stays_usable(
    make_settings: Callable[..., Settings], raw: str, code: str, param: str | None
) -> None:
    with live_server(make_settings) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            await ws.send(raw)
            error = await next_event(ws)
            assert error_of(error)[:2] == (code, param)
            assert error["error"]["type"] == "invalid_request_error"
            await send(ws, {"type": "session.update", "session": {"type": "transcription"}})
            updated = await next_event(ws)
            assert updated["type"] == "session.updated"
            assert updated["session"]["audio"]["input"]["format"]["rate"] == 24000


async def test_the_beta_transcription_session_update_is_read_too(
    make_settings: Callable[..., Settings],
) -> None:
    with live_server(make_settings) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            beta = {
                "input_audio_format": "pcm16",
                "input_audio_transcription": {"model": "whisper-1", "language": "fr"},
                "turn_detection": None,
            }
            await send(ws, {"type": "transcription_session.update", "session": beta})
            updated = await next_event(ws)
            assert updated["type"] == "transcription_session.updated"  # the beta's answer
            audio = updated["session"]["audio"]["input"]
    assert audio["transcription"]["language"] == "fr"
    assert audio["turn_detection"] is None


async def test_16_khz_input_is_transcribed_at_its_length(
    make_settings: Callable[..., Settings],
) -> None:
    with live_server(make_settings) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            session = {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}
            session["audio"]["input"]["turn_detection"] = None
            await send(ws, {"type": "session.update", "session": session})
            await next_event(ws, "session.updated")
            await send(ws, append(2.0, rate=16_000))
            await send(ws, {"type": "input_audio_buffer.commit"})
            completed = await next_event(ws, COMPLETED)
    assert completed["usage"]["seconds"] == pytest.approx(2.0, abs=0.01)


async def test_an_oversize_event_is_refused_and_a_gross_one_closes_the_socket(
    make_settings: Callable[..., Settings],
) -> None:
    with live_server(make_settings, max_event_bytes=4096) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            big = {"type": "input_audio_buffer.append", "audio": "A" * 6000, "event_id": "big"}
            await send(ws, big)
            assert error_of(await next_event(ws)) == ("event_too_large", None, None)
            await send(ws, {"type": "session.update", "session": {}})
            assert (await next_event(ws))["type"] == "session.updated"
            await ws.send("x" * 9000)  # past twice the limit: the server does not read it
            with pytest.raises(ConnectionClosed) as closed:
                await next_event(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def test_audio_sent_faster_than_it_is_transcribed_overflows_the_buffer(
    make_settings: Callable[..., Settings],
) -> None:
    """2 s may wait; a 1.5 s turn is being decoded (slowly), so 1 s more is refused."""
    with live_server(make_settings, delay=3.0, max_buffered_seconds=2.0) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            await send(ws, {"type": "session.update", "session": MANUAL})
            await next_event(ws, "session.updated")
            await send(ws, append(1.5))
            await send(ws, {"type": "input_audio_buffer.commit"})
            await next_event(ws, "input_audio_buffer.committed")
            await send(ws, {**append(1.0), "event_id": "late"})
            assert error_of(await next_event(ws, "error")) == (
                "input_audio_buffer_overflow",
                "audio",
                "late",
            )
            completed = await next_event(ws, COMPLETED)  # the held turn still completes
            assert completed["usage"]["seconds"] == pytest.approx(1.5, abs=0.01)
            await send(ws, append(1.0))  # and with the buffer drained, audio is taken again
            await send(ws, {"type": "input_audio_buffer.commit"})
            assert (await next_event(ws, "input_audio_buffer.committed", "error"))["type"] == (
                "input_audio_buffer.committed"
            )


async def test_an_idle_session_gets_an_error_event_and_is_closed(
    make_settings: Callable[..., Settings],
) -> None:
    with live_server(make_settings, idle_timeout=0.5) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            assert error_of(await next_event(ws, deadline=30))[0] == "idle_timeout"
            with pytest.raises(ConnectionClosed) as closed:
                await next_event(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000


async def test_a_session_past_max_sessions_gets_an_error_event_and_is_closed(
    make_settings: Callable[..., Settings],
) -> None:
    with live_server(make_settings, max_sessions=1) as url:
        async with open_session(url, KEY) as first:
            await next_event(first, "session.created")
            async with open_session(url, KEY) as second:
                error = await next_event(second)
                assert error_of(error)[0] == "too_many_sessions"
                assert error["error"]["type"] == "server_overloaded"
                with pytest.raises(ConnectionClosed) as closed:
                    await next_event(second)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013
        async with open_session(url, KEY) as third:  # the slot was given back
            assert (await next_event(third))["type"] == "session.created"


async def test_max_sessions_zero_turns_live_sessions_off(
    make_settings: Callable[..., Settings],
) -> None:
    with live_server(make_settings, max_sessions=0) as url:
        async with open_session(url, KEY) as ws:
            assert error_of(await next_event(ws))[0] == "realtime_unavailable"
            with pytest.raises(ConnectionClosed):
                await next_event(ws)


async def test_a_replica_without_a_model_refuses_live_sessions_clearly(
    make_settings: Callable[..., Settings],
) -> None:
    """What an API replica in MODE=kafka answers (its runtime has no live engine)."""
    settings = make_settings(api_key=KEY)
    app = fake_app(settings, FakeTranscriber())
    app.state.runtime.live = None
    with serve_in_thread(app) as url:
        async with open_session(url, KEY) as ws:
            error = await next_event(ws)
            assert error_of(error)[0] == "realtime_unavailable"
            assert "MODE=distributed" in error["error"]["message"]
            with pytest.raises(ConnectionClosed) as closed:
                await next_event(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


def test_kafka_replicas_serve_live_sessions_only_when_allowed(
    make_settings: Callable[..., Settings],
) -> None:
    from whisperx_api.distributed.runtime import build_replica_live

    registry = default_registry()
    registry.register_transcription("fake", lambda _settings: FakeTranscriber())
    backends = {"transcription": "fake"}
    assert build_replica_live(make_settings(mode="kafka", backends=backends), registry) is None
    allowed = make_settings(mode="kafka", backends=backends, realtime={"allow_in_kafka_mode": True})
    engine = build_replica_live(allowed, registry)
    assert engine is not None
    assert isinstance(engine.transcriber, FakeTranscriber)
    engine.close()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sk-wrong"}])
async def test_the_handshake_needs_a_key(
    make_settings: Callable[..., Settings], headers: dict[str, str]
) -> None:
    with live_server(make_settings) as url, pytest.raises(InvalidStatus) as refused:
        async with open_session(url, headers=headers):
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert json.loads(response.body)["error"]["code"] == "invalid_api_key"


async def test_browsers_send_the_key_as_a_subprotocol(
    make_settings: Callable[..., Settings],
) -> None:
    with live_server(make_settings) as url:
        protocols = ["realtime", f"openai-insecure-api-key.{KEY}"]
        async with open_session(url, subprotocols=protocols) as ws:
            assert ws.subprotocol == "realtime"
            assert (await next_event(ws))["type"] == "session.created"


async def test_an_intent_other_than_transcription_is_refused(
    make_settings: Callable[..., Settings],
) -> None:
    with live_server(make_settings) as url, pytest.raises(InvalidStatus) as refused:
        async with open_session(url.replace("intent=transcription", "intent=chat"), KEY):
            pass
    response = refused.value.response
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["param"] == "intent"


async def test_a_client_that_floods_and_never_reads_is_dropped_and_its_slot_freed(
    make_settings: Callable[..., Settings],
) -> None:
    # Each unknown event earns an error event back; the flooder reads none of them.
    with (
        live_server(make_settings, max_sessions=1, send_timeout=1.0, idle_timeout=600) as url,
        flooding(url, KEY, {"type": "no.such.event", "pad": "x" * 2000}),
    ):
        started = time.monotonic()
        while True:
            assert time.monotonic() - started < 60, "the stalled session kept its slot"
            async with open_session(url, KEY) as ws:
                event = await next_event(ws)
            if event["type"] == "session.created":
                break
            assert error_of(event)[0] == "too_many_sessions"
            await asyncio.sleep(0.2)


@pytest.mark.parametrize(
    ("origin", "allowed", "cors"),
    [
        (None, True, []),
        ("https://app.example", True, ["https://app.example"]),
        ("https://evil.example", False, ["https://app.example"]),
        ("https://evil.example", False, []),
        ("http://evil.example", True, ["*"]),
    ],
)
async def test_a_browser_origin_must_be_in_the_cors_list(
    make_settings: Callable[..., Settings], origin: str | None, allowed: bool, cors: list[str]
) -> None:
    settings = make_settings(server={"cors_origins": cors})  # auth off: the riskier case
    app = fake_app(settings, FakeTranscriber())
    headers = {"Origin": origin} if origin else {}
    with serve_in_thread(app) as url:
        if allowed:
            async with open_session(url, headers=headers) as ws:
                assert (await next_event(ws))["type"] == "session.created"
            return
        with pytest.raises(InvalidStatus) as refused:
            async with open_session(url, headers=headers):
                pass
    response = refused.value.response
    assert response.status_code == 400
    error = json.loads(response.body)["error"]
    assert (error["code"], error["param"]) == ("cors_not_allowed", "Origin")
    assert "SERVER__CORS_ORIGINS" in error["message"]
