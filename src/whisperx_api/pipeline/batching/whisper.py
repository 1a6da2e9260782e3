"""Whisper chunks from many jobs in one CTranslate2 call: encode once, detect, decode, align.

A job's audio is cut into speech chunks by Silero VAD (the spans faster-whisper's batched
pipeline finds, computed without its whole-file copies); each chunk's log-mel features are made
only when the job is about to queue it, so a job holds at most a few chunks' features at a time.
The scheduler's thread runs `WhisperBatchRunner` on chunks from every running job: one encoder
pass per batch, language detection from that same encoder output for chunks whose job gave no
language, one `generate` call with a prompt per chunk, and word timings from the model's
cross-attention alignment, per job.

No speech is dropped for its language: a chunk whose detection is unsure (several languages in
one chunk read as none of them) is cut at its pauses and each piece is encoded, detected and
decoded by itself (see `languages.py`).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Generator, Hashable, Sequence
from dataclasses import dataclass, field
from math import ceil
from typing import Any

import numpy as np
import numpy.typing as npt

from whisperx_api.domain.audio import SAMPLE_RATE
from whisperx_api.errors import InvalidRequest
from whisperx_api.pipeline.batching.languages import (
    Detection,
    LanguageChoice,
    choose_chunk_language,
    choose_piece_language,
    probe_groups,
)
from whisperx_api.pipeline.batching.scheduler import BatchScheduler, Lane
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.pipeline.stages.vad_probs import WINDOW, speech_probabilities
from whisperx_api.pipeline.stages.vad_spans import SpanRules, speech_spans

_POLL_SECONDS = 0.05


CPU_BATCH_SIZE = 4
GPU_BATCH_SIZE = 8
FULL_WINDOW_FRAMES = 3000  # Whisper's 30-s window, in mel frames
DRAFT_MIN_WINDOW_SECONDS = 15.0
FIRST_WORDS_SECONDS = 2.0  # a draft of at most this much speech (a turn's first words) ...
FIRST_WORDS_WINDOW_SECONDS = 10.0  # ... reads a window this long


def default_batch_size(device: str) -> int:
    """Chunks per batch when `WHISPER__BATCH_SIZE` is unset: 8 on CUDA, 4 on CPU.

    At beam 5 CTranslate2 keeps each hypothesis's cross-attention keys and values, about 95 MB
    per chunk in a batch for `base`, so batch size is most of a request's peak memory. On a
    2-core CPU a batch of 4 decodes as fast as one of 8 (`bench/batch_size.py`) for ~150 MB less.
    """
    return GPU_BATCH_SIZE if device == "cuda" else CPU_BATCH_SIZE


@dataclass(frozen=True, slots=True)
class Chunk:
    """Speech pieces (sample ranges) decoded together; times are on the speech-only timeline."""

    pieces: tuple[tuple[int, int], ...]
    offset: float
    duration: float


def plan_chunks(speech: Sequence[dict[str, int]], max_seconds: float) -> list[Chunk]:
    """Merge VAD speech ranges into chunks of at most `max_seconds` of speech, in order.

    The same grouping as faster-whisper's `collect_chunks`, without copying any audio.
    """
    limit = max_seconds * SAMPLE_RATE
    chunks: list[Chunk] = []
    pieces: list[tuple[int, int]] = []
    current = total = 0
    for span in speech:
        length = span["end"] - span["start"]
        if current + length > limit and pieces:
            chunks.append(Chunk(tuple(pieces), total / SAMPLE_RATE, current / SAMPLE_RATE))
            total += current
            pieces, current = [], 0
        pieces.append((span["start"], span["end"]))
        current += length
    if pieces:
        chunks.append(Chunk(tuple(pieces), total / SAMPLE_RATE, current / SAMPLE_RATE))
    return chunks


@dataclass(eq=False)
class JobDecoding:
    """What one job asks of the decoder; its word-timing state carries across its chunks."""

    task: str
    prompt_tokens: tuple[int, ...]
    hotwords: str | None
    word_timestamps: bool
    key: Hashable
    candidates: tuple[str, ...] = ()
    last_speech_timestamp: float = 0.0


@dataclass(eq=False, slots=True)
class ChunkWork:
    """One chunk queued for the model; `language` None asks for detection, which prefers
    `reference` (the file's language, once known) unless the chunk is confidently another.

    A `probe` is only encoded and detected, not decoded: its result says the chunk's language
    (and, on a CPU, carries its encoder output), so the same chunk can then be queued with
    that language `decided` and its encoder output `encoded`, to decode in a full batch."""

    job: JobDecoding
    features: npt.NDArray[np.float32]
    chunk: Chunk
    language: str | None
    reference: str | None = None
    probe: bool = False
    decided: LanguageChoice | None = None
    encoded: npt.NDArray[np.float32] | None = None


@dataclass(slots=True)
class ChunkResult:
    """faster-whisper segments on the speech-only timeline, each with the language it was
    decoded in (`languages`, parallel to `segments`); `language` is the chunk's main one.

    For a probe: no segments; `sure` says whether the language holds for the whole chunk (else
    its pieces need detecting one by one), and `encoded` is its encoder output on a CPU."""

    language: str
    language_probability: float
    segments: list[Any] = field(default_factory=list)
    languages: list[LanguageChoice] = field(default_factory=list)
    sure: bool = True
    encoded: npt.NDArray[np.float32] | None = None


@dataclass(frozen=True, slots=True)
class _Unit:
    """A chunk, or a piece of an unsure one, to decode in one language."""

    work: ChunkWork
    chunk: Chunk
    choice: LanguageChoice


class WhisperBatchRunner:
    """Runs one batch of chunks (possibly from many jobs) through a faster-whisper model."""

    def __init__(self, model: Any, beam_size: int, *, encode_per_batch: bool | None = None) -> None:
        """`encode_per_batch`: one encoder call per batch, as on a GPU (None: only when the
        model is not on the CPU). True on a CPU runs the GPU's code path there, for tests."""
        self._model = model
        self._beam_size = beam_size
        self.encode_per_batch = (
            model.model.device != "cpu" if encode_per_batch is None else encode_per_batch
        )
        self._tokenizers: dict[tuple[str, str], Any] = {}
        # Word timings merge punctuation into words exactly as faster-whisper's defaults do.
        from faster_whisper import BatchedInferencePipeline

        defaults = inspect.signature(BatchedInferencePipeline.transcribe).parameters
        self._prepend: str = defaults["prepend_punctuations"].default
        self._append: str = defaults["append_punctuations"].default
        self._lock = threading.Lock()

    def tokenizer(self, task: str, language: str) -> Any:
        """faster-whisper's tokenizer for (task, language), built once."""
        from faster_whisper.tokenizer import Tokenizer

        with self._lock:
            found = self._tokenizers.get((task, language))
            if found is None:
                found = Tokenizer(
                    self._model.hf_tokenizer,
                    self._model.model.is_multilingual,
                    task=task,
                    language=language,
                )
                self._tokenizers[(task, language)] = found
            return found

    def __call__(self, batch: Sequence[ChunkWork]) -> list[ChunkResult]:
        features = np.stack([work.features for work in batch])
        encoder_output = self._encode(features, [work.encoded for work in batch])
        choices = self._languages(batch, encoder_output)
        decoding = [i for i, work in enumerate(batch) if not work.probe]
        sure = [i for i in decoding if choices[i][1]]
        unsure = [i for i in decoding if not choices[i][1]]
        decoded: dict[int, list[tuple[Any, LanguageChoice]]] = {}
        if sure:
            units = [_Unit(batch[i], batch[i].chunk, choices[i][0]) for i in sure]
            output = self._subset(encoder_output, features, sure, len(batch))
            made = self._decode(units, output, features[sure])
            for i, unit, segments in zip(sure, units, made, strict=True):
                decoded[i] = [(segment, unit.choice) for segment in segments]
        if unsure:
            works = [batch[i] for i in unsure]
            fallbacks = [choices[i][0] for i in unsure]
            decoded.update(self._decode_pieces(works, fallbacks, unsure))
        return [
            self._probed(encoder_output, i, *choices[i])
            if work.probe
            else _result(decoded[i], choices[i][0])
            for i, work in enumerate(batch)
        ]

    def _probed(
        self, encoder_output: Any, index: int, choice: LanguageChoice, sure: bool
    ) -> ChunkResult:
        """A probe's result: its language, and on a CPU a copy of its encoder output (a GPU's
        stays on the GPU: encoding the chunk again in its batch costs less than a copy)."""
        encoded: npt.NDArray[np.float32] | None = None
        if not self.encode_per_batch and encoder_output.device == "cpu":
            encoded = np.array(np.asarray(encoder_output)[index : index + 1])
        return ChunkResult(choice.language, choice.probability, sure=sure, encoded=encoded)

    def _decode(
        self, units: Sequence[_Unit], encoder_output: Any, features: npt.NDArray[np.float32]
    ) -> list[list[Any]]:
        """One `generate` call for `units`, then their word timings: segments per unit."""
        model = self._model
        tokenizers = [self.tokenizer(u.work.job.task, u.choice.language) for u in units]
        prompts = [
            model.get_prompt(
                tok,
                previous_tokens=list(u.work.job.prompt_tokens),
                without_timestamps=True,
                hotwords=u.work.job.hotwords,
            )
            for u, tok in zip(units, tokenizers, strict=True)
        ]
        beam_size, temperature, suppress_tokens = units[0].work.job.key[:3]  # type: ignore[index]
        raw = model.model.generate(
            encoder_output,
            prompts,
            beam_size=beam_size,
            patience=1,
            length_penalty=1,
            max_length=model.max_length,
            suppress_blank=True,
            suppress_tokens=list(suppress_tokens),
            return_scores=True,
            return_no_speech_prob=True,
            sampling_temperature=temperature,
            repetition_penalty=1,
            no_repeat_ngram_size=0,
        )
        pieces = [
            self._split(unit, tok, result)
            for unit, tok, result in zip(units, tokenizers, raw, strict=True)
        ]
        self._word_timestamps(units, tokenizers, pieces, encoder_output, features)
        return [_segments(parts, temperature) for parts in pieces]

    def _decode_pieces(
        self,
        works: Sequence[ChunkWork],
        fallbacks: Sequence[LanguageChoice],
        indices: Sequence[int],
    ) -> dict[int, list[tuple[Any, LanguageChoice]]]:
        """Unsure chunks: each group of pieces (cut at pauses) encoded, detected and decoded by
        itself, so a chunk holding several languages is transcribed in each of them. A piece
        not confidently in another language keeps `fallbacks`' (the file's, else the chunk's)."""
        units: list[_Unit] = []
        owners: list[int] = []
        parts: list[npt.NDArray[np.float32]] = []
        for index, work, fallback in zip(indices, works, fallbacks, strict=True):
            frames = work.features.shape[-1]
            for group in _piece_chunks(work.chunk):
                parts.append(self._piece_features(work, group, frames))
                units.append(_Unit(work, group, fallback))
                owners.append(index)
        features = np.stack(parts)
        encoder_output = self._encode(features, [None] * len(parts))
        detected = self._detect(encoder_output)
        units = [
            _Unit(u.work, u.chunk, choose_piece_language(d, u.work.job.candidates, u.choice))
            for u, d in zip(units, detected, strict=True)
        ]
        decoded: dict[int, list[tuple[Any, LanguageChoice]]] = {i: [] for i in indices}
        for owner, unit, segments in zip(
            owners, units, self._decode(units, encoder_output, features), strict=True
        ):
            decoded[owner].extend((segment, unit.choice) for segment in segments)
        return decoded

    def _piece_features(
        self, work: ChunkWork, group: Chunk, frames: int
    ) -> npt.NDArray[np.float32]:
        """A group's log-mel frames, cut from its chunk's (100 frames a second, in the order the
        pieces were joined) and padded to the chunk's window."""
        from faster_whisper.audio import pad_or_trim

        start = round((group.offset - work.chunk.offset) * 100)
        end = start + round(group.duration * 100)
        made: npt.NDArray[np.float32] = pad_or_trim(work.features[:, start:end], length=frames)
        return made

    def _encode(
        self,
        features: npt.NDArray[np.float32],
        encoded: Sequence[npt.NDArray[np.float32] | None],
    ) -> Any:
        """The batch's encoder output. On CPU each chunk is encoded by itself and the outputs
        stacked: a CPU runs the encoder no faster in a batch (its attention maps outgrow the
        caches), and a chunk's encoding then cannot depend on its batch-mates. The decoder,
        where batching does pay on CPU, still runs the whole batch in one call. `encoded`
        holds, per chunk, its encoder output when a probe already made it (None: encode it).
        On a GPU (and with `encode_per_batch` on a CPU) the whole batch is encoded in one
        call."""
        model = self._model
        if self.encode_per_batch or (len(features) == 1 and encoded[0] is None):
            return model.encode(features)
        import ctranslate2

        rows = [
            np.asarray(model.encode(features[i : i + 1])) if made is None else made
            for i, made in enumerate(encoded)
        ]
        return ctranslate2.StorageView.from_array(np.concatenate(rows))

    def _languages(
        self, batch: Sequence[ChunkWork], encoder_output: Any
    ) -> list[tuple[LanguageChoice, bool]]:
        """Each chunk's language, and whether it holds for the whole chunk: its job's, or
        detected from the batch's encoder output. Where the detection is unsure, the language
        given is the one its pieces fall back to: the file's when known, else the chunk's."""
        if all(w.language is not None or w.decided is not None for w in batch):
            return [(w.decided or LanguageChoice(w.language or "", 1.0), True) for w in batch]
        if not self._model.model.is_multilingual:
            return [(LanguageChoice(w.language or "en", 1.0), True) for w in batch]
        detected = self._detect(encoder_output)
        choices: list[tuple[LanguageChoice, bool]] = []
        for work, detection in zip(batch, detected, strict=True):
            if work.decided is not None:  # a probe of this chunk detected it
                choices.append((work.decided, True))
                continue
            if work.language is not None:
                choices.append((LanguageChoice(work.language, 1.0), True))
                continue
            candidates = work.job.candidates
            sure = choose_chunk_language(detection, candidates)
            if sure is not None:
                choices.append((sure, True))
                continue
            if work.reference is not None:
                reference = work.reference
                fallback = LanguageChoice(reference, detection.probability(reference))
            else:
                fallback = LanguageChoice(*detection.among(candidates).top)
            if len(probe_groups(work.chunk.pieces)) == 1:
                # One piece: its own detection is the chunk's, so decode it as a piece now.
                choices.append((choose_piece_language(detection, candidates, fallback), True))
            else:
                choices.append((fallback, False))
        return choices

    def _detect(self, encoder_output: Any) -> list[Detection]:
        """Every language's probability for each item, from its encoder output."""
        found = self._model.model.detect_language(encoder_output)
        return [Detection(tuple((token[2:-2], prob) for token, prob in item)) for item in found]

    def _split(self, unit: _Unit, tokenizer: Any, result: Any) -> list[dict[str, Any]]:
        """The unit's decoded tokens as faster-whisper's sub-segments with scores."""
        tokens = result.sequences_ids[0]
        cum_logprob = result.scores[0] * len(tokens)
        duration = unit.chunk.duration
        size = int(ceil(duration) * self._model.frames_per_second)
        subsegments, _, _ = self._model._split_segments_by_timestamps(
            tokenizer=tokenizer,
            tokens=tokens,
            time_offset=unit.chunk.offset,
            segment_size=size,
            segment_duration=duration,
            seek=0,
        )
        from faster_whisper.transcribe import get_compression_ratio

        parts = []
        for sub in subsegments:
            text = tokenizer.decode(sub["tokens"])
            parts.append(
                {
                    "text": text,
                    "avg_logprob": cum_logprob / (len(tokens) + 1),
                    "no_speech_prob": result.no_speech_prob,
                    "tokens": sub["tokens"],
                    "start": sub["start"],
                    "end": sub["end"],
                    "compression_ratio": get_compression_ratio(text),
                    "seek": int(unit.chunk.offset * self._model.frames_per_second),
                }
            )
        return parts

    def _word_timestamps(
        self,
        batch: Sequence[_Unit],
        tokenizers: Sequence[Any],
        pieces: list[list[dict[str, Any]]],
        encoder_output: Any,
        features: npt.NDArray[np.float32],
    ) -> None:
        """Align each job's chunks in order, carrying that job's last speech time across calls."""
        groups: dict[tuple[int, int], list[int]] = {}
        for i, work in enumerate(batch):
            if work.work.job.word_timestamps:
                groups.setdefault((id(work.work.job), id(tokenizers[i])), []).append(i)
        for indices in groups.values():
            job = batch[indices[0]].work.job
            sizes = [
                int(ceil(batch[i].chunk.duration) * self._model.frames_per_second) for i in indices
            ]
            output = self._subset(encoder_output, features, indices, len(batch))
            last = self._model.add_word_timestamps(
                [pieces[i] for i in indices],
                tokenizers[indices[0]],
                output,
                sizes,
                self._prepend,
                self._append,
                job.last_speech_timestamp,
            )
            job.last_speech_timestamp = float(last)

    def _subset(
        self,
        encoder_output: Any,
        features: npt.NDArray[np.float32],
        indices: list[int],
        size: int,
    ) -> Any:
        """The encoder output of some batch items: a slice of a CPU output encoded chunk by
        chunk, else (a GPU's output, or the GPU path on CPU) those items encoded again."""
        if len(indices) == size:
            return encoder_output
        import ctranslate2

        if not self.encode_per_batch and encoder_output.device == "cpu":
            rows = np.asarray(encoder_output)[indices]
            return ctranslate2.StorageView.from_array(np.ascontiguousarray(rows))
        return self._model.encode(features[indices])


def _piece_chunks(chunk: Chunk) -> list[Chunk]:
    """The chunk's piece groups (see `probe_groups`) as chunks on the same timeline."""
    made: list[Chunk] = []
    offset = chunk.offset
    for pieces in probe_groups(chunk.pieces):
        duration = sum(end - start for start, end in pieces) / SAMPLE_RATE
        made.append(Chunk(pieces, offset, duration))
        offset += duration
    return made


def _result(decoded: list[tuple[Any, LanguageChoice]], chunk: LanguageChoice) -> ChunkResult:
    """A chunk's segments and their languages; its main language is the one decoded longest
    (the chunk's own detection when nothing was decoded)."""
    spoken: dict[str, float] = {}
    best: dict[str, LanguageChoice] = {}
    for segment, choice in decoded:
        spoken[choice.language] = spoken.get(choice.language, 0.0) + segment.end - segment.start
        best.setdefault(choice.language, choice)
    main = best[max(spoken, key=lambda language: spoken[language])] if spoken else chunk
    return ChunkResult(
        main.language,
        main.probability,
        [segment for segment, _ in decoded],
        [choice for _, choice in decoded],
    )


def _segments(parts: list[dict[str, Any]], temperature: float) -> list[Any]:
    from faster_whisper.transcribe import Segment, Word

    return [
        Segment(
            seek=part["seek"],
            id=0,
            text=part["text"],
            start=round(part["start"], 3),
            end=round(part["end"], 3),
            words=[Word(**w) for w in part["words"]] if "words" in part else None,
            tokens=part["tokens"],
            avg_logprob=part["avg_logprob"],
            no_speech_prob=part["no_speech_prob"],
            compression_ratio=part["compression_ratio"],
            temperature=temperature,
        )
        for part in parts
    ]


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One job's transcription settings, as the backend resolved them."""

    task: str
    language: str | None
    prompt: str | None
    hotwords: str | None
    temperature: float
    word_timestamps: bool
    suppress_tokens: tuple[int, ...]
    chunk_seconds: float
    vad_parameters: dict[str, float] | None
    ahead: int
    draft: bool = False
    languages: tuple[str, ...] = ()  # candidates detection is restricted to; () = any


class JobOutcome:
    """The file's language (its first chunk's), known once that chunk is decoded; later
    chunks prefer it unless they are confidently in another. And the voice detector's speech
    probability per 512-sample window, known before the first segment comes, by which the
    guard judges whether a segment was heard as speech at all."""

    def __init__(self, language: str | None) -> None:
        self.language = language
        self.language_probability = 1.0
        self.speech_probabilities: npt.NDArray[np.float32] | None = None


def transcribe_job(
    scheduler: BatchScheduler[ChunkWork, ChunkResult],
    runner: WhisperBatchRunner,
    samples: npt.NDArray[np.float32],
    request: JobRequest,
    outcome: JobOutcome,
    ctx: StageContext,
) -> Generator[tuple[Any, LanguageChoice], None, None]:
    """faster-whisper segments of `samples` in order, each with the language it was decoded in.

    Queues `request.ahead` chunks at a time, at most two such groups, and drops what is still
    queued when the job stops early: cancelled, failed, or its reader gone. While the language
    is unknown, the first chunk's detection (a probe, before anything is decoded) becomes the
    file's language, which later chunks keep unless they are confidently in another; only when
    that detection is unsure is the first chunk decoded alone, and its result settles it.
    """
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.transcribe import restore_speech_timestamps
    from faster_whisper.vad import VadOptions

    model = runner._model
    chosen = dict(request.vad_parameters or {"min_silence_duration_ms": 160})
    chosen.pop("max_speech_duration_s", None)
    vad = VadOptions(**chosen, max_speech_duration_s=request.chunk_seconds)
    # faster-whisper's spans, without its whole-file copies (see `vad_spans`)
    probabilities = speech_probabilities(samples, windows=len(samples) // WINDOW + 1)
    outcome.speech_probabilities = probabilities
    speech = widen_onsets(speech_spans(probabilities, len(samples), SpanRules.of(vad)))
    chunks = plan_chunks(speech, request.chunk_seconds)
    multilingual = bool(model.model.is_multilingual)
    language = request.language
    if not multilingual:
        language = "en"
    elif language is None and len(request.languages) == 1:
        language = request.languages[0]
    outcome.language = language
    if not chunks:
        if outcome.language is None:
            outcome.language, outcome.language_probability = "en", 0.0
        return
    frames = window_frames(chunks, request.draft)
    job = _job_decoding(runner, request, language or "en", frames)

    def features(chunk: Chunk) -> npt.NDArray[np.float32]:
        audio = np.concatenate([samples[start:end] for start, end in chunk.pieces])
        mel = model.feature_extractor(audio)[..., :-1]
        made: npt.NDArray[np.float32] = pad_or_trim(mel, length=frames)
        return made

    # The file's language from its first chunk's probe, so that chunk decodes in a full batch
    # with the next ones instead of alone (a batch of one costs nearly as much as a full one).
    # The next chunks' features are made while the probe runs, so their batch is ready at once.
    first: ChunkWork | None = None
    ready: dict[int, npt.NDArray[np.float32]] = {}
    # Only for a job that starts alone: beside other jobs its first chunk shares their batch
    # anyway, and a round of probes would put every job's first answer behind all of them.
    if outcome.language is None and len(chunks) > 1 and scheduler.open_lanes == 0:

        def prepare() -> None:
            ready.update(
                (i, features(chunks[i])) for i in range(1, min(request.ahead, len(chunks)))
            )

        first = _probe_language(
            scheduler, job, features(chunks[0]), chunks[0], outcome, ctx, meanwhile=prepare
        )

    def work(index: int) -> ChunkWork:
        if index == 0 and first is not None:
            return first
        chunk = chunks[index]
        made = ready.pop(index, None)
        made = features(chunk) if made is None else made
        return ChunkWork(job, made, chunk, language, outcome.language)

    lane: Lane[ChunkWork, ChunkResult]
    with scheduler.open_lane() as lane:
        submitted = received = 0
        done: dict[int, ChunkResult] = {}
        for emitted in range(len(chunks)):
            while emitted not in done:
                # Queue a whole group at once so that it can fill a batch, and the next group
                # while the model runs this one; one chunk alone while the language is unknown.
                detecting = outcome.language is None
                group = 1 if detecting else request.ahead
                limit = 1 if detecting else 2 * request.ahead
                while submitted < len(chunks):
                    count = min(group, len(chunks) - submitted)
                    if submitted - received + count > limit:
                        break
                    works = [work(i) for i in range(submitted, submitted + count)]
                    lane.submit_many(works, job.key)
                    submitted += count
                ctx.check_cancelled()
                got = lane.next_result(_POLL_SECONDS)
                if got is None:
                    continue
                index, result = got
                if isinstance(result, BaseException):
                    raise result
                received += 1
                if outcome.language is None:
                    outcome.language = result.language
                    outcome.language_probability = result.language_probability
                done[index] = result
            finished = done.pop(emitted)
            restored = restore_speech_timestamps(finished.segments, speech, SAMPLE_RATE)
            yield from zip(restored, finished.languages, strict=True)


def _probe_language(
    scheduler: BatchScheduler[ChunkWork, ChunkResult],
    job: JobDecoding,
    features: npt.NDArray[np.float32],
    chunk: Chunk,
    outcome: JobOutcome,
    ctx: StageContext,
    meanwhile: Callable[[], None],
) -> ChunkWork:
    """The first chunk as it is to be decoded, once a probe detected its language: that
    language decided (the file's from now on) and its encoder output kept. When the detection
    is unsure, the language stays unknown and the chunk is decoded alone, as any unsure chunk
    is, before the file's language is settled. `meanwhile` runs while the model probes."""
    with scheduler.open_lane() as lane:
        lane.submit(ChunkWork(job, features, chunk, None, probe=True), job.key)
        meanwhile()
        got = None
        while got is None:
            ctx.check_cancelled()
            got = lane.next_result(_POLL_SECONDS)
    result = got[1]
    if isinstance(result, BaseException):
        raise result
    if not result.sure:
        return ChunkWork(job, features, chunk, None, encoded=result.encoded)
    outcome.language = result.language
    outcome.language_probability = result.language_probability
    decided = LanguageChoice(result.language, result.language_probability)
    return ChunkWork(job, features, chunk, None, decided=decided, encoded=result.encoded)


ONSET_GAP_SECONDS = 5.0
ONSET_LEAD_SECONDS = 1.0


def widen_onsets(speech: list[dict[str, int]]) -> list[dict[str, int]]:
    """Speech spans, each that follows `ONSET_GAP_SECONDS` or more of non-speech started
    `ONSET_LEAD_SECONDS` earlier. Pauses within speech are shorter and keep their spans.

    Silero VAD, fed music or noise, is slow to call the speech that follows speech: after 20 s
    of noise and chords a call's first span started 0.56 s late, and "Please hold" was lost.
    Whisper reads a second of non-speech before speech without writing anything for it."""
    widened: list[dict[str, int]] = []
    gap = round(ONSET_GAP_SECONDS * SAMPLE_RATE)
    lead = round(ONSET_LEAD_SECONDS * SAMPLE_RATE)
    previous_end = 0
    for span in speech:
        start = span["start"]
        if start - previous_end >= gap:
            start = max(previous_end, start - lead)
        widened.append({**span, "start": start})
        previous_end = span["end"]
    return widened


def window_frames(chunks: Sequence[Chunk], draft: bool) -> int:
    """The mel frames every chunk of a job is padded to: Whisper's full 30-s window, or for a
    draft a window twice as long as its longest chunk, and at least 15 s (10 s for a draft of
    at most 2 s of speech).

    The encoder's cost grows faster than the window (attention is quadratic), so a draft of a
    short turn encodes in about a third of the time. On 1-4 s cuts of recorded calls such a
    draft reads within 9% WER of the full window's text; a window of 10 s differed by 13%, and
    one barely longer than the speech makes the decoder repeat itself. The drafts of a turn's
    first second or two are the exception: a live caption's first words wait on two of them in
    a row, and a 10-s window encodes in about half the time of a 15-s one (0.07 s against
    0.12 s for `base` on 2 CPU cores); only words two drafts agree on go out, and the first
    1.2, 1.6 and 2 s of the turns of a recorded call read within 17%, 13% and 6% WER of the full
    window's text (11%, 13% and 4% on a 15-s window).
    """
    if not draft:
        return FULL_WINDOW_FRAMES
    longest = max(chunk.duration for chunk in chunks)
    short = longest <= FIRST_WORDS_SECONDS
    seconds = max(FIRST_WORDS_WINDOW_SECONDS if short else DRAFT_MIN_WINDOW_SECONDS, 2 * longest)
    return min(FULL_WINDOW_FRAMES, 2 * ceil(seconds * 50))  # even: the encoder halves it


def _job_decoding(
    runner: WhisperBatchRunner, request: JobRequest, language: str, frames: int
) -> JobDecoding:
    """The job's prompt pieces and the key of what its batches must share with others' (the
    window too: a batch's features and encoder outputs are one array)."""
    model = runner._model
    from faster_whisper.transcribe import get_suppressed_tokens

    tokenizer = runner.tokenizer(request.task, language)
    prompt_tokens = tuple(tokenizer.encode(request.prompt)) if request.prompt else ()
    prompt = model.get_prompt(
        tokenizer,
        previous_tokens=list(prompt_tokens),
        without_timestamps=True,
        hotwords=request.hotwords,
    )
    if len(prompt) >= model.max_length:
        raise InvalidRequest(
            f"The prompt and hotwords take {len(prompt)} tokens; the model reads at most "
            f"{model.max_length}.",
            param="prompt",
        )
    suppress = get_suppressed_tokens(tokenizer, list(request.suppress_tokens))
    key = (runner._beam_size, request.temperature, tuple(suppress), len(prompt), frames)
    return JobDecoding(
        task=request.task,
        prompt_tokens=prompt_tokens,
        hotwords=request.hotwords,
        word_timestamps=request.word_timestamps,
        key=key,
        candidates=request.languages,
    )
