"""One SQLite database shared by threads and processes: WAL mode, private files, safe transactions.

The job store and the saved-voice store each build on it (their own tables in one file, each
with its own connection).

Faults. Every transaction that fails (a full disk, an I/O error, a failed COMMIT) is rolled back
before the error leaves, so the shared connection is never left inside a transaction and works
again once the cause is gone. SQLite's errors leave as `StorageFull` (the disk or database is
full: 507) or `StorageError`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from whisperx_api.errors import StorageError, StorageFull
from whisperx_api.storage.private import private_dir, private_file

log = logging.getLogger(__name__)


class SqliteDatabase:
    """A connection to `path` with `schema` applied; `_tx` runs one transaction."""

    def __init__(self, path: Path, schema: str) -> None:
        private_dir(path.parent)
        _private_database(path)
        self._conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=30
        )
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA secure_delete=ON")
        self._conn.executescript(schema)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self, *, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; whatever fails in it (COMMIT included) is rolled back, so the
        connection is never left inside a transaction (every later call would fail)."""
        with self._lock, _translated():
            conn = self._conn
            self._roll_back()  # a transaction an earlier fault left open
            conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                self._roll_back()
                raise

    def _roll_back(self) -> None:
        """End the open transaction, if any (SQLite ends some on its own, e.g. on SQLITE_FULL);
        a rollback that fails too is logged: the original error is the one to report."""
        if not self._conn.in_transaction:
            return
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("sqlite: rollback failed")


def _private_database(path: Path) -> None:
    """The database 0600 before SQLite opens it: SQLite gives its -wal and -shm files the
    database's mode. Those left by an older version are made 0600 too."""
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            private_file(side)


@contextmanager
def _translated() -> Iterator[None]:
    """SQLite's errors as the package's: a full disk or database is `StorageFull`."""
    try:
        yield
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
        if name == "SQLITE_FULL":
            raise StorageFull(
                "The server's job storage is full; try again once space has been freed."
            ) from exc
        raise StorageError(f"The job database failed ({name}).") from exc
