"""Matching reference voices to diarized speakers: assignment rules, and the pyannote backend
through its public call shape (a fake pipeline; the gated weights are not available offline)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.unit.test_pyannote_diarizer import FakeAnnotation
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.speakers import Diarization, KnownSpeaker, SpeakerTurn
from whisperx_api.pipeline.known_speakers import assign_names, name_known_speakers, similarities
from whisperx_api.pipeline.stage import DiarizationRequest, StageContext
from whisperx_api.pipeline.stages.pyannote_diarizer import PyannoteDiarizer

LABELS = ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"]


def test_best_pairs_win_and_each_side_is_used_once() -> None:
    similarity = np.array(
        [
            [0.90, 0.80, 0.10],  # Ann: closest to 00, but Bob is closer; Ann takes 01
            [0.95, 0.85, 0.20],  # Bob: the best pair of all
            [0.30, 0.40, 0.50],  # Cy: below the threshold everywhere
        ]
    )
    named = assign_names(LABELS, similarity, ["Ann", "Bob", "Cy"], threshold=0.7)
    assert named == {"SPEAKER_00": "Bob", "SPEAKER_01": "Ann"}


def test_nothing_under_the_threshold_is_named() -> None:
    similarity = np.array([[0.69, 0.2, 0.1]])
    assert assign_names(LABELS, similarity, ["Ann"], threshold=0.7) == {}


def test_similarities_are_cosines() -> None:
    labels, matrix = similarities({"A": (2.0, 0.0), "B": (1.0, 1.0)}, [(3.0, 0.0)])
    assert labels == ["A", "B"]
    np.testing.assert_allclose(matrix, [[1.0, np.sqrt(0.5)]])


class VoicePipeline:
    """Two speakers in the recording; a clip is one speaker whose voice is set by its sign."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, file: dict[str, Any], **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        if kwargs.get("num_speakers") == 1:
            waveform = file["waveform"].numpy()
            voice = [0.9, 0.1] if float(waveform.mean()) > 0 else [0.5, -0.5]
            return FakeAnnotation([(0.0, 2.0, "X")]), np.array([voice])
        annotation = FakeAnnotation([(0.0, 1.5, "A"), (2.0, 3.0, "B"), (3.5, 4.0, "A")])
        return annotation, np.array([[1.0, 0.0], [0.0, 1.0]])


def test_pyannote_embeds_references_with_its_own_pipeline() -> None:
    pipeline = VoicePipeline()
    diarizer = PyannoteDiarizer(default_token="hf", loader=lambda *_: pipeline)
    audio = DecodedAudio(np.zeros(16_000 * 4, dtype=np.float32))
    result = diarizer.diarize(audio, DiarizationRequest(want_embeddings=True), StageContext())
    ann = KnownSpeaker.from_samples("Ann", np.full(32_000, 0.1, dtype=np.float32))
    zed = KnownSpeaker.from_samples("Zed", np.full(32_000, -0.1, dtype=np.float32))
    named = name_known_speakers(result, diarizer, [ann, zed])
    assert [t.speaker for t in named.turns] == ["Ann", "SPEAKER_01", "Ann"]
    assert pipeline.calls[1:] == [
        {"num_speakers": 1, "return_embeddings": True},
        {"num_speakers": 1, "return_embeddings": True},
    ]


def test_without_embeddings_nothing_is_renamed() -> None:
    plain = Diarization(turns=(SpeakerTurn(0.0, 1.0, "SPEAKER_00"),))
    diarizer = PyannoteDiarizer(default_token="hf", loader=lambda *_: VoicePipeline())
    ann = KnownSpeaker.from_samples("Ann", np.full(32_000, 0.1, dtype=np.float32))
    assert name_known_speakers(plain, diarizer, [ann]) == plain
