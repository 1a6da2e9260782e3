"""The pyannote backend against pyannote's public call shape, with a fake pipeline object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.errors import MissingToken
from whisperx_api.pipeline.stage import DiarizationRequest, StageContext
from whisperx_api.pipeline.stages.pyannote_diarizer import (
    MAX_CALLER_PIPELINES,
    PyannoteDiarizer,
    parse_output,
)


@dataclass(frozen=True)
class FakeSegment:
    start: float
    end: float


class FakeAnnotation:
    """The two methods of pyannote.core.Annotation the backend uses."""

    def __init__(self, tracks: list[tuple[float, float, str]]) -> None:
        self._tracks = tracks

    def itertracks(self, yield_label: bool = False) -> Any:
        assert yield_label
        for i, (start, end, label) in enumerate(self._tracks):
            yield FakeSegment(start, end), i, label

    def labels(self) -> list[str]:
        return sorted({label for _, _, label in self._tracks})


class FakePipeline:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, file: dict[str, Any], **kwargs: Any) -> Any:
        self.calls.append({"file": file, **kwargs})
        annotation = FakeAnnotation([(2.0, 3.0, "B"), (0.0, 1.5, "A"), (3.5, 4.0, "A")])
        if kwargs.get("return_embeddings"):
            return annotation, np.array([[1.0, 0.0], [0.0, 1.0]])
        return annotation


AUDIO = DecodedAudio(np.zeros(16_000 * 4, dtype=np.float32))


def make(
    token: str | None = "hf_default",
) -> tuple[PyannoteDiarizer, FakePipeline, list[tuple[str, str, str]]]:
    pipeline = FakePipeline()
    loads: list[tuple[str, str, str]] = []

    def loader(model: str, tok: str, device: str) -> FakePipeline:
        loads.append((model, tok, device))
        return pipeline

    return PyannoteDiarizer(default_token=token, loader=loader), pipeline, loads


def test_turns_are_sorted_and_relabelled_by_first_appearance() -> None:
    diarizer, pipeline, _ = make()
    result = diarizer.diarize(
        AUDIO, DiarizationRequest(min_speakers=2, max_speakers=3), StageContext()
    )
    assert [(t.start, t.speaker) for t in result.turns] == [
        (0.0, "SPEAKER_00"),
        (2.0, "SPEAKER_01"),
        (3.5, "SPEAKER_00"),
    ]
    call = pipeline.calls[0]
    assert call["file"]["sample_rate"] == 16_000
    assert (call["min_speakers"], call["max_speakers"]) == (2, 3)
    assert tuple(call["file"]["waveform"].shape) == (1, 64_000)


def test_embeddings_one_per_speaker() -> None:
    diarizer, _, _ = make()
    result = diarizer.diarize(AUDIO, DiarizationRequest(want_embeddings=True), StageContext())
    assert result.embeddings == {"SPEAKER_00": (1.0, 0.0), "SPEAKER_01": (0.0, 1.0)}


def test_request_token_wins_and_no_token_is_a_clear_400() -> None:
    diarizer, _, loads = make(token=None)
    with pytest.raises(MissingToken) as info:
        diarizer.diarize(AUDIO, DiarizationRequest(), StageContext())
    assert info.value.code == "missing_hf_token"
    assert info.value.param == "hf_token"
    diarizer.diarize(AUDIO, DiarizationRequest(hf_token="hf_request"), StageContext())
    assert loads == [("pyannote/speaker-diarization-3.1", "hf_request", "cpu")]


def test_pyannote_4_output_shape() -> None:
    @dataclass
    class DiarizeOutput:
        speaker_diarization: FakeAnnotation
        speaker_embeddings: Any

    output = DiarizeOutput(FakeAnnotation([(0.0, 1.0, "X")]), np.array([[0.5, 0.5]]))
    parsed = parse_output(output, want_embeddings=True)
    assert [t.speaker for t in parsed.turns] == ["SPEAKER_00"]
    assert parsed.embeddings == {"SPEAKER_00": (0.5, 0.5)}


def test_lifecycle() -> None:
    diarizer, _, _ = make()
    assert diarizer.load_model("") == "pyannote/speaker-diarization-3.1"
    assert diarizer.loaded_models() == ["pyannote/speaker-diarization-3.1"]
    diarizer.unload_model("")
    assert diarizer.loaded_models() == []


def test_a_pipeline_loaded_with_one_callers_token_never_serves_another() -> None:
    diarizer, _, loads = make()
    for token in ("hf_alice", "hf_bob", "hf_alice", None, "hf_bob"):
        diarizer.diarize(AUDIO, DiarizationRequest(hf_token=token), StageContext())
    model = "pyannote/speaker-diarization-3.1"
    # each token loaded its own pipeline once; a request without one used the server's token
    assert loads == [
        (model, "hf_alice", "cpu"),
        (model, "hf_bob", "cpu"),
        (model, "hf_default", "cpu"),
    ]
    assert diarizer.loaded_models() == [model]
    assert "hf_alice" not in repr(diarizer._pipelines)  # keyed by digest, never the token


def test_known_speaker_embeddings_use_the_server_tokens_pipeline_only() -> None:
    diarizer, _, loads = make()
    diarizer.diarize(AUDIO, DiarizationRequest(hf_token="hf_alice"), StageContext())
    diarizer.embed_voices([AUDIO])
    assert [tok for _, tok, _ in loads] == ["hf_alice", "hf_default"]
    no_server_token, _, _ = make(token=None)
    no_server_token.diarize(AUDIO, DiarizationRequest(hf_token="hf_alice"), StageContext())
    with pytest.raises(MissingToken):
        no_server_token.embed_voices([AUDIO])


def test_callers_pipelines_are_bounded_and_unload_drops_every_copy() -> None:
    diarizer, _, loads = make()
    diarizer.diarize(AUDIO, DiarizationRequest(), StageContext())  # the server token's
    for n in range(5):
        diarizer.diarize(AUDIO, DiarizationRequest(hf_token=f"hf_{n}"), StageContext())
    assert len(diarizer._pipelines) == 1 + MAX_CALLER_PIPELINES
    diarizer.diarize(AUDIO, DiarizationRequest(hf_token="hf_0"), StageContext())
    assert [tok for _, tok, _ in loads].count("hf_0") == 2  # evicted, so loaded again
    diarizer.diarize(AUDIO, DiarizationRequest(), StageContext())
    assert [tok for _, tok, _ in loads].count("hf_default") == 1  # never evicted
    diarizer.unload_model("")
    assert diarizer.loaded_models() == []
    assert diarizer._pipelines == {}
