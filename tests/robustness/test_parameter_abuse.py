"""Parameter abuse: every form field of the OpenAI endpoints and the job API, given a wrong type,
an out-of-range or huge value, an unknown enum value, a repeated value, a NUL byte, a very long
string or a unicode trick, through a real server on the bundled `tiny.en` model.

Each refused case is one exact 400 envelope (`code`, `param`) and leaves no job, job directory
or temp file behind; each accepted one transcribes the real audio and leaves nothing either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from tests.audio import DATA
from tests.robustness.conftest import Deployment, assert_error

pytestmark = pytest.mark.slow

AUDIO = "good_short.mp3"  # 7 s of real speech
SPOKEN = "weekly team meeting"
TRANSCRIPTIONS = "/v1/audio/transcriptions"
TRANSLATIONS = "/v1/audio/translations"
JOBS = "/transcription"
INVALID = "invalid_request_error"
BIG_INT = "9" * 400  # far past any 64-bit integer
LONG = "x" * 100_000  # past LIMITS__MAX_FIELD_BYTES: refused while the form is parsed
LONG_WITHIN_LIMIT = "x" * 60_000


@dataclass(frozen=True)
class Case:
    """A form posted with the real audio, and the 400 it must get."""

    name: str
    path: str
    fields: dict[str, str | list[str]]
    code: str | None
    param: str | None


CASES = [
    # wrong types
    Case(
        "temperature-word", TRANSCRIPTIONS, {"temperature": "hot"}, "invalid_value", "temperature"
    ),
    Case("batch-size-float", TRANSCRIPTIONS, {"batch_size": "1.5"}, "invalid_value", "batch_size"),
    Case("align-maybe", TRANSCRIPTIONS, {"align": "maybe"}, "invalid_value", "align"),
    Case("async-two", TRANSCRIPTIONS, {"async": "2"}, "invalid_value", "async"),
    Case("stream-word", TRANSLATIONS, {"stream": "sometimes"}, "invalid_value", "stream"),
    Case("sync-word", JOBS, {"sync": "perhaps"}, "invalid_value", "sync"),
    Case("diarize-number", JOBS, {"diarize": "7"}, "invalid_value", "diarize"),
    Case("line-width-word", JOBS, {"max_line_width": "wide"}, "invalid_value", "max_line_width"),
    # out of range, not finite, huge
    Case("temperature-2", TRANSCRIPTIONS, {"temperature": "2"}, "invalid_value", "temperature"),
    Case("temperature-neg", TRANSLATIONS, {"temperature": "-1"}, "invalid_value", "temperature"),
    Case("temperature-nan", TRANSCRIPTIONS, {"temperature": "nan"}, "invalid_value", "temperature"),
    Case("temperature-inf", TRANSCRIPTIONS, {"temperature": "inf"}, "invalid_value", "temperature"),
    Case(
        "temperature-1e400", TRANSLATIONS, {"temperature": "1e400"}, "invalid_value", "temperature"
    ),
    Case("batch-size-0", TRANSCRIPTIONS, {"batch_size": "0"}, "invalid_value", "batch_size"),
    Case("batch-size-huge", TRANSCRIPTIONS, {"batch_size": BIG_INT}, "invalid_value", "batch_size"),
    Case("chunk-size-31", TRANSLATIONS, {"chunk_size": "31"}, "invalid_value", "chunk_size"),
    Case(
        "line-count-21", TRANSCRIPTIONS, {"max_line_count": "21"}, "invalid_value", "max_line_count"
    ),
    Case(
        "words-per-line-huge",
        JOBS,
        {"max_words_per_line": BIG_INT},
        "invalid_value",
        "max_words_per_line",
    ),
    Case(
        "min-speakers-0",
        TRANSCRIPTIONS,
        {"diarize": "true", "min_speakers": "0"},
        "invalid_value",
        "min_speakers",
    ),
    Case(
        "min-over-max",
        TRANSCRIPTIONS,
        {"diarize": "true", "min_speakers": "3", "max_speakers": "2"},
        None,
        "min_speakers",
    ),
    Case("device-index-neg", JOBS, {"device_index": "-1"}, "invalid_value", "device_index"),
    Case(
        "chunking-threshold-2",
        TRANSCRIPTIONS,
        {"chunking_strategy[type]": "server_vad", "chunking_strategy[threshold]": "2"},
        "invalid_value",
        "chunking_strategy",
    ),
    # unknown enum values
    Case(
        "format-xml", TRANSCRIPTIONS, {"response_format": "xml"}, "invalid_value", "response_format"
    ),
    Case("format-pdf-job", JOBS, {"response_format": "pdf"}, "invalid_value", "response_format"),
    Case("device-tpu", JOBS, {"device": "tpu"}, "invalid_value", "device"),
    Case(
        "granularity-char",
        TRANSCRIPTIONS,
        {"timestamp_granularities[]": "char"},
        "invalid_value",
        "timestamp_granularities",
    ),
    Case("include-tokens", TRANSCRIPTIONS, {"include[]": "tokens"}, "invalid_value", "include"),
    Case(
        "chunking-manual",
        TRANSLATIONS,
        {"chunking_strategy": "manual"},
        "invalid_value",
        "chunking_strategy",
    ),
    Case(
        "chunking-broken-json",
        TRANSCRIPTIONS,
        {"chunking_strategy": "{not json"},
        "invalid_value",
        "chunking_strategy",
    ),
    Case("language-xx", TRANSCRIPTIONS, {"language": "xx"}, "invalid_value", "language"),
    Case("model-unknown", TRANSLATIONS, {"model": "gpt-9"}, "model_not_found", "model"),
    Case("model-path", JOBS, {"model": "../../../etc/passwd"}, "model_not_found", "model"),
    # repeated fields: the last value counts (docs/api.md, "Forms")
    Case(
        "format-repeated-last-bad",
        TRANSCRIPTIONS,
        {"response_format": ["json", "xml"]},
        "invalid_value",
        "response_format",
    ),
    Case(
        "granularity-repeated-one-bad",
        TRANSCRIPTIONS,
        {"timestamp_granularities[]": ["word", "segment", "paragraph"]},
        "invalid_value",
        "timestamp_granularities",
    ),
    Case(
        "known-names-repeated-no-diarize",
        TRANSCRIPTIONS,
        {"known_speaker_names[]": ["alice", "alice"]},
        None,
        "known_speaker_names",
    ),
    # NUL bytes
    Case("language-nul", TRANSCRIPTIONS, {"language": "en\x00"}, "invalid_value", "language"),
    Case("model-nul", TRANSCRIPTIONS, {"model": "tiny.en\x00"}, "model_not_found", "model"),
    Case("format-nul", JOBS, {"response_format": "json\x00"}, "invalid_value", "response_format"),
    # very long strings
    Case("language-long", TRANSCRIPTIONS, {"language": LONG}, "invalid_value", "language"),
    Case("model-long", JOBS, {"model": LONG_WITHIN_LIMIT}, "model_not_found", "model"),
    Case("model-past-field-limit", JOBS, {"model": LONG}, "invalid_value", "model"),
    Case(
        "prompt-past-model-limit", TRANSCRIPTIONS, {"prompt": "w" * 897}, "invalid_value", "prompt"
    ),
    Case(
        "webhook-url-long",
        JOBS,
        {"webhook_url": "https://example.com/" + "a" * 3000},
        "invalid_value",
        "webhook_url",
    ),
    # unicode tricks
    Case(
        "model-rtl-override", TRANSCRIPTIONS, {"model": "tiny\u202e.en"}, "model_not_found", "model"
    ),
    Case("model-zero-width", JOBS, {"model": "tiny\u200b.en"}, "model_not_found", "model"),
    Case(
        "language-fullwidth",
        TRANSCRIPTIONS,
        {"language": "\uff45\uff4e"},
        "invalid_value",
        "language",
    ),
    Case(
        "format-cyrillic-o",
        TRANSCRIPTIONS,
        {"response_format": "js\u043en"},
        "invalid_value",
        "response_format",
    ),
    Case("device-fullwidth", JOBS, {"device": "\uff43\uff50\uff55"}, "invalid_value", "device"),
    # refused combinations
    Case("stream-and-async", TRANSCRIPTIONS, {"stream": "true", "async": "true"}, None, "stream"),
    Case(
        "stream-srt",
        TRANSLATIONS,
        {"stream": "true", "response_format": "srt"},
        None,
        "response_format",
    ),
    Case(
        "diarize-without-align",
        TRANSCRIPTIONS,
        {"diarize": "true", "align": "false"},
        None,
        "align",
    ),
    Case(
        "webhook-with-sync",
        JOBS,
        {"webhook_url": "https://example.com/h", "sync": "true"},
        None,
        "webhook_url",
    ),
    Case("webhook-ftp", JOBS, {"webhook_url": "ftp://example.com/h"}, "invalid_url", "webhook_url"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_bad_field_is_one_exact_400_and_leaves_nothing(
    model_server: Deployment, case: Case
) -> None:
    with model_server.client() as client:
        response = client.post(
            case.path, files={"file": (AUDIO, (DATA / AUDIO).read_bytes())}, data=case.fields
        )
    assert_error(response, 400, INVALID, case.code, case.param)
    model_server.assert_nothing_left()


def test_both_file_and_audio_url_name_audio_url(model_server: Deployment) -> None:
    with model_server.client() as client:
        response = client.post(
            JOBS,
            files={"file": (AUDIO, (DATA / AUDIO).read_bytes())},
            data={"audio_url": "https://example.com/a.mp3"},
        )
    assert_error(response, 400, INVALID, None, "audio_url")
    model_server.assert_nothing_left()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/a.mp3", "file:///etc/passwd", "not a url", "http://[::1]/a.mp3"]
)
def test_an_audio_url_off_the_public_web_is_refused_before_any_connection(
    model_server: Deployment, url: str
) -> None:
    with model_server.client() as client:
        response = client.post(JOBS, data={"audio_url": url})
    assert_error(response, 400, INVALID, "url_not_allowed", "audio_url")
    model_server.assert_nothing_left()


def transcribe(deployment: Deployment, path: str, fields: dict[str, str | list[str]]) -> str:
    with deployment.client() as client:
        response = client.post(
            path, files={"file": (AUDIO, (DATA / AUDIO).read_bytes())}, data=fields
        )
    assert response.status_code == 200, response.text
    return response.text


def test_the_last_of_repeated_values_counts(model_server: Deployment) -> None:
    text = transcribe(model_server, TRANSCRIPTIONS, {"response_format": ["xml", "text"]})
    assert SPOKEN in text.lower(), text
    assert not text.startswith("{"), text  # text/plain, not the JSON of the default format
    model_server.assert_nothing_left()


def test_nul_bytes_in_free_text_fields_are_harmless(model_server: Deployment) -> None:
    fields: dict[str, str | list[str]] = {
        "prompt": "meeting\x00notes",
        "hotwords": "team\x00meeting",
        "response_format": "text",
    }
    assert SPOKEN in transcribe(model_server, TRANSCRIPTIONS, fields).lower()
    model_server.assert_nothing_left()


def test_a_language_code_in_capitals_with_spaces_is_read(model_server: Deployment) -> None:
    text = transcribe(model_server, TRANSCRIPTIONS, {"language": " EN ", "response_format": "json"})
    assert SPOKEN in json.loads(text)["text"].lower()
    model_server.assert_nothing_left()
