"""Job audio in an S3 bucket (`MODE=kafka`): API replicas upload it, workers download it.

Only imported in distributed mode; requires the `distributed` extra (boto3).

Uploads stream: small files go up in one PUT, anything past one part becomes a multipart upload
that holds at most one part in memory and is aborted, leaving nothing behind, when it fails or
passes the size limit. Audio keys live under their own prefix (`audio/` by default), apart from
the job store's records, so deleting a job's audio never touches its state or its result.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, cast

from pydantic import SecretStr

from whisperx_api.config import S3Settings
from whisperx_api.errors import NotFound, PayloadTooLarge, StorageError
from whisperx_api.storage.private import open_private, private_dir

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the installed extras
    raise ModuleNotFoundError(
        "S3 storage needs the 'distributed' extra: pip install 'whisperx-api[distributed]'"
    ) from exc

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, GetObjectOutputTypeDef

MIN_PART_SIZE = 5 << 20
"""S3's smallest part (every part but the last)."""

_CHUNK = 1 << 20
_DELETE_BATCH = 1000
_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def make_s3_client(settings: S3Settings) -> S3Client:
    """A thread-safe S3 client: path-style for MinIO/moto endpoints, the SDK's defaults for AWS."""
    custom = settings.endpoint_url is not None
    # boto3 >= 1.36 adds CRC checksums to every upload by default; several S3-compatible
    # servers reject them, so a custom endpoint only gets them where the API requires them.
    checksums: Literal["when_required", "when_supported"] = (
        "when_required" if custom else "when_supported"
    )
    config = Config(
        s3={"addressing_style": "path" if custom else "auto"},
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=32,
        request_checksum_calculation=checksums,
        response_checksum_validation=checksums,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=_reveal(settings.access_key_id),
        aws_secret_access_key=_reveal(settings.secret_access_key),
        config=config,
    )


def ensure_bucket(client: S3Client, bucket: str) -> None:
    """Create the bucket unless it exists (idempotent, safe when replicas race)."""
    with storage_errors():
        try:
            client.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            if error_code(exc) not in _MISSING_CODES | {"NoSuchBucket"}:
                raise
        region = client.meta.region_name
        try:
            if region in (None, "us-east-1"):
                client.create_bucket(Bucket=bucket)
            else:
                client.create_bucket(
                    Bucket=bucket,
                    CreateBucketConfiguration={
                        "LocationConstraint": cast("BucketLocationConstraintType", region)
                    },
                )
        except ClientError as exc:
            if error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise


