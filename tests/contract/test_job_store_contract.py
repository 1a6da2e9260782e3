"""The job store contract (`jobs.ports.JobStore`): every test runs against both adapters, the
SQLite store (embedded mode) and the S3 store on a real moto server (Kafka mode), so the two
modes cannot drift. What only one adapter has (S3 markers, SQLite upgrades) is tested beside it.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.contract.conftest import OpenStore
from whisperx_api.domain.job import JobRecord, JobSpec, JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.errors import Conflict
from whisperx_api.jobs.ports import JobStore

URL = "https://hooks.example.com/whisper"
BASE = 5.0  # seconds: the first webhook retry delay
LEASE = 40.0


def spec(owner: str | None = None, webhook: str | None = None) -> JobSpec:
    return JobSpec(
        options=TranscriptionOptions(model="base", language="en"), owner=owner, webhook_url=webhook
    )


def must_get(store: JobStore, job_id: str) -> JobRecord:
    record = store.get(job_id)
    assert record is not None, job_id
    return record


def status(store: JobStore, job_id: str) -> JobStatus | None:
    record = store.get(job_id)
    return None if record is None else record.status


def claim(store: JobStore, job_id: str, worker: str = "w1", **kw: float) -> JobRecord:
    claimed = store.claim(worker, kw.pop("lease", 60.0), job_id, **kw)
    assert claimed is not None, job_id
    return claimed


def run_threads(targets: list[Callable[[], None]]) -> None:
    """Run every target in its own thread; re-raise the first failure."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]


def race(
    jobs: list[str],
    contenders: dict[str, JobStore],
    grab: Callable[[str, JobStore], Iterator[str]],
) -> dict[str, list[str]]:
    """Start every contender's `grab` at once (a thread and a store handle each, as replicas);
    which contenders won each job (the ids each `grab` yields)."""
    wins: dict[str, list[str]] = {job_id: [] for job_id in jobs}
    lock = threading.Lock()
    start = threading.Barrier(len(contenders))

    def contend(name: str, own: JobStore) -> None:
        start.wait()
        for job_id in grab(name, own):
            with lock:
                wins[job_id].append(name)

    run_threads([lambda n=n, s=s: contend(n, s) for n, s in contenders.items()])
    return wins


# -- the API side ----------------------------------------------------------------------------


def test_insert_and_get_round_trip(store: JobStore) -> None:
    inserted = store.insert("a", spec(owner="alice"), now=123.5)
    assert store.get("a") == inserted
    assert (inserted.status, inserted.created_at, inserted.attempts) == (JobStatus.QUEUED, 123.5, 0)
    assert must_get(store, "a").spec.owner == "alice"
    assert store.get("missing") is None
    with pytest.raises(Conflict):
        store.insert("a", spec())


def test_queue_positions_follow_the_line(store: JobStore) -> None:
    names = ("a", "b", "c", "d")
    for name in names:
        store.insert(name, spec())
    assert [store.queue_position(n) for n in names] == [1, 2, 3, 4]
    claim(store, "b")
    assert store.cancel("a")
    assert [store.queue_position(n) for n in names] == [None, None, 1, 2]
    assert store.requeue("b", "w1", "transient")
    assert [store.queue_position(n) for n in names] == [None, 1, 2, 3]  # b keeps its place
    assert store.queue_position("missing") is None


def test_cancel_only_while_queued(store: JobStore) -> None:
    store.insert("a", spec())
    store.insert("b", spec())
    claim(store, "a")
    assert not store.cancel("a")
    assert store.cancel("b", now=50.0)
    cancelled = must_get(store, "b")
    assert (cancelled.status, cancelled.finished_at, cancelled.progress) == (
        JobStatus.CANCELLED,
        50.0,
        None,
    )
    assert not store.cancel("b")
    assert store.claim("w1", 60.0, "b") is None
    assert not store.cancel("missing")


