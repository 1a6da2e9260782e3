"""CTC forced alignment: the numpy trellis/Viterbi on emissions whose best path is known, word
spans and inherited times, and a tiny randomly initialised wav2vec2 model end to end."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from whisperx_api.domain.audio import SAMPLE_RATE, DecodedAudio
from whisperx_api.domain.transcript import Segment, Task, Transcript, Word
from whisperx_api.errors import MissingExtra, ModelNotFound
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.wav2vec2_aligner import (
    AlignmentModels,
    Spelling,
    TokenSpan,
    Wav2Vec2Aligner,
    align_transcript,
    ctc_forced_align,
    inherit_times,
    load_ctc_model,
    spell,
    word_times,
)

BLANK = 0
VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "'": 5} | {
    ch: 6 + i for i, ch in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
}
FRAME_SAMPLES = 320  # wav2vec2: 20 ms per frame at 16 kHz


def peaked(frames: int, vocab: int, placed: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """Log-probs where each (token, first, end) owns frames [first, end) and blank the rest."""
    probs = np.full((frames, vocab), 0.02 / (vocab - 1))
    probs[:, BLANK] = 0.98
    for token, first, end in placed:
        probs[first:end] = 0.02 / (vocab - 1)
        probs[first:end, token] = 0.98
    return np.log(probs)


def path_score(log_probs: np.ndarray, targets: Sequence[int], spans: Sequence[TokenSpan]) -> float:
    labels = np.full(log_probs.shape[0], BLANK)
    for token, span in zip(targets, spans, strict=True):
        labels[span.start : span.end] = token
    return float(log_probs[np.arange(len(labels)), labels].sum())


def collapse(labels: Sequence[int]) -> list[int]:
    merged = [k for k, _ in itertools.groupby(labels)]
    return [k for k in merged if k != BLANK]


# --- the Viterbi on known paths ---------------------------------------------------------------


def test_known_spans_are_recovered_exactly() -> None:
    # "ab|bc": a repeated "b" across a word boundary and a repeat needing a blank between.
    placed = [(6, 2, 6), (7, 8, 11), (4, 11, 13), (7, 15, 17), (7, 19, 22), (8, 25, 30)]
    targets = [token for token, _, _ in placed]
    spans = ctc_forced_align(peaked(34, len(VOCAB), placed), targets, BLANK)
    assert spans is not None
    assert [(s.start, s.end) for s in spans] == [(a, b) for _, a, b in placed]
    assert all(s.score == pytest.approx(0.98) for s in spans)


def test_repeated_tokens_split_by_the_blank_between_them() -> None:
    placed = [(17, 0, 3), (17, 5, 9)]  # "LL": two L's with blanks between
    spans = ctc_forced_align(peaked(12, len(VOCAB), placed), [17, 17], BLANK)
    assert spans is not None
    assert [(s.start, s.end) for s in spans] == [(0, 3), (5, 9)]


@pytest.mark.parametrize("seed", range(6))
def test_viterbi_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    vocab, frames = 4, 7
    targets = [[1, 2], [1, 1], [2, 1, 3], [3, 3, 1]][seed % 4]
    log_probs = np.log(rng.dirichlet(np.ones(vocab), size=frames))
    best = max(
        float(log_probs[np.arange(frames), labels].sum())
        for labels in itertools.product(range(vocab), repeat=frames)
        if collapse(labels) == targets
    )
    spans = ctc_forced_align(log_probs, targets, BLANK)
    assert spans is not None
    assert path_score(log_probs, targets, spans) == pytest.approx(best)
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))


def test_too_few_frames_for_the_targets() -> None:
    log_probs = np.log(np.full((2, 4), 0.25))
    assert ctc_forced_align(log_probs, [1, 1], BLANK) is None  # needs "1 blank 1"
    assert ctc_forced_align(log_probs, [1, 2], BLANK) is not None
    assert ctc_forced_align(log_probs, [], BLANK) == []


# --- words, spelling and inherited times ------------------------------------------------------


def test_spelling_drops_what_the_alphabet_lacks() -> None:
    spelling = spell(["Hello,", "10", "it's", "—"], VOCAB, "|")
    assert spelling.words == ((0, 5), None, (6, 10), None)
    hello = [VOCAB[c] for c in "HELLO"]
    its = [VOCAB[c] for c in "IT'S"]
    assert spelling.targets == (*hello, VOCAB["|"], *its)


def test_lower_case_alphabets_get_lower_case_text() -> None:
    lower = {"<pad>": 0, "a": 1, "b": 2}
    assert spell(["AB", "b"], lower, None) == Spelling((1, 2, 2), ((0, 2), (2, 3)))


def test_word_spans_come_from_their_characters() -> None:
    spelling = Spelling((1, 4, 2), ((0, 1), (2, 3)))
    spans = [TokenSpan(5, 8, 0.5), TokenSpan(8, 9, 1.0), TokenSpan(12, 20, 1.0)]
    assert word_times(spelling, spans, 0.02, 1.0) == [
        (pytest.approx(1.10), pytest.approx(1.16), 0.5),
        (pytest.approx(1.24), pytest.approx(1.40), 1.0),
    ]


def test_unaligned_tokens_inherit_neighbour_times() -> None:
    times = [None, (1.0, 1.5, 0.9), None, None, (2.0, 2.4, 0.8), None]
    filled = inherit_times(times, 0.5, 3.0)
    assert filled == [
        (0.5, 1.0, None),
        (1.0, 1.5, 0.9),
        (1.5, 2.0, None),
        (2.0, 2.0, None),
        (2.0, 2.4, 0.8),
        (2.4, 3.0, None),
    ]


# --- a fake acoustic model with known placements ----------------------------------------------


class PlacedModel:
    """Hears each of `placed` (character, start s, end s) where it says, blank elsewhere."""

    def __init__(self, placed: Sequence[tuple[str, float, float]]) -> None:
        self.placed = placed
        self.calls: list[int] = []

    @property
    def vocabulary(self) -> Mapping[str, int]:
        return VOCAB

    @property
    def blank_id(self) -> int:
        return BLANK

    @property
    def word_delimiter(self) -> str | None:
        return "|"

    @property
    def samples_per_frame(self) -> int:
        return FRAME_SAMPLES

    def log_probs(self, samples: np.ndarray) -> np.ndarray:
        # The fake ignores the audio, so it cannot know the window: the tests use one segment
        # whose window starts at zero.
        self.calls.append(len(samples))
        frames = len(samples) // FRAME_SAMPLES
        rows = [(VOCAB[c], round(a / 0.02), round(b / 0.02)) for c, a, b in self.placed]
        return peaked(frames, len(VOCAB), rows)


def transcript_of(words: Sequence[tuple[str, float, float]], duration: float) -> Transcript:
    items = tuple(Word(f" {t}", a, b) for t, a, b in words)
    segment = Segment(0, items[0].start, items[-1].end, " ".join(t for t, _, _ in words), items)
    return Transcript(Task.TRANSCRIBE, "en", duration, (segment,))


def silence(seconds: float) -> DecodedAudio:
    return DecodedAudio(np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32))


def test_fake_model_end_to_end_with_punctuation_and_digits() -> None:
    # "Go 10 now." with G,O at 0.2-0.4 s and N,O,W at 1.0-1.3 s; "10" is unalignable.
    placed = [("G", 0.20, 0.26), ("O", 0.30, 0.40), ("|", 0.5, 0.52)]
    placed += [("N", 1.00, 1.10), ("O", 1.14, 1.20), ("W", 1.24, 1.30)]
    model = PlacedModel(placed)
    whisper = transcript_of([("Go", 0.0, 0.6), ("10", 0.6, 0.9), ("now.", 0.9, 1.6)], 2.0)
    aligned = align_transcript(model, whisper, silence(2.0), StageContext())
    times = [(w.text, w.start, w.end) for w in aligned.words]
    assert times == [(" Go", 0.2, 0.4), (" 10", 0.4, 1.0), (" now.", 1.0, 1.3)]
    assert aligned.segments[0].start == 0.2
    assert aligned.segments[0].end == 1.3
    assert aligned.words[0].score == pytest.approx(0.98)


def test_segments_without_words_get_words_from_their_text() -> None:
    model = PlacedModel([("H", 0.5, 0.6), ("I", 0.6, 0.7), ("|", 0.72, 0.74), ("A", 1.0, 1.1)])
    segment = Segment(0, 0.0, 1.6, "Hi, a!")
    transcript = Transcript(Task.TRANSCRIBE, "en", 1.6, (segment,))
    aligned = align_transcript(model, transcript, silence(1.6), StageContext())
    assert [(w.text, w.start, w.end) for w in aligned.words] == [
        (" Hi,", 0.5, 0.7),
        (" a!", 1.0, 1.1),
    ]


def test_unalignable_segment_keeps_whisper_times() -> None:
    model = PlacedModel([])
    whisper = transcript_of([("42", 0.1, 0.5), ("%", 0.5, 0.7)], 1.0)
    aligned = align_transcript(model, whisper, silence(1.0), StageContext())
    assert [(w.start, w.end) for w in aligned.words] == [(0.1, 0.5), (0.5, 0.7)]


# --- model resolution, fallbacks and the missing extra ----------------------------------------


def test_unknown_language_offline_names_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "config.json").write_text("{}")
    models = AlignmentModels(models_dir=tmp_path, allow_download=False)
    assert models.available() == ["de"]
    assert models.resolve("de").is_local
    with pytest.raises(ModelNotFound, match="de"):
        models.resolve("xx")
    online = AlignmentModels(allow_download=True)
    assert online.resolve("en").source == "facebook/wav2vec2-base-960h"


def test_language_without_model_falls_back_to_refined_times(tmp_path: Path) -> None:
    aligner = Wav2Vec2Aligner(AlignmentModels(models_dir=tmp_path, allow_download=False))
    whisper = transcript_of([("hello", 0.1, 0.5), ("there", 0.5, 0.9)], 1.0)
    aligned = aligner.align(whisper, silence(1.0), StageContext())
    assert [w.text for w in aligned.words] == [" hello", " there"]
    assert all(0.0 <= w.start <= w.end <= 1.0 for w in aligned.words)
    assert aligner.loaded_models() == []
    with pytest.raises(ModelNotFound):
        aligner.load_model("en")


def test_translations_are_not_force_aligned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "config.json").write_text("{}")

    def no_loading(*args: object) -> None:
        raise AssertionError("English text over other speech must not be CTC-aligned")

    monkeypatch.setattr("whisperx_api.pipeline.stages.wav2vec2_aligner.load_ctc_model", no_loading)
    aligner = Wav2Vec2Aligner(AlignmentModels(models_dir=tmp_path, allow_download=False))
    english = transcript_of([("hello", 0.1, 0.5)], 1.0)
    translated = Transcript(Task.TRANSLATE, "en", 1.0, english.segments)
    assert len(aligner.align(translated, silence(1.0), StageContext()).words) == 1
    assert aligner.loaded_models() == []


def test_missing_transformers_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    source = AlignmentModels(allow_download=True).resolve("en")
    with pytest.raises(MissingExtra, match=r"whisperx-api\[alignment\]"):
        load_ctc_model(source, "cpu", None)


# --- a tiny randomly initialised wav2vec2, end to end -----------------------------------------


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`models_dir` with a 2-layer random Wav2Vec2ForCTC and its processor under `en/`."""
    import torch
    import transformers

    root = tmp_path_factory.mktemp("align-models")
    target = root / "en"
    target.mkdir()
    (root / "vocab.json").write_text(json.dumps(VOCAB))
    tokenizer = transformers.Wav2Vec2CTCTokenizer(str(root / "vocab.json"))
    extractor = transformers.Wav2Vec2FeatureExtractor(do_normalize=True)
    transformers.Wav2Vec2Processor(
        feature_extractor=extractor, tokenizer=tokenizer
    ).save_pretrained(target)
    config = transformers.Wav2Vec2Config(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        pad_token_id=BLANK,
    )
    torch.manual_seed(0)
    transformers.Wav2Vec2ForCTC(config).save_pretrained(target)
    return root


