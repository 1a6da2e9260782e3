"""Multichannel recordings for tests: channels written side by side, and a two-party call
whose parties each have their own channel (from a mono conversation and its RTTM turns)."""

from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from tests.audio import DATA, RATE

Samples = npt.NDArray[np.float32]
LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 6: "5.1", 8: "7.1"}


def read_mono(path: Path) -> Samples:
    """A 16 kHz mono fixture's samples."""
    with av.open(str(path)) as container:
        chunks = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    data = np.concatenate(chunks)
    if data.dtype.kind == "i":
        return (data.astype(np.float32) / 32768.0).astype(np.float32)
    return data.astype(np.float32)


def write_channels(path: Path, channels: Sequence[Samples], fmt: str = "flac") -> Path:
    """16-bit FLAC (or WAV) at 16 kHz with one channel per array (padded to the longest)."""
    length = max(len(c) for c in channels)
    planes = np.zeros((len(channels), length), dtype=np.float32)
    for index, channel in enumerate(channels):
        planes[index, : len(channel)] = channel
    pcm = np.clip(np.round(planes * 32767.0), -32768, 32767).astype(np.int16)
    interleaved = pcm.T.reshape(1, -1)
    codec = "flac" if fmt == "flac" else "pcm_s16le"
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=RATE, layout=LAYOUTS[len(channels)])
        frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout=LAYOUTS[len(channels)])
        frame.rate = RATE
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def rttm_turns(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, speaker) of each RTTM line."""
    turns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        start, duration = float(fields[3]), float(fields[4])
        turns.append((start, start + duration, fields[7]))
    return turns


def split_by_speaker(name: str) -> tuple[list[str], list[Samples]]:
    """A conversation fixture with each speaker's turns on their own channel (digital silence
    elsewhere), speakers in order of first appearance."""
    mono = read_mono(DATA / f"{name}.flac")
    turns = rttm_turns(DATA / f"{name}.rttm")
    speakers = list(dict.fromkeys(speaker for _, _, speaker in turns))
    channels = [np.zeros_like(mono) for _ in speakers]
    for start, end, speaker in turns:
        low, high = int(start * RATE), min(len(mono), int(np.ceil(end * RATE)))
        channels[speakers.index(speaker)][low:high] = mono[low:high]
    return speakers, channels


def tone(freq: float, seconds: float = 3.0) -> Samples:
    """A sine tone at 0.3 of full scale."""
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def many_channels(tmp_path: Path, count: int) -> bytes:
    """16-bit WAV with `count` channels of a tone (the wave module takes any count)."""
    samples = np.round(tone(300.0, 1.0) * 32767).astype(np.int16)
    frames = np.repeat(samples[:, None], count, axis=1)
    path = tmp_path / f"ch{count}.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(count)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(frames.tobytes())
    return path.read_bytes()