def test_counts(store: JobStore) -> None:
    for name in ("a", "b", "c", "d", "e"):
        store.insert(name, spec())
    claim(store, "a")
    claim(store, "b")
    assert store.complete("b", "w1", "{}")
    assert store.cancel("c")
    assert store.counts() == {
        JobStatus.QUEUED: 2,
        JobStatus.PROCESSING: 1,
        JobStatus.COMPLETED: 1,
        JobStatus.FAILED: 0,
        JobStatus.CANCELLED: 1,
    }


def test_read_result_leaves_the_job_until_it_is_deleted(store: JobStore) -> None:
    store.insert("a", spec())
    early = store.read_result("a")
    assert early is not None
    assert (early.result, early.record.status) == (None, JobStatus.QUEUED)
    claim(store, "a")
    assert store.complete("a", "w1", '{"x": 1}')
    for _ in range(2):  # reading twice (a failed render, a dropped download) loses nothing
        read = store.read_result("a")
        assert read is not None
        assert (read.result, read.record.status) == ('{"x": 1}', JobStatus.COMPLETED)
    assert store.delete("a")
    assert not store.delete("a")
    assert store.read_result("a") is None
    assert store.get("a") is None
    assert store.read_result("missing") is None


def test_a_result_is_written_once(store: JobStore) -> None:
    store.insert("a", spec())
    claim(store, "a")
    store.set_progress("a", "w1", 0.5, "first so far")
    assert store.complete("a", "w1", '{"text": "first"}')
    done = must_get(store, "a")
    assert (done.status, done.progress, done.text_so_far) == (JobStatus.COMPLETED, 1.0, None)
    assert (done.worker, done.lease_until) == (None, None)
    assert not store.complete("a", "w1", '{"text": "second"}')
    assert store.get("a") == done
    read = store.read_result("a")
    assert read is not None
    assert read.result == '{"text": "first"}'


def test_a_taken_result_goes_to_one_fetch_until_given_back(store: JobStore) -> None:
    store.insert("a", spec())
    early = store.take_result("a", "fetch-1", 60.0)
    assert early is not None
    assert (early.result, early.record.status) == (None, JobStatus.QUEUED)
    claim(store, "a")
    running = store.take_result("a", "fetch-1", 60.0)
    assert running is not None
    assert (running.result, running.record.status) == (None, JobStatus.PROCESSING)
    assert store.complete("a", "w1", '{"x": 1}', now=100.0)
    taken = store.take_result("a", "fetch-1", 60.0, now=110.0)
    assert taken is not None
    assert (taken.result, taken.record.status) == ('{"x": 1}', JobStatus.COMPLETED)
    assert store.take_result("a", "fetch-2", 60.0, now=120.0) is None  # reads as no job
    assert not store.give_back_result("a", "fetch-2")
    assert must_get(store, "a").status is JobStatus.COMPLETED  # status polls still see it
    assert store.give_back_result("a", "fetch-1")  # its send failed
    again = store.take_result("a", "fetch-2", 60.0, now=130.0)
    assert again is not None
    assert again.result == '{"x": 1}'
    assert store.delete("a")  # sent
    assert store.take_result("a", "fetch-3", 60.0) is None
    assert store.take_result("missing", "fetch-1", 60.0) is None


def test_a_hold_whose_fetch_died_ends_with_its_time(store: JobStore) -> None:
    store.insert("a", spec())
    claim(store, "a")
    assert store.complete("a", "w1", '{"x": 1}', now=100.0)
    assert store.take_result("a", "fetch-1", 60.0, now=110.0) is not None
    assert store.take_result("a", "fetch-2", 60.0, now=169.0) is None
    late = store.take_result("a", "fetch-2", 60.0, now=170.0)
    assert late is not None
    assert late.result == '{"x": 1}'
    assert not store.give_back_result("a", "fetch-1")  # the hold is no longer its own