def test_tiny_random_wav2vec2_times_every_word(tiny_model_dir: Path) -> None:
    aligner = Wav2Vec2Aligner(AlignmentModels(tiny_model_dir, allow_download=False), "cpu")
    words = [("Hello,", 0.2, 0.6), ("it's", 0.6, 0.9), ("10", 0.9, 1.2), ("o'clock.", 1.2, 2.0)]
    words += [("Good", 2.5, 2.8), ("bye!", 2.8, 3.3)]
    first = transcript_of(words[:4], 4.0)
    second = Segment(1, 2.5, 3.3, "Good bye!", tuple(Word(f" {t}", a, b) for t, a, b in words[4:]))
    whisper = Transcript(Task.TRANSCRIBE, "en", 4.0, (first.segments[0], second))
    noise = np.random.default_rng(0).normal(0, 0.1, 4 * SAMPLE_RATE).astype(np.float32)
    aligned = aligner.align(whisper, DecodedAudio(noise), StageContext())

    assert [w.text.strip() for w in aligned.words] == [t for t, _, _ in words]
    assert all(0.0 <= w.start <= w.end <= 4.0 for w in aligned.words)
    assert all(a.end <= b.start for a, b in itertools.pairwise(aligned.words))
    scored = [w for w in aligned.words if w.text.strip() != "10"]
    assert all(w.score is not None and 0.0 <= w.score <= 1.0 for w in scored)
    ten = aligned.words[2]
    assert (ten.start, ten.end) == (aligned.words[1].end, aligned.words[3].start)
    assert aligner.loaded_models() == ["en"]
    assert aligner.unload_model("en") == "en"
    assert aligner.loaded_models() == []
