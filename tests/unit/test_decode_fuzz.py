"""Property-based fuzzing of the decoder: mutated real files (bit flips, truncation, header
fields, splices) either decode within the limits or are refused with the documented error.

Reproducible: derandomized, no example database. About 300 examples in all, a few seconds each
at worst (the decode's own time limit is 5 s; the per-example deadline is generous).
"""

from __future__ import annotations

import tempfile
import tracemalloc
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.audio import DATA, tone_wav
from whisperx_api.domain.audio import SAMPLE_RATE
from whisperx_api.errors import AudioTooLong, InvalidAudio
from whisperx_api.pipeline.stages.decode import decode_audio, probe_audio

MAX_SECONDS = 30.0
TIME_LIMIT = 5.0
# The sample buffer is at most MAX_SECONDS of float32 (1.9 MB); numpy's peak, traced, must stay
# within twice that plus room for one decoded frame batch.
MAX_TRACED_BYTES = 2 * (int(MAX_SECONDS * SAMPLE_RATE) * 4 + 2_000_000)


def _sources() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        tone = tone_wav(Path(folder) / "tone.wav", 2.0, rate=22_050).read_bytes()
    return {
        "flac": (DATA / "en_espeak.flac").read_bytes(),
        "mp3": (DATA / "good_short.mp3").read_bytes(),
        "wav": tone,
    }


SOURCES = _sources()
FUZZ = settings(
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=30),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A real file with one to four mutations applied."""
    name = draw(st.sampled_from(sorted(SOURCES)))
    data = bytearray(SOURCES[name])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "header", "splice", "zero", "repeat"]))
        size = len(data)
        if size == 0:
            break
        if kind == "flip":
            at = draw(st.integers(0, size - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[draw(st.integers(0, size - 1)) :]
        elif kind == "header":  # a field near the start: sizes, rates, counts, flags
            at = draw(st.integers(0, min(size, 96) - 1))
            field = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(field)] = field
        elif kind == "splice":  # a stretch of another real file pasted in
            other = SOURCES[draw(st.sampled_from(sorted(SOURCES)))]
            start = draw(st.integers(0, len(other) - 1))
            piece = other[start : start + draw(st.integers(1, 4096))]
            at = draw(st.integers(0, size))
            data[at:at] = piece
        elif kind == "zero":
            at = draw(st.integers(0, size - 1))
            end = min(size, at + draw(st.integers(1, 4096)))
            data[at:end] = bytes(end - at)
        else:  # a region repeated, as a corrupt length field would make a reader see it
            at = draw(st.integers(0, size - 1))
            piece = bytes(data[at : at + draw(st.integers(1, 2048))])
            data[at:at] = piece * draw(st.integers(1, 8))
    return bytes(data)


def _run(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audio"
        path.write_bytes(data)
        for check in (
            lambda: probe_audio(path, MAX_SECONDS),
            lambda: decode_audio(path, MAX_SECONDS, time_limit=TIME_LIMIT),
        ):
            tracemalloc.start()
            refused: InvalidAudio | AudioTooLong | None = None
            try:
                result = check()
            except (InvalidAudio, AudioTooLong) as exc:
                refused, result = exc, None
            finally:
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            if refused is not None:
                assert refused.param == "file"
                assert str(refused)
            elif result is not None:
                assert result.samples.dtype.name == "float32"
                assert 0 < len(result.samples) <= MAX_SECONDS * SAMPLE_RATE
            assert peak < MAX_TRACED_BYTES


@FUZZ
@given(mutated())
def test_mutated_real_files_decode_or_are_refused_cleanly(data: bytes) -> None:
    _run(data)


@settings(FUZZ, max_examples=60)
@given(st.sampled_from(sorted(SOURCES)), st.data())
def test_any_prefix_of_a_real_file_decodes_or_is_refused_cleanly(
    name: str, data: st.DataObject
) -> None:
    source = SOURCES[name]
    _run(source[: data.draw(st.integers(0, len(source)))])


@settings(FUZZ, max_examples=40)
@given(st.binary(min_size=0, max_size=4096))
def test_arbitrary_bytes_are_refused_or_decoded(data: bytes) -> None:
    _run(data)
