"""Saved-voice evaluation helpers: enrolment clips cut from a conversation fixture's RTTM turns,
and the identification error of a diarized_json answer against that truth."""

from __future__ import annotations

import importlib
import io
import wave
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from tests.audio import DATA
from tests.known_voices import Turn, audio, truth
from whisperx_api.domain.audio import SAMPLE_RATE

core = importlib.import_module("pyannote.core")
identification = importlib.import_module("pyannote.metrics.identification")

CLIP_SECONDS = 5.0
COLLAR = 0.25


def voice_clip(name: str, voice: str) -> tuple[bytes, list[Turn]]:
    """5 s of `voice` alone: its two longest turns joined, as a 16 kHz WAV (and those turns)."""
    source = audio(name)
    turns = sorted((t for t in truth(name) if t.speaker == voice), key=lambda t: -t.duration)[:2]
    pieces = [
        source.samples[int(t.start * SAMPLE_RATE) : int(t.end * SAMPLE_RATE)]
        for t in sorted(turns, key=lambda t: t.start)
    ]
    samples = np.concatenate(pieces)[: int(CLIP_SECONDS * SAMPLE_RATE)]
    assert len(samples) == int(CLIP_SECONDS * SAMPLE_RATE), "turns too short for the clip"
    return wav_bytes(samples), turns


def wav_bytes(samples: npt.NDArray[np.float32]) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def annotation(turns: list[tuple[float, float, str]]) -> Any:
    result = core.Annotation()
    for start, end, label in turns:
        result[core.Segment(start, end)] = label
    return result


def identification_error(body: dict[str, Any], excluded: list[Turn]) -> float:
    """IER of the segments' speakers against conv2.rttm, outside the `excluded` turns."""
    kept = [t for t in truth("conv2") if t not in excluded]
    reference = annotation([(t.start, t.end, t.speaker) for t in kept])
    hypothesis = annotation([(s["start"], s["end"], s["speaker"]) for s in body["segments"]])
    metric = identification.IdentificationErrorRate(collar=COLLAR, skip_overlap=True)
    uem = core.Timeline([core.Segment(t.start - COLLAR, t.end + COLLAR) for t in kept])
    return float(metric(reference, hypothesis, uem=uem.support()))


def enrol(base_url: str, voice: str, clip: bytes, key: dict[str, str]) -> dict[str, Any]:
    response = httpx.post(
        f"{base_url}/v1/speakers",
        headers=key,
        data={"name": voice},
        files={"file": (f"{voice}.wav", clip)},
        timeout=300,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def transcribe(base_url: str, ids: list[str], key: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{base_url}/v1/audio/transcriptions",
        headers=key,
        files={"file": ("conv2.flac", (DATA / "conv2.flac").read_bytes())},
        data={
            "diarize": "true",
            "response_format": "diarized_json",
            "known_speaker_ids[]": ids,
        },
        timeout=600,
    )
