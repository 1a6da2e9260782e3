"""Output formats a client may ask for."""

from enum import StrEnum


class OutputFormat(StrEnum):
    """Every response format (docs/api.md); `txt` is the job API's name for `text`."""

    JSON = "json"
    TEXT = "text"
    TXT = "txt"
    VERBOSE_JSON = "verbose_json"
    VTT_JSON = "vtt_json"
    SRT = "srt"
    VTT = "vtt"
    AUD = "aud"
    TSV = "tsv"
    DIARIZED_JSON = "diarized_json"
