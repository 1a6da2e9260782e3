"""Word error rate helper for tests, using Whisper's English text normalisation."""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol, cast

import jiwer


class _Normalizer(Protocol):
    def __call__(self, text: str) -> str: ...


@lru_cache(maxsize=1)
def _normalizer() -> _Normalizer:
    """Build the (relatively expensive) Whisper English normaliser once."""
    from whisper_normalizer.english import EnglishTextNormalizer  # type: ignore[import-untyped]

    return cast(_Normalizer, EnglishTextNormalizer())


def normalize(text: str) -> str:
    """Apply Whisper's English normaliser (case, punctuation, spelling, numbers)."""
    return " ".join(_normalizer()(text).split())


def normalized_wer(reference: str, hypothesis: str) -> float:
    """Return the WER of ``hypothesis`` against ``reference`` after English normalisation.

    An empty (after normalisation) reference yields 0.0 for an empty hypothesis, else 1.0.
    """
    ref = normalize(reference)
    hyp = normalize(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp))