def test_racing_fetches_take_a_result_once(open_store: OpenStore) -> None:
    setup = open_store()
    jobs = [f"job-{i}" for i in range(4)]
    for job_id in jobs:
        setup.insert(job_id, spec())
        claim(setup, job_id)
        assert setup.complete(job_id, "w1", f'{{"id": "{job_id}"}}')

    def fetch(taker: str, own: JobStore) -> Iterator[str]:
        for job_id in random.sample(jobs, len(jobs)):
            taken = own.take_result(job_id, taker, 60.0)
            if taken is not None:
                assert taken.result == f'{{"id": "{job_id}"}}'
                yield job_id

    wins = race(jobs, {f"fetch-{i}": open_store() for i in range(4)}, fetch)
    assert all(len(winners) == 1 for winners in wins.values()), wins


def test_jobs_of_an_owner_in_every_status(store: JobStore) -> None:
    for job_id, owner in (("a", "key-a"), ("b", "key-b"), ("c", "key-a"), ("d", "key-a")):
        store.insert(job_id, spec(owner=owner))
    store.insert("anon", spec())
    claim(store, "c")
    assert store.cancel("d")
    assert sorted(store.jobs_of("key-a")) == ["a", "c", "d"]
    assert store.jobs_of("key-b") == ["b"]
    assert store.delete("a")
    assert sorted(store.jobs_of("key-a")) == ["c", "d"]
    assert store.jobs_of("nobody") == []


def test_expired_skips_processing_and_delete_spares_it(store: JobStore) -> None:
    store.insert("old-done", spec(), now=100.0)
    store.insert("old-running", spec(), now=100.0)
    store.insert("new", spec(), now=10_000.0)
    assert store.cancel("old-done", now=200.0)
    claim(store, "old-running")
    assert store.expired(before=5_000.0) == ["old-done"]
    assert store.expired(before=50.0) == []
    assert store.delete("old-done")
    assert not store.delete("old-running")
    assert status(store, "old-running") is JobStatus.PROCESSING


def test_expiry_counts_from_the_last_change_not_from_creation(store: JobStore) -> None:
    for name in ("finished-just-now", "finished-long-ago", "cancelled-lately", "queued-long-ago"):
        store.insert(name, spec(), now=100.0)
    claim(store, "finished-just-now")
    assert store.complete("finished-just-now", "w1", "{}")  # finished now, created long ago
    claim(store, "finished-long-ago")
    assert store.fail("finished-long-ago", "w1", "boom", None, now=200.0)
    assert store.cancel("cancelled-lately", now=9_000.0)
    a_minute_ago = time.time() - 60
    assert sorted(store.expired(before=a_minute_ago)) == [
        "cancelled-lately",
        "finished-long-ago",
        "queued-long-ago",
    ]
    assert sorted(store.expired(before=5_000.0)) == ["finished-long-ago", "queued-long-ago"]


# -- the worker side -------------------------------------------------------------------------


def test_claims_take_the_oldest_queued_job_first(store: JobStore) -> None:
    for name in ("a", "b", "c"):
        store.insert(name, spec())
    first = store.claim("w1", 60.0, now=1000.0)
    assert first is not None
    assert (first.id, first.status, first.attempts) == ("a", JobStatus.PROCESSING, 1)
    assert (first.worker, first.started_at, first.lease_until) == ("w1", 1000.0, 1060.0)
    assert store.get("a") == first
    assert [store.queue_position(n) for n in ("a", "b", "c")] == [None, 1, 2]
    assert store.cancel("b")
    second = store.claim("w2", 60.0)
    assert second is not None
    assert second.id == "c"
    assert store.claim("w3", 60.0) is None


