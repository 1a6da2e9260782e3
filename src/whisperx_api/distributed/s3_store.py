"""The S3 job store (`JobStore`, `MODE=kafka`): one job state every replica and worker sees.

Only imported in distributed mode; requires the `distributed` extra (boto3).

Layout under `prefix` (empty by default)::

    jobs/<id>/record.json          the job: the one source of truth
    jobs/<id>/result.json          the transcript, written once, just before the job turns Completed
    status/<Status>/<seq>-<id>     empty index markers; `status/Queued/` in key order is the queue

Compare-and-swap. Every change reads the record, applies the pure transition of
`domain.transitions` (the same as the SQLite store's), and writes the result back with
`IfMatch=<ETag>`; a new record is written with `IfNoneMatch="*"`.
A 412 (or S3's 409 ConditionalRequestConflict) means someone else wrote first: read again,
re-check, retry. AWS S3, MinIO and moto honour both conditions, and S3 and MinIO apply them
atomically, so of two racing writers exactly one wins. Every write bumps `rev` and carries a fresh
nonce, so a record's bytes never repeat: an old ETag cannot come back (no ABA), and a write whose
answer was lost (the SDK retries it into a 412) is recognised as ours when we read it back.

Markers. The record is the truth; markers index it for the cheap questions (queue position,
counts, which jobs hold leases) with one LIST instead of a GET per job. A move to a new status
writes the new marker before the record, so a crash never hides a Processing job from
`lapsed`, then writes it again and deletes the job's other markers. A crash in between
leaves a stale marker, never a missing one, and a stale marker only skews counts until the job's
next move; a lease holder also rewrites its Processing marker at every renewal. `seq` is the
submission time in nanoseconds, so markers list in FIFO order (across hosts, as far as their
clocks agree; leases assume clocks within a few seconds too).

A fetch holds a completed job's result while it sends it (`take_result`): the record names the
fetch and the hold's end, written with the same compare-and-swap, so two replicas never both
send one result. Removal (after delivery, `delete`) first swaps the record to a tombstone
(`gone`), which exactly one caller can do, then deletes the objects, the record last. A
tombstone reads as no job.

Webhooks. A job with a `webhook_url` gets its delivery state in the record, in the same write
that makes it terminal; a `webhooks/<id>` marker, written just before, indexes the pending ones.
Whoever delivers (an API replica) claims one attempt at a time with the same compare-and-swap, so
exactly one party owns it; a claim whose owner died lapses after its lease. A removal while the
webhook is pending keeps the tombstoned record (the rest goes) until the webhook settles.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from itertools import takewhile
from typing import TYPE_CHECKING, Any

from whisperx_api.distributed.s3 import (
    delete_keys,
    get_object,
    list_keys,
    put_if,
    read_text,
    storage_errors,
)
from whisperx_api.domain.job import JobRecord, JobSpec, JobStatus
from whisperx_api.domain.transitions import claimed, lapsed, renewed, taken
from whisperx_api.domain.webhook import WebhookState
from whisperx_api.errors import Conflict, IllegalMove, StorageError, UnreadableJob
from whisperx_api.jobs.messages import dump_spec, load_spec
from whisperx_api.jobs.moves import Move, StoreMoves, now_or
from whisperx_api.jobs.ports import StoredResult

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

RECORD_VERSION = 1
_STATUS_NAMES = frozenset(s.value for s in JobStatus)
_RETRIES = 100
# When a job briefly has two markers (mid-move), count it once, at the later stage.
_STAGE = {s: 2 if s.is_terminal else int(s is JobStatus.PROCESSING) for s in JobStatus}


@dataclass(frozen=True, slots=True)
class _Entry:
    """A stored record: the job plus what only the store needs."""

    record: JobRecord
    seq: str
    rev: int = 1
    gone: bool = False
    # False from insert until the job's message is published: an API replica that died in
    # between leaves a job no worker will hear of and no client has the id of.
    announced: bool = True

    @property
    def status(self) -> JobStatus:
        return self.record.status

    def with_record(self, **changes: Any) -> _Entry:
        return replace(self, record=replace(self.record, **changes))

    def moved(self, move: Move, **changes: Any) -> _Entry | None:
        """The entry after a pure transition; None when it is refused."""
        try:
            return replace(self, record=move(self.record), **changes)
        except IllegalMove:
            return None


@dataclass(frozen=True, slots=True)
class _Found:
    entry: _Entry
    raw: bytes
    etag: str


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What a transition decided on (`before`) and what it wrote (`after`, None if refused)."""

    before: _Entry
    after: _Entry | None


