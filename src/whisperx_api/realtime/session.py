"""One live transcription session: OpenAI's Realtime events in, turns cut and transcribed,
events out.

Client events are handled one at a time, in order. Decodes run in a separate task, at most one
at a time per session: the final decode of committed turns first, in order, then a partial
decode of the turn still being spoken whenever it has grown by `partial_interval_seconds`
(`first_words_interval_seconds` until its first delta; not while the VAD counts what may be its
closing silence: its final decode must not wait on one). A turn's first draft is the exception:
it goes before a committed turn's final decode, being short and what the turn's first words
wait on (while such drafts take at most `DRAFT_AHEAD_SECONDS`).
Once a turn has run `confirm_after_seconds`, the words two successive partials agree on are
confirmed (see `agreement`): later decodes, its final one too, read only the audio after them.
Every error is an `error` event in OpenAI's shape; only the idle timeout ends the session, or a
client that stops reading: a send that waits past `REALTIME__SEND_TIMEOUT` (the client's
buffers are full) ends the session at once and frees its slot.

With `diarize` on (this server's extension), each turn's final decode runs beside a search for
its speaker's voice (see `speakers`), and the `completed` event carries the label as `speaker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from whisperx_api.domain.audio import SAMPLE_RATE
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.speakers import KnownVoice
from whisperx_api.domain.transcript import Transcript
from whisperx_api.errors import (
    BufferOverflow,
    CommitEmpty,
    EventTooLarge,
    InvalidEvent,
    SessionIdle,
    UnknownEventType,
    UnsupportedParameter,
    WhisperXApiError,
)
from whisperx_api.executors import run_io
from whisperx_api.pipeline.stage import SpeechProbabilities
from whisperx_api.realtime.agreement import Agreement, TimedWord, hypothesis
from whisperx_api.realtime.audio import PcmDecoder
from whisperx_api.realtime.captions import Captions
from whisperx_api.realtime.engine import LiveEngine
from whisperx_api.realtime.session_config import SessionConfig, apply_update, session_object
from whisperx_api.realtime.speakers import SessionSpeakers, TurnVoice
from whisperx_api.realtime.tail import AudioTail
from whisperx_api.realtime.turns import Edge, TurnDetector, ms_to_samples

log = logging.getLogger(__name__)

MIN_COMMIT_MS = 100  # OpenAI refuses to commit less than this
# A turn's final decode starts early once its closing silence has lasted this share of the
# silence that ends a turn: most pauses within a sentence are shorter, and each early decode
# that speech makes stale holds the session's decoder for a full decode.
EARLY_FINAL_SHARE = 0.4
# A turn without a delta this far in gets partial decodes at the usual interval again: its drafts
# grow dearer with it, and speech that long without words is likely noise.
FIRST_WORDS_SECONDS = 2.0
# A turn's first draft goes before a committed turn's final decode only while such drafts take
# at most this long here: what the final (and so the completed event) waits for stays small.
DRAFT_AHEAD_SECONDS = 0.3
CLOSE_NORMAL = 1000
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL = 1011
_TRANSCRIPTION_PARAM = "session.audio.input.transcription"
_MODEL_PARAM = f"{_TRANSCRIPTION_PARAM}.model"

ErrorFields = Callable[[WhisperXApiError], dict[str, Any]]
# The caller's saved voices with these ids; InvalidRequest naming the param for one it lacks.
VoiceResolver = Callable[[Sequence[str], str], Awaitable[Sequence[KnownVoice]]]
_CLOSE_SECONDS = 1.0  # a close frame to a client that does not read is not waited on longer


class Channel(Protocol):
    """A message transport: the API adapts its WebSocket to this."""

    async def receive(self) -> str | None:
        """The next text message; None once the client has gone."""
        ...

    async def send(self, text: str) -> None:
        """Send one text message."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Close the transport."""
        ...


