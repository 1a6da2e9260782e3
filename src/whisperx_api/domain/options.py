"""What a client asked for, as plain frozen data the pipeline and formatters read."""

from __future__ import annotations

from dataclasses import dataclass, field

from whisperx_api.domain.cleanup import CleanupOptions
from whisperx_api.domain.speakers import KnownSpeaker, KnownVoice
from whisperx_api.domain.transcript import Task


@dataclass(frozen=True, slots=True)
class TranscriptionOptions:
    """Decoding options for one job; `None` means "use the configured default"."""

    model: str
    task: Task = Task.TRANSCRIBE
    language: str | None = None
    languages: tuple[str, ...] = ()  # candidates the language is detected among; () = any
    prompt: str | None = None
    temperature: float = 0.0
    word_timestamps: bool = True
    hotwords: str | None = None
    suppress_numerals: bool = False
    batch_size: int | None = None
    chunk_size: int | None = None
    diarize: bool = False
    min_speakers: int | None = None
    max_speakers: int | None = None
    speaker_embeddings: bool = False
    device: str | None = None
    device_index: int | None = None
    hf_token: str | None = None
    # OpenAI's `chunking_strategy` (server_vad), mapped onto the Silero VAD; None = our default.
    vad_threshold: float | None = None
    vad_prefix_padding_ms: int | None = None
    vad_silence_duration_ms: int | None = None
    include_logprobs: bool = False
    known_speakers: tuple[KnownSpeaker, ...] = ()
    # Saved voices (`known_speaker_ids[]`), resolved to their embeddings at submit time.
    known_voices: tuple[KnownVoice, ...] = ()
    # Replacements and redaction, applied to the finished transcript.
    cleanup: CleanupOptions = field(default_factory=CleanupOptions)
    # Each audio channel transcribed on its own; `channel_names` label them (one per channel).
    multichannel: bool = False
    channel_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SubtitleOptions:
    """How subtitle cues are shaped; `None` means the default layout (42 characters, 2 lines,
    no limit on words per line)."""

    highlight_words: bool = False
    max_line_width: int | None = None
    max_line_count: int | None = None
    max_words_per_line: int | None = None
