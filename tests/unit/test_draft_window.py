"""The encoder window of a draft (a live turn's partial decode) versus a full decode."""

from __future__ import annotations

import pytest

from whisperx_api.pipeline.batching.whisper import FULL_WINDOW_FRAMES, Chunk, window_frames
from whisperx_api.pipeline.stage import StageContext


def chunks(*durations: float) -> list[Chunk]:
    return [Chunk(((0, int(d * 16_000)),), 0.0, d) for d in durations]


def test_a_full_decode_always_reads_whisper_s_30_s_window() -> None:
    assert window_frames(chunks(1.0), draft=False) == FULL_WINDOW_FRAMES == 3000
    assert window_frames(chunks(29.0, 3.0), draft=False) == 3000


@pytest.mark.parametrize(
    ("durations", "frames"),
    [
        ((0.5,), 1000),  # a turn's first words: at least 10 s
        ((2.0,), 1000),
        ((2.01,), 1500),  # at least 15 s
        ((7.4,), 1500),
        ((8.0,), 1600),  # twice the speech
        ((2.0, 9.25), 1850),  # the longest chunk decides, for the whole job
        ((9.001,), 1802),  # rounded up to an even count: the encoder halves it
        ((16.0,), 3000),  # never more than the full window
    ],
)
def test_a_draft_reads_twice_its_longest_chunk_at_least_15_s_or_10_s_for_first_words(
    durations: tuple[float, ...], frames: int
) -> None:
    assert window_frames(chunks(*durations), draft=True) == frames


def test_a_scaled_context_stays_a_draft() -> None:
    ctx = StageContext(live=True, draft=True).scaled(0.0, 0.5)
    assert (ctx.live, ctx.draft) == (True, True)
    assert StageContext().draft is False
