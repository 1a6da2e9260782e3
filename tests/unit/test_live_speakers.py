"""Live speaker labels: the online clustering of turns, the voices found in a turn, and the
session fields that turn them on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from tests.fakes import FakeDiarizer
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.speakers import Diarization, KnownVoice, SpeakerTurn
from whisperx_api.errors import InvalidRequest, InvalidValue
from whisperx_api.pipeline.stage import DiarizationRequest, StageContext
from whisperx_api.realtime.session_config import SessionConfig, apply_update, session_object
from whisperx_api.realtime.speakers import Piece, SessionSpeakers, TurnVoice, turn_voice

THRESHOLD = 0.67
A, B, C = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
ID = "spk_" + "ab" * 12


def near(voice: Sequence[float], seed: int, spread: float = 0.25) -> tuple[float, ...]:
    """`voice` with a little noise: one turn's embedding of it."""
    noise = np.random.default_rng(seed).normal(0, spread / np.sqrt(len(voice)), len(voice))
    return tuple(float(x) for x in np.asarray(voice) + noise)


def turn(*voices: tuple[tuple[float, ...], float]) -> TurnVoice:
    pieces = tuple(Piece(v, s) for v, s in voices)
    return TurnVoice(pieces, sum(s for _, s in voices))


def test_two_voices_taking_turns_keep_two_labels() -> None:
    speakers = SessionSpeakers(THRESHOLD)
    labels = [speakers.label(turn((near(v, n), 3.0))) for n, v in enumerate([A, B] * 5)]
    assert labels == ["SPEAKER_00", "SPEAKER_01"] * 5


def test_a_third_voice_is_a_third_speaker() -> None:
    speakers = SessionSpeakers(THRESHOLD)
    labels = [speakers.label(turn((v, 2.0))) for v in (A, B, C, A)]
    assert labels == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02", "SPEAKER_00"]


def test_saved_voices_name_turns_and_others_stay_anonymous() -> None:
    speakers = SessionSpeakers(THRESHOLD, [KnownVoice("Ann", A)])
    labels = [speakers.label(turn((near(v, n), 2.0))) for n, v in enumerate([B, A, B, A])]
    assert labels == ["SPEAKER_00", "Ann", "SPEAKER_00", "Ann"]


def test_a_voice_below_the_threshold_is_not_named() -> None:
    speakers = SessionSpeakers(THRESHOLD, [KnownVoice("Ann", A)])
    halfway = (1.0, 1.0, 0.0)  # cosine 0.71 with Ann: named; (1, 2, 0) is 0.45: not
    assert speakers.label(turn(((1.0, 2.0, 0.0), 2.0))) == "SPEAKER_00"
    assert speakers.label(turn((halfway, 2.0))) == "Ann"


def test_saved_voices_of_another_speaker_model_are_left_out() -> None:
    speakers = SessionSpeakers(THRESHOLD, [KnownVoice("Ann", (1.0, 0.0))])
    assert speakers.label(turn((A, 2.0))) == "SPEAKER_00"


def test_voices_can_change_mid_session_and_labels_given_stay() -> None:
    speakers = SessionSpeakers(THRESHOLD)
    assert speakers.label(turn((A, 2.0))) == "SPEAKER_00"
    speakers.know([KnownVoice("Bo", B)])
    assert speakers.label(turn((B, 2.0))) == "Bo"
    assert speakers.label(turn((A, 2.0))) == "SPEAKER_00"
    speakers.know([])  # a voice no longer given names no more turns
    assert speakers.label(turn((B, 2.0))) == "SPEAKER_01"
    assert speakers.label(turn((A, 2.0))) == "SPEAKER_00"


def test_a_turn_too_short_to_compare_is_the_other_partys_reply() -> None:
    speakers = SessionSpeakers(THRESHOLD)
    speakers.label(turn((A, 3.0)))
    speakers.label(turn((B, 3.0)))
    speakers.label(turn((A, 3.0)))
    # A garbage embedding: speech too short to trust, whatever the vector says.
    assert speakers.label(turn((A, 0.4))) == "SPEAKER_01"
    assert speakers.label(TurnVoice((), 0.3)) == "SPEAKER_00"


def test_a_first_turn_that_is_too_short_founds_a_speaker_that_later_gets_a_voice() -> None:
    speakers = SessionSpeakers(THRESHOLD)
    assert speakers.label(TurnVoice((), 0.4)) == "SPEAKER_00"
    assert speakers.label(turn((A, 3.0))) == "SPEAKER_01"
    assert speakers.label(turn((A, 3.0))) == "SPEAKER_01"


