"""OpenAI's `include[]=logprobs` on `json`: one entry per word, from the decoder's probability.

faster-whisper reports a probability per word (the mean of its tokens' probabilities), not per
token, so each entry is a word as Whisper wrote it (leading space included) and `logprob` is
the natural log of that word probability. The SDK's `Logprob` model parses it unchanged.
"""

from __future__ import annotations

import math

from whisperx_api.domain.transcript import Transcript, Word
from whisperx_api.formatters.openai_json import JsonObject, dump

# log(0) is minus infinity, which JSON cannot carry; this is the floor instead.
_MIN_PROBABILITY = 1e-10


def word_logprob(word: Word) -> JsonObject | None:
    """`{token, logprob, bytes}` for one word; None when the decoder gave no probability."""
    if word.probability is None:
        return None
    chance = word.probability if math.isfinite(word.probability) else 0.0
    return {
        "token": word.text,
        "logprob": math.log(max(chance, _MIN_PROBABILITY)),
        "bytes": list(word.text.encode("utf-8")),
    }


def render_json_with_logprobs(transcript: Transcript) -> str:
    """`{"text", "logprobs"}`."""
    return dump({"text": transcript.text, "logprobs": [word_logprob(w) for w in transcript.words]})
