"""Pure renderers from a Transcript to a response body, looked up by OutputFormat.

`RENDERERS` is the one table: a format without an entry fails the tests, not a request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from whisperx_api.domain.formats import OutputFormat
from whisperx_api.domain.options import SubtitleOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.formatters.job_json import render_job_json_body
from whisperx_api.formatters.openai_json import (
    render_diarized_json,
    render_json,
    render_verbose_json,
    render_vtt_json,
)
from whisperx_api.formatters.plain import render_aud, render_text, render_tsv
from whisperx_api.formatters.srt import render_srt
from whisperx_api.formatters.vtt import render_vtt

__all__ = ["RENDERERS", "Formatter", "Rendered", "render", "render_job_json"]

JSON = "application/json"
PLAIN = "text/plain"
VTT = "text/vtt"

BodyRenderer = Callable[[Transcript, SubtitleOptions], str]

NO_SHAPING = SubtitleOptions()
"""The default cue layout: 42 characters a line, 2 lines, no highlighting."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A response body and its media type (no charset: the HTTP layer adds it)."""

    body: str
    media_type: str


@dataclass(frozen=True, slots=True)
class Formatter:
    """How one format is rendered and what it is served as."""

    media_type: str
    body: BodyRenderer


def _without_options(renderer: Callable[[Transcript], str]) -> BodyRenderer:
    """Only subtitle formats shape cues; the rest take the same call and ignore the options."""

    def body(transcript: Transcript, _options: SubtitleOptions) -> str:
        return renderer(transcript)

    return body


RENDERERS: Mapping[OutputFormat, Formatter] = MappingProxyType(
    {
        OutputFormat.JSON: Formatter(JSON, _without_options(render_json)),
        OutputFormat.TEXT: Formatter(PLAIN, _without_options(render_text)),
        OutputFormat.TXT: Formatter(PLAIN, _without_options(render_text)),
        OutputFormat.VERBOSE_JSON: Formatter(JSON, _without_options(render_verbose_json)),
        OutputFormat.VTT_JSON: Formatter(JSON, render_vtt_json),
        OutputFormat.SRT: Formatter(PLAIN, render_srt),
        OutputFormat.VTT: Formatter(VTT, render_vtt),
        OutputFormat.AUD: Formatter(PLAIN, _without_options(render_aud)),
        OutputFormat.TSV: Formatter(PLAIN, _without_options(render_tsv)),
        OutputFormat.DIARIZED_JSON: Formatter(JSON, _without_options(render_diarized_json)),
    }
)


def render(
    transcript: Transcript, fmt: OutputFormat, subtitles: SubtitleOptions = NO_SHAPING
) -> Rendered:
    """Render `transcript` as `fmt`; `subtitles` shapes srt, vtt and vtt_json cues."""
    formatter = RENDERERS[fmt]
    return Rendered(formatter.body(transcript, subtitles), formatter.media_type)


def render_job_json(transcript: Transcript) -> Rendered:
    """The job endpoints' JSON result, which differs from OpenAI's `json`."""
    return Rendered(render_job_json_body(transcript), JSON)