def test_a_turn_holding_two_new_voices_founds_both_and_takes_the_longer() -> None:
    speakers = SessionSpeakers(THRESHOLD)
    assert speakers.label(turn((A, 2.0), (B, 3.0))) == "SPEAKER_01"
    assert speakers.label(turn((A, 3.0))) == "SPEAKER_00"
    assert speakers.label(turn((B, 3.0))) == "SPEAKER_01"


def test_a_mixed_turn_of_known_speakers_goes_to_the_majority() -> None:
    speakers = SessionSpeakers(THRESHOLD)
    speakers.label(turn((A, 3.0)))
    speakers.label(turn((B, 3.0)))
    assert speakers.label(turn((B, 1.2), (A, 3.5))) == "SPEAKER_00"
    assert speakers.label(turn((B, 3.5), (A, 1.2))) == "SPEAKER_01"


def test_a_mixed_turn_with_one_new_voice_founds_only_that_one() -> None:
    speakers = SessionSpeakers(THRESHOLD)
    speakers.label(turn((A, 3.0)))
    assert speakers.label(turn((A, 1.6), (B, 3.0))) == "SPEAKER_01"
    assert speakers.label(turn((A, 3.0))) == "SPEAKER_00"


class _Heard(FakeDiarizer):
    def __init__(self, result: Diarization) -> None:
        super().__init__()
        self._result = result

    def diarize(
        self, audio: DecodedAudio, request: DiarizationRequest, ctx: StageContext
    ) -> Diarization:
        self.requests.append(request)
        return self._result


def test_turn_voice_gives_each_voice_heard_with_its_speech_in_order_of_appearance() -> None:
    heard = Diarization(
        turns=(
            SpeakerTurn(0.2, 1.0, "SPEAKER_01"),
            SpeakerTurn(1.2, 3.0, "SPEAKER_00"),
            SpeakerTurn(3.1, 3.6, "SPEAKER_01"),
        ),
        embeddings={"SPEAKER_00": A, "SPEAKER_01": B},
    )
    diarizer = _Heard(heard)
    voice = turn_voice(diarizer, np.zeros(64_000, dtype=np.float32))
    assert [p.embedding for p in voice.pieces] == [B, A]
    assert [p.seconds for p in voice.pieces] == pytest.approx([1.3, 1.8])
    assert voice.speech_seconds == pytest.approx(3.1)
    assert diarizer.requests[0].want_embeddings


def test_turn_voice_of_silence_has_no_voice() -> None:
    voice = turn_voice(_Heard(Diarization(turns=())), np.zeros(16_000, dtype=np.float32))
    assert voice == TurnVoice((), 0.0)


def update(**transcription: object) -> dict[str, object]:
    return {"type": "transcription", "audio": {"input": {"transcription": transcription}}}


def test_diarize_and_saved_voices_are_read_and_shown_only_when_on() -> None:
    plain = SessionConfig(model="whisper-1")
    shown = session_object(plain, "sess_1")["audio"]["input"]["transcription"]
    assert set(shown) == {"model", "language", "prompt"}
    config = apply_update(plain, update(diarize=True, known_speaker_ids=[ID, ID]))
    assert (config.diarize, config.known_speaker_ids) == (True, (ID,))
    shown = session_object(config, "sess_1")["audio"]["input"]["transcription"]
    assert shown["diarize"] is True
    assert shown["known_speaker_ids"] == [ID]
    assert apply_update(config, update(language="en")).known_speaker_ids == (ID,)
    beta = {"input_audio_transcription": {"diarize": True}}
    assert apply_update(plain, beta, beta=True).diarize


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"diarize": 1}, InvalidValue),
        ({"diarize": True, "known_speaker_ids": [ID] * 51}, InvalidValue),
        ({"diarize": True, "known_speaker_ids": ["spk_x"]}, InvalidValue),
        ({"diarize": True, "known_speaker_ids": [7]}, InvalidValue),
        ({"known_speaker_ids": [ID]}, InvalidRequest),
    ],
)
def test_bad_speaker_fields_name_the_field(
    fields: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error) as raised:
        apply_update(SessionConfig(model=""), update(**fields))
    param = str(getattr(raised.value, "param", ""))
    assert param.startswith("session.audio.input.transcription.")
    assert param.rsplit(".", 1)[1] in fields


def test_turning_diarize_off_with_voices_given_is_refused() -> None:
    config = apply_update(SessionConfig(model=""), update(diarize=True, known_speaker_ids=[ID]))
    with pytest.raises(InvalidRequest):
        apply_update(config, update(diarize=False))
    assert not apply_update(config, update(diarize=False, known_speaker_ids=[])).diarize
