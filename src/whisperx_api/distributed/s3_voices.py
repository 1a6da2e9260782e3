"""The S3 voice store (`voices.ports.VoiceStore`, `MODE=kafka`): one object per saved voice.

Layout: `voices/<owner hash>/<id>.json` (name and embedding, never audio), so an owner's voices
are one LIST and no key an owner names reaches outside its folder.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from whisperx_api.distributed.s3 import delete_keys, list_keys, put_if, read_text, storage_errors
from whisperx_api.domain.voices import SavedVoice, is_voice_id
from whisperx_api.errors import Conflict
from whisperx_api.voices.codec import dump_voice, load_voice

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3VoiceStore:
    """Saved voices in one bucket, shared by every API replica."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix

    def close(self) -> None:
        """Nothing to release: the client belongs to the caller."""

    @storage_errors()
    def add_voice(self, voice: SavedVoice, limit: int) -> bool:
        """The limit is checked by a LIST before the write: replicas racing to enrol the
        same key's last free place may pass it by the number of racers."""
        if len(self._keys(voice.owner)) >= limit:
            return False
        body = dump_voice(voice).encode()
        if not put_if(self._client, self._bucket, self._key(voice.owner, voice.id), body, None):
            raise Conflict(f"Voice '{voice.id}' already exists.")
        return True

    @storage_errors()
    def get_voice(self, owner: str, voice_id: str) -> SavedVoice | None:
        if not is_voice_id(voice_id):
            return None  # never a key outside the owner's folder
        text = read_text(self._client, self._bucket, self._key(owner, voice_id))
        voice = None if text is None else load_voice(text)
        return voice if voice is not None and voice.owner == owner else None

    @storage_errors()
    def list_voices(self, owner: str) -> list[SavedVoice]:
        texts = (read_text(self._client, self._bucket, key) for key in self._keys(owner))
        voices = [load_voice(text) for text in texts if text is not None]  # None: deleted since
        return sorted(voices, key=lambda v: (v.created_at, v.id))

    @storage_errors()
    def delete_voice(self, owner: str, voice_id: str) -> bool:
        if self.get_voice(owner, voice_id) is None:
            return False
        delete_keys(self._client, self._bucket, [self._key(owner, voice_id)])
        return True

    @storage_errors()
    def delete_voices(self, owner: str) -> list[str]:
        keys = self._keys(owner)
        delete_keys(self._client, self._bucket, keys)
        return [key.rsplit("/", 1)[-1].removesuffix(".json") for key in keys]

    def _keys(self, owner: str) -> list[str]:
        return list(list_keys(self._client, self._bucket, self._folder(owner)))

    def _folder(self, owner: str) -> str:
        digest = hashlib.sha256(owner.encode()).hexdigest()[:32]
        return f"{self._prefix}voices/{digest}/"

    def _key(self, owner: str, voice_id: str) -> str:
        return f"{self._folder(owner)}{voice_id}.json"
