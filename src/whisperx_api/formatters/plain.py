"""One-line-per-segment text formats: `text`/`txt`, Audacity labels (`aud`) and `tsv`."""

from __future__ import annotations

from whisperx_api.domain.transcript import Segment, Transcript
from whisperx_api.formatters.timestamps import milliseconds


def single_line(text: str) -> str:
    """Collapse tabs, newlines and runs of spaces: each row format is one line with tab fields."""
    return " ".join(text.split())


def spoken(segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
    """Segments with something to show: an empty row or cue says nothing and can break parsers."""
    return tuple(s for s in segments if s.text.strip())


def render_text(transcript: Transcript) -> str:
    """The transcript text and a newline, as OpenAI's `text` format returns it."""
    return transcript.text + "\n"


def _aud_row(segment: Segment) -> str:
    """Audacity's own label export: seconds with six decimals, speaker as `[[label]]`."""
    speaker = f"[[{segment.speaker}]]" if segment.speaker is not None else ""
    text = speaker + single_line(segment.text)
    return f"{max(0.0, segment.start):.6f}\t{max(0.0, segment.end):.6f}\t{text}\n"


def render_aud(transcript: Transcript) -> str:
    """An Audacity label track (no header), one label per segment."""
    return "".join(_aud_row(s) for s in spoken(transcript.segments))


def _tsv_row(segment: Segment) -> str:
    """Integer milliseconds, so no locale can turn the decimal point into a comma."""
    start, end = milliseconds(segment.start), milliseconds(segment.end)
    return f"{start}\t{end}\t{single_line(segment.text)}\n"


def render_tsv(transcript: Transcript) -> str:
    """WhisperX CLI's TSV: a `start end text` header, then one row per segment."""
    return "start\tend\ttext\n" + "".join(_tsv_row(s) for s in spoken(transcript.segments))
