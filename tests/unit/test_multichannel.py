"""Multichannel building blocks: per-channel decoding (up to 8 channels, in order), which
channels are skipped and why, the merge in time order, and the option's round trip through the
job store's messages."""

from __future__ import annotations

import json
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.audio import DATA, RATE
from tests.stereo import many_channels, tone, write_channels
from whisperx_api.domain.audio import DecodedAudio
from whisperx_api.domain.formats import OutputFormat
from whisperx_api.domain.job import JobSpec, ResultStyle
from whisperx_api.domain.options import SubtitleOptions, TranscriptionOptions
from whisperx_api.domain.transcript import Segment, Task, Transcript, TranscriptWarning, Word
from whisperx_api.errors import AudioTooLong, InvalidAudio, InvalidRequest, InvalidValue
from whisperx_api.jobs.messages import dump_spec, dump_transcript, load_spec, load_transcript
from whisperx_api.pipeline.channels import (
    check_channel_names,
    drop_crosstalk,
    merge_channels,
    select_channels,
    tag_channel,
)
from whisperx_api.pipeline.stages.decode import decode_audio, decode_channels, probe_channels


def test_each_of_eight_channels_decodes_on_its_own_in_order(tmp_path: Path) -> None:
    channels = [tone(200.0 + 100 * k) * (k + 1) / 8 for k in range(8)]
    path = write_channels(tmp_path / "eight.wav", channels, fmt="wav")
    decoded = decode_channels(path, 60, 8)
    assert len(decoded) == 8
    for k, audio in enumerate(decoded):
        assert np.abs(audio.samples).max() == pytest.approx(0.3 * (k + 1) / 8, abs=2e-3)


def test_more_channels_than_allowed_are_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "nine.wav"
    path.write_bytes(many_channels(tmp_path, 9))
    assert probe_channels(path, 60) == 9
    with pytest.raises(InvalidValue, match="9 channels") as raised:
        decode_channels(path, 60, 8)
    assert raised.value.param == "multichannel"


def test_a_mono_file_decodes_to_the_same_samples_either_way() -> None:
    (only,) = decode_channels(DATA / "conv2.flac", 60, 8)
    assert np.array_equal(only.samples, decode_audio(DATA / "conv2.flac", 60).samples)


def audio(samples: np.ndarray) -> DecodedAudio:
    return DecodedAudio(samples=samples.astype(np.float32))


def test_silent_and_copied_channels_are_skipped_and_said_why() -> None:
    speech, other = tone(300.0), tone(650.0)
    quiet = np.full_like(speech, 5e-4)  # -66 dBFS: nothing to hear
    channels = [audio(speech), audio(quiet), audio(speech * 0.25), audio(other), audio(other)]
    kept, warnings = select_channels(channels)
    assert kept == [0, 3]
    assert [w.message for w in warnings] == [
        "Channel 1 is silent; it was not transcribed.",
        "Channel 2 duplicates channel 0; it was not transcribed.",
        "Channel 4 duplicates channel 3; it was not transcribed.",
    ]
    assert {w.code for w in warnings} == {"channel_skipped"}


def test_when_every_channel_is_silent_the_first_is_still_transcribed() -> None:
    silence = np.zeros(RATE, dtype=np.float32)
    kept, warnings = select_channels([audio(silence), audio(silence)])
    assert kept == [0]
    assert [w.message for w in warnings] == ["Channel 1 is silent; it was not transcribed."]


def test_channel_names_must_name_every_channel() -> None:
    check_channel_names((), 2)
    check_channel_names(("a", "b"), 2)
    with pytest.raises(InvalidValue, match="3 names but the audio has 2 channels"):
        check_channel_names(("a", "b", "c"), 2)


def part(channel: int, times: list[tuple[float, float]], language: str, text: str) -> Transcript:
    segments = tuple(
        Segment(id=i, start=s, end=e, text=f" {text}{i}", words=(Word(f" {text}{i}", s, e),))
        for i, (s, e) in enumerate(times)
    )
    return tag_channel(
        Transcript(Task.TRANSCRIBE, language, 10.0, segments), channel, f"ch{channel}"
    )


