"""Sentence ends on real speech: Whisper base on `sentence_ends.flac`, whose pauses are all
shorter than a segment-ending pause, so only the full stops can cut it."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.audio import DATA
from whisperx_api.config import Settings
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.pipeline.registry import default_registry
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.runtime.embedded import build_runner

pytestmark = pytest.mark.slow


def test_i_full_stop_ends_its_segment_and_initials_do_not(
    make_settings: Callable[..., Settings],
) -> None:
    runner = build_runner(make_settings(), default_registry())
    try:
        transcript = runner.run(
            DATA / "sentence_ends.flac",
            TranscriptionOptions(model="", word_timestamps=True),
            StageContext(),
        )
    finally:
        runner.close()
    segments = [s.text.strip() for s in transcript.segments]
    assert len(segments) == 3, segments
    assert segments[0].endswith("did I.")
    assert segments[1] == "Okay, I thought so."
    # The initials stay inside the sentence (base writes "J. R." or "J. R" for them).
    assert re.search(r"J\. R\.? Smith called\.$", segments[2]), segments