def test_a_live_lease_blocks_claims_and_a_lapsed_one_is_taken_over(store: JobStore) -> None:
    store.insert("a", spec())
    assert claim(store, "a", "w1", lease=30, now=1000.0).started_at == 1000.0
    assert store.claim("w2", 30.0, "a", now=1029.0) is None
    assert store.claim("w1", 30.0, "a", now=1029.0) is None
    second = claim(store, "a", "w2", lease=30, now=1031.0)
    assert (second.attempts, second.worker) == (2, "w2")
    assert not store.renew("a", "w1", 30, now=1032.0)
    assert not store.requeue("a", "w1", "w1 lost it")
    assert not store.complete("a", "w1", '{"by": "w1"}')
    assert store.complete("a", "w2", '{"by": "w2"}')
    assert store.claim("w3", 30.0, "a", now=5000.0) is None  # finished: nobody takes it


def test_lease_renewal_keeps_the_job(store: JobStore) -> None:
    store.insert("a", spec())
    claim(store, "a", lease=10, now=100.0)
    assert store.renew("a", "w1", 10, now=105.0)  # now held until 115
    assert store.lapsed(now=112.0) == []
    assert store.claim("w2", 10.0, "a", now=112.0) is None
    assert [job.id for job in store.lapsed(now=116.0)] == ["a"]
    claim(store, "a", "w2", lease=10, now=116.0)
    assert not store.renew("a", "w1", 10, now=117.0)


def test_lapsed_lists_only_processing_jobs_past_their_lease(store: JobStore) -> None:
    for name in ("a", "b", "c"):
        store.insert(name, spec())
    claim(store, "a", lease=10, now=100.0)
    claim(store, "c", lease=math.inf, now=100.0)  # held for the worker's lifetime
    assert store.lapsed(now=105.0) == []
    (lapsed,) = store.lapsed(now=111.0)
    assert (lapsed.id, lapsed.status, lapsed.attempts, lapsed.worker) == (
        "a",
        JobStatus.PROCESSING,
        1,
        "w1",
    )
    assert [job.id for job in store.lapsed(now=math.inf)] == ["a", "c"]  # at startup: all
    assert claim(store, "a", "w2", lease=10, now=200.0).attempts == 2
    assert store.complete("a", "w2", '{"by": "w2"}')
    assert [job.id for job in store.lapsed(now=math.inf)] == ["c"]
    assert status(store, "b") is JobStatus.QUEUED  # never claimed, never lapsed


def test_only_the_holder_moves_a_processing_job(store: JobStore) -> None:
    store.insert("a", spec())
    claim(store, "a")
    store.set_progress("a", "other", 0.75, "someone else's")
    assert must_get(store, "a").progress == 0.0
    assert not store.renew("a", "other", 60)
    assert not store.complete("a", "other", "{}")
    assert not store.fail("a", "other", "no", None)
    assert not store.requeue("a", "other")
    assert status(store, "a") is JobStatus.PROCESSING
    assert store.fail("a", "w1", "bad audio", "invalid_audio")
    failed = must_get(store, "a")
    assert (failed.status, failed.error, failed.error_code, failed.worker) == (
        JobStatus.FAILED,
        "bad audio",
        "invalid_audio",
        None,
    )
    assert not store.fail("a", "w1", "again", None)
    assert not store.requeue("a", "w1")
    assert not store.complete("a", "w1", "{}")


def test_moves_a_queued_job_cannot_make(store: JobStore) -> None:
    store.insert("a", spec())
    store.set_progress("a", "w1", 0.5, "queued jobs are not written")
    assert not store.complete("a", "w1", "{}")
    assert not store.fail("a", "w1", "no", None)
    assert not store.requeue("a", "w1")
    assert not store.renew("a", "w1", 60)
    assert not store.complete("missing", "w1", "{}")
    queued = must_get(store, "a")
    assert (queued.status, queued.progress, queued.text_so_far) == (JobStatus.QUEUED, None, None)