class S3BlobStore:
    """Job audio in S3, written and read by streaming copies."""

    def __init__(
        self, client: S3Client, bucket: str, prefix: str = "audio/", part_size: int = 8 << 20
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        self._client = client
        self._bucket = bucket
        self._prefix = prefix
        self._part_size = part_size

    def audio_key(self, job_id: str) -> str:
        """Where a job's audio lives in the bucket."""
        return f"{self._job_prefix(job_id)}audio"

    def save_audio(self, job_id: str, source: BinaryIO, max_bytes: int) -> str:
        """Stream `source` into the bucket; refuse more than `max_bytes`. Returns the key."""
        key = self.audio_key(job_id)
        with storage_errors():
            _Upload(self._client, self._bucket, key, self._part_size).run(source, max_bytes)
        return key

    def download_audio(self, job_id: str, target: Path) -> Path:
        """Stream the job's audio into `target` (for the worker that runs it)."""
        partial = target.with_name(target.name + ".part")
        with storage_errors():
            body = get_object(self._client, self._bucket, self.audio_key(job_id))
            if body is None:
                raise NotFound(f"No audio stored for job '{job_id}'.")
            private_dir(target.parent)
            try:
                with open_private(partial) as out:
                    for chunk in body["Body"].iter_chunks(_CHUNK):
                        out.write(chunk)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        partial.replace(target)
        return target

    def delete_job(self, job_id: str) -> None:
        """Remove every object of the job, and abort any upload still in progress for it."""
        prefix = self._job_prefix(job_id)
        with storage_errors():
            uploads = self._client.list_multipart_uploads(Bucket=self._bucket, Prefix=prefix)
            for upload in uploads.get("Uploads", []):
                with suppress(ClientError):
                    self._client.abort_multipart_upload(
                        Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
            delete_keys(
                self._client, self._bucket, list(list_keys(self._client, self._bucket, prefix))
            )

    def job_exists(self, job_id: str) -> bool:
        """True while any object of the job is in the bucket."""
        with storage_errors():
            found = self._client.list_objects_v2(
                Bucket=self._bucket, Prefix=self._job_prefix(job_id), MaxKeys=1
            )
        return found.get("KeyCount", 0) > 0

    def _job_prefix(self, job_id: str) -> str:
        return f"{self._prefix}{job_id}/"


class _Upload:
    """One streaming upload: a single PUT while it fits in a part, multipart past that."""

    def __init__(self, client: S3Client, bucket: str, key: str, part_size: int) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._part_size = part_size
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []

    def run(self, source: BinaryIO, max_bytes: int) -> None:
        buffer = bytearray()
        written = 0
        try:
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise PayloadTooLarge(
                        f"The file is larger than the limit of {max_bytes} bytes."
                    )
                buffer += chunk
                if len(buffer) >= self._part_size:
                    self._send_part(bytes(buffer))
                    buffer.clear()
            self._finish(bytes(buffer))
        except BaseException:
            self._abort()
            raise

    def _send_part(self, data: bytes) -> None:
        if self._upload_id is None:
            started = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)
            self._upload_id = started["UploadId"]
        number = len(self._parts) + 1
        sent = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
        )
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})

    def _finish(self, rest: bytes) -> None:
        if self._upload_id is None:
            self._client.put_object(Bucket=self._bucket, Key=self._key, Body=rest)
            return
        if rest:
            self._send_part(rest)
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )
        self._upload_id = None

    def _abort(self) -> None:
        if self._upload_id is not None:
            with suppress(ClientError, BotoCoreError):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
                )
            self._upload_id = None


def list_keys(client: S3Client, bucket: str, prefix: str) -> Iterator[str]:
    """Every key under `prefix`, in key order."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for item in page.get("Contents", []):
            yield item["Key"]


def delete_keys(client: S3Client, bucket: str, keys: list[str]) -> None:
    """Delete keys in batches; keys that are already gone are fine."""
    for start in range(0, len(keys), _DELETE_BATCH):
        batch = keys[start : start + _DELETE_BATCH]
        answer = client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        )
        failed = [e for e in answer.get("Errors", []) if e.get("Code") not in _MISSING_CODES]
        if failed:
            raise StorageError(
                f"Object storage refused to delete {len(failed)} object(s): {failed[0].get('Code')}"
            )


def get_object(client: S3Client, bucket: str, key: str) -> GetObjectOutputTypeDef | None:
    """The object (its body streams), or None when it is not there."""
    try:
        return client.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise


def read_text(client: S3Client, bucket: str, key: str) -> str | None:
    """The object's text; None when it is not there."""
    answer = get_object(client, bucket, key)
    return None if answer is None else answer["Body"].read().decode()


def put_if(client: S3Client, bucket: str, key: str, body: bytes, if_match: str | None) -> bool:
    """A conditional JSON PUT: over the version `if_match` names, else only where no object is
    (`IfNoneMatch`); False when the condition failed (or the key vanished)."""
    kind = "application/json"
    try:
        if if_match is None:
            client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=kind, IfNoneMatch="*")
        else:
            client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=kind, IfMatch=if_match)
    except ClientError as exc:
        if is_conflict(exc) or is_missing(exc):
            return False
        raise
    return True


def error_code(exc: ClientError) -> str:
    """The S3 error code of a failed call ('PreconditionFailed', 'NoSuchKey', ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_conflict(exc: ClientError) -> bool:
    """A conditional write lost: someone changed (or created) the object first."""
    return error_code(exc) in _CONFLICT_CODES


def is_missing(exc: ClientError) -> bool:
    """The object is not there."""
    return error_code(exc) in _MISSING_CODES


@contextmanager
def storage_errors() -> Iterator[None]:
    """Translate SDK failures that reach us into the package's exception tree."""
    try:
        yield
    except ClientError as exc:
        raise StorageError(
            f"Object storage request failed ({error_code(exc) or 'unknown error'})."
        ) from exc
    except BotoCoreError as exc:
        raise StorageError(f"Object storage is unreachable ({type(exc).__name__}).") from exc


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()
