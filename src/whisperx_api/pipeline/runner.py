"""The one place the stage order lives: decode, transcribe (VAD), align, diarize, segment."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path

from whisperx_api.domain.audio import MAX_CHANNELS, DecodedAudio
from whisperx_api.domain.cleanup import Cleaner, clean_transcript, stable_prefix
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Transcript
from whisperx_api.errors import UnsupportedParameter
from whisperx_api.memory import release_memory
from whisperx_api.pipeline.admission import (
    Admission,
    MemoryBudget,
    estimated_seconds,
    file_size,
    job_bytes,
)
from whisperx_api.pipeline.channels import (
    channel_label,
    check_channel_names,
    drop_crosstalk,
    merge_channels,
    select_channels,
    tag_channel,
)
from whisperx_api.pipeline.known_speakers import name_known_speakers
from whisperx_api.pipeline.sealing import TokenSealer, open_token
from whisperx_api.pipeline.segmentation import SegmentRules, resegment
from whisperx_api.pipeline.speakers import assign_speakers
from whisperx_api.pipeline.stage import (
    AlignmentBackend,
    DiarizationBackend,
    DiarizationRequest,
    ManagedModels,
    StageContext,
    TranscriptionBackend,
)
from whisperx_api.pipeline.stages.decode import (
    check_channel_count,
    decode_audio,
    decode_channels,
    probe_channels,
)
from whisperx_api.pipeline.stages.duration import declared_seconds

_STAGES = ("transcription", "alignment", "diarization")
log = logging.getLogger(__name__)

# Share of a job's progress bar given to transcription when diarization follows it.
_TRANSCRIBE_SHARE_WITH_SPEAKERS = 0.7


class PipelineRunner:
    """Runs every stage for one job; blocking, so callers run it off the event loop."""

    def __init__(
        self,
        transcriber: TranscriptionBackend,
        max_audio_seconds: float,
        aligner: AlignmentBackend | None = None,
        diarizer: DiarizationBackend | None = None,
        segment_rules: SegmentRules | None = None,
        sealer: TokenSealer | None = None,
        max_decode_seconds: float | None = None,
        admission: MemoryBudget | None = None,
    ) -> None:
        """`admission`: the memory budget jobs are admitted against (None: no bound), shared
        by every job this runner runs."""
        self.transcriber = transcriber
        self.aligner = aligner
        self.diarizer = diarizer
        self.segment_rules = segment_rules or SegmentRules()
        self._max_seconds = max_audio_seconds
        self._sealer = sealer  # None: per-request tokens are refused (nowhere to keep them)
        self._max_decode_seconds = max_decode_seconds
        self.admission = admission

    def check(self, options: TranscriptionOptions) -> TranscriptionOptions:
        """Validate a job's options at submit time; returns them as they may be stored: the
        model resolved and the `hf_token` sealed, or dropped when the job does not diarize."""
        if options.diarize and self.diarizer is None:
            raise UnsupportedParameter(
                "Speaker diarization is not configured on this server.", param="diarize"
            )
        if options.diarize and self.diarizer is not None:
            self.diarizer.check_request(_diarization_request(options, options.hf_token))
        if options.device is not None or options.device_index is not None:
            self.transcriber.check_device(options.device, options.device_index)
        self.transcriber.check_options(options)
        model = self.transcriber.resolve_model(options.model)
        return replace(options, model=model, hf_token=self._sealed_token(options))

    def _sealed_token(self, options: TranscriptionOptions) -> str | None:
        if not options.diarize or not options.hf_token:
            return None  # never kept when the job does not need it
        if self._sealer is None:
            raise UnsupportedParameter(
                "This server cannot keep a per-request hf_token: set SECRETS__KEY (the same on "
                "the API and the workers), or configure HF_TOKEN on the workers.",
                param="hf_token",
            )
        return self._sealer.seal(options.hf_token)

    def preload(self, stages: Iterable[str]) -> None:
        """Load each named stage's default model now, so the first job does not wait."""
        for stage in stages:
            backend = self._stage(stage)
            if backend is not None:
                backend.load_model("")
                log.info("preloaded the %s model", stage)

    def close(self) -> None:
        """Release every stage's models."""
        for stage in _STAGES:
            backend = self._stage(stage)
            if backend is not None:
                backend.close()

    def _stage(self, name: str) -> ManagedModels | None:
        stages: dict[str, ManagedModels | None] = {
            "transcription": self.transcriber,
            "alignment": self.aligner,
            "diarization": self.diarizer,
        }
        return stages[name]

    def probe(self, audio_path: Path, options: TranscriptionOptions | None = None) -> None:
        """Reject bad uploads before they are queued: not audio, declared too long, or (for
        multichannel jobs) too many channels or channel names that do not match them."""
        channels = probe_channels(audio_path, self._max_seconds)
        if options is not None and options.multichannel:
            check_channel_count(channels, MAX_CHANNELS)
            check_channel_names(options.channel_names, channels)

    def run(self, audio_path: Path, options: TranscriptionOptions, ctx: StageContext) -> Transcript:
        """Run every stage, then hand the job's freed memory back to the OS: the audio and the
        model's scratch buffers are freed in pieces glibc keeps (an hour of audio left RSS
        hundreds of MB above where it started)."""
        try:
            return self._run_stages(audio_path, options, ctx)
        finally:
            release_memory(full=False)  # a full collection would delay the reply

    def _run_stages(
        self, audio_path: Path, options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        """Decode, transcribe (VAD-batched), refine word times, find speakers, cut the words
        into sentence-like segments (every format and mode shows these), then apply the
        client's replacements and redaction."""
        token = open_token(self._sealer, options.hf_token) if options.diarize else None
        with self._admitted(audio_path, ctx) as admitted:
            audio = self._decoded(audio_path, options, ctx)
            if admitted is not None:
                channels = audio if isinstance(audio, tuple) else (audio,)
                admitted.charge(sum(job_bytes(a.duration) for a in channels))
            if isinstance(audio, tuple):
                transcript = self._run_channels(audio, options, ctx)
            else:
                transcript = self._stages(audio, token, options, ctx)
            del audio  # freed before the budget is: the next job may be decoding at once
        return transcript

    def _admitted(
        self, audio_path: Path, ctx: StageContext
    ) -> AbstractContextManager[Admission | None]:
        """Hold the job's share of the memory budget, estimated from its declared length."""
        if self.admission is None:
            return nullcontext()
        seconds = estimated_seconds(
            declared_seconds(audio_path), file_size(audio_path), self._max_seconds
        )
        return self.admission.admit(job_bytes(seconds), ctx.check_cancelled)

    def _stages(
        self,
        audio: DecodedAudio,
        token: str | None,
        options: TranscriptionOptions,
        ctx: StageContext,
    ) -> Transcript:
        """Every stage after decoding, on the decoded audio."""
        ctx.check_cancelled()
        ctx.report(0.0)
        if options.cleanup.active and ctx.wants_text:
            cleaner = Cleaner.build(options.cleanup)
            ctx = ctx.with_text_view(lambda text: stable_prefix(text, cleaner))
        share = _TRANSCRIBE_SHARE_WITH_SPEAKERS if options.diarize else 1.0
        transcript = self.transcriber.transcribe(audio, options, ctx.scaled(0.0, share))
        if options.word_timestamps and self.aligner is not None:
            ctx.check_cancelled()
            transcript = self.aligner.align(transcript, audio, ctx)
        if options.diarize and self.diarizer is not None:
            ctx.check_cancelled()
            diarization = self.diarizer.diarize(
                audio, _diarization_request(options, token), ctx.scaled(share, 1.0)
            )
            if options.known_speakers or options.known_voices:
                diarization = name_known_speakers(
                    diarization, self.diarizer, options.known_speakers, options.known_voices
                )
                if not options.speaker_embeddings:  # fetched for matching only
                    diarization = replace(diarization, embeddings={})
            transcript = assign_speakers(transcript, diarization)
        transcript = resegment(transcript, self.segment_rules)
        transcript = clean_transcript(transcript, options.cleanup)  # before anything keeps it
        ctx.report(1.0)
        return transcript

    def _decoded(
        self, audio_path: Path, options: TranscriptionOptions, ctx: StageContext
    ) -> DecodedAudio | tuple[DecodedAudio, ...]:
        """Mono audio, or (multichannel, more than one channel) one audio per channel."""
        cancelled, limit = ctx.check_cancelled, self._max_decode_seconds
        if not options.multichannel:
            return decode_audio(
                audio_path, self._max_seconds, check_cancelled=cancelled, time_limit=limit
            )
        channels = decode_channels(
            audio_path, self._max_seconds, MAX_CHANNELS, check_cancelled=cancelled, time_limit=limit
        )
        if len(channels) == 1:
            return channels[0]  # mono: exactly as without multichannel
        check_channel_names(options.channel_names, len(channels))
        return channels

    def _run_channels(
        self, channels: tuple[DecodedAudio, ...], options: TranscriptionOptions, ctx: StageContext
    ) -> Transcript:
        """Each kept channel transcribed, aligned and segmented on its own, labelled by its
        channel (the channel is the speaker: no diarization), then merged in time order."""
        kept, warnings = select_channels(channels)
        parts = []
        for number, index in enumerate(kept):
            ctx.check_cancelled()
            part_ctx = ctx.scaled(number / len(kept), (number + 1) / len(kept))
            audio = channels[index]
            part = self.transcriber.transcribe(audio, options, part_ctx)
            if options.word_timestamps and self.aligner is not None:
                ctx.check_cancelled()
                part = self.aligner.align(part, audio, part_ctx)
            part = drop_crosstalk(part, index, channels, kept)
            label = channel_label(index, options.channel_names)
            parts.append(resegment(tag_channel(part, index, label), self.segment_rules))
        transcript = clean_transcript(merge_channels(parts, warnings), options.cleanup)
        ctx.report(1.0)
        return transcript


def _diarization_request(options: TranscriptionOptions, token: str | None) -> DiarizationRequest:
    named = bool(options.known_speakers or options.known_voices)
    want_embeddings = options.speaker_embeddings or named
    return DiarizationRequest(options.min_speakers, options.max_speakers, want_embeddings, token)
