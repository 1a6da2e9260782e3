"""Default subtitles of real recordings through the real pipeline (bundled base, CPU).

The recordings have exactly known utterance times (see `tests/cue_stats.py`): the cues must keep
to broadcast limits, start where the utterances start, and never mix the voices of a call.
`bench/subtitles.py` prints the same figures next to faster-whisper's own segments.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audio import DATA
from tests.cue_stats import (
    PREFIX,
    RECORDINGS,
    Cue,
    cue_stats,
    reference_starts,
    reference_turns,
    srt_cues,
)
from whisperx_api.config import Settings
from whisperx_api.domain.formats import OutputFormat
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.formatters import render
from whisperx_api.pipeline.registry import default_registry
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.runtime.embedded import build_runner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineRunner]:
    cache = tmp_path_factory.mktemp("subtitle-cues") / "cache"
    built = build_runner(
        Settings(whisper={"cache_dir": cache, "model": "base"}), default_registry()
    )
    yield built
    built.close()


def transcribe(runner: PipelineRunner, name: str, **options: object) -> Transcript:
    wanted = runner.check(TranscriptionOptions(model="base", language="en", **options))  # type: ignore[arg-type]
    return runner.run(DATA / f"{name}.flac", wanted, StageContext())


@pytest.fixture(scope="module")
def default_cues(runner: PipelineRunner) -> dict[str, list[Cue]]:
    return {
        name: srt_cues(render(transcribe(runner, name), OutputFormat.SRT).body)
        for name in RECORDINGS
    }


def test_default_cues_keep_to_the_broadcast_limits(default_cues: dict[str, list[Cue]]) -> None:
    every = [cue for cues in default_cues.values() for cue in cues]
    stats = cue_stats(every, [])
    assert stats.count >= 40
    assert stats.short >= 0.95, stats
    assert stats.fits >= 0.95, stats
    assert stats.readable >= 0.90, stats


@pytest.mark.parametrize("name", RECORDINGS)
def test_cues_start_where_the_utterances_start(
    default_cues: dict[str, list[Cue]], name: str
) -> None:
    stats = cue_stats(default_cues[name], reference_starts(name))
    assert stats.matched >= 0.80, (stats, default_cues[name])


def test_a_diarized_call_never_puts_two_speakers_in_one_cue(
    runner: PipelineRunner, tmp_path: Path
) -> None:
    transcript = transcribe(runner, "conv2", diarize=True, min_speakers=2, max_speakers=2)
    cues = srt_cues(render(transcript, OutputFormat.SRT).body)
    turns = reference_turns("conv2")
    assert len(cues) >= len(turns)
    labels: dict[str, set[str]] = {}
    for start, end, text in cues:
        assert len(PREFIX.findall(text)) == 1, text
        assert all(not PREFIX.match(line) for line in text.split("\n")[1:]), text
        heard = {speaker for s, e, speaker in turns if min(end, e) - max(start, s) > 0.25}
        assert len(heard) == 1, (start, end, text, heard)
        labels.setdefault(PREFIX.match(text)[0], set()).update(heard)  # type: ignore[index]
    assert len(labels) == 2
    assert all(len(voices) == 1 for voices in labels.values()), labels