def test_merge_orders_segments_by_time_across_channels() -> None:
    left = part(0, [(0.0, 1.0), (4.0, 5.0)], "en", "left")
    right = part(1, [(1.5, 3.5), (4.0, 4.5)], "de", "rechts-lang")
    warning = TranscriptWarning("channel_skipped", "Channel 2 is silent", 0.0, 10.0)
    merged = merge_channels([left, right], [warning])
    assert [(s.channel, s.start) for s in merged.segments] == [
        (0, 0.0),
        (1, 1.5),
        (0, 4.0),
        (1, 4.0),
    ]
    assert [s.id for s in merged.segments] == [0, 1, 2, 3]
    assert merged.text == "left0 rechts-lang0 left1 rechts-lang1"
    assert merged.language == "de"  # the channel that says the most
    assert merged.warnings == (warning,)
    for segment in merged.segments:
        assert segment.speaker == f"ch{segment.channel}"
        assert all(w.channel == segment.channel for w in segment.words)
        assert all(w.speaker == segment.speaker for w in segment.words)


def test_words_another_channel_says_much_louder_are_crosstalk() -> None:
    loud, quiet = tone(300.0, 4.0), tone(500.0, 4.0)
    own = np.concatenate([quiet[: 2 * RATE], quiet[2 * RATE :] * 0.1])  # -20 dB from 2 s on
    other = np.concatenate([np.zeros(2 * RATE, np.float32), loud[2 * RATE :]])
    channels = [audio(own), audio(other)]
    words = (Word(" mine", 0.2, 0.8), Word(" leaked", 2.2, 2.8), Word(" also", 3.0, 3.5))
    segment = Segment(0, 0.2, 3.5, " mine leaked also", words=words)
    leaked_only = Segment(1, 2.0, 3.9, " leaked")  # no word times: judged over its span
    transcript = Transcript(Task.TRANSCRIBE, "en", 4.0, (segment, leaked_only))
    kept = drop_crosstalk(transcript, 0, channels, [0, 1])
    (left,) = kept.segments
    assert left.text == " mine"
    assert (left.start, left.end) == (0.2, 0.8)
    both_loud = [audio(own), audio(other * 0.05)]  # the other 6 dB under: nothing leaked
    assert drop_crosstalk(transcript, 0, both_loud, [0, 1]) == transcript


def test_the_option_and_the_channels_survive_the_job_store() -> None:
    options = TranscriptionOptions(model="base", multichannel=True, channel_names=("a", "b"))
    spec = JobSpec(options, OutputFormat.SRT, SubtitleOptions(), ResultStyle.OPENAI, None)
    assert load_spec(dump_spec(spec)) == spec
    merged = merge_channels(
        [part(0, [(0.0, 1.0)], "en", "x"), part(1, [(0.5, 2.0)], "en", "y")],
        [TranscriptWarning("channel_skipped", "Channel 2 is silent", 0.0, 10.0)],
    )
    assert load_transcript(dump_transcript(merged)) == merged


def test_specs_and_transcripts_from_before_multichannel_still_load() -> None:
    options = TranscriptionOptions(model="base")
    spec = JobSpec(options, OutputFormat.JSON, SubtitleOptions(), ResultStyle.OPENAI, None)
    data = json.loads(dump_spec(spec))
    del data["options"]["multichannel"], data["options"]["channel_names"]
    assert load_spec(json.dumps(data)) == spec
    transcript = Transcript(Task.TRANSCRIBE, "en", 1.0, (Segment(0, 0.0, 1.0, " hi"),))
    old = json.loads(dump_transcript(transcript))
    del old["warnings"]
    for segment in old["segments"]:
        del segment["channel"]
    assert load_transcript(json.dumps(old)) == transcript


STEREO_BYTES = (DATA / "conv2_stereo.flac").read_bytes()[:60_000]  # the header and ~3 s


@settings(max_examples=60, derandomize=True, database=None, deadline=timedelta(seconds=30))
@given(
    st.lists(
        st.tuples(st.integers(0, len(STEREO_BYTES) - 1), st.binary(min_size=1, max_size=8)),
        min_size=1,
        max_size=4,
    ),
    st.integers(1, len(STEREO_BYTES)),
)
def test_damaged_stereo_files_decode_per_channel_or_are_refused_cleanly(
    patches: list[tuple[int, bytes]], keep: int
) -> None:
    data = bytearray(STEREO_BYTES[:keep])
    for at, field in patches:
        data[at : at + len(field)] = field
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audio"
        path.write_bytes(bytes(data))
        refused: InvalidRequest | None = None
        try:
            channels = decode_channels(path, 30.0, 8, time_limit=5.0)
        except (InvalidAudio, AudioTooLong, InvalidValue) as exc:
            refused, channels = exc, ()
    if refused is not None:
        assert refused.param in ("file", "multichannel")
        return
    assert 1 <= len(channels) <= 8
    assert len({len(c.samples) for c in channels}) == 1
    assert all(c.samples.dtype == np.float32 for c in channels)
