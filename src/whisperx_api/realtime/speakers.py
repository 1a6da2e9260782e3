"""Live speaker labels: which speaker of the session spoke each completed turn.

A turn's voice comes from the diarizer that file jobs use (its speaker model, so saved voices
compare with it): the diarizer finds where the turn holds speech, and each stretch of speech is
embedded in pieces of about `PIECE_SECONDS`. Server VAD cuts turns at pauses, not at a change of
speaker, so one turn can hold both parties of a fast exchange: the pieces vote, and the turn is
labelled by its majority speaker (by seconds of speech).

The turns are clustered online, in order, and a label once given never changes:
1. saved voices first, by the rule file transcriptions use: the most similar saved voice names
   the turn when the similarity of the turn's voice reaches the diarizer's calibrated
   `voice_threshold`;
2. else, when a session speaker (the running mean of its pieces) reaches that same threshold,
   the pieces vote among the speakers known so far;
3. else the turn brings a new speaker, `SPEAKER_00`, `SPEAKER_01`, ... in order of appearance;
   when its pieces fall in two groups that are not one voice (a turn holding both parties), each
   group is a speaker of its own (or one already known), and the larger one labels the turn;
4. a turn with less than `MIN_VOICE_SECONDS` of speech ("Okay.", "Right.") has no embedding
   worth comparing (a speaker model needs about a second of speech): it is taken for a reply,
   labelled with the speaker heard most recently before the previous turn's speaker.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.speakers import KnownVoice, speaker_label
from whisperx_api.pipeline.stage import DiarizationBackend, DiarizationRequest, StageContext

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
# Speech in a turn below which its voice is not compared (see rule 4).
MIN_VOICE_SECONDS = 1.0
# A turn of a live conversation holds one party, or two talking at a change of speaker.
_MAX_TURN_SPEAKERS = 2
# Each of two groups of pieces must hold this much speech to be two speakers.
_MIN_GROUP_SECONDS = 1.5
_KMEANS_ROUNDS = 10


@dataclass(frozen=True, slots=True)
class Piece:
    """One voice the diarizer heard in a turn: its embedding and its seconds of speech."""

    embedding: tuple[float, ...]
    seconds: float


@dataclass(frozen=True, slots=True)
class TurnVoice:
    """What the speaker model heard in one turn: its voices, in order of appearance, and all
    the speech it found."""

    pieces: tuple[Piece, ...]
    speech_seconds: float


def turn_voice(diarizer: DiarizationBackend, samples: npt.NDArray[np.float32]) -> TurnVoice:
    """The voices the diarizer hears in one turn (blocking: a speaker model runs)."""
    audio = DecodedAudio(samples)
    request = DiarizationRequest(max_speakers=_MAX_TURN_SPEAKERS, want_embeddings=True)
    diarization = diarizer.diarize(audio, request, StageContext(live=True))
    talk: dict[str, float] = defaultdict(float)
    for turn in diarization.turns:
        talk[turn.speaker] += max(0.0, turn.end - turn.start)
    order = sorted(
        talk, key=lambda label: min(t.start for t in diarization.turns if t.speaker == label)
    )
    pieces = tuple(
        Piece(tuple(diarization.embeddings[label]), talk[label])
        for label in order
        if diarization.embeddings.get(label)
    )
    return TurnVoice(pieces, sum(talk.values()))


@dataclass
class _Speaker:
    label: str
    total: FloatArray  # the sum of its pieces' unit embeddings, each weighted by its seconds
    reference: FloatArray | None = None  # a saved voice's enrolled embedding
    last_turn: int = -1  # the number of the last turn it was labelled with

    def similarity(self, unit: FloatArray) -> float:
        heard = _cosine(self.total, unit) if self.total.any() else -1.0
        if self.reference is None:
            return heard
        return max(heard, _cosine(self.reference, unit))

    def take(self, units: Sequence[FloatArray], weights: Sequence[float]) -> None:
        for unit, weight in zip(units, weights, strict=True):
            self.total = self.total + unit * weight


@dataclass
class _Group:
    units: list[FloatArray] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(self.weights)

    def mean(self) -> FloatArray:
        return _unit(np.asarray(self.weights) @ np.asarray(self.units))


class SessionSpeakers:
    """The speakers of one session, labelled as turns complete (see the module docstring)."""

    def __init__(self, threshold: float, voices: Sequence[KnownVoice] = ()) -> None:
        self._threshold = threshold
        self._speakers: list[_Speaker] = []
        self._anonymous = 0
        self._turns = 0
        self._previous: _Speaker | None = None
        self.know(voices)

    def know(self, voices: Sequence[KnownVoice]) -> None:
        """Name speakers with these saved voices from the next turn on; speakers labelled so
        far keep their labels (a saved voice no longer given names no more turns)."""
        names = {v.name: v for v in voices}
        kept = [s for s in self._speakers if s.reference is None or s.label in names]
        for speaker in kept:
            if speaker.reference is not None:
                speaker.reference = _unit(names.pop(speaker.label).embedding)
        for name, voice in names.items():
            kept.append(_Speaker(name, np.zeros(len(voice.embedding)), _unit(voice.embedding)))
        self._speakers = kept
        if self._previous is not None and self._previous not in kept:
            self._previous = None

    def label(self, voice: TurnVoice) -> str:
        """The turn's speaker: a saved voice's name or a session label."""
        if voice.speech_seconds < MIN_VOICE_SECONDS or not voice.pieces:
            speaker = self._reply()
        else:
            units = [_unit(p.embedding) for p in voice.pieces]
            weights = [p.seconds for p in voice.pieces]
            speaker = self._heard(units, weights)
        self._turns += 1
        speaker.last_turn = self._turns
        self._previous = speaker
        return speaker.label

    def _heard(self, units: list[FloatArray], weights: list[float]) -> _Speaker:
        whole = _Group(units, weights).mean()
        candidates = self._comparable(whole)
        known = self._best(whole, [s for s in candidates if s.reference is not None])
        if known is not None and known[0] >= self._threshold:
            known[1].take(units, weights)
            return known[1]
        heard = [s for s in candidates if s.total.any() or s.reference is not None]
        nearest = self._best(whole, heard)
        if nearest is not None and nearest[0] >= self._threshold:
            return self._vote(units, weights, heard)
        return self._found(units, weights)

    def _vote(
        self, units: list[FloatArray], weights: list[float], speakers: list[_Speaker]
    ) -> _Speaker:
        """Each piece votes for its nearest speaker; the most seconds win. A speaker takes in
        the pieces that reach the threshold (its voice stays clean of the other party's)."""
        groups: dict[int, _Group] = {}
        for unit, weight in zip(units, weights, strict=True):
            index = max(range(len(speakers)), key=lambda i: speakers[i].similarity(unit))
            group = groups.setdefault(index, _Group())
            group.units.append(unit)
            group.weights.append(weight)
        for index, group in groups.items():
            close = [
                (u, w)
                for u, w in zip(group.units, group.weights, strict=True)
                if speakers[index].similarity(u) >= self._threshold
            ]
            speakers[index].take([u for u, _ in close], [w for _, w in close])
        winner = max(groups, key=lambda i: groups[i].seconds)
        return speakers[winner]

    def _found(self, units: list[FloatArray], weights: list[float]) -> _Speaker:
        """A voice not heard before: one new speaker, or two when the turn holds two voices
        (each group is a known speaker when it matches one)."""
        groups = _two_groups(units, weights, self._threshold)
        speakers = [self._match_or_new(group) for group in groups]
        return max(zip(speakers, groups, strict=True), key=lambda pair: pair[1].seconds)[0]

    def _match_or_new(self, group: _Group) -> _Speaker:
        mean = group.mean()
        heard = [s for s in self._comparable(mean) if s.total.any() or s.reference is not None]
        best = self._best(mean, heard)
        if best is not None and best[0] >= self._threshold:
            speaker = best[1]
        else:
            speaker = _Speaker(speaker_label(self._anonymous), np.zeros(len(mean)))
            self._anonymous += 1
            self._speakers.append(speaker)
        speaker.take(group.units, group.weights)
        return speaker

    def _reply(self) -> _Speaker:
        """A turn too short to compare: the other party's reply when there is one to tell."""
        others = [s for s in self._speakers if s.last_turn >= 0 and s is not self._previous]
        if others:
            return max(others, key=lambda s: s.last_turn)
        if self._previous is not None:
            return self._previous
        speaker = _Speaker(speaker_label(self._anonymous), np.zeros(0))
        self._anonymous += 1
        self._speakers.append(speaker)
        return speaker

    def _comparable(self, unit: FloatArray) -> list[_Speaker]:
        """Speakers whose voices live in the turn's embedding space (a saved voice enrolled
        with another speaker model cannot be compared; a speaker founded by a short turn has
        no voice yet and takes its size from the first piece it is given)."""
        for speaker in self._speakers:
            if len(speaker.total) == 0:
                speaker.total = np.zeros(len(unit))
        return [s for s in self._speakers if len(s.total) == len(unit)]

    @staticmethod
    def _best(unit: FloatArray, speakers: list[_Speaker]) -> tuple[float, _Speaker] | None:
        scored = [(s.similarity(unit), s) for s in speakers]
        return max(scored, key=lambda pair: pair[0], default=None)


def _two_groups(units: list[FloatArray], weights: list[float], threshold: float) -> list[_Group]:
    """The pieces as two groups when 2-means splits them into two voices (their means below
    `threshold`, each with `_MIN_GROUP_SECONDS`), in order of their first piece; else one."""
    whole = _Group(list(units), list(weights))
    if len(units) < 2:
        return [whole]
    points = np.asarray(units)
    far = int(np.argmin(points @ points[0]))
    centres = points[[0, far]]
    assign = np.zeros(len(units), dtype=int)
    for _ in range(_KMEANS_ROUNDS):
        assign = np.argmax(points @ centres.T, axis=1)
        if len(set(assign.tolist())) < 2:
            return [whole]
        centres = np.asarray([_unit(points[assign == k].mean(axis=0)) for k in (0, 1)])
    groups = [_Group() for _ in (0, 1)]
    for k, unit, weight in zip(assign.tolist(), units, weights, strict=True):
        groups[k].units.append(unit)
        groups[k].weights.append(weight)
    apart = float(groups[0].mean() @ groups[1].mean()) < threshold
    if not apart or min(g.seconds for g in groups) < _MIN_GROUP_SECONDS:
        return [whole]
    return groups


def _unit(vector: Sequence[float] | FloatArray) -> FloatArray:
    array = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(array))
    return array / norm if norm > 0 else array


def _cosine(a: FloatArray, unit: FloatArray) -> float:
    norm = float(np.linalg.norm(a))
    return float(a @ unit / norm) if norm > 0 else -1.0
