"""Uploads on an API replica in `MODE=kafka`: staged on local disk, checked, then sent to S3.

The upload streams to a local file first so that an empty, corrupt or non-audio file is refused
before anything reaches the bucket; only audio that passed the probe is uploaded for the workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from whisperx_api.distributed.s3 import S3BlobStore
from whisperx_api.storage.local import LocalBlobStore


class StagedS3Audio:
    """Local staging area in front of the S3 blob store."""

    def __init__(self, staging: LocalBlobStore, bucket: S3BlobStore) -> None:
        self._staging = staging
        self._bucket = bucket

    def stage_audio(self, job_id: str, source: BinaryIO, max_bytes: int) -> Path:
        return self._staging.save_audio(job_id, source, max_bytes)

    def commit_audio(self, job_id: str) -> None:
        path = self._staging.audio_path(job_id)
        with path.open("rb") as staged:
            self._bucket.save_audio(job_id, staged, path.stat().st_size)
        self._staging.delete_job(job_id)

    def delete_job(self, job_id: str) -> None:
        self._staging.delete_job(job_id)
        self._bucket.delete_job(job_id)
