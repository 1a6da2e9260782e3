"""The SQLite voice store (`VoiceStore`): a `voices` table in the embedded server's database."""

from __future__ import annotations

from pathlib import Path

from whisperx_api.domain.voices import SavedVoice
from whisperx_api.errors import Conflict
from whisperx_api.storage.sqlite import SqliteDatabase
from whisperx_api.voices.codec import dump_voice, load_voice

# One row per voice, its embedding in `body` (never audio).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS voices (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS voices_by_owner ON voices (owner, created_at);
"""


class SqliteVoiceStore(SqliteDatabase):
    """Saved voices in the database at `path` (the job store's file; its own connection)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def add_voice(self, voice: SavedVoice, limit: int) -> bool:
        with self._tx(immediate=True) as db:
            held = db.execute("SELECT COUNT(*) FROM voices WHERE owner = ?", (voice.owner,))
            if int(held.fetchone()[0]) >= limit:
                return False
            if db.execute("SELECT 1 FROM voices WHERE id = ?", (voice.id,)).fetchone():
                raise Conflict(f"Voice '{voice.id}' already exists.")
            db.execute(
                "INSERT INTO voices (id, owner, created_at, body) VALUES (?, ?, ?, ?)",
                (voice.id, voice.owner, voice.created_at, dump_voice(voice)),
            )
        return True

    def get_voice(self, owner: str, voice_id: str) -> SavedVoice | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT body FROM voices WHERE id = ? AND owner = ?", (voice_id, owner)
            ).fetchone()
        return None if row is None else load_voice(row[0])

    def list_voices(self, owner: str) -> list[SavedVoice]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT body FROM voices WHERE owner = ? ORDER BY created_at, id", (owner,)
            ).fetchall()
        return [load_voice(row[0]) for row in rows]

    def delete_voice(self, owner: str, voice_id: str) -> bool:
        with self._tx() as db:
            gone = db.execute("DELETE FROM voices WHERE id = ? AND owner = ?", (voice_id, owner))
            return gone.rowcount > 0

    def delete_voices(self, owner: str) -> list[str]:
        with self._tx(immediate=True) as db:
            rows = db.execute(
                "SELECT id FROM voices WHERE owner = ? ORDER BY created_at, id", (owner,)
            )
            ids = [row[0] for row in rows.fetchall()]
            db.execute("DELETE FROM voices WHERE owner = ?", (owner,))
        return ids