_Change = Callable[[_Entry], _Entry | None]


class _Unreadable:
    """A record a scan passed over because this build cannot read it."""


_UNREADABLE = _Unreadable()


class S3JobStore(StoreMoves):
    """Job state in one bucket, shared safely by any number of processes and hosts."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix

    def close(self) -> None:
        """Nothing to release: the client belongs to the caller."""

    @storage_errors()
    def insert(self, job_id: str, spec: JobSpec, now: float | None = None) -> JobRecord:
        record = JobRecord(id=job_id, status=JobStatus.QUEUED, spec=spec, created_at=now_or(now))
        entry = _Entry(record, seq=f"{time.time_ns():020d}", announced=False)
        body = _dump(entry)
        if not self._put(self._record_key(job_id), body):
            found = self._fetch(job_id)
            if found is None or found.raw != body:
                raise Conflict(f"Job '{job_id}' already exists.")
        self._put_marker(self._marker(entry))
        return record

    @storage_errors()
    def get(self, job_id: str) -> JobRecord | None:
        entry = self._load(job_id)
        return None if entry is None else entry.record

    @storage_errors()
    def queue_position(self, job_id: str) -> int | None:
        entry = self._load(job_id)
        if entry is None or entry.status is not JobStatus.QUEUED:
            return None
        own = self._marker(entry)
        keys = list_keys(self._client, self._bucket, self._status_prefix(JobStatus.QUEUED))
        return 1 + sum(1 for _ in takewhile(lambda key: key < own, keys))

    @storage_errors()
    def counts(self) -> dict[JobStatus, int]:
        """How many jobs are in each status (from the markers: one LIST, no GETs)."""
        latest: dict[str, JobStatus] = {}
        for key in list_keys(self._client, self._bucket, f"{self._prefix}status/"):
            parsed = self._parse_marker(key)
            if parsed is None:
                continue
            status, job_id = parsed
            if job_id not in latest or _STAGE[status] > _STAGE[latest[job_id]]:
                latest[job_id] = status
        counted = Counter(latest.values())
        return {status: counted[status] for status in JobStatus}

    @storage_errors()
    def claim(
        self,
        worker: str,
        lease_seconds: float,
        job_id: str | None = None,
        now: float | None = None,
    ) -> JobRecord | None:
        """Without `job_id`, the queued markers in line order are tried one by one."""
        at = now_or(now)
        if job_id is None:
            taken = (self.claim(worker, lease_seconds, key, at) for key in self._queued())
            return next((job for job in taken if job is not None), None)
        # A worker got its message, so it was announced even if the mark was never written.
        take = self._move(job_id, lambda r: claimed(r, worker, lease_seconds, at), announced=True)
        return None if take is None or take.after is None else take.after.record

    @storage_errors()
    def mark_announced(self, job_id: str) -> bool:
        """Record that the job's message was published; False when the job is gone."""
        outcome = self._transition(
            job_id, lambda entry: None if entry.announced else replace(entry, announced=True)
        )
        return outcome is not None

    @storage_errors()
    def unannounced(self, older_than_seconds: float, now: float | None = None) -> list[str]:
        """Queued jobs created over `older_than_seconds` ago whose message was never published.

        Queued markers sort by insertion time, so only the older ones are read.
        """
        before = now_or(now) - older_than_seconds
        younger = f"{int(before * 1e9):020d}"
        prefix = self._status_prefix(JobStatus.QUEUED)
        found: list[str] = []
        for key in list(list_keys(self._client, self._bucket, prefix)):
            if key.removeprefix(prefix) >= younger:
                break
            parsed = self._parse_marker(key)
            entry = None if parsed is None else self._scanned(parsed[1])
            if (
                isinstance(entry, _Entry)
                and entry.status is JobStatus.QUEUED
                and not entry.announced
                and entry.record.created_at < before
            ):
                found.append(entry.record.id)
        return found

    @storage_errors()
    def renew(
        self, job_id: str, worker: str | None, lease_seconds: float, now: float | None = None
    ) -> bool:
        at = now_or(now)
        outcome = self._move(job_id, lambda r: renewed(r, worker, lease_seconds, at))
        if outcome is None or outcome.after is None:
            return False
        self._put_marker(self._marker(outcome.after))  # restore it if a racing move dropped it
        return True

    @storage_errors()
    def read_result(self, job_id: str) -> StoredResult | None:
        entry = self._load(job_id)
        if entry is None:
            return None
        if entry.status is not JobStatus.COMPLETED:
            return StoredResult(entry.record, None)
        result = self._result(job_id)
        return None if result is None else StoredResult(entry.record, result)

    @storage_errors()
    def take_result(
        self, job_id: str, taker: str, hold_seconds: float, now: float | None = None
    ) -> StoredResult | None:
        """The hold is a compare-and-swap on the record, so of two replicas one takes it."""
        at = now_or(now)
        outcome = self._move(job_id, lambda r: taken(r, taker, hold_seconds, at))
        if outcome is None:
            return None
        if outcome.after is None:
            record = outcome.before.record
            return None if record.status is JobStatus.COMPLETED else StoredResult(record, None)
        try:
            result = self._result(job_id)
        except BaseException:
            self.give_back_result(job_id, taker)
            raise
        return None if result is None else StoredResult(outcome.after.record, result)

    def _result(self, job_id: str) -> str | None:
        """The completed job's transcript; None when the job was removed while we read (no
        job, as for `get`)."""
        result = self._read_text(self._result_key(job_id))
        if result is None and self._load(job_id) is not None:
            raise StorageError(f"The result of job '{job_id}' is missing from storage.")
        return result

    @storage_errors()
    def lapsed(self, now: float | None = None) -> list[JobRecord]:
        """Processing jobs whose lease has lapsed (their worker died): `claim` may take them.

        Any replica or worker may ask, any number of times; markers left behind by finished or
        removed jobs are deleted on the way.
        """
        at = now_or(now)
        found: list[JobRecord] = []
        prefix = self._status_prefix(JobStatus.PROCESSING)
        for key in list(list_keys(self._client, self._bucket, prefix)):
            parsed = self._parse_marker(key)
            if parsed is None:
                continue
            entry = self._scanned(parsed[1])
            if isinstance(entry, _Unreadable):
                continue
            if entry is None or entry.status.is_terminal:
                delete_keys(self._client, self._bucket, [key])  # stale: no claim can need it
            elif lapsed(entry.record, at):
                found.append(entry.record)
        return found

    @storage_errors()
    def expired(self, before: float) -> list[str]:
        """Jobs last changed before `before` (finished, or created if never finished) that are
        not processing and owe no webhook (reads every record)."""
        return [
            entry.record.id
            for entry in self._every_entry()
            if _last_change(entry.record) < before
            and entry.status is not JobStatus.PROCESSING
            and not _owes_webhook(entry)
        ]

    @storage_errors()
    def delete(self, job_id: str) -> bool:

        def remove(entry: _Entry) -> _Entry | None:
            return None if entry.status is JobStatus.PROCESSING else replace(entry, gone=True)

        outcome = self._transition(job_id, remove)
        if outcome is None or outcome.after is None:
            return False
        self._purge(outcome.before, keep_record=_owes_webhook(outcome.before))
        return True

    @storage_errors()
    def jobs_of(self, owner: str) -> list[str]:
        """Reads every record (there is no index by owner): an erasure is rare."""
        return [e.record.id for e in self._every_entry() if e.record.spec.owner == owner]

    def _every_entry(self) -> Iterator[_Entry]:
        """Every readable job (a GET per record)."""
        for key in list(list_keys(self._client, self._bucket, f"{self._prefix}jobs/")):
            if key.endswith("/record.json"):
                entry = self._scanned(key.rsplit("/", 2)[-2])
                if isinstance(entry, _Entry):
                    yield entry

    # -- webhooks -------------------------------------------------------------------------------

    @storage_errors()
    def claim_due_webhooks(
        self, token: str, lease_seconds: float, now: float | None = None, limit: int = 16
    ) -> list[tuple[str, WebhookState]]:
        """Each claim is its own compare-and-swap (another replica may win some); one that is
        no longer due when it is read again is left."""
        at = now_or(now)

        def take(hook: WebhookState) -> WebhookState | None:
            return hook.claimed(token, at + lease_seconds) if hook.due(at) else None

        due = list(self._due(at))[:limit]  # the whole scan: it cleans up on the way
        claims = [(job_id, self._webhook_transition(job_id, take)) for job_id in due]
        return [(job_id, state) for job_id, state in claims if state is not None]

    def _due(self, at: float) -> Iterator[str]:
        """Jobs whose webhook attempt is due (one LIST, a GET per pending webhook); markers of
        settled webhooks are deleted on the way, with the tombstones they kept."""
        prefix = f"{self._prefix}webhooks/"
        for key in list(list_keys(self._client, self._bucket, prefix)):
            job_id = key.removeprefix(prefix)
            stored = self._fetch(job_id)
            if stored is None or _webhook_settled(stored.entry):
                self._forget_webhook(job_id, stored)
                continue
            hook = stored.entry.record.webhook
            if hook is not None and hook.due(at):  # None: the job's ending is still being written
                yield job_id

    @storage_errors()
    def settle_webhook(self, job_id: str, token: str, state: WebhookState) -> bool:
        """Record an attempt's outcome if `token` still owns it."""

        def settle(hook: WebhookState) -> WebhookState | None:
            return state if hook.claim == token else None

        if self._webhook_transition(job_id, settle) is None:
            return False
        if not state.pending:
            self._forget_webhook(job_id, self._fetch(job_id))
        return True

    def _webhook_transition(
        self, job_id: str, change: Callable[[WebhookState], WebhookState | None]
    ) -> WebhookState | None:
        """Compare-and-swap on the record's webhook; tombstones kept for it included."""

        def on_entry(entry: _Entry) -> _Entry | None:
            hook = entry.record.webhook
            after = None if hook is None else change(hook)
            return None if after is None else entry.with_record(webhook=after)

        outcome = self._transition(job_id, on_entry, tombstones=True)
        return None if outcome is None or outcome.after is None else outcome.after.record.webhook

    def _forget_webhook(self, job_id: str, stored: _Found | None) -> None:
        """The webhook settled (or its job vanished): drop its marker, and the tombstone that
        was kept only for it."""
        if stored is not None and stored.entry.gone:
            hook = stored.entry.record.webhook
            if hook is None or not hook.pending:
                delete_keys(self._client, self._bucket, [self._record_key(job_id)])
        delete_keys(self._client, self._bucket, [self._webhook_marker(job_id)])

    # -- compare-and-swap ---------------------------------------------------------------------

    @storage_errors()
    def _applied(self, job_id: str, move: Move, result: str | None = None) -> bool:
        """A `result` is stored first, once the move is seen to be legal, and created once: if
        an earlier attempt of this job already left one, that transcript stands."""
        if result is not None:
            entry = self._load(job_id)
            if entry is None or entry.moved(move) is None:
                return False
            self._put(self._result_key(job_id), result.encode())
        outcome = self._move(job_id, move)
        return outcome is not None and outcome.after is not None

    def _move(self, job_id: str, move: Move, **changes: Any) -> _Outcome | None:
        """`_transition` of a pure transition of the record (plus the entry's `changes`)."""
        return self._transition(job_id, lambda entry: entry.moved(move, **changes))

    def _queued(self) -> list[str]:
        """The ids of the queued jobs, in line order (from their markers)."""
        prefix = self._status_prefix(JobStatus.QUEUED)
        keys = list_keys(self._client, self._bucket, prefix)
        return [parsed[1] for key in keys if (parsed := self._parse_marker(key)) is not None]

    def _transition(
        self, job_id: str, change: _Change, *, tombstones: bool = False
    ) -> _Outcome | None:
        """Read, decide, write with IfMatch; on a lost race read again and decide again.

        None when there is no job (a tombstone is none, unless `tombstones`); an outcome with
        `after=None` when the move is not legal.
        """
        intent: str | None = None  # the marker we wrote ahead of the record
        pending: tuple[bytes, _Outcome] | None = None  # our last write that got a 412
        for attempt in range(_RETRIES):
            found = self._fetch(job_id)
            if found is not None and pending is not None and found.raw == pending[0]:
                return self._landed(pending[1])  # it did land; the SDK retried it into a 412
            visible = found is not None and (tombstones or not found.entry.gone)
            current = found.entry if found is not None and visible else None
            after = None if current is None else change(current)
            if found is None or current is None or after is None:
                self._drop_intent(intent, current)
                return None if current is None else _Outcome(current, None)
            after = replace(after, rev=current.rev + 1)
            intent = self._mark_intent(intent, current, after)
            if _owes_webhook(after) and not _owes_webhook(current):
                self._put_marker(self._webhook_marker(job_id))
            body = _dump(after)
            if self._put(self._record_key(job_id), body, if_match=found.etag):
                return self._landed(_Outcome(current, after))
            pending = (body, _Outcome(current, after))
            time.sleep(random.uniform(0, 0.001 * min(attempt + 1, 20)))
        raise StorageError(f"Job '{job_id}' kept changing under {_RETRIES} attempts to update it.")

    def _mark_intent(self, intent: str | None, current: _Entry, after: _Entry) -> str | None:
        if after.status is current.status:
            self._drop_intent(intent, current)
            return None
        marker = self._marker(after)
        if marker != intent:
            self._drop_intent(intent, current)
            self._put_marker(marker)
        return marker

    def _drop_intent(self, intent: str | None, current: _Entry | None) -> None:
        """Withdraw our early marker, unless the job did reach that status (someone else's move).

        A move that reaches this status later writes its marker again after its record.
        """
        if intent is None:
            return
        if current is not None and intent == self._marker(current):
            return
        delete_keys(self._client, self._bucket, [intent])

    def _landed(self, outcome: _Outcome) -> _Outcome:
        after = outcome.after
        if after is not None and after.status is not outcome.before.status:
            own = self._marker(after)
            self._put_marker(own)
            others = [self._marker(after.with_record(status=s)) for s in JobStatus]
            delete_keys(self._client, self._bucket, [k for k in others if k != own])
        return outcome

    # -- objects ------------------------------------------------------------------------------

    def _fetch(self, job_id: str) -> _Found | None:
        answer = get_object(self._client, self._bucket, self._record_key(job_id))
        if answer is None:
            return None
        raw = answer["Body"].read()
        try:
            entry = _load(raw)
        except Exception as exc:  # a newer version's layout, or damaged bytes
            raise UnreadableJob(
                f"The stored record of job '{job_id}' cannot be read by this server ({exc!r})."
            ) from exc
        return _Found(entry, raw, answer["ETag"])

    def _load(self, job_id: str) -> _Entry | None:
        found = self._fetch(job_id)
        return None if found is None or found.entry.gone else found.entry

    def _scanned(self, job_id: str) -> _Entry | _Unreadable | None:
        """`_load` for scans over many jobs: one unreadable record is logged and passed over
        (`_UNREADABLE`), never the end of the scan."""
        try:
            return self._load(job_id)
        except UnreadableJob as exc:
            log.warning("%s", exc.message)
            return _UNREADABLE

    def _put(self, key: str, body: bytes, if_match: str | None = None) -> bool:
        """Create-only, unless `if_match`; False when the condition failed."""
        return put_if(self._client, self._bucket, key, body, if_match)

    def _read_text(self, key: str) -> str | None:
        return read_text(self._client, self._bucket, key)

    def _put_marker(self, key: str) -> None:
        self._client.put_object(Bucket=self._bucket, Key=key, Body=b"")

    def _purge(self, entry: _Entry, *, keep_record: bool = False) -> None:
        """Delete a tombstoned job's objects and markers, the record last (unless it is kept
        for a pending webhook, which deletes it once settled)."""
        record_key = self._record_key(entry.record.id)
        base = record_key.removesuffix("record.json")
        keys = [k for k in list_keys(self._client, self._bucket, base) if k != record_key]
        markers = [self._marker(entry.with_record(status=s)) for s in JobStatus]
        delete_keys(self._client, self._bucket, keys + markers)
        if not keep_record:
            delete_keys(self._client, self._bucket, [record_key])

    # -- keys ---------------------------------------------------------------------------------

    def _record_key(self, job_id: str) -> str:
        return f"{self._prefix}jobs/{job_id}/record.json"

    def _result_key(self, job_id: str) -> str:
        return f"{self._prefix}jobs/{job_id}/result.json"

    def _webhook_marker(self, job_id: str) -> str:
        return f"{self._prefix}webhooks/{job_id}"

    def _status_prefix(self, status: JobStatus) -> str:
        return f"{self._prefix}status/{status.value}/"

    def _marker(self, entry: _Entry) -> str:
        return f"{self._status_prefix(entry.status)}{entry.seq}-{entry.record.id}"

    def _parse_marker(self, key: str) -> tuple[JobStatus, str] | None:
        """(status, job id) from `status/<Status>/<seq>-<id>`; None for a foreign key."""
        parts = key.removeprefix(f"{self._prefix}status/").split("/")
        if len(parts) != 2 or parts[0] not in _STATUS_NAMES or "-" not in parts[1]:
            return None
        return JobStatus(parts[0]), parts[1].split("-", 1)[1]