def test_progress_and_text_so_far_while_processing_then_cleared(store: JobStore) -> None:
    store.insert("a", spec())
    claim(store, "a")
    store.set_progress("a", "w1", 0.5, "the first words")
    running = must_get(store, "a")
    assert (running.progress, running.text_so_far) == (0.5, "the first words")
    assert store.requeue("a", "w1", "restart")
    requeued = must_get(store, "a")
    assert (requeued.status, requeued.error, requeued.progress, requeued.text_so_far) == (
        JobStatus.QUEUED,
        "restart",
        None,
        None,
    )
    assert (requeued.attempts, requeued.worker, requeued.started_at) == (1, None, None)
    claim(store, "a")
    store.set_progress("a", "w1", 0.9, "the first words and more")
    assert store.complete("a", "w1", '{"text": "the first words and more"}')
    assert must_get(store, "a").text_so_far is None


def test_an_uncounted_requeue_forgives_the_attempt(store: JobStore) -> None:
    store.insert("a", spec())
    claim(store, "a")
    assert store.requeue("a", "w1", "shutting down", uncount=True)
    assert must_get(store, "a").attempts == 0
    assert claim(store, "a").attempts == 1


def test_concurrent_claims_never_share_a_job(open_store: OpenStore) -> None:
    jobs = [f"job-{i}" for i in range(8)]
    setup = open_store()
    for job_id in jobs:
        setup.insert(job_id, spec())
    workers = {f"w{i}": open_store() for i in range(4)}

    def work(worker: str, own: JobStore) -> Iterator[str]:
        for job_id in [None, *random.sample(jobs, len(jobs))]:  # the next one, then by name
            while (claimed := own.claim(worker, 60.0, job_id)) is not None:
                assert claimed.attempts == 1
                yield claimed.id
                if job_id is not None:
                    break

    wins = race(jobs, workers, work)
    assert all(len(winners) == 1 for winners in wins.values()), wins
    assert setup.counts()[JobStatus.PROCESSING] == len(jobs)
    for job_id, (winner,) in wins.items():
        loser = next(w for w in workers if w != winner)
        assert not setup.complete(job_id, loser, "{}")
        assert setup.complete(job_id, winner, "{}")


# -- the webhook outbox ----------------------------------------------------------------------


def finished_job(store: JobStore, job_id: str, webhook: str | None = URL) -> None:
    store.insert(job_id, spec(webhook=webhook))
    claim(store, job_id, "worker")
    assert store.complete(job_id, "worker", '{"v": 1}')


def test_a_webhook_is_claimed_once_retried_then_delivered(store: JobStore) -> None:
    finished_job(store, "job-1")
    now = time.time()
    [(job_id, state)] = store.claim_due_webhooks("a", LEASE, now)
    assert (job_id, state.url, state.claim) == ("job-1", URL, "a")
    event = json.loads(state.body)
    assert event["type"] == "transcription.completed"
    assert event["data"]["result_url"] == "/transcription/job-1/result"
    assert store.claim_due_webhooks("b", LEASE, now) == []  # a owns this attempt
    failed = state.after_attempt(500, now, 8, BASE)
    assert not store.settle_webhook("job-1", "b", failed)  # not b's to record
    assert store.settle_webhook("job-1", "a", failed)
    hook = must_get(store, "job-1").webhook
    assert hook is not None
    assert hook.public() == {"attempts": 1, "last_status": 500, "delivered": False}
    assert store.claim_due_webhooks("b", LEASE, now + BASE - 0.5) == []  # backing off
    [(_, retry)] = store.claim_due_webhooks("b", LEASE, now + BASE + 0.5)
    assert (retry.message_id, retry.body) == (state.message_id, state.body)
    assert store.settle_webhook("job-1", "b", retry.after_attempt(204, now + BASE, 8, BASE))
    assert store.claim_due_webhooks("c", LEASE, now + 10_000) == []
    hook = must_get(store, "job-1").webhook
    assert hook is not None
    assert hook.public() == {"attempts": 2, "last_status": 204, "delivered": True}


