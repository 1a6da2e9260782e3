"""Name the speakers a client gave reference clips for (`known_speaker_names[]`).

Each reference is embedded by the diarizer's own speaker model, so it lives in the same space
as the diarized speakers' centroid embeddings. Pairs are matched by cosine similarity, best
pair first (greedy assignment: one reference names at most one speaker and one speaker takes
at most one name), and only when the similarity reaches the backend's calibrated threshold.
Speakers no reference matches keep their generic labels.

Saved voices (`known_speaker_ids[]`) arrive as embeddings computed by the same speaker model at
enrolment; they join the references after the clips and are matched by the same rule. A saved
embedding of another length (enrolled under another diarization backend) cannot be compared and
is left out, with a log line.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.speakers import Diarization, KnownSpeaker, KnownVoice
from whisperx_api.pipeline.stage import DiarizationBackend

FloatArray = npt.NDArray[np.float64]
log = logging.getLogger(__name__)


def reference_clips(speakers: Sequence[KnownSpeaker]) -> list[DecodedAudio]:
    """The reference audio of each known speaker, in order."""
    return [DecodedAudio(samples=s.samples()) for s in speakers]


def similarities(
    speakers: Mapping[str, Sequence[float]], references: Sequence[Sequence[float]]
) -> tuple[list[str], FloatArray]:
    """Speaker labels and the (references x speakers) cosine similarity matrix."""
    labels = list(speakers)
    if not labels or not references:
        return labels, np.zeros((len(references), len(labels)))
    return labels, _unit(np.asarray(references, float)) @ _unit(
        np.asarray([speakers[label] for label in labels], float)
    ).T


def assign_names(
    labels: Sequence[str], similarity: FloatArray, names: Sequence[str], threshold: float
) -> dict[str, str]:
    """label -> name for the most similar pairs at or above `threshold`, each used once."""
    pairs = sorted(
        ((float(similarity[r, s]), r, s) for r in range(len(names)) for s in range(len(labels))),
        reverse=True,
    )
    taken_refs: set[int] = set()
    named: dict[str, str] = {}
    for score, ref, col in pairs:
        if score < threshold:
            break
        if ref in taken_refs or labels[col] in named:
            continue
        taken_refs.add(ref)
        named[labels[col]] = names[ref]
    return named


def rename(diarization: Diarization, names: Mapping[str, str]) -> Diarization:
    """The diarization with matched labels replaced by names (turns and embeddings)."""
    turns = tuple(
        dataclasses.replace(t, speaker=names.get(t.speaker, t.speaker)) for t in diarization.turns
    )
    embeddings = {names.get(k, k): v for k, v in diarization.embeddings.items()}
    return Diarization(turns=turns, embeddings=embeddings)


def name_known_speakers(
    diarization: Diarization,
    diarizer: DiarizationBackend,
    speakers: Sequence[KnownSpeaker],
    voices: Sequence[KnownVoice] = (),
) -> Diarization:
    """Label the speakers whose voices match a reference clip or a saved voice; others keep
    their labels."""
    if not (speakers or voices) or not diarization.embeddings:
        return diarization
    references = diarizer.embed_voices(reference_clips(speakers)) if speakers else []
    names = [s.name for s in speakers]
    for voice in comparable(voices, diarization):
        references.append(voice.embedding)
        names.append(voice.name)
    labels, similarity = similarities(diarization.embeddings, references)
    return rename(diarization, assign_names(labels, similarity, names, diarizer.voice_threshold))


def comparable(voices: Sequence[KnownVoice], diarization: Diarization) -> list[KnownVoice]:
    """The saved voices whose embeddings live in the same space as the diarized speakers'."""
    size = len(next(iter(diarization.embeddings.values())))
    kept = [v for v in voices if len(v.embedding) == size]
    if len(kept) < len(voices):
        log.warning(
            "%d saved voice(s) left out: enrolled with another speaker model",
            len(voices) - len(kept),
        )
    return kept


def _unit(rows: FloatArray) -> FloatArray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(rows / np.where(norms > 0, norms, 1.0), dtype=np.float64)
