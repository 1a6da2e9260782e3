"""SubRip: numbered cues, `HH:MM:SS,mmm` times, no escaping."""

from __future__ import annotations

from whisperx_api.domain.options import SubtitleOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.formatters.subtitles import Cue, build_cues
from whisperx_api.formatters.timestamps import srt_timestamp


def _srt_cue(number: int, cue: Cue) -> str:
    """Number, timing line, text, blank line."""
    timing = f"{srt_timestamp(cue.start)} --> {srt_timestamp(cue.end)}"
    return f"{number}\n{timing}\n{cue.text}\n\n"


def render_srt(transcript: Transcript, options: SubtitleOptions) -> str:
    """The whole SubRip document, cues numbered from 1."""
    cues = build_cues(transcript, options)
    return "".join(_srt_cue(number, cue) for number, cue in enumerate(cues, start=1))
