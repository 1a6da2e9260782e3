"""Decoding that a file cannot abuse: declared lengths and rates checked before queueing, only
audio demuxers, a bounded buffer, cancellation and a time limit inside the loop."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest

from tests.audio import looped_flac, tone_wav
from tests.audio_tricks import (
    FLAC_FIXTURE,
    concat_script,
    flac_declaring,
    hls_playlist,
    wav_declaring,
    wav_with_rate,
)
from tests.bombs import many_packet_audio
from whisperx_api.distributed.remote import RemoteTranscriber
from whisperx_api.domain.audio import SAMPLE_RATE
from whisperx_api.errors import AudioTooLong, InvalidAudio, JobCancelled
from whisperx_api.pipeline.registry import model_catalog
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.stages.decode import (
    SampleBuffer,
    decode_audio,
    initial_capacity,
    packet_budget,
    probe_audio,
)

REPO = Path(__file__).resolve().parents[2]
FOUR_HOURS = 14_400.0


def test_a_small_flac_declaring_five_hours_is_refused_by_the_probe(tmp_path: Path) -> None:
    bomb = flac_declaring(tmp_path / "bomb.flac", 5 * 3600)
    assert bomb.stat().st_size < 500_000
    with pytest.raises(AudioTooLong, match="18000 seconds") as caught:
        probe_audio(bomb, FOUR_HOURS)
    assert caught.value.param == "file"
    probe_audio(flac_declaring(tmp_path / "ok.flac", 3600), FOUR_HOURS)  # within the limit


def test_a_wav_header_claiming_hours_is_refused_by_the_probe(tmp_path: Path) -> None:
    with pytest.raises(AudioTooLong):
        probe_audio(wav_declaring(tmp_path / "huge.wav", 0x7FFF_FFF0), FOUR_HOURS)
    # Within the limit but past the end of the file: truncated.
    with pytest.raises(InvalidAudio, match="truncated"):
        probe_audio(wav_declaring(tmp_path / "cut.wav", 10 * 32_000), FOUR_HOURS)


@pytest.mark.parametrize("rate", [1, 999])
def test_an_absurd_sample_rate_is_invalid_audio(tmp_path: Path, rate: int) -> None:
    path = wav_with_rate(tmp_path / "rate.wav", rate)
    with pytest.raises(InvalidAudio, match="sample rate"):
        probe_audio(path, 10**9)
    with pytest.raises(InvalidAudio, match="sample rate"):
        decode_audio(path, 10**9)


def test_a_zero_sample_rate_is_invalid_audio(tmp_path: Path) -> None:
    with pytest.raises(InvalidAudio):
        probe_audio(wav_with_rate(tmp_path / "zero.wav", 0), FOUR_HOURS)


def test_no_audio_stream_is_invalid_audio(tmp_path: Path) -> None:
    video = tmp_path / "video.mkv"
    with av.open(str(video), "w") as out:
        stream = out.add_stream("ffv1", rate=1)
        stream.width, stream.height = 16, 16
        frame = av.VideoFrame(16, 16, "yuv420p")
        for packet in (*stream.encode(frame), *stream.encode(None)):
            out.mux(packet)
    with pytest.raises(InvalidAudio, match="no audio stream"):
        probe_audio(video, FOUR_HOURS)


def _fifo_has_reader(fifo: Path) -> bool:
    """True when some process has the FIFO open for reading (a non-blocking writer gets in)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return False
        raise
    os.close(fd)
    return True


@pytest.mark.parametrize("kind", ["concat", "hls"])
def test_lists_of_other_files_are_refused_and_the_other_file_is_never_opened(
    tmp_path: Path, kind: str
) -> None:
    # The named file is a FIFO: opening it for reading would block until a writer comes, and a
    # non-blocking writer can tell whether anyone did.
    target = tmp_path / "secret.flac"
    os.mkfifo(target)
    name = "list.ffconcat" if kind == "concat" else "list.m3u8"
    script = tmp_path / name
    script.write_bytes(concat_script(target) if kind == "concat" else hls_playlist(target.name))
    errors: list[BaseException] = []

    def attempt() -> None:
        for check in (lambda: probe_audio(script, FOUR_HOURS), lambda: decode_audio(script, 60)):
            try:
                check()
            except BaseException as exc:
                errors.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=30)
    opened = _fifo_has_reader(target)
    assert not worker.is_alive(), "the decoder blocked on the named file"
    assert not opened
    assert [type(e) for e in errors] == [InvalidAudio, InvalidAudio]