@dataclass
class _FirstWords:
    """How long a turn's first delta took, and where the time went (logged at DEBUG)."""

    heard_at: float = field(default_factory=time.monotonic)  # when the turn was opened
    sent: bool = False  # the first delta went out (a committed turn keeps this record)
    heard_after: float = 0.0  # seconds of the turn's audio before that (padding, VAD delay)
    # each draft: when it started (s after heard_at), the turn audio it read (s), its time (s)
    drafts: list[tuple[float, float, float]] = field(default_factory=list)

    def describe(self, item_id: str) -> str:
        after = self.heard_after + time.monotonic() - self.heard_at
        first = self.drafts[0][0] if self.drafts else 0.0
        drafts = ", ".join(f"{audio:.1f} s in {took:.2f} s" for _, audio, took in self.drafts)
        return (
            f"{item_id}: first delta {after:.2f} s after the turn's start: speech heard "
            f"{self.heard_after:.2f} s in, first draft {first:.2f} s later; drafts of "
            f"[{drafts}]"
        )


@dataclass
class _Turn:
    """Audio being spoken (server VAD) or appended since the last commit (manual)."""

    item_id: str
    start: int
    partial_at: int = 0  # turn length (samples) at the last partial decode
    early_for: int | None = None  # the silence an early final decode was started for
    agreement: Agreement = field(default_factory=Agreement)
    first_words: _FirstWords | None = field(default_factory=_FirstWords)  # None once sent


@dataclass
class _Committed:
    item_id: str
    samples: npt.NDArray[np.float32]  # the whole turn
    silence_from: int | None = None  # where the silence that ended it began (server VAD)
    agreement: Agreement = field(default_factory=Agreement)
    first_words: _FirstWords | None = None  # the turn had no delta yet


@dataclass(frozen=True)
class _Early:
    """A final decode run as soon as a turn's closing silence began: the turn's text if that
    silence is the one that ended it (all that came after was silence)."""

    silence_from: int
    cut: int  # the turn's confirmed text ended here when it ran
    text: str  # the whole turn's


@dataclass
class _Decoding:
    """What the decode task holds; counts against the buffer limit."""

    samples: int = 0
    busy: bool = False
    captions: dict[str, Captions] = field(default_factory=dict)


def new_id(prefix: str) -> str:
    """OpenAI-style identifiers (`event_...`, `item_...`, `sess_...`)."""
    return f"{prefix}_{secrets.token_hex(10)}"


