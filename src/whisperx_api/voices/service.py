"""Saved voices per API key: enrol (from a clip or a finished job's speaker), list, read, delete,
and resolve `known_speaker_ids[]` into the embeddings a job carries.

A job takes its voices' embeddings with it at submit time, so a worker never reads the registry
and a voice deleted while the job waits no longer matters to that job.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import BinaryIO

from whisperx_api.domain.job import JobSpec
from whisperx_api.domain.speakers import KnownVoice
from whisperx_api.domain.transcript import Transcript
from whisperx_api.domain.voices import (
    MAX_KNOWN_SPEAKER_IDS,
    SavedVoice,
    new_voice_id,
    owner_key,
)
from whisperx_api.errors import InvalidRequest, NotFound, TooManySpeakers
from whisperx_api.executors import run_in, run_io
from whisperx_api.voices.ports import JobResults, VoiceEmbedder, VoiceStore

MAX_VOICE_NAME = 64
_IDS = "known_speaker_ids"


class VoiceService:
    """The speaker registry the `/v1/speakers` routes and the transcription routes use."""

    def __init__(
        self, store: VoiceStore, embedder: VoiceEmbedder, jobs: JobResults, max_per_key: int
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._jobs = jobs
        self._max_per_key = max_per_key
        # One enrolment at a time per process: a speaker model pass is CPU-heavy, and a burst
        # of enrolments must not starve the jobs.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voices")

    def close(self) -> None:
        """Stop the enrolment thread (after the enrolment it runs, if any), close the store."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._store.close()

    async def enrol_clip(self, owner: str | None, name: str, source: BinaryIO) -> SavedVoice:
        """Embed the clip (off the event loop) and save the voice; the audio is not kept."""
        name = check_voice_name(name)
        embedding, seconds = await run_in(self._pool, self._embedder.embed_clip, source)
        return await self._save(owner, name, embedding, seconds)

    async def enrol_job_speaker(
        self, owner: str | None, name: str, job_id: str, speaker: str
    ) -> SavedVoice:
        """Save the embedding a finished job of this key kept for `speaker` (the job must have
        asked for `speaker_embeddings=true`; its audio is long gone by then)."""
        name = check_voice_name(name)
        _, transcript = await self._jobs.read_result(job_id, owner)
        embedding = transcript.speaker_embeddings.get(speaker)
        if embedding is None:
            raise InvalidRequest(
                f"Job '{job_id}' kept no voice embedding for speaker '{speaker}': enrol from a "
                "job run with diarize=true and speaker_embeddings=true, and one of its labels.",
                param="speaker",
            )
        return await self._save(owner, name, embedding, _speaking_seconds(transcript, speaker))

    async def list(self, owner: str | None) -> list[SavedVoice]:
        return await run_io(self._store.list_voices, owner_key(owner))

    async def get(self, owner: str | None, voice_id: str) -> SavedVoice:
        voice = await run_io(self._store.get_voice, owner_key(owner), voice_id)
        if voice is None:
            raise NotFound(f"No speaker with id '{voice_id}'.", param="speaker_id")
        return voice

    async def delete(self, owner: str | None, voice_id: str) -> None:
        if not await run_io(self._store.delete_voice, owner_key(owner), voice_id):
            raise NotFound(f"No speaker with id '{voice_id}'.", param="speaker_id")

    async def delete_all(self, owner: str | None) -> Sequence[str]:
        """Forget every voice of this key; the ids forgotten."""
        return await run_io(self._store.delete_voices, owner_key(owner))

    async def with_voices(self, spec: JobSpec, ids: Sequence[str]) -> JobSpec:
        """The job with the named saved voices' embeddings; an id this key does not own is a
        400 naming it (the same answer whether it never existed or is another key's)."""
        if not ids:
            return spec
        if len(ids) > MAX_KNOWN_SPEAKER_IDS:
            raise InvalidRequest(
                f"At most {MAX_KNOWN_SPEAKER_IDS} known_speaker_ids, got {len(ids)}.", param=_IDS
            )
        if not spec.options.diarize:
            raise InvalidRequest("known_speaker_ids need diarize=true.", param=_IDS)
        voices = await self.known_voices(spec.owner, ids)
        return replace(spec, options=replace(spec.options, known_voices=tuple(voices)))

    async def known_voices(
        self, owner: str | None, ids: Sequence[str], param: str = _IDS
    ) -> Sequence[KnownVoice]:
        """The named saved voices of this key, each once, in order; an id it does not own is
        an `InvalidRequest` naming it and `param` (the same answer whether the id never
        existed or is another key's). Live sessions name their speakers with these too."""
        voices = []
        for voice_id in dict.fromkeys(ids):
            voice = await run_io(self._store.get_voice, owner_key(owner), voice_id)
            if voice is None:
                raise InvalidRequest(f"No saved speaker with id '{voice_id}'.", param=param)
            voices.append(KnownVoice(voice.name, voice.embedding))
        return voices

    async def _save(
        self, owner: str | None, name: str, embedding: tuple[float, ...], seconds: float
    ) -> SavedVoice:
        voice = SavedVoice(
            id=new_voice_id(),
            owner=owner_key(owner),
            name=name,
            created_at=int(time.time()),
            seconds=round(seconds, 2),
            embedding=embedding,
        )
        if not await run_io(self._store.add_voice, voice, self._max_per_key):
            raise TooManySpeakers(
                f"This key already has {self._max_per_key} saved speakers (the limit); "
                "delete one first."
            )
        return voice


def check_voice_name(name: str) -> str:
    """A speaker name of 1 to 64 characters, surrounding spaces removed."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_VOICE_NAME:
        raise InvalidRequest(f"'name' must be 1 to {MAX_VOICE_NAME} characters.", param="name")
    return name


def _speaking_seconds(transcript: Transcript, speaker: str) -> float:
    """How long `speaker` talks in the transcript (segment time)."""
    return sum(s.end - s.start for s in transcript.segments if s.speaker == speaker)
