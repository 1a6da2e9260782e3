"""Saved voices in the matching: stored embeddings join the reference clips' under the same rule,
and an embedding from another speaker model (another length) is left out, not compared."""

from __future__ import annotations

from collections.abc import Sequence

from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.speakers import Diarization, KnownVoice, SpeakerTurn
from whisperx_api.pipeline.known_speakers import name_known_speakers


class Embedder:
    """Just the two members matching uses; every clip embeds as SPEAKER_01's voice."""

    voice_threshold = 0.9

    def __init__(self) -> None:
        self.clips = 0

    def embed_voices(self, clips: Sequence[DecodedAudio]) -> list[tuple[float, ...]]:
        self.clips += len(clips)
        return [(0.0, 1.0, 0.0) for _ in clips]


DIARIZATION = Diarization(
    turns=(SpeakerTurn(0, 1, "SPEAKER_00"), SpeakerTurn(1, 2, "SPEAKER_01")),
    embeddings={"SPEAKER_00": (1.0, 0.0, 0.0), "SPEAKER_01": (0.0, 1.0, 0.0)},
)


def test_saved_voices_are_matched_without_embedding_anything() -> None:
    embedder = Embedder()
    voices = [KnownVoice("Ann", (0.99, 0.05, 0.0)), KnownVoice("Zed", (0.0, 0.0, 1.0))]
    named = name_known_speakers(DIARIZATION, embedder, (), voices)  # type: ignore[arg-type]
    assert named.speakers == ("Ann", "SPEAKER_01")
    assert embedder.clips == 0


def test_each_saved_voice_names_one_speaker_at_most() -> None:
    twins = [KnownVoice("Ann", (1.0, 0.0, 0.0)), KnownVoice("Ann again", (0.98, 0.02, 0.0))]
    named = name_known_speakers(DIARIZATION, Embedder(), (), twins)  # type: ignore[arg-type]
    assert named.speakers == ("Ann", "SPEAKER_01")


def test_an_embedding_of_another_model_is_left_out() -> None:
    voices = [KnownVoice("Old", (1.0, 0.0)), KnownVoice("Bob", (0.0, 1.0, 0.01))]
    named = name_known_speakers(DIARIZATION, Embedder(), (), voices)  # type: ignore[arg-type]
    assert named.speakers == ("SPEAKER_00", "Bob")
