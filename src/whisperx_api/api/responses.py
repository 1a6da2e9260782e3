"""Turn a finished job's transcript into the response its format asks for."""

from __future__ import annotations

from fastapi.responses import Response

from whisperx_api.domain.formats import OutputFormat
from whisperx_api.domain.job import JobSpec, ResultStyle
from whisperx_api.domain.transcript import Transcript
from whisperx_api.formatters import Rendered, render, render_job_json
from whisperx_api.formatters.logprobs import render_json_with_logprobs


def transcript_response(transcript: Transcript, spec: JobSpec) -> Response:
    """Render with the format chosen at submit time."""
    if spec.style is ResultStyle.JOBS and spec.response_format is OutputFormat.JSON:
        rendered = render_job_json(transcript)
    elif spec.options.include_logprobs and spec.response_format is OutputFormat.JSON:
        rendered = Rendered(render_json_with_logprobs(transcript), "application/json")
    else:
        rendered = render(transcript, spec.response_format, spec.subtitles)
    media_type = rendered.media_type
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    return Response(content=rendered.body, media_type=media_type)
