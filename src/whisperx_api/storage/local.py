"""Each job's audio in its own directory under the data directory; paths never leave the server.

Directories are 0700 and files 0600 (`storage.private`): only the server's user reads them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import BinaryIO

from whisperx_api.errors import PayloadTooLarge
from whisperx_api.storage.private import open_private, private_dir

_CHUNK = 1 << 20


class LocalBlobStore:
    """Job audio on local disk, written by streaming copies."""

    def __init__(self, root: Path) -> None:
        private_dir(root)
        self._root = private_dir(root / "jobs")

    def audio_path(self, job_id: str) -> Path:
        """Where a job's audio lives."""
        return self._root / job_id / "audio"

    def save_audio(self, job_id: str, source: BinaryIO, max_bytes: int) -> Path:
        """Stream `source` into the job's directory; refuse more than `max_bytes`."""
        target = self.audio_path(job_id)
        private_dir(target.parent)
        written = 0
        with open_private(target) as out:
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    out.close()
                    self.delete_job(job_id)
                    raise PayloadTooLarge(
                        f"The file is larger than the limit of {max_bytes} bytes."
                    )
                out.write(chunk)
        return target

    def stage_audio(self, job_id: str, source: BinaryIO, max_bytes: int) -> Path:
        """On local disk the staged file is the job's audio."""
        return self.save_audio(job_id, source, max_bytes)

    def commit_audio(self, job_id: str) -> None:
        """Nothing to do: the in-process workers read the staged file."""

    def delete_job(self, job_id: str) -> None:
        """Remove every file of the job."""
        shutil.rmtree(self._root / job_id, ignore_errors=True)

    def job_ids(self) -> list[str]:
        """Every job with a directory on disk."""
        return sorted(entry.name for entry in self._root.iterdir() if entry.is_dir())

    def job_exists(self, job_id: str) -> bool:
        """True while any file of the job is on disk."""
        return (self._root / job_id).exists()
