"""The senko backend on real (synthetic) conversations with known turns: count and DER.

Fixtures: `tests/data/conv4.*` (four voices) and `conv2.*` (two voices), made by
`tests/data/make_conversation.py`; see `tests/data/conversations.md`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from tests.audio import DATA
from tests.der import COLLAR
from tests.der import der as standard_der
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.speakers import Diarization
from whisperx_api.errors import InvalidRequest
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.decode import decode_audio
from whisperx_api.pipeline.stages.senko_diarizer import SenkoDiarizer

pytestmark = pytest.mark.slow

MAX_DER = 0.01


@pytest.fixture(scope="module")
def diarizer() -> Iterator[SenkoDiarizer]:
    loaded = SenkoDiarizer(device="cpu").load()
    yield loaded
    loaded.close()


def load(name: str) -> DecodedAudio:
    return decode_audio(DATA / f"{name}.flac", max_seconds=600)


def der(name: str, result: Diarization) -> float:
    """DER of the diarizer's turns, scored as `bench/diarization.py` scores segments."""
    return standard_der(name, [(t.start, t.end, t.speaker) for t in result.turns])[0]


def run(diarizer: SenkoDiarizer, name: str, low: int | None, high: int | None) -> Diarization:
    return diarizer.diarize(load(name), low, high, want_embeddings=True, ctx=StageContext())


def test_conv4_finds_four_speakers_with_low_der(diarizer: SenkoDiarizer):
    audio = load("conv4")
    began = time.perf_counter()
    result = diarizer.diarize(audio, None, None, want_embeddings=False, ctx=StageContext())
    elapsed = time.perf_counter() - began
    error = der("conv4", result)
    print(
        f"\nconv4 ({audio.duration:.1f} s): {len(result.speakers)} speakers, "
        f"DER {error:.4f} (collar {COLLAR} s), diarized in {elapsed:.2f} s"
    )
    assert len(result.speakers) == 4
    assert error <= MAX_DER
    assert result.speakers == ("SPEAKER_00", "SPEAKER_01", "SPEAKER_02", "SPEAKER_03")
    assert result.embeddings == {}


def test_conv2_with_exactly_two_speakers(diarizer: SenkoDiarizer):
    result = run(diarizer, "conv2", 2, 2)
    error = der("conv2", result)
    print(f"\nconv2 min=max=2: {len(result.speakers)} speakers, DER {error:.4f}")
    assert len(result.speakers) == 2
    assert error <= MAX_DER


def test_conv4_squeezed_to_three_speakers(diarizer: SenkoDiarizer):
    result = run(diarizer, "conv4", 3, 3)
    print(f"\nconv4 min=max=3: {len(result.speakers)} speakers, DER {der('conv4', result):.4f}")
    assert len(result.speakers) == 3


def test_conv2_stretched_to_three_speakers(diarizer: SenkoDiarizer):
    result = run(diarizer, "conv2", 3, None)
    assert len(result.speakers) == 3


def test_one_unit_embedding_per_speaker(diarizer: SenkoDiarizer):
    result = run(diarizer, "conv4", None, None)
    assert set(result.embeddings) == set(result.speakers)
    for vector in result.embeddings.values():
        assert len(vector) == 192
        assert sum(x * x for x in vector) == pytest.approx(1.0, abs=1e-6)
    vectors = list(result.embeddings.values())
    for i, first in enumerate(vectors):
        for second in vectors[i + 1 :]:
            assert sum(a * b for a, b in zip(first, second, strict=True)) < 0.9


def test_silence_gives_no_turns(diarizer: SenkoDiarizer):
    silent = DecodedAudio(np.zeros(16_000 * 3, dtype=np.float32))
    result = diarizer.diarize(silent, 2, 2, want_embeddings=True, ctx=StageContext())
    assert result.turns == ()
    assert result.embeddings == {}


def test_a_missing_cuda_device_is_a_clear_request_error():
    import torch

    wanted = f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(InvalidRequest) as info:
        SenkoDiarizer(wanted).load()
    assert info.value.param == "device"