class LiveSession:
    """Serves one channel until the client leaves or goes idle."""

    def __init__(
        self,
        engine: LiveEngine,
        channel: Channel,
        error_fields: ErrorFields,
        default_model: str,
        admit_model: Callable[[str], None] | None = None,
        *,
        config: SessionConfig | None = None,
        session_id: str | None = None,
        voices: VoiceResolver | None = None,
    ) -> None:
        self._engine = engine
        self._voices = voices  # the client's saved voices (none where the server keeps none)
        self._speakers: SessionSpeakers | None = None  # made when `diarize` is first on
        self._admit_model = admit_model  # may this client be served that model now (blocking)
        self._settings = engine.settings
        self._channel = channel
        self._error_fields = error_fields
        self._id = session_id or new_id("sess")
        self._config = config or SessionConfig(model=default_model)  # a client secret's, or new
        self._resolved = default_model
        self._send_lock = asyncio.Lock()
        self._stalled = False  # a send timed out: the session ends
        self._wake = asyncio.Event()
        self._tail = AudioTail()
        self._pcm = PcmDecoder(self._config.rate)
        self._vad: SpeechProbabilities | None = None
        self._detector: TurnDetector | None = None
        self._detector_origin = 0  # the session sample the detector's sample 0 is
        self._turn: _Turn | None = None
        self._committed: deque[_Committed] = deque()
        self._decoding = _Decoding()
        self._early: dict[str, _Early] = {}
        self._first_draft_seconds = 0.0  # how long the last first-words draft took
        self._last_item: str | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "session.update": self._session_update,
            "transcription_session.update": self._beta_session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit,
            "input_audio_buffer.clear": self._clear,
        }

    async def run(self) -> None:
        """Announce the session, then serve events until the client leaves or idles out."""
        self._resolved = await self._resolve(self._config.decode_model)
        await self._prepare_speakers(self._config, SessionConfig(model=""))
        self._restart_input()
        try:
            await self._emit("session.created", session=session_object(self._config, self._id))
            await self._serve()
        except TimeoutError:
            if not self._stalled:
                raise
            await self._hang_up()

    async def _serve(self) -> None:
        decoder = asyncio.create_task(self._decode_forever(), name=f"decode-{self._id}")
        try:
            await self._receive_forever()
        finally:
            decoder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await decoder

    # -- client events ------------------------------------------------------------------------

    async def _receive_forever(self) -> None:
        timeout = self._settings.idle_timeout
        last_event = time.monotonic()
        while not self._stalled:
            wait = max(last_event + timeout - time.monotonic(), 0.0)
            try:
                text = await asyncio.wait_for(self._channel.receive(), wait)
            except TimeoutError:
                if self._busy():  # the client waits for transcripts: not idle
                    last_event = time.monotonic()
                    continue
                await self._error(
                    SessionIdle(f"No client event for {timeout:g} s (REALTIME__IDLE_TIMEOUT).")
                )
                await self._channel.close(CLOSE_NORMAL, "idle timeout")
                return
            if text is None:
                return
            last_event = time.monotonic()
            await self._handle(text)

    async def _handle(self, text: str) -> None:
        event_id = None
        try:
            event = self._parse(text)
            event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            handler = self._handlers.get(event["type"])
            if handler is None:
                raise UnknownEventType(
                    f"'{event['type']}' is not an event a transcription session serves; use "
                    "session.update and input_audio_buffer.append, .commit or .clear.",
                    param="type",
                )
            await handler(event)
        except WhisperXApiError as exc:
            await self._error(exc, event_id)

    def _parse(self, text: str) -> dict[str, Any]:
        limit = self._settings.max_event_bytes
        if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
            raise EventTooLarge(
                f"The event is larger than {limit} bytes (REALTIME__MAX_EVENT_BYTES); it was "
                "dropped. Send audio in smaller appends."
            )
        try:
            event = json.loads(text)
        except (ValueError, RecursionError):
            raise InvalidEvent("The event is not valid JSON.") from None
        if not isinstance(event, dict):
            raise InvalidEvent("The event must be a JSON object.")
        if not isinstance(event.get("type"), str):
            raise InvalidEvent("The event has no string 'type'.", param="type")
        return event

    async def _session_update(self, event: dict[str, Any]) -> None:
        await self._update(apply_update(self._config, event.get("session")), "session.updated")

    async def _beta_session_update(self, event: dict[str, Any]) -> None:
        config = apply_update(self._config, event.get("session"), beta=True)
        await self._update(config, "transcription_session.updated")

    async def _update(self, config: SessionConfig, answer: str) -> None:
        if config.decode_model != self._config.decode_model:
            self._resolved = await self._resolve(config.decode_model)
        await self._prepare_speakers(config, self._config)
        restart = (config.rate, config.turn_detection) != (
            self._config.rate,
            self._config.turn_detection,
        )
        self._config = config
        if restart:
            self._restart_input()
        await self._emit(answer, session=session_object(config, self._id))

    async def _resolve(self, name: str) -> str:
        """The canonical name of a model this client may use now; a refusal names the field."""
        if self._admit_model is not None:
            try:
                await run_io(self._admit_model, name)
            except WhisperXApiError as exc:
                exc.param = _MODEL_PARAM
                raise
        return await self._engine.resolve_model(name, _MODEL_PARAM)

    async def _prepare_speakers(self, config: SessionConfig, before: SessionConfig) -> None:
        """Ready speaker labels for `config`: the speaker model's threshold, and the saved
        voices it names (fetched again only when they change). Raises before anything
        changes, naming the field."""
        if not config.diarize:
            return
        try:
            threshold = self._engine.voice_threshold()
        except WhisperXApiError as exc:
            exc.param = f"{_TRANSCRIPTION_PARAM}.diarize"
            raise
        ids = config.known_speaker_ids
        if self._speakers is not None and ids == before.known_speaker_ids:
            return
        voices = await self._saved_voices(ids)
        if self._speakers is None:
            self._engine.warm_speakers()
            self._speakers = SessionSpeakers(threshold, voices)
        else:
            self._speakers.know(voices)

    async def _saved_voices(self, ids: Sequence[str]) -> Sequence[KnownVoice]:
        param = f"{_TRANSCRIPTION_PARAM}.known_speaker_ids"
        if not ids:
            return []
        if self._voices is None:
            raise UnsupportedParameter(
                "This server keeps no saved voices, so known_speaker_ids cannot be used.",
                param=param,
            )
        return await self._voices(ids, param)

    def _restart_input(self) -> None:
        """A new format or turn detection starts a fresh input buffer."""
        self._pcm = PcmDecoder(self._config.rate)
        if self._turn is not None:
            self._early.pop(self._turn.item_id, None)
        self._turn = None
        self._tail.keep_from(self._tail.end)
        self._restart_vad()

    def _restart_vad(self) -> None:
        """Fresh VAD state from the current end of the input (none for manual commits)."""
        vad = self._config.turn_detection
        self._vad = self._engine.new_vad() if vad is not None else None
        self._detector = None
        if vad is not None and self._vad is not None:
            max_turn = ms_to_samples(self._settings.max_turn_seconds * 1000)
            self._detector = TurnDetector(vad, self._vad.window, max_turn)
            self._detector_origin = self._tail.end

    async def _append(self, event: dict[str, Any]) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise InvalidEvent(
                "input_audio_buffer.append needs 'audio', a base64 string.", param="audio"
            )
        incoming = len(audio) * 3 / 4 / 2 / self._config.rate
        if self._held_seconds() + incoming > self._settings.max_buffered_seconds:
            raise BufferOverflow(
                f"More than {self._settings.max_buffered_seconds:g} s of audio would wait for "
                "transcription (REALTIME__MAX_BUFFERED_SECONDS): audio is arriving faster than "
                "it is transcribed. This append was dropped; send at real speed.",
                param="audio",
            )
        samples, probabilities = await run_io(self._ingest, audio)
        self._tail.append(samples)
        if self._detector is None:
            if self._turn is None:
                self._turn = _Turn(new_id("item"), self._tail.end - len(samples))
        else:
            for edge in self._detector.feed(probabilities):
                await self._on_edge(edge)
            if self._turn is None:  # keep what a turn starting next may reach back to
                reach = ms_to_samples(self._padding_ms()) + 2 * self._detector.window
                self._tail.keep_from(self._tail.end - reach)
        self._wake.set()

    def _ingest(self, audio: str) -> tuple[npt.NDArray[np.float32], list[float]]:
        """Decode and run the VAD (in a thread: a large append takes a while)."""
        samples = self._pcm.decode(audio)
        probabilities = self._vad.feed(samples) if self._vad is not None else []
        return samples, probabilities

    def _padding_ms(self) -> int:
        vad = self._config.turn_detection
        return vad.prefix_padding_ms if vad is not None else 0

    async def _on_edge(self, edge: Edge) -> None:
        at = self._detector_origin + edge.sample
        if edge.kind == "start":
            self._turn = _Turn(new_id("item"), at)
            if self._turn.first_words is not None:
                self._turn.first_words.heard_after = (self._tail.end - at) / SAMPLE_RATE
            await self._emit(
                "input_audio_buffer.speech_started",
                audio_start_ms=_ms(at),
                item_id=self._turn.item_id,
            )
            return
        if self._turn is not None:
            await self._emit(
                "input_audio_buffer.speech_stopped",
                audio_end_ms=_ms(at),
                item_id=self._turn.item_id,
            )
            await self._commit_turn(at, edge.silence_from)

    async def _commit(self, event: dict[str, Any]) -> None:
        turn = self._turn
        if turn is None or self._tail.end - turn.start < ms_to_samples(MIN_COMMIT_MS):
            raise CommitEmpty(
                f"The input audio buffer holds less than {MIN_COMMIT_MS} ms of audio to commit."
            )
        if self._detector is not None:  # a manual commit mid-speech: VAD starts over after it
            self._restart_vad()
        await self._commit_turn(self._tail.end)

    async def _commit_turn(self, end: int, silence_from: int | None = None) -> None:
        turn = self._turn
        if turn is None:
            return
        self._turn = None
        samples = self._tail.slice(turn.start, end)
        await self._emit(
            "input_audio_buffer.committed",
            item_id=turn.item_id,
            previous_item_id=self._last_item,
        )
        self._last_item = turn.item_id
        self._committed.append(
            _Committed(turn.item_id, samples, silence_from, turn.agreement, turn.first_words)
        )
        self._wake.set()

    async def _clear(self, event: dict[str, Any]) -> None:
        if self._turn is not None:
            self._decoding.captions.pop(self._turn.item_id, None)
        self._restart_input()  # (drops the turn's early final decode too)
        await self._emit("input_audio_buffer.cleared")

    def _held_seconds(self) -> float:
        """Audio held for transcription: the open turn, committed turns, the running decode."""
        held = sum(len(c.samples) for c in self._committed) + self._decoding.samples
        if self._turn is not None:
            held += self._tail.end - self._turn.start
        return held / SAMPLE_RATE

    def _busy(self) -> bool:
        return bool(self._committed) or self._decoding.busy

    # -- decodes ------------------------------------------------------------------------------

    async def _decode_forever(self) -> None:
        try:
            while True:
                if (first := self._due_first_draft()) is not None:
                    await self._partial(*first)
                elif self._committed:
                    await self._final(self._committed.popleft())
                elif (early := self._due_early()) is not None:
                    await self._early_final(*early)
                elif (partial := self._due_partial()) is not None:
                    await self._partial(*partial)
                else:
                    self._wake.clear()
                    await self._wake.wait()
        except Exception:  # the client left mid-send or stopped reading, or a bug
            if self._stalled:
                await self._hang_up()
                return
            log.warning("live session %s: decoding stopped", self._id, exc_info=True)
            with contextlib.suppress(Exception):
                await self._channel.close(CLOSE_INTERNAL, "decoding stopped")

    async def _hang_up(self) -> None:
        """End a session whose client stopped reading: its receive loop stops at the next
        event, and the close frame is not waited on (the client would not read it either)."""
        self._stalled = True
        log.info(
            "live session %s: the client read nothing for %g s (REALTIME__SEND_TIMEOUT); closed",
            self._id,
            self._settings.send_timeout,
        )
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CLOSE_SECONDS):
                await self._channel.close(CLOSE_POLICY_VIOLATION, "client not reading")

    def _due_early(self) -> tuple[str, int, Agreement, npt.NDArray[np.float32]] | None:
        """The turn so far, once its closing silence has lasted a while (once per silence):
        decoded now, its text is ready soon after the silence has lasted long enough to end
        the turn."""
        turn, detector = self._turn, self._detector
        if turn is None or detector is None:
            return None
        silence = detector.silence_start
        vad = self._config.turn_detection
        if silence is None or turn.early_for == silence or vad is None:
            return None
        if detector.silent_samples < ms_to_samples(EARLY_FINAL_SHARE * vad.silence_duration_ms):
            return None
        turn.early_for = silence
        tail = self._tail.slice(turn.start + turn.agreement.cut, self._tail.end)
        return turn.item_id, silence, turn.agreement, tail

    async def _early_final(
        self, item_id: str, silence_from: int, agreement: Agreement, tail: npt.NDArray[np.float32]
    ) -> None:
        cut = agreement.cut
        try:
            text = await self._decode_tail(agreement, tail, "early final")
        except WhisperXApiError:
            log.warning("an early final decode failed; the turn's own will tell", exc_info=True)
            return
        if self._is_pending(item_id):
            self._early[item_id] = _Early(silence_from, cut, text)

    def _due_first_draft(self) -> tuple[_Turn, int, npt.NDArray[np.float32]] | None:
        """The open turn's first draft, when it is due while a committed turn's final decode
        waits to run (its early one did not do): the draft of a fraction of a second goes
        first, since the new turn's first words wait on it, and it delays the final by little
        (unless drafts are slow here: then the final goes first)."""
        if not self._committed or self._early_text(self._committed[0]) is not None:
            return None
        if self._turn is None or self._turn.partial_at:
            return None
        if self._first_draft_seconds > DRAFT_AHEAD_SECONDS:  # a busy machine: the final first
            return None
        return self._due_partial()

    def _early_text(self, turn: _Committed) -> str | None:
        """The committed turn's text from its early final decode, if only silence followed."""
        early = self._early.get(turn.item_id)
        if early is not None and (early.silence_from, early.cut) == (
            turn.silence_from,
            turn.agreement.cut,
        ):
            return early.text
        return None

    def _due_partial(self) -> tuple[_Turn, int, npt.NDArray[np.float32]] | None:
        turn = self._turn
        if turn is None or (self._detector is not None and self._detector.hearing_silence):
            return None  # (a turn that may be ending: its final decode must not wait on this)
        length = self._tail.end - turn.start
        interval = ms_to_samples(self._interval(turn, length) * 1000)
        if (
            length < ms_to_samples(self._settings.first_partial_seconds * 1000)
            or length - turn.partial_at < interval
        ):
            return None
        turn.partial_at = length
        cut = turn.agreement.cut
        return turn, length, self._tail.slice(turn.start + cut, self._tail.end)

    def _interval(self, turn: _Turn, length: int) -> float:
        """Seconds of new audio before the turn's next partial decode: shorter while it has no
        delta yet (drafts of its first second are cheap, and two must agree on a first word)."""
        settings = self._settings
        if turn.first_words is None or length > ms_to_samples(FIRST_WORDS_SECONDS * 1000):
            return settings.partial_interval_seconds
        return min(settings.first_words_interval_seconds, settings.partial_interval_seconds)

    async def _partial(self, turn: _Turn, length: int, tail: npt.NDArray[np.float32]) -> None:
        """A draft of the turn so far: its new words as a delta, and, once the turn is long
        enough, the words it agrees on with the previous draft confirmed."""
        agreement, cut = turn.agreement, turn.agreement.cut
        confirming = length >= ms_to_samples(self._settings.confirm_after_seconds * 1000)
        started = time.monotonic()
        try:
            transcript = await self._transcribe(
                tail,
                draft=not confirming,
                prompt=agreement.prompt(self._config.prompt),
                words=confirming,
                kind="partial",
            )
        except WhisperXApiError:
            log.warning("a partial decode failed; the final one will tell", exc_info=True)
            return
        finally:
            if (first := turn.first_words) is not None:
                took = time.monotonic() - started
                first.drafts.append((started - first.heard_at, length / SAMPLE_RATE, took))
                self._first_draft_seconds = took
        item_id = turn.item_id
        if not self._is_pending(item_id):
            return  # cleared meanwhile
        text = agreement.transcript(_tail_text(agreement, transcript, cut))
        if confirming:
            agreement.update(hypothesis(transcript, cut), length)
        delta = self._decoding.captions.setdefault(item_id, Captions()).partial(text)
        if delta:
            if turn.first_words is not None:
                log.debug("live session %s: %s", self._id, turn.first_words.describe(item_id))
                turn.first_words.sent = True
                turn.first_words = None
            await self._delta(item_id, delta)

    def _is_pending(self, item_id: str) -> bool:
        """The turn is still open, or committed and waiting for its final decode."""
        still_open = self._turn is not None and self._turn.item_id == item_id
        return still_open or any(c.item_id == item_id for c in self._committed)

    async def _final(self, turn: _Committed) -> None:
        voice = self._find_voice(turn.samples)
        try:
            await self._final_text(turn, voice)
        finally:
            if voice is not None and not voice.done():
                voice.cancel()  # (the decode failed or the session ended: no label is sent)
            elif voice is not None and not voice.cancelled():
                voice.exception()  # (read, so that a failure unsent is not logged as lost)

    def _find_voice(self, samples: npt.NDArray[np.float32]) -> asyncio.Task[TurnVoice] | None:
        """The search for the turn's speaker, started beside its decode (diarize on only)."""
        if not self._config.diarize or self._speakers is None:
            return None
        return asyncio.create_task(self._engine.turn_voice(samples))

    async def _speaker(self, voice: asyncio.Task[TurnVoice]) -> str | None:
        """The turn's speaker label; None when its voice could not be found."""
        try:
            found = await voice
        except Exception:
            log.warning("live session %s: a turn's speaker was not found", self._id, exc_info=True)
            return None
        return self._speakers.label(found) if self._speakers is not None else None

    async def _final_text(self, turn: _Committed, voice: asyncio.Task[TurnVoice] | None) -> None:
        early = self._early_text(turn)
        self._early.pop(turn.item_id, None)
        self._decoding.samples = len(turn.samples)
        agreement = turn.agreement
        try:
            if early is not None:
                text = early  # only silence came after the audio it decoded
            else:
                text = await self._decode_tail(agreement, turn.samples[agreement.cut :], "final")
        except WhisperXApiError as exc:
            await self._emit(
                "conversation.item.input_audio_transcription.failed",
                item_id=turn.item_id,
                content_index=0,
                error=self._error_fields(exc),
            )
            return
        finally:
            self._decoding.samples = 0
        log.info(
            "live session %s: turn %s completed, %d words confirmed while it ran; its final "
            "decode read %.2f s of %.2f s",
            self._id,
            turn.item_id,
            len(agreement.confirmed),
            (len(turn.samples) - agreement.cut) / SAMPLE_RATE,
            len(turn.samples) / SAMPLE_RATE,
        )
        captions = self._decoding.captions.pop(turn.item_id, Captions())
        if delta := captions.final(text):
            if turn.first_words is not None and not turn.first_words.sent:
                described = turn.first_words.describe(turn.item_id)
                log.debug("live session %s: %s, then the final decode", self._id, described)
            await self._delta(turn.item_id, delta)
        labels = {} if voice is None else {"speaker": await self._speaker(voice)}
        await self._emit(
            "conversation.item.input_audio_transcription.completed",
            item_id=turn.item_id,
            content_index=0,
            transcript=text,
            usage={"type": "duration", "seconds": round(len(turn.samples) / SAMPLE_RATE, 3)},
            **labels,
        )

    async def _decode_tail(
        self, agreement: Agreement, tail: npt.NDArray[np.float32], kind: str
    ) -> str:
        """The whole turn's text: its confirmed words, then a full decode of the rest (prompted
        with them; timed, to drop a word the cut made it hear twice)."""
        confirmed = bool(agreement.confirmed)
        transcript = await self._transcribe(
            tail,
            draft=False,
            prompt=agreement.prompt(self._config.prompt),
            words=confirmed,
            kind=kind,
        )
        return agreement.transcript(_tail_text(agreement, transcript, agreement.cut))

    async def _transcribe(
        self,
        samples: npt.NDArray[np.float32],
        *,
        draft: bool,
        prompt: str | None,
        words: bool,
        kind: str,
    ) -> Transcript:
        """A decode of `samples`; a `draft` (a partial) trades a little accuracy for speed."""
        options = TranscriptionOptions(
            model=self._resolved,
            language=self._config.language,
            prompt=prompt,
            word_timestamps=words,
        )
        self._decoding.busy = True
        started = time.monotonic()
        try:
            return await self._engine.transcribe(samples, options, draft=draft)
        except WhisperXApiError:
            raise
        except Exception as exc:
            log.exception("a live decode failed")
            raise WhisperXApiError("The transcription of this audio failed.") from exc
        finally:
            self._decoding.busy = False
            log.debug(
                "live session %s: %s decode (%s) of %.2f s of audio took %.2f s",
                self._id,
                kind,
                "draft" if draft else "full window",
                len(samples) / SAMPLE_RATE,
                time.monotonic() - started,
            )

    async def _delta(self, item_id: str, delta: str) -> None:
        await self._emit(
            "conversation.item.input_audio_transcription.delta",
            item_id=item_id,
            content_index=0,
            delta=delta,
        )

    # -- server events ------------------------------------------------------------------------

    async def _emit(self, kind: str, **fields: Any) -> None:
        """Send one event. When it (with the sends queued before it) cannot go out within the
        send timeout, the client stopped reading: the session is marked stalled and the
        TimeoutError ends it (`run` and the decode loop hang up)."""
        text = json.dumps({"type": kind, "event_id": new_id("event"), **fields})
        try:
            async with asyncio.timeout(self._settings.send_timeout):
                async with self._send_lock:
                    await self._channel.send(text)
        except TimeoutError:
            self._stalled = True
            raise

    async def _error(self, exc: WhisperXApiError, event_id: str | None = None) -> None:
        await self._emit("error", error={**self._error_fields(exc), "event_id": event_id})


def _tail_text(agreement: Agreement, transcript: Transcript, cut: int) -> str:
    """The text of a decode of the tail from `cut`, less a word the cut made it hear twice."""
    words: list[TimedWord] = hypothesis(transcript, cut)
    if not words or not agreement.confirmed:
        return transcript.text
    return " ".join(w.text for w in agreement.tail_words(words))


def _ms(sample: int) -> int:
    return int(sample * 1000 // SAMPLE_RATE)
