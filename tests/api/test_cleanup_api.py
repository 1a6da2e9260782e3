"""`replacements` and `redact[]` through the API on a fake backend that speaks personal data:
every format of both endpoint families, streamed deltas, async job results, and clear 400s."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import srt
import webvtt
from openai import AsyncOpenAI

from tests.api.test_openai_streaming import events
from tests.audio import tone_bytes
from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from whisperx_api.config import Settings
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Segment, Transcript, Word
from whisperx_api.pipeline.stage import StageContext

pytestmark = pytest.mark.anyio

# Segments as a decoder might cut them: the phone number runs on into the second one.
SPOKEN = (
    "Hello, my card is 4111 1111 1111 1111, thanks. Call me on 555 123",
    "4567 or mail jane@example.com. Acme corp says bye.",
)
SEVEN_DIGITS = re.compile(r"\d(?:[\s.,()/-]{0,3}\d){6,}")
FIELDS = {
    "redact[]": ["card_number", "phone", "email"],
    "replacements": json.dumps({"acme corp": "ACME Corporation", "bye": "goodbye"}),
}
CLEAN_TEXT = (
    "Hello, my card is [CARD_NUMBER], thanks. Call me on [PHONE] or mail [EMAIL]. "
    "ACME Corporation says goodbye."
)
OPENAI = "/v1/audio/transcriptions"


class PiiTranscriber(FakeTranscriber):
    """Speaks `SPOKEN`, reporting the text so far a word at a time (as a stream reads it)."""

    def _work(
        self, audio: DecodedAudio, options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        segments = []
        half = audio.duration / 2
        for i, text in enumerate(SPOKEN):
            parts = text.split()
            step = half / len(parts)
            words = tuple(
                Word(f" {w}", i * half + k * step, i * half + (k + 1) * step, 0.9, None, 0.8)
                for k, w in enumerate(parts)
            )
            kept = words if options.word_timestamps else ()
            segments.append(Segment(i, i * half, (i + 1) * half, f" {text}", kept, tokens=(7,)))
        pieces = re.findall(r"\s*\S+", " ".join(SPOKEN))
        for end in range(1, len(pieces) + 1):
            ctx.report_text("".join(pieces[:end]).strip())
            ctx.report(end / len(pieces))
            time.sleep(self.delay / len(pieces))
        return Transcript(options.task, "en", audio.duration, tuple(segments))


def assert_clean(body: str) -> None:
    assert not SEVEN_DIGITS.search(body), body
    assert "jane" not in body
    for label in ("[CARD_NUMBER]", "[PHONE]", "[EMAIL]"):
        assert label in body, body


async def post(
    settings: Settings, tmp_path: Path, url: str, fields: dict[str, Any], delay: float = 0.0
) -> Any:
    async with running(fake_app(settings, PiiTranscriber(delay))) as client:
        return await client.post(
            url, files={"file": ("a.wav", tone_bytes(tmp_path, 2.0))}, data=fields
        )


def shown_text(fmt: str, body: str) -> str:
    """What a reader of `body` sees as transcript text, timings left out."""
    if fmt in ("srt",):
        return " ".join(c.content.replace("\n", " ") for c in srt.parse(body))
    if fmt == "vtt":
        return " ".join(c.text.replace("\n", " ") for c in webvtt.from_string(body))
    if fmt in ("tsv", "aud"):
        rows = body.strip().splitlines()[1 if fmt == "tsv" else 0 :]
        return " ".join(row.split("\t")[2] for row in rows)
    if fmt in ("json", "verbose_json", "vtt_json"):
        data = json.loads(body)
        texts = [data["text"], *(s["text"] for s in data.get("segments", ()))]
        texts += [w["word"] for w in data.get("words", ())]
        return " ".join(
            [*texts, shown_text("vtt", data["vtt_text"])] if "vtt_text" in data else texts
        )
    return body


@pytest.mark.parametrize(
    "fmt", ["json", "text", "verbose_json", "srt", "vtt", "vtt_json", "tsv", "aud"]
)
async def test_every_openai_format_is_cleaned(
    make_settings: Callable[..., Settings], tmp_path: Path, fmt: str
) -> None:
    response = await post(make_settings(), tmp_path, OPENAI, {**FIELDS, "response_format": fmt})
    assert response.status_code == 200, response.text
    shown = shown_text(fmt, response.text)
    assert_clean(shown)
    assert "ACME Corporation" in shown
    if fmt in ("json", "text", "srt", "vtt", "tsv", "aud"):
        assert " ".join(shown.split()) == CLEAN_TEXT


async def test_words_carry_the_labels_with_the_span_times(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    fields = {**FIELDS, "response_format": "verbose_json", "timestamp_granularities[]": "word"}
    response = await post(make_settings(), tmp_path, OPENAI, fields)
    body = response.json()
    words = {w["word"].strip(" ,."): w for w in body["words"]}
    phone = words["[PHONE]"]
    # "555 123" closed the first decoder segment, "4567" opened the second (at 1.0 s).
    assert phone["start"] < 1.0 < phone["end"]
    assert body["text"] == CLEAN_TEXT
    assert "".join(s["text"] for s in body["segments"]).split() == CLEAN_TEXT.split()
    for seg in body["segments"]:
        assert seg["tokens"] in ([], [7])
        assert not SEVEN_DIGITS.search(seg["text"])


async def test_stream_deltas_never_show_the_digits(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    fields = {**FIELDS, "stream": "true"}
    response = await post(make_settings(), tmp_path, OPENAI, fields, delay=3.0)
    assert response.status_code == 200
    stream = events(response)
    deltas = [e["delta"] for e in stream if e["type"] == "transcript.text.delta"]
    assert len(deltas) >= 2  # streamed while decoding, not all at the end
    for delta in deltas:
        assert not SEVEN_DIGITS.search(delta), deltas
    assert "".join(deltas) == CLEAN_TEXT
    assert stream[-1]["text"] == CLEAN_TEXT


@pytest.mark.parametrize("fmt", ["json", "srt", "vtt", "txt", "tsv"])
async def test_job_endpoint_results_are_cleaned(
    make_settings: Callable[..., Settings], tmp_path: Path, fmt: str
) -> None:
    settings = make_settings()
    async with running(fake_app(settings, PiiTranscriber())) as client:
        accepted = await client.post(
            "/transcription",
            files={"file": ("a.wav", tone_bytes(tmp_path, 2.0))},
            data={**FIELDS, "response_format": fmt, "sync": "false"},
        )
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()["job_id"]
        for _ in range(600):
            status = (await client.get(f"/transcription/{job}")).json()["status"]
            if status == "Completed":
                break
            time.sleep(0.05)
        result = await client.get(f"/transcription/{job}/result")
    assert result.status_code == 200, result.text
    shown = shown_text("json" if fmt == "json" else fmt, result.text)
    assert_clean(shown)
    assert "ACME Corporation" in shown


async def test_async_openai_job_result_is_cleaned(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    async with running(fake_app(settings, PiiTranscriber())) as client:
        accepted = await client.post(
            OPENAI,
            files={"file": ("a.wav", tone_bytes(tmp_path, 2.0))},
            data={**FIELDS, "async": "true", "response_format": "verbose_json"},
        )
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()["job_id"]
        for _ in range(600):
            if (await client.get(f"/transcription/{job}")).json()["status"] == "Completed":
                break
            time.sleep(0.05)
        result = await client.get(f"/transcription/{job}/result")
    assert result.status_code == 200, result.text
    assert_clean(shown_text("verbose_json", result.text))


async def test_replacements_as_member_fields_like_the_sdks_send_them(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    fields = {"replacements[acme corp]": "ACME Corporation", "redact": "phone,card_number"}
    response = await post(make_settings(), tmp_path, OPENAI, fields)
    assert response.status_code == 200, response.text
    text = response.json()["text"]
    assert "ACME Corporation says bye." in text
    assert "[PHONE]" in text
    assert "jane@example.com" in text  # email was not asked for


async def test_translations_take_the_fields_too(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    response = await post(make_settings(), tmp_path, "/v1/audio/translations", FIELDS)
    assert response.status_code == 200, response.text
    assert response.json()["text"] == CLEAN_TEXT


BAD = [
    ("replacements", "not json"),
    ("replacements", "[1, 2]"),
    ("replacements", '{"a": 1}'),
    ("replacements", json.dumps({f"w{i}": "x" for i in range(101)})),
    ("replacements", json.dumps({"x" * 101: "y"})),
    ("replacements", json.dumps({"x": "y" * 201})),
    ("replacements", json.dumps({"...": "y"})),
    ("replacements", json.dumps({"a\nb": "y"})),
    ("replacements", json.dumps({"x": "line\nbreak"})),
    ("replacements", json.dumps({"Acme  Corp": "a", "acme corp": "b"})),
    ("replacements", "{" + " " * 40_000 + "}"),
    ("redact", "passport"),
    ("redact[]", "EMAIL"),
]


@pytest.mark.parametrize("url", [OPENAI, "/v1/audio/translations", "/transcription"])
@pytest.mark.parametrize(("field", "value"), BAD)
async def test_bad_values_are_refused_with_their_param(
    make_settings: Callable[..., Settings], tmp_path: Path, url: str, field: str, value: str
) -> None:
    settings = make_settings()
    response = await post(settings, tmp_path, url, {field: value})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field.removesuffix("[]")
    assert error["type"] == "invalid_request_error"
    assert list((settings.jobs.data_dir / "jobs").iterdir()) == []


@pytest.mark.parametrize(
    "extra",
    [
        {"response_format": "json", "include[]": "logprobs"},
        {"response_format": "diarized_json", "diarize": "true"},
        {"response_format": "srt", "highlight_words": "true"},
        {"response_format": "verbose_json", "diarize": "true"},
    ],
    ids=["logprobs", "diarized_json", "karaoke-srt", "diarized-verbose"],
)
async def test_the_other_shapes_are_cleaned_too(
    make_settings: Callable[..., Settings], tmp_path: Path, extra: dict[str, str]
) -> None:
    response = await post(make_settings(), tmp_path, OPENAI, {**FIELDS, **extra})
    assert response.status_code == 200, response.text
    if extra["response_format"] == "srt":
        shown = " ".join(c.content for c in srt.parse(response.text))
        assert "<u>[CARD_NUMBER],</u>" in shown  # the redacted span is one karaoke word
    else:
        body = response.json()
        texts = [body["text"], *(s["text"] for s in body.get("segments", ()))]
        texts += [w["word"] for w in body.get("words", ())]
        texts += [p["token"] for p in body.get("logprobs", ())]
        texts += [bytes(p["bytes"]).decode() for p in body.get("logprobs", ())]
        shown = " ".join(texts)
    assert_clean(shown)


async def test_the_official_sdk_sends_both_fields_in_extra_body(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """As docs/cleanup.md shows it: an object and a list in `extra_body`."""
    app = fake_app(make_settings(), PiiTranscriber())
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport) as http:
            client = AsyncOpenAI(
                api_key="unused", base_url="http://testserver/v1", http_client=http
            )
            result = await client.audio.transcriptions.create(
                model="whisper-1",
                file=("a.wav", tone_bytes(tmp_path, 2.0)),
                extra_body={
                    "replacements": {"acme corp": "ACME Corporation", "bye": "goodbye"},
                    "redact": ["card_number", "phone", "email"],
                },
            )
    assert result.text == CLEAN_TEXT
