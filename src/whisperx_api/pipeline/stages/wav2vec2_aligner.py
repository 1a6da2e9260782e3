"""Alignment backend "wav2vec2": WhisperX's CTC forced alignment, without torchaudio.

A character-level CTC model (wav2vec2 fine-tuned for one language) gives per-frame log
probabilities over its characters (20 ms frames). Each segment's words are spelt in the model's
alphabet, and a Viterbi pass over the CTC trellis (blank, c1, blank, c2, ... blank) finds the
single best path that emits exactly those characters; backtracking gives each character its
frames, and a word spans its first character's first frame to its last character's last frame.
Tokens the alphabet cannot spell (punctuation, digits, symbols) are not aligned: such words
inherit their neighbours' times, so no word ever lacks times.

The trellis and backtrack are numpy, tested on synthetic emissions; the model sits behind the
small `EmissionModel` Protocol. Real models load through `transformers` (`AutoModelForCTC`
plus the model's processor) from a configured path, `models_dir/<language>`, or the hub when
downloads are allowed; torch and transformers come with the `alignment` extra.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from whisperx_api.domain.audio import SAMPLE_RATE, DecodedAudio
from whisperx_api.domain.languages import WHISPER_LANGUAGES
from whisperx_api.domain.transcript import Segment, Task, Transcript, Word
from whisperx_api.errors import BackendError, MissingExtra, ModelNotFound, WhisperXApiError
from whisperx_api.pipeline.catalog import language_code
from whisperx_api.pipeline.models import ModelCache
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.boundary_refiner import refine_word_times

log = logging.getLogger(__name__)

ALIGNMENT_EXTRA = "alignment"
# Hub models WhisperX uses (or their transformers twins), by ISO-639-1 code.
DEFAULT_MODELS: Mapping[str, str] = {
    "en": "facebook/wav2vec2-base-960h",
    "fr": "jonatasgrosman/wav2vec2-large-xlsr-53-french",
    "de": "jonatasgrosman/wav2vec2-large-xlsr-53-german",
    "es": "jonatasgrosman/wav2vec2-large-xlsr-53-spanish",
    "it": "jonatasgrosman/wav2vec2-large-xlsr-53-italian",
    "ja": "jonatasgrosman/wav2vec2-large-xlsr-53-japanese",
    "zh": "jonatasgrosman/wav2vec2-large-xlsr-53-chinese-zh-cn",
    "nl": "jonatasgrosman/wav2vec2-large-xlsr-53-dutch",
    "pt": "jonatasgrosman/wav2vec2-large-xlsr-53-portuguese",
    "ru": "jonatasgrosman/wav2vec2-large-xlsr-53-russian",
    "pl": "jonatasgrosman/wav2vec2-large-xlsr-53-polish",
    "ar": "jonatasgrosman/wav2vec2-large-xlsr-53-arabic",
    "fi": "jonatasgrosman/wav2vec2-large-xlsr-53-finnish",
    "hu": "jonatasgrosman/wav2vec2-large-xlsr-53-hungarian",
    "fa": "jonatasgrosman/wav2vec2-large-xlsr-53-persian",
    "el": "jonatasgrosman/wav2vec2-large-xlsr-53-greek",
}
# Audio around a segment the aligner may also use: Whisper's segment edges are loose.
SEGMENT_PAD_S = 0.25
_MIN_SAMPLES = 400  # wav2vec2's first convolution needs this many
_NEG_INF = -np.inf

LogProbs = npt.NDArray[np.float32]
Samples = npt.NDArray[np.float32]


class EmissionModel(Protocol):
    """A character-level CTC acoustic model."""

    @property
    def vocabulary(self) -> Mapping[str, int]:
        """Token text -> id; single characters are the alignable ones."""
        ...

    @property
    def blank_id(self) -> int:
        """The CTC blank (wav2vec2's pad token)."""
        ...

    @property
    def word_delimiter(self) -> str | None:
        """The token the model emits between words (`|`), if it has one."""
        ...

    @property
    def samples_per_frame(self) -> int:
        """Input samples per output frame (320, 20 ms, for wav2vec2)."""
        ...

    def log_probs(self, samples: Samples) -> LogProbs:
        """Per-frame log probabilities, shape (frames, vocabulary size), for 16 kHz samples."""
        ...


@dataclass(frozen=True, slots=True)
class TokenSpan:
    """The frames `[start, end)` one target token occupies on the best path."""

    start: int
    end: int
    score: float


# --- CTC forced alignment (numpy) -------------------------------------------------------------


def ctc_forced_align(
    log_probs: npt.NDArray[np.floating[Any]], targets: Sequence[int], blank: int
) -> list[TokenSpan] | None:
    """The Viterbi path through the CTC trellis that emits exactly `targets`.

    Returns one span per target token, or None when the audio has too few frames for them
    (a repeated token needs a blank between its two copies).
    """
    frames = log_probs.shape[0]
    if not targets:
        return []
    labels = np.asarray(targets, dtype=np.int64)
    if frames < len(labels) + int(np.sum(labels[1:] == labels[:-1])):
        return None
    states = _ctc_states(labels, blank)
    emit = np.asarray(log_probs, dtype=np.float64)[:, states]
    back, score = _trellis(emit, _skip_allowed(labels))
    final = _final_state(score)
    if final is None:
        return None
    return _token_spans(_backtrack(back, final), emit, len(labels))


def _ctc_states(labels: npt.NDArray[np.int64], blank: int) -> npt.NDArray[np.int64]:
    """blank, y1, blank, y2, ..., yL, blank."""
    states = np.full(2 * len(labels) + 1, blank, dtype=np.int64)
    states[1::2] = labels
    return states


def _skip_allowed(labels: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """A token state may be entered from two states back (skipping the blank) unless it
    repeats the previous token."""
    allowed = np.zeros(2 * len(labels) + 1, dtype=np.bool_)
    allowed[3::2] = labels[1:] != labels[:-1]
    return allowed


def _trellis(
    emit: npt.NDArray[np.float64], skip_allowed: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float64]]:
    """Fill the trellis frame by frame. Returns, per frame and state, which move won (0 stay,
    1 from the previous state, 2 skipping a blank), and the scores after the last frame."""
    frames, count = emit.shape
    back = np.zeros((frames, count), dtype=np.int8)
    score = np.full(count, _NEG_INF)
    score[:2] = emit[0, :2]
    moves = np.full((3, count), _NEG_INF)
    columns = np.arange(count)
    for t in range(1, frames):
        moves[0] = score
        moves[1, 1:] = score[:-1]
        moves[2, 2:] = np.where(skip_allowed[2:], score[:-2], _NEG_INF)
        choice = np.argmax(moves, axis=0)
        back[t] = choice
        score = moves[choice, columns] + emit[t]
    return back, score


def _final_state(score: npt.NDArray[np.float64]) -> int | None:
    """The path ends on the last token or the blank after it, whichever scores better."""
    last = len(score) - 1
    best = last if score[last] >= score[last - 1] else last - 1
    return best if np.isfinite(score[best]) else None


def _backtrack(back: npt.NDArray[np.int8], final: int) -> npt.NDArray[np.int64]:
    """The state of every frame on the best path, walking the backpointers from the end."""
    path = np.empty(back.shape[0], dtype=np.int64)
    state = final
    for t in range(back.shape[0] - 1, -1, -1):
        path[t] = state
        state -= int(back[t, state])
    return path


def _token_spans(
    path: npt.NDArray[np.int64], emit: npt.NDArray[np.float64], count: int
) -> list[TokenSpan]:
    """Each token's first and last frame on the path, and its mean frame probability."""
    frames = np.flatnonzero(path % 2 == 1)
    tokens = (path[frames] - 1) // 2
    probs = np.exp(emit[frames, path[frames]])
    spans: list[TokenSpan] = []
    for token in range(count):
        mine = frames[tokens == token]
        score = float(np.mean(probs[tokens == token]))
        spans.append(TokenSpan(int(mine[0]), int(mine[-1]) + 1, score))
    return spans


# --- words <-> tokens -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spelling:
    """Targets for a run of words, and which targets spell each word (None: unalignable)."""

    targets: tuple[int, ...]
    words: tuple[tuple[int, int] | None, ...]


def spell(words: Sequence[str], vocabulary: Mapping[str, int], delimiter: str | None) -> Spelling:
    """Spell words in the model's alphabet; characters it lacks are dropped, and a word with
    none left is unalignable. The delimiter token goes between alignable words."""
    letters = _alphabet(vocabulary, delimiter)
    fold = _case_fold(letters)
    separator = vocabulary.get(delimiter) if delimiter else None
    targets: list[int] = []
    spans: list[tuple[int, int] | None] = []
    for word in words:
        ids = [letters[c] for c in fold(word) if c in letters]
        if not ids:
            spans.append(None)
            continue
        if targets and separator is not None:
            targets.append(separator)
        spans.append((len(targets), len(targets) + len(ids)))
        targets.extend(ids)
    return Spelling(tuple(targets), tuple(spans))


def _alphabet(vocabulary: Mapping[str, int], delimiter: str | None) -> dict[str, int]:
    """The single-character tokens, less the word delimiter."""
    return {t: i for t, i in vocabulary.items() if len(t) == 1 and t != delimiter and t.strip()}


def _case_fold(letters: Mapping[str, int]) -> Callable[[str], str]:
    """Lower-case text for a lower-case alphabet, upper-case for an upper-case one."""
    if any(c.islower() for c in letters):
        return str.lower
    if any(c.isupper() for c in letters):
        return str.upper
    return str


def word_times(
    spelling: Spelling, spans: Sequence[TokenSpan], frame_s: float, offset: float
) -> list[tuple[float, float, float] | None]:
    """(start, end, score) in seconds for each alignable word; None for the rest."""
    result: list[tuple[float, float, float] | None] = []
    for word in spelling.words:
        if word is None:
            result.append(None)
            continue
        first, last = spans[word[0]], spans[word[1] - 1]
        score = float(np.mean([s.score for s in spans[word[0] : word[1]]]))
        result.append((offset + first.start * frame_s, offset + last.end * frame_s, score))
    return result


def inherit_times(
    times: Sequence[tuple[float, float, float] | None], start: float, end: float
) -> list[tuple[float, float, float | None]]:
    """Fill each unaligned word from its neighbours: it starts where the previous aligned word
    ends and ends where the next one starts (the segment's edges where there is none)."""
    filled: list[tuple[float, float, float | None]] = []
    for index, item in enumerate(times):
        if item is not None:
            filled.append(item)
            continue
        after = next((t[0] for t in times[index + 1 :] if t is not None), None)
        before = filled[-1][1] if filled else min(start, end if after is None else after)
        stop = max(end, before) if after is None else max(after, before)
        filled.append((before, stop, None))
    return filled


# --- segments ---------------------------------------------------------------------------------


def align_segment(
    model: EmissionModel, audio: DecodedAudio, segment: Segment, window: tuple[float, float]
) -> Segment:
    """The segment with CTC-aligned word times; unchanged if its words cannot be aligned."""
    words = segment.words or _words_of(segment)
    texts = [w.text.strip() for w in words]
    spelling = spell(texts, model.vocabulary, model.word_delimiter)
    first = round(window[0] * SAMPLE_RATE)
    samples = _padded(audio.samples[first : round(window[1] * SAMPLE_RATE)])
    log_probs = model.log_probs(samples)
    spans = ctc_forced_align(log_probs, spelling.targets, model.blank_id)
    if spans is None or all(w is None for w in spelling.words):
        return segment if segment.words else _spread(segment, words)
    frame_s = model.samples_per_frame / SAMPLE_RATE
    timed = word_times(spelling, spans, frame_s, first / SAMPLE_RATE)
    filled = inherit_times(timed, segment.start, segment.end)
    return _with_words(segment, words, filled)


def _padded(samples: Samples) -> Samples:
    if len(samples) >= _MIN_SAMPLES:
        return samples
    return np.pad(samples, (0, _MIN_SAMPLES - len(samples)))


def _words_of(segment: Segment) -> tuple[Word, ...]:
    """Words from the text, for transcripts made without word timestamps (times follow)."""
    return tuple(Word(f" {t}", segment.start, segment.end) for t in segment.text.split())


def _spread(segment: Segment, words: Sequence[Word]) -> Segment:
    """Last resort for words that never had times: share the segment out by length."""
    weights = np.cumsum([0] + [max(1, len(w.text.strip())) for w in words], dtype=np.float64)
    edges = segment.start + (segment.end - segment.start) * weights / max(1.0, weights[-1])
    times = [(float(a), float(b), None) for a, b in itertools.pairwise(edges)]
    return _with_words(segment, words, times)


def _with_words(
    segment: Segment, words: Sequence[Word], times: Sequence[tuple[float, float, float | None]]
) -> Segment:
    timed = tuple(
        dataclasses.replace(
            w,
            start=round(s, 3),
            end=round(e, 3),
            score=round(score, 3) if score is not None else w.score,
        )
        for w, (s, e, score) in zip(words, times, strict=True)
    )
    if not timed:
        return segment
    return dataclasses.replace(segment, words=timed, start=timed[0].start, end=timed[-1].end)


def segment_windows(segments: Sequence[Segment], duration: float) -> list[tuple[float, float]]:
    """Each segment's span padded by SEGMENT_PAD_S, never reaching into its neighbours."""
    windows: list[tuple[float, float]] = []
    for index, segment in enumerate(segments):
        low = segments[index - 1].end if index else 0.0
        high = segments[index + 1].start if index + 1 < len(segments) else duration
        start = max(min(low, segment.start), segment.start - SEGMENT_PAD_S, 0.0)
        end = min(max(high, segment.end), segment.end + SEGMENT_PAD_S, duration)
        windows.append((start, max(end, start)))
    return windows


def align_transcript(
    model: EmissionModel, transcript: Transcript, audio: DecodedAudio, ctx: StageContext
) -> Transcript:
    """Align every segment of `transcript` with `model`, checking for cancellation between
    segments."""
    windows = segment_windows(transcript.segments, audio.duration)
    segments: list[Segment] = []
    for segment, window in zip(transcript.segments, windows, strict=True):
        ctx.check_cancelled()
        has_text = bool(segment.words or segment.text.strip())
        segments.append(align_segment(model, audio, segment, window) if has_text else segment)
    return dataclasses.replace(transcript, segments=_in_order(segments))


def _in_order(segments: Sequence[Segment]) -> tuple[Segment, ...]:
    """Padded windows of neighbouring segments overlap; no word may start before the previous
    word ends."""
    floor = 0.0
    ordered: list[Segment] = []
    for segment in segments:
        words: list[Word] = []
        for word in segment.words:
            start = max(word.start, floor)
            words.append(dataclasses.replace(word, start=start, end=max(word.end, start)))
            floor = words[-1].end
        ordered.append(_with_words(segment, words, [(w.start, w.end, w.score) for w in words]))
    return tuple(ordered)


# --- transformers models ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where one language's alignment model comes from."""

    language: str
    source: str
    is_local: bool


class AlignmentModels:
    """Language -> model: configured names or paths, `models_dir/<language>`, the hub table.

    Only known language codes are looked up (`language_code`); the configured overrides are
    the operator's, so they may name a path or a hub repository.
    """

    def __init__(
        self,
        models_dir: Path | None = None,
        overrides: Mapping[str, str] | None = None,
        allow_download: bool = True,
    ) -> None:
        self._models_dir = models_dir
        self._overrides = dict(overrides or {})
        self._allow_download = allow_download

    def resolve(self, language: str) -> ModelSource:
        """The model for `language`, or ModelNotFound naming the languages that have one."""
        language = language_code(language)
        configured = self._overrides.get(language)
        if configured is not None:
            local = _is_model_dir(Path(configured).expanduser())
            if local or self._allow_download:
                return ModelSource(language, configured, is_local=local)
        in_dir = self._models_dir / language if self._models_dir is not None else None
        if in_dir is not None and _is_model_dir(in_dir):
            return ModelSource(language, str(in_dir), is_local=True)
        if self._allow_download and language in DEFAULT_MODELS:
            return ModelSource(language, DEFAULT_MODELS[language], is_local=False)
        known = ", ".join(self.available()) or "none"
        raise ModelNotFound(
            f"No alignment model for language '{language}'. Languages with one: {known}.",
            param="language",
        )

    def available(self) -> list[str]:
        """Languages that have a model here (or on the hub, when downloads are allowed)."""
        names = {k for k, v in self._overrides.items() if _is_model_dir(Path(v).expanduser())}
        if self._models_dir is not None and self._models_dir.is_dir():
            names.update(
                p.name
                for p in self._models_dir.iterdir()
                if p.name in WHISPER_LANGUAGES and _is_model_dir(p)
            )
        if self._allow_download:
            names.update(DEFAULT_MODELS)
            names.update(self._overrides)
        return sorted(names)


def _is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file()


class TransformersCtcModel:
    """An `EmissionModel` over a transformers CTC model and its processor."""

    def __init__(self, model: Any, processor: Any, device: str, torch: ModuleType) -> None:
        self._model = model
        self._device = device
        self._torch = torch
        tokenizer = processor.tokenizer
        self._vocabulary: dict[str, int] = dict(tokenizer.get_vocab())
        pad = tokenizer.pad_token_id
        self._blank = int(pad) if pad is not None else 0
        self._delimiter: str | None = getattr(tokenizer, "word_delimiter_token", None)
        self._normalize = bool(getattr(processor.feature_extractor, "do_normalize", False))
        self._stride = int(np.prod(model.config.conv_stride))

    @property
    def vocabulary(self) -> Mapping[str, int]:
        return self._vocabulary

    @property
    def blank_id(self) -> int:
        return self._blank

    @property
    def word_delimiter(self) -> str | None:
        return self._delimiter

    @property
    def samples_per_frame(self) -> int:
        return self._stride

    def log_probs(self, samples: Samples) -> LogProbs:
        torch = self._torch
        values = samples.astype(np.float32)
        if self._normalize:
            values = (values - values.mean()) / np.sqrt(values.var() + 1e-7)
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(values))[None].to(self._device)
            logits = self._model(batch).logits[0].float()
            result: LogProbs = torch.log_softmax(logits, dim=-1).cpu().numpy()
        return result


