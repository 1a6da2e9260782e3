"""Live-session building blocks: turn edges from VAD probabilities, deltas from hypotheses,
session updates, the audio tail, PCM decoding and the streaming Silero VAD."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from tests.audio import DATA
from tests.realtime_client import pcm16
from whisperx_api.errors import InvalidBase64, InvalidEvent, InvalidValue, UnsupportedParameter
from whisperx_api.realtime.audio import PcmDecoder
from whisperx_api.realtime.captions import Captions
from whisperx_api.realtime.session_config import ServerVad, SessionConfig, apply_update
from whisperx_api.realtime.tail import AudioTail
from whisperx_api.realtime.turns import Edge, TurnDetector, ms_to_samples

WINDOW = 512  # 32 ms


def detector(**vad: Any) -> TurnDetector:
    return TurnDetector(ServerVad(**vad), WINDOW, ms_to_samples(30_000))


def windows(ms: float) -> int:
    return round(ms / 32)


def test_a_turn_starts_at_speech_minus_the_padding_and_stops_after_the_silence() -> None:
    turns = detector(threshold=0.5, prefix_padding_ms=320, silence_duration_ms=480)
    probabilities = [0.1] * 20 + [0.9] * 30 + [0.05] * windows(480) + [0.1] * 5
    edges = turns.feed(probabilities)
    speech_start = 20 * WINDOW
    silence_start = 50 * WINDOW
    assert edges == [
        Edge("start", speech_start - ms_to_samples(320)),
        Edge("stop", silence_start + windows(480) * WINDOW, silence_start),
    ]


def test_a_pause_shorter_than_the_silence_duration_keeps_the_turn() -> None:
    turns = detector(silence_duration_ms=500)
    edges = turns.feed([0.9] * 10 + [0.0] * windows(400))
    assert [e.kind for e in edges] == ["start"]
    assert turns.silence_start == 10 * WINDOW
    assert turns.silent_samples == windows(400) * WINDOW
    assert [e.kind for e in turns.feed([0.9] * 10)] == []
    assert turns.turn_start == 0
    assert turns.silence_start is None  # speech again: the next silence has a start of its own
    assert turns.silent_samples == 0
    turns.feed([0.0] * 3)
    assert turns.silence_start == (20 + windows(400)) * WINDOW


def test_in_between_probabilities_neither_start_nor_end_silence() -> None:
    """Hysteresis: below threshold but above threshold-0.15 does not count as silence."""
    turns = detector(threshold=0.5, silence_duration_ms=320)
    assert turns.feed([0.45] * 20) == []  # not speech yet
    assert [e.kind for e in turns.feed([0.9] + [0.4] * 40)] == ["start"]  # still speaking
    assert turns.hearing_silence is False
    assert [e.kind for e in turns.feed([0.2] * windows(320))] == ["stop"]


def test_the_next_turn_never_reaches_back_into_the_previous_one() -> None:
    turns = detector(prefix_padding_ms=1000, silence_duration_ms=320)
    edges = turns.feed([0.9] * 5 + [0.0] * windows(320) + [0.9] * 5)
    stop = edges[1]
    assert stop.kind == "stop"
    assert edges[2] == Edge("start", stop.sample)


def test_a_turn_past_the_longest_is_cut_and_the_speech_goes_on_as_a_new_turn() -> None:
    turns = TurnDetector(ServerVad(), WINDOW, max_turn_samples=100 * WINDOW)
    edges = turns.feed([0.9] * 250)
    assert [e.kind for e in edges] == ["start", "stop", "start", "stop", "start"]
    assert edges[1].sample == edges[2].sample
    assert edges[1].sample - edges[0].sample >= 100 * WINDOW


def test_deltas_hold_back_the_last_word_and_never_repeat_what_was_sent() -> None:
    captions = Captions()
    assert captions.partial("Hello") == ""
    assert captions.partial("Hello, this is") == "Hello, this"
    assert captions.partial("Hello, this is the front") == " is the"
    assert captions.partial("Hello, this") == ""  # a shorter hypothesis takes nothing back
    assert captions.final("Hello, this is the front desk.") == " front desk."
    assert captions.final("Hello, this is the front desk.") == ""


def test_a_last_word_two_hypotheses_agree_on_goes_out() -> None:
    captions = Captions()
    assert captions.partial("Hello.") == ""  # alone, it may be cut off
    assert captions.partial("hello") == "hello"  # said again over more audio: it stands
    assert captions.partial("Hello, this") == ""
    assert captions.partial("Hello this is") == " this"


def test_a_word_whisper_marks_as_cut_off_waits_even_when_repeated() -> None:
    captions = Captions()
    assert captions.partial("Well...") == ""
    assert captions.partial("Well...") == ""
    assert captions.partial("That's for-") == "That's"
    assert captions.partial("That's for-") == ""
    assert captions.partial("Welcome!") == ""  # a hypothesis that changed its mind: no agreement
    assert captions.final("That's for the welcome.") == " for the welcome."


def test_only_the_fields_an_update_names_change() -> None:
    config = SessionConfig(model="base")
    updated = apply_update(
        config, {"audio": {"input": {"turn_detection": {"silence_duration_ms": 800}}}}
    )
    assert updated == SessionConfig(model="base", turn_detection=ServerVad(silence_duration_ms=800))
    assert apply_update(updated, {"type": "transcription"}) == updated
    manual = apply_update(updated, {"audio": {"input": {"turn_detection": None}}})
    assert manual.turn_detection is None


def test_hosted_model_names_mean_the_default_model() -> None:
    config = apply_update(
        SessionConfig(model="base"),
        {"audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}}},
    )
    assert config.model == "gpt-4o-mini-transcribe"
    assert config.decode_model == ""
    assert SessionConfig(model="tiny.en").decode_model == "tiny.en"


@pytest.mark.parametrize(
    ("session", "error", "param"),
    [
        ({"type": "realtime"}, UnsupportedParameter, "session.type"),
        ({"audio": []}, InvalidEvent, "session.audio"),
        (
            {"audio": {"input": {"format": {"rate": 44100}}}},
            InvalidValue,
            "session.audio.input.format.rate",
        ),
        (
            {"audio": {"input": {"format": {"rate": True}}}},
            InvalidValue,
            "session.audio.input.format.rate",
        ),
        (
            {"audio": {"input": {"turn_detection": {"threshold": "high"}}}},
            InvalidValue,
            "session.audio.input.turn_detection.threshold",
        ),
        (
            {"audio": {"input": {"turn_detection": {"prefix_padding_ms": -1}}}},
            InvalidValue,
            "session.audio.input.turn_detection.prefix_padding_ms",
        ),
        (
            {"audio": {"input": {"transcription": {"prompt": 3}}}},
            InvalidValue,
            "session.audio.input.transcription.prompt",
        ),
    ],
)
def test_a_bad_update_names_its_field(
    session: dict[str, object], error: type[Exception], param: str
) -> None:
    with pytest.raises(error) as raised:
        apply_update(SessionConfig(model="base"), session)
    assert getattr(raised.value, "param", None) == param


def test_the_tail_slices_by_session_sample_and_forgets_what_no_turn_needs() -> None:
    tail = AudioTail()
    for start in range(0, 1000, 100):
        tail.append(np.arange(start, start + 100, dtype=np.float32))
    assert tail.slice(250, 260).tolist() == list(range(250, 260))
    tail.keep_from(600)
    assert (tail.start, tail.end) == (600, 1000)
    assert tail.slice(500, 610).tolist() == list(range(600, 610))  # clamped to what is kept
    tail.keep_from(5000)
    assert (tail.start, tail.end) == (1000, 1000)


def test_pcm_cut_anywhere_decodes_as_one_recording() -> None:
    pcm = pcm16(DATA / "en_recorded.flac", 24_000)[: 2 * 24_000 * 3]
    whole = PcmDecoder(24_000)
    pieces = PcmDecoder(24_000)
    expected = whole.decode(base64.b64encode(pcm).decode())
    cut = [pcm[i : i + 4801] for i in range(0, len(pcm), 4801)]  # odd sizes split samples
    got = np.concatenate([pieces.decode(base64.b64encode(c).decode()) for c in cut])
    assert abs(len(got) - 3 * 16_000) < 64  # 24 kHz in, 16 kHz out
    n = min(len(got), len(expected))
    assert np.abs(got[:n] - expected[:n]).max() < 1e-4


def test_16_khz_pcm_is_taken_as_is() -> None:
    samples = np.array([0, 16384, -32768, 32767], dtype="<i2")
    decoded = PcmDecoder(16_000).decode(base64.b64encode(samples.tobytes()).decode())
    assert decoded.tolist() == pytest.approx([0.0, 0.5, -1.0, 32767 / 32768])


@pytest.mark.parametrize("text", ["not base64!", "QUJ", "QU JD"])
def test_malformed_base64_is_refused(text: str) -> None:
    with pytest.raises(InvalidBase64):
        PcmDecoder(24_000).decode(text)


def test_the_streaming_vad_gives_the_whole_recordings_probabilities() -> None:
    from faster_whisper.audio import decode_audio
    from faster_whisper.vad import get_vad_model

    from whisperx_api.pipeline.stages.silero_stream import SileroStream

    audio = decode_audio(str(DATA / "conv2.flac"))
    audio = audio[: len(audio) // WINDOW * WINDOW]
    whole = np.asarray(get_vad_model()(audio)).reshape(-1)
    stream = SileroStream()
    pieces = [audio[i : i + 1000] for i in range(0, len(audio), 1000)]
    streamed = [p for piece in pieces for p in stream.feed(piece)]
    assert len(streamed) == len(whole)
    assert np.abs(np.array(streamed) - whole).max() < 1e-5
    assert 0.3 < float((whole > 0.5).mean()) < 0.95  # speech and pauses both present


def test_the_model_has_a_decode_lane_for_live_sessions_beside_the_batch_scheduler() -> None:
    from whisperx_api.config import Settings
    from whisperx_api.pipeline.registry import model_workers

    # Every file job shares one batch scheduler (one model call at a time), however many run.
    assert model_workers(Settings(jobs={"enable_concurrency": True, "max_concurrent_jobs": 3})) == 2
    assert model_workers(Settings(realtime={"max_sessions": 0})) == 1
