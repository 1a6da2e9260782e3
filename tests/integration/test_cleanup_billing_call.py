"""Redaction end to end: a spoken billing call (`tests/data/billing_call.flac`) through a real
server process with the bundled base model. No run of seven or more digits may be left in any
place a client can read the transcript, and the words around the numbers stay."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import srt
import webvtt

from tests.audio import DATA
from tests.job_client import wait_for
from tests.server import ServerProcess, serving

pytestmark = pytest.mark.slow

AUDIO = DATA / "billing_call.flac"
SEVEN_DIGITS = re.compile(r"\d(?:[\s.,()/:-]{0,3}\d){6,}")
FIELDS: dict[str, Any] = {
    "redact[]": ["card_number", "phone", "email", "iban", "ssn"],
    "replacements": json.dumps({"northwind": "Northwind", "receipt": "invoice"}),
}
# Words around each number and the address, as the call says them.
AROUND = (
    "thank you for calling northwind billing",
    "the card number is",
    "a phone number where we can reach you",
    "call me on",
    "where should we send the invoice",
    "please email it",
    "your payment is complete",
)


def normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\[\] ]", " ", text.lower()).split())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("billing")
    env = {
        "WHISPER_TMP_FILES": str(tmp / "data"),
        "WHISPER__CACHE_DIR": str(tmp / "cache"),
        "WHISPER__MODEL": "base",
    }
    with serving(env, tmp / "server.log") as running:
        yield running


def transcribe(server: ServerProcess, **fields: str) -> httpx.Response:
    response = httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        files={"file": (AUDIO.name, AUDIO.read_bytes())},
        data={**FIELDS, **fields},
        timeout=600,
    )
    assert response.status_code == 200, response.text
    return response


def assert_redacted(text: str, where: str) -> None:
    found = SEVEN_DIGITS.search(text)
    assert found is None, f"{where}: {found.group()!r} left in {text!r}"


def assert_call_kept(text: str) -> None:
    said = normalised(text)
    for phrase in AROUND:
        assert phrase in said, f"{phrase!r} lost from {said!r}"
    assert "[card_number]" in said
    assert "[phone]" in said
    assert "[email]" in said  # heard as "again.millerabinumple.com": no @ left to find


def test_verbose_json_text_segments_words_and_vtt_hold_no_digits(server: ServerProcess) -> None:
    body = transcribe(
        server, response_format="vtt_json", **{"timestamp_granularities[]": "word"}
    ).json()
    print("text:", body["text"])
    assert_redacted(body["text"], "text")
    assert_call_kept(body["text"])
    for segment in body["segments"]:
        assert_redacted(segment["text"], "segment")
    assert_redacted(" ".join(w["word"] for w in body["words"]), "words")
    cues = webvtt.from_string(body["vtt_text"])
    assert_redacted(" ".join(c.text for c in cues), "vtt_text")
    labels = [w for w in body["words"] if w["word"].strip(" .,?!") in ("[CARD_NUMBER]", "[PHONE]")]
    assert len(labels) == 2
    for word in labels:  # one word, with the span's times, inside the audio
        assert 0 <= word["start"] < word["end"] <= body["duration"]


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles_hold_no_digits(server: ServerProcess, fmt: str) -> None:
    body = transcribe(server, response_format=fmt).text
    if fmt == "srt":
        shown = " ".join(cue.content for cue in srt.parse(body))
    else:
        shown = " ".join(cue.text for cue in webvtt.from_string(body))
    assert_redacted(shown, fmt)
    assert_call_kept(shown)


def test_stream_deltas_hold_no_digits(server: ServerProcess) -> None:
    response = transcribe(server, stream="true")
    events = [
        json.loads(block.removeprefix("data: "))
        for block in response.text.split("\n\n")
        if block.strip()
    ]
    deltas = [e["delta"] for e in events if e["type"] == "transcript.text.delta"]
    assert deltas
    for delta in deltas:
        assert_redacted(delta, "delta")
    assert_redacted("".join(deltas), "deltas joined")
    done = events[-1]
    assert done["type"] == "transcript.text.done"
    assert "".join(deltas) == done["text"]
    assert_redacted(done["text"], "done")
    assert_call_kept(done["text"])


def test_job_result_holds_no_digits(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        accepted = client.post(
            "/transcription",
            files={"file": (AUDIO.name, AUDIO.read_bytes())},
            data={**FIELDS, "sync": "false", "response_format": "verbose_json"},
        )
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()["job_id"]

        def done() -> bool | None:
            status = client.get(f"/transcription/{job}").json()["status"]
            assert status not in ("Failed", "Cancelled")
            return True if status == "Completed" else None

        wait_for(done, "the job", timeout=600, step=0.5)
        result = client.get(f"/transcription/{job}/result")
    assert result.status_code == 200, result.text
    body = result.json()
    assert_redacted(body["text"], "job text")
    assert_call_kept(body["text"])
    assert body["segments"]
    for segment in body["segments"]:
        assert_redacted(segment["text"], "job segment")
    words = [word["word"] for word in body["words"]]
    assert words
    assert_redacted(" ".join(words), "job words")