def test_a_webhook_claim_whose_owner_vanished_lapses(store: JobStore) -> None:
    finished_job(store, "job-2")
    now = time.time()
    [(_, lost)] = store.claim_due_webhooks("dead", LEASE, now)
    assert store.claim_due_webhooks("live", LEASE, now + LEASE - 1) == []
    [(_, state)] = store.claim_due_webhooks("live", LEASE, now + LEASE + 1)
    assert state.attempts == 0
    assert not store.settle_webhook("job-2", "dead", lost.after_attempt(200, now, 8, BASE))
    assert store.settle_webhook("job-2", "live", state.after_attempt(200, now, 8, BASE))


def test_a_webhook_gives_up_after_max_attempts(store: JobStore) -> None:
    finished_job(store, "job-3")
    now = time.time()
    for attempt in range(3):
        [(_, state)] = store.claim_due_webhooks("a", LEASE, now + 100_000 * attempt)
        after = state.after_attempt(None, now + 100_000 * attempt, 3, BASE)
        assert store.settle_webhook("job-3", "a", after)
    assert (after.gave_up, after.delivered) == (True, False)
    assert store.claim_due_webhooks("a", LEASE, now + 10**7) == []


def test_failed_and_cancelled_jobs_owe_webhooks_and_jobs_without_a_url_none(
    store: JobStore,
) -> None:
    store.insert("failed", spec(webhook=URL))
    claim(store, "failed")
    assert store.fail("failed", "w1", "the model crashed", "backend_error")
    store.insert("cancelled", spec(webhook=URL))
    assert store.cancel("cancelled")
    finished_job(store, "silent", webhook=None)
    claimed = dict(store.claim_due_webhooks("a", LEASE, time.time()))
    assert sorted(claimed) == ["cancelled", "failed"]
    failed = json.loads(claimed["failed"].body)
    assert failed["type"] == "transcription.failed"
    assert failed["data"] == {
        "job_id": "failed",
        "status": "Failed",
        "status_url": "/transcription/failed",
        "error": "the model crashed",
    }
    cancelled = json.loads(claimed["cancelled"].body)
    assert cancelled["type"] == "transcription.cancelled"
    assert "result_url" not in cancelled["data"]
    assert must_get(store, "silent").webhook is None


def test_a_deleted_job_keeps_its_pending_webhook(store: JobStore) -> None:
    finished_job(store, "job-4")
    read = store.read_result("job-4")
    assert read is not None
    assert read.result is not None
    assert store.delete("job-4")
    assert store.get("job-4") is None  # gone for the API
    now = time.time()
    [(_, state)] = store.claim_due_webhooks("a", LEASE, now)
    assert json.loads(state.body)["data"]["job_id"] == "job-4"
    assert store.settle_webhook("job-4", "a", state.after_attempt(200, now, 8, BASE))
    assert store.claim_due_webhooks("a", LEASE, now + 10**7) == []


def test_retention_waits_for_a_pending_webhook(store: JobStore) -> None:
    finished_job(store, "job-5")
    later = time.time() + 10**6
    assert "job-5" not in store.expired(later)
    [(_, state)] = store.claim_due_webhooks("a", LEASE, time.time())
    assert store.settle_webhook("job-5", "a", state.after_attempt(200, time.time(), 8, BASE))
    assert "job-5" in store.expired(later)
    assert store.delete("job-5")
    assert store.get("job-5") is None


def test_racing_replicas_claim_each_webhook_attempt_exactly_once(open_store: OpenStore) -> None:
    setup = open_store()
    jobs = [f"race-{i}" for i in range(6)]
    for job_id in jobs:
        finished_job(setup, job_id)
    now = time.time()

    def replica(token: str, own: JobStore) -> Iterator[str]:
        for job_id, _ in own.claim_due_webhooks(token, LEASE, now):
            yield job_id

    wins = race(jobs, {f"r{i}": open_store() for i in range(6)}, replica)
    won = {job_id: owners for job_id, owners in wins.items() if owners}
    assert sorted(won) == jobs
    assert all(len(owners) == 1 for owners in won.values()), won