@pytest.mark.parametrize("kind", ["concat", "hls"])
def test_the_same_lists_do_read_the_other_file_when_ffmpeg_is_not_restricted(
    tmp_path: Path, kind: str
) -> None:
    """Control: the files above are real attacks, not merely unreadable."""
    shutil.copyfile(FLAC_FIXTURE, tmp_path / "secret.flac")
    script = tmp_path / ("list.ffconcat" if kind == "concat" else "list.m3u8")
    script.write_bytes(
        concat_script(tmp_path / "secret.flac") if kind == "concat" else hls_playlist("secret.flac")
    )
    with av.open(str(script)) as container:
        assert container.format.name == kind
        assert next(container.decode(audio=0), None) is not None


def test_a_declaration_lower_than_the_audio_grows_the_buffer_up_to_the_limit(
    tmp_path: Path,
) -> None:
    short = flac_declaring(tmp_path / "short.flac", 2.0)
    whole = decode_audio(FLAC_FIXTURE, 600)
    grown = decode_audio(short, 600)
    assert len(grown.samples) == len(whole.samples)
    with pytest.raises(AudioTooLong):
        decode_audio(short, 10.0)


def test_growing_the_buffer_keeps_the_peak_within_twice_the_samples() -> None:
    """From one second up to 10 minutes by reallocation, 1.5x at a time (glibc moves large
    blocks with mremap, so measured growth is 1.05x the samples; a list joined at the end
    would be 2x)."""
    script = (
        "import numpy as np\n"
        "from whisperx_api.pipeline.stages.decode import SampleBuffer\n"
        "def hwm():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM'):\n"
        "            return int(line.split()[1]) * 1024\n"
        "chunk = np.ones(1152, np.float32)\n"
        "buffer = SampleBuffer(16000, 16000 * 3600, 3600)\n"
        "base = hwm()\n"
        "for _ in range(16000 * 600 // 1152):\n"
        "    buffer.append(chunk)\n"
        "print(buffer.finish().nbytes, hwm() - base)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    size, growth = map(int, done.stdout.split())
    assert size > 38_000_000
    assert growth < 2 * size  # measured: 1.05x the samples


def test_sample_buffer_grows_geometrically_and_stops_at_the_budget() -> None:
    buffer = SampleBuffer(capacity=4, budget=100, max_seconds=100 / SAMPLE_RATE)
    chunk = decode_audio(FLAC_FIXTURE, 600).samples[:10]
    for _ in range(10):
        buffer.append(chunk)
    with pytest.raises(AudioTooLong):
        buffer.append(chunk[:1])
    assert list(buffer.finish()) == list(chunk) * 10


def test_initial_capacity_follows_the_declaration_within_the_budget() -> None:
    budget = int(FOUR_HOURS * SAMPLE_RATE)
    assert initial_capacity(60.0, budget) == int((60.0 * 1.01 + 1.0) * SAMPLE_RATE)
    assert initial_capacity(5 * 3600.0, budget) == 3600 * SAMPLE_RATE  # reserved up front
    assert initial_capacity(5 * 3600.0, 60 * SAMPLE_RATE) == 60 * SAMPLE_RATE + 1
    assert initial_capacity(None, budget) == 300 * SAMPLE_RATE
    assert initial_capacity(float("inf"), budget) == 300 * SAMPLE_RATE


def test_cancellation_is_checked_inside_the_decode_loop() -> None:
    calls = 0

    def cancel() -> None:
        nonlocal calls
        calls += 1
        raise JobCancelled("the job was cancelled")

    with pytest.raises(JobCancelled):
        decode_audio(FLAC_FIXTURE, 600, check_cancelled=cancel)
    assert calls == 1


def test_decoding_past_the_time_limit_is_refused() -> None:
    with pytest.raises(InvalidAudio, match="longer than the limit"):
        decode_audio(FLAC_FIXTURE, 600, time_limit=1e-9)
    assert decode_audio(FLAC_FIXTURE, 600, time_limit=60).duration > 20


def _peak(path: Path, max_seconds: float) -> dict[str, int | str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    done = subprocess.run(
        [sys.executable, "-m", "tests.decode_peak", str(path), str(max_seconds)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO,
        check=True,
    )
    report: dict[str, int | str] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_peak_memory_of_a_decode_is_one_copy_of_the_samples(tmp_path: Path) -> None:
    # 10 minutes of FLAC (the 20-s fixture looped): 38 MB of float32 samples. Measured peak
    # growth: 38 MB (the buffer itself); joining a list of chunks at the end took 79 MB.
    long = looped_flac(FLAC_FIXTURE, tmp_path / "long.flac", 30)
    report = _peak(long, FOUR_HOURS)
    samples = int(report["samples_bytes"])
    assert samples > 35_000_000
    assert int(report["peak_growth_bytes"]) < 2 * samples


def test_a_lying_declaration_costs_no_resident_memory(tmp_path: Path) -> None:
    # Declares 5 h: 1 h of buffer is reserved (230 MB of address space), but only the pages
    # written (20 s: 1.3 MB) become resident. Measured growth: under 2 MB.
    report = _peak(flac_declaring(tmp_path / "bomb.flac", 5 * 3600), FOUR_HOURS)
    assert report["error"] == "invalid_audio"  # truncated: 20 s of 18000 s
    assert int(report["peak_growth_bytes"]) < 2 * 20 * 1024 * 1024


def test_a_tone_decodes_unchanged_through_the_buffer(tmp_path: Path) -> None:
    tone = tone_wav(tmp_path / "tone.wav", 3.0)
    audio = decode_audio(tone, 600)
    assert len(audio.samples) == 3 * SAMPLE_RATE
    assert audio.samples.flags.owndata


def test_an_api_replica_in_kafka_mode_probes_staged_uploads_the_same_way(
    tmp_path: Path, make_settings: Any
) -> None:
    settings = make_settings(limits={"max_audio_seconds": 3600.0})
    runner = PipelineRunner(RemoteTranscriber(model_catalog(settings)), 3600.0)
    with pytest.raises(AudioTooLong):
        runner.probe(flac_declaring(tmp_path / "bomb.flac", 5 * 3600))
    runner.probe(FLAC_FIXTURE)


def test_more_packets_than_the_length_limit_needs_are_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "packets.mka"
    bomb.write_bytes(many_packet_audio(packet_budget(2.0) + 10))
    with pytest.raises(InvalidAudio, match="packets"):
        decode_audio(bomb, 2.0)
    # Under a length limit whose budget covers its packets, the decoder reads them all (and
    # finds the file declares 2 s but holds 0.04 s).
    with pytest.raises(InvalidAudio, match="truncated"):
        decode_audio(bomb, 60.0)


def test_the_probe_gives_up_on_a_stream_without_a_frame_in_its_first_packets(
    tmp_path: Path,
) -> None:
    silent = tmp_path / "empty-packets.mka"
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as out:
        stream = out.add_stream("flac", rate=16_000, layout="mono")
        stream.time_base = Fraction(1, 16_000)
        for index in range(5000):
            packet = av.Packet(b"\xff\xf8garbage")  # not a FLAC frame: decodes to nothing
            packet.stream = stream
            packet.pts = packet.dts = index
            packet.time_base = stream.time_base
            out.mux(packet)
    silent.write_bytes(buffer.getvalue())
    with pytest.raises(InvalidAudio, match="packets"):
        probe_audio(silent, FOUR_HOURS)
