"""Confirmed text in long live turns: with the fake backend through the real app and session,
a turn's final decode reads only the audio after the words its partials agreed on."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.audio import DATA
from tests.conftest import fake_app
from tests.fakes import FakeTranscriber
from tests.realtime_client import next_event, open_session, pcm16, send, serve_in_thread
from whisperx_api.config import Settings
from whisperx_api.realtime.agreement import MARGIN_SECONDS

pytestmark = pytest.mark.anyio

KEY = "sk-live"
COMPLETED = "conversation.item.input_audio_transcription.completed"
MANUAL = {"type": "transcription", "audio": {"input": {"turn_detection": None}}}
STEP = 0.5  # seconds per append: one partial decode each (REALTIME__PARTIAL_INTERVAL_SECONDS)
TURN = 8.0


async def calls_reach(backend: FakeTranscriber, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(backend.calls) < count:
        assert time.monotonic() < deadline, f"{count} decodes never started: {backend.calls}"
        await asyncio.sleep(0.01)


async def long_turn(
    make_settings: Callable[..., Settings], backend: FakeTranscriber, **realtime: Any
) -> dict[str, Any]:
    """An 8-s turn appended in half seconds, each followed by its partial decode, then
    committed; its completed event."""
    settings = make_settings(api_key=KEY, realtime=realtime)
    pcm = pcm16(DATA / "en_recorded.flac", 24_000)
    step = 2 * int(STEP * 24_000)
    with serve_in_thread(fake_app(settings, backend)) as url:
        async with open_session(url, KEY) as ws:
            await next_event(ws, "session.created")
            await send(ws, {"type": "session.update", "session": MANUAL})
            await next_event(ws, "session.updated")
            # 1 s first (past REALTIME__FIRST_PARTIAL_SECONDS with the resampler's delay)
            bounds = [0, *range(2 * step, int(TURN / STEP) * step + 1, step)]
            for n, (begin, end) in enumerate(itertools.pairwise(bounds), 1):
                chunk = base64.b64encode(pcm[begin:end]).decode()
                await send(ws, {"type": "input_audio_buffer.append", "audio": chunk})
                await calls_reach(backend, n)  # this length's partial has started
            while backend.running:  # the last partial finishes before the commit
                await asyncio.sleep(0.01)
            await send(ws, {"type": "input_audio_buffer.commit"})
            return await next_event(ws, COMPLETED)


async def test_the_final_decode_of_a_long_turn_reads_only_its_unconfirmed_tail(
    make_settings: Callable[..., Settings],
) -> None:
    backend = FakeTranscriber()
    completed = await long_turn(make_settings, backend, confirm_after_seconds=0)
    assert completed["usage"]["seconds"] == pytest.approx(TURN, abs=0.01)
    # The final decode is the call after the commit (every partial had finished before it);
    # partials that confirm are full decodes too, the final one always is.
    final = backend.seconds[-1]
    assert backend.drafts[-1] is False
    # The fake says the same seven words over any audio, so two partials agree on those that
    # end a second before their audio does: the tail is that second and two appends at most.
    assert 0 < final <= MARGIN_SECONDS + 2 * STEP < TURN / 3
    # The final decode was prompted with the (last) confirmed words, which open the transcript.
    prompt = backend.calls[-1].prompt
    assert prompt is not None
    assert "hello from the fake" in prompt
    assert prompt in completed["transcript"]
    # The completed transcript is the confirmed words, then the tail's.
    words = completed["transcript"].split()
    assert len(words) > 7
    assert completed["transcript"].endswith("hello from the fake backend says goodbye")


async def test_a_turn_shorter_than_confirm_after_seconds_is_decoded_whole(
    make_settings: Callable[..., Settings],
) -> None:
    backend = FakeTranscriber()
    completed = await long_turn(make_settings, backend, confirm_after_seconds=30)
    assert backend.full_decodes() == [pytest.approx(TURN, abs=0.01)]
    assert all(call.prompt is None for call in backend.calls)
    assert completed["transcript"] == "hello from the fake backend says goodbye"
