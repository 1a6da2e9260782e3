"""The decode stage on real files: formats, budget, and every kind of bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.audio import DATA, tone_wav
from whisperx_api.domain.audio import SAMPLE_RATE
from whisperx_api.errors import AudioTooLong, InvalidAudio
from whisperx_api.pipeline.stages.decode import decode_audio, probe_audio
from whisperx_api.pipeline.stages.truncation import expected_frame_length


@pytest.mark.parametrize("name", ["en_espeak.flac", "good_short.mp3", "fr_espeak.flac"])
def test_decodes_common_containers_to_16k_mono(name: str) -> None:
    audio = decode_audio(DATA / name, max_seconds=600)
    assert audio.samples.dtype.name == "float32"
    assert audio.samples.ndim == 1
    assert 1.0 < audio.duration < 60.0
    assert float(abs(audio.samples).max()) <= 1.0


def test_resamples_other_rates(tmp_path: Path) -> None:
    path = tone_wav(tmp_path / "tone.wav", seconds=2.0, rate=44_100)
    audio = decode_audio(path, max_seconds=600)
    assert abs(len(audio.samples) - 2 * SAMPLE_RATE) < 200


def test_duration_budget(tmp_path: Path) -> None:
    path = tone_wav(tmp_path / "tone.wav", seconds=3.0)
    with pytest.raises(AudioTooLong):
        decode_audio(path, max_seconds=2.0)


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InvalidAudio, match="empty"):
        decode_audio(empty, 600)
    with pytest.raises(InvalidAudio, match="empty"):
        probe_audio(empty, 600)


def test_text_named_wav() -> None:
    with pytest.raises(InvalidAudio, match="not audio"):
        probe_audio(DATA / "bad_not_audio.wav", 600)
    with pytest.raises(InvalidAudio, match="not audio"):
        decode_audio(DATA / "bad_not_audio.wav", 600)


def test_truncated_mp3_is_rejected_and_whole_one_is_not() -> None:
    with pytest.raises(InvalidAudio, match="truncated"):
        decode_audio(DATA / "bad_truncated.mp3", 600)
    assert decode_audio(DATA / "good_short.mp3", 600).duration > 4.0


def test_truncated_wav_is_rejected(tmp_path: Path) -> None:
    whole = tone_wav(tmp_path / "whole.wav", seconds=3.0)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(InvalidAudio, match="truncated"):
        decode_audio(cut, 600)


def test_corrupt_bytes_after_a_valid_header(tmp_path: Path) -> None:
    bad = tmp_path / "bad.flac"
    shutil.copyfile(DATA / "en_espeak.flac", bad)
    data = bytearray(bad.read_bytes())
    data[200:] = bytes(len(data) - 200)
    bad.write_bytes(bytes(data))
    with pytest.raises(InvalidAudio):
        decode_audio(bad, 600)


def test_mpeg_frame_length_from_header() -> None:
    # MPEG-1 Layer III, 128 kbps, 44.1 kHz, no padding: 417 bytes.
    assert expected_frame_length(bytes([0xFF, 0xFB, 0x90, 0x00])) == 417
    # MPEG-2 Layer III, 32 kbps, 16 kHz: 144 bytes (the fixtures' encoding).
    assert expected_frame_length(bytes([0xFF, 0xF3, 0x48, 0xC4])) == 144
    assert expected_frame_length(b"RIFF") is None