def load_ctc_model(source: ModelSource, device: str, token: str | None) -> TransformersCtcModel:
    """Load a CTC model and its processor; a clear error when the extra is missing."""
    torch = _require("torch")
    transformers = _require("transformers")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    options: dict[str, Any] = {"local_files_only": source.is_local, "token": token}
    try:
        processor = transformers.Wav2Vec2Processor.from_pretrained(source.source, **options)
        model = transformers.AutoModelForCTC.from_pretrained(source.source, **options)
    except (OSError, ValueError) as exc:
        raise ModelNotFound(
            f"The alignment model '{source.source}' for language '{source.language}' could "
            f"not be loaded: {exc}"
        ) from exc
    return TransformersCtcModel(model.to(device).eval(), processor, device, torch)


def _require(module: str) -> ModuleType:
    """Import an optional dependency, or say which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra("Word alignment with wav2vec2", ALIGNMENT_EXTRA) from exc


class Wav2Vec2Aligner:
    """Alignment backend "wav2vec2": one CTC model per language, shared through a cache.

    Languages without a model, and translations (English text over other speech), fall back
    to the default refinement of faster-whisper's own word times.
    """

    def __init__(
        self,
        models: AlignmentModels,
        device: str = "auto",
        hf_token: str | None = None,
        ttl_seconds: float = -1,
        max_loaded: int | None = None,
    ) -> None:
        self._models = models
        self._device = device
        self._token = hf_token
        self._cache: ModelCache[EmissionModel] = ModelCache(
            self._load, ttl_seconds, stage="alignment", max_loaded=max_loaded
        )

    def available_models(self) -> list[str]:
        """Languages that have an alignment model."""
        return self._models.available()

    def loaded_models(self) -> list[str]:
        return self._cache.loaded()

    def load_model(self, name: str) -> str:
        language = self._models.resolve(name).language
        self._cache.load(language)
        return language

    def unload_model(self, name: str) -> str:
        language = language_code(name)
        self._cache.unload(language)
        return language

    def close(self) -> None:
        self._cache.close()

    def align(self, transcript: Transcript, audio: DecodedAudio, ctx: StageContext) -> Transcript:
        """CTC-align every segment; fall back to refined faster-whisper times when no model
        fits this transcript."""
        if transcript.task is Task.TRANSLATE or not transcript.segments:
            return refine_word_times(transcript, audio)
        try:
            language = self._models.resolve(transcript.language).language
            with self._cache.acquire(language) as model:
                return self._aligned(model, transcript, audio, ctx)
        except ModelNotFound as exc:
            log.warning("word alignment falls back to faster-whisper timings: %s", exc)
            return refine_word_times(transcript, audio)

    def _aligned(
        self, model: EmissionModel, transcript: Transcript, audio: DecodedAudio, ctx: StageContext
    ) -> Transcript:
        try:
            return align_transcript(model, transcript, audio, ctx)
        except WhisperXApiError:
            raise
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"Word alignment failed: {exc}") from exc

    def _load(self, language: str) -> EmissionModel:
        return load_ctc_model(self._models.resolve(language), self._device, self._token)
