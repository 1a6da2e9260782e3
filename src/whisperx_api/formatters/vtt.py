"""WebVTT: a `WEBVTT` header, `HH:MM:SS.mmm` times, cue text with `&`, `<` and `>` escaped."""

from __future__ import annotations

from whisperx_api.domain.options import SubtitleOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.formatters.subtitles import Cue, build_cues
from whisperx_api.formatters.timestamps import vtt_timestamp

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def escape_vtt(text: str) -> str:
    """Spoken `<` or `&` would otherwise be read as markup, and `-->` would end the cue."""
    return text.translate(_ESCAPES)


def _vtt_cue(cue: Cue) -> str:
    """Timing line, text, blank line; cues carry no identifiers."""
    return f"{vtt_timestamp(cue.start)} --> {vtt_timestamp(cue.end)}\n{cue.text}\n\n"


def render_vtt(transcript: Transcript, options: SubtitleOptions) -> str:
    """The whole WebVTT document."""
    cues = build_cues(transcript, options, escape_vtt)
    return "WEBVTT\n\n" + "".join(_vtt_cue(cue) for cue in cues)