def _last_change(record: JobRecord) -> float:
    return record.created_at if record.finished_at is None else record.finished_at


def _webhook_settled(entry: _Entry) -> bool:
    """Nothing more to send: no webhook asked for, or delivered, or given up. A job that asked
    for one but has not ended yet is not settled: its marker is written just before the record
    that ends it, so a round reading between the two must keep the marker."""
    hook = entry.record.webhook
    if hook is None:
        return entry.record.spec.webhook_url is None
    return not hook.pending


def _owes_webhook(entry: _Entry) -> bool:
    hook = entry.record.webhook
    return hook is not None and hook.pending


# The record's fields stored as they are (the status, spec and webhook are converted).
_PLAIN = tuple(f.name for f in fields(JobRecord) if f.name not in {"status", "spec", "webhook"})


def _dump(entry: _Entry) -> bytes:
    """The record's JSON; the nonce makes every write's bytes (and so its ETag) unique."""
    record = entry.record
    data = {
        "v": RECORD_VERSION,
        "rev": entry.rev,
        "nonce": secrets.token_hex(8),
        "seq": entry.seq,
        "gone": entry.gone,
        "announced": entry.announced,
        **{name: getattr(record, name) for name in _PLAIN},
        "status": record.status.value,
        "spec": json.loads(dump_spec(record.spec)),
        "webhook": None if record.webhook is None else record.webhook.to_json(),
    }
    return json.dumps(data, ensure_ascii=False).encode()


def _load(raw: bytes) -> _Entry:
    data: dict[str, Any] = json.loads(raw)
    if data.get("v") != RECORD_VERSION:
        raise ValueError(f"unsupported job record version {data.get('v')!r}")
    data.setdefault("text_so_far", None)  # absent from records written before streaming
    record = JobRecord(
        status=JobStatus(data["status"]),
        spec=load_spec(json.dumps(data["spec"])),
        webhook=WebhookState.from_json(data["webhook"]) if data.get("webhook") else None,
        **{name: data[name] for name in _PLAIN},
    )
    return _Entry(
        record,
        seq=data["seq"],
        rev=data["rev"],
        gone=data["gone"],
        announced=data.get("announced", True),  # absent from records written before the flag
    )
