"""One Kafka worker holding several jobs at once (its default: `WORKER__MAX_JOBS` unset, within
the memory budget), on the real stack: Tansu, moto and `whisperx-api worker` processes
transcribing real speech with tiny.en.

The worker log is the witness of what ran when (`job <id>: processing`, `completed`); the
group's committed offsets are read without joining the group."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.audio import DATA
from tests.distributed_stack import Stack, WorkerProcess, deployed, kill
from tests.job_client import api_client, wait_for
from tests.job_client import job_status as status
from tests.job_client import submit_job as submit
from tests.kafka_broker import kafka_bootstrap
from tests.s3_server import s3_endpoint
from tests.stack_tools import all_committed
from tests.wer import normalized_wer

__all__ = ["kafka_bootstrap", "s3_endpoint"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.slow

JOBS = 4  # all held at once by a worker at its defaults
AUDIO = "en_espeak.flac"  # 20 s
REFERENCE = (DATA / "en_espeak.txt").read_text()
MAX_WER = 0.10
JOB_SECONDS = 400  # four jobs at once on one CPU thread of a loaded 2-core machine
REDELIVERY_SECONDS = 120  # session timeout + Tansu's slow rebalance after a member vanishes


@pytest.fixture
def stack(kafka_bootstrap: str, s3_endpoint: str, tmp_path: Path) -> Iterator[Stack]:
    with deployed(
        kafka_bootstrap,
        s3_endpoint,
        tmp_path,
        apis=1,
        workers=1,
        cache_dir=tmp_path / "cache",
    ) as deployed_stack:
        yield deployed_stack


def wait_completed(stack: Stack, job_ids: list[str], timeout: float) -> None:
    with api_client(stack.apis[0], stack.env["API_KEY"]) as client:

        def all_done() -> bool | None:
            states = [status(client, job_id)["status"] for job_id in job_ids]
            assert "Failed" not in states, states
            return True if all(state == "Completed" for state in states) else None

        wait_for(all_done, f"{job_ids} to complete", timeout, 0.5)
        for job_id in job_ids:
            result = client.get(f"/transcription/{job_id}/result")
            assert result.status_code == 200, result.text
            text = result.json()["text"]
            assert normalized_wer(REFERENCE, text) <= MAX_WER, text


def submit_all(stack: Stack, count: int) -> list[str]:
    audio = (DATA / AUDIO).read_bytes()
    with api_client(stack.apis[0], stack.env["API_KEY"]) as client:
        return [submit(client, AUDIO, audio, response_format="json") for _ in range(count)]


def stamp(worker: WorkerProcess, line: str) -> datetime:
    return wait_for(lambda: worker.time_of(line), f"the log line {line!r}", 60)


def test_one_worker_runs_several_jobs_at_once_and_commits_them_all(stack: Stack) -> None:
    (worker,) = stack.workers
    job_ids = submit_all(stack, JOBS)
    wait_completed(stack, job_ids, JOB_SECONDS)

    began = {job_id: stamp(worker, f"job {job_id}: processing") for job_id in job_ids}
    ended = {job_id: stamp(worker, f"job {job_id}: completed") for job_id in job_ids}
    # Jobs running at the moment the first one ended: one at a time would make this 1.
    first_end = min(ended.values())
    together = [job_id for job_id in job_ids if began[job_id] < first_end]
    assert len(together) >= 3, (began, ended)
    assert sorted(worker.completed()) == sorted(job_ids)
    assert sorted(job_id for job_id, _ in worker.processing()) == sorted(job_ids)

    wait_for(
        lambda: True if all_committed(stack) else None,
        "every message to be committed",
        JOB_SECONDS,
        0.5,
    )
    worker.process.terminate()
    assert worker.process.wait(JOB_SECONDS) == 0, worker.log()[-4000:]


def test_a_worker_killed_mid_burst_leaves_every_unfinished_job_for_redelivery(
    stack: Stack,
) -> None:
    (victim,) = stack.workers
    job_ids = submit_all(stack, JOBS)

    def all_running() -> bool | None:
        running = {job_id for job_id, _ in victim.processing()}
        return True if running >= set(job_ids) and not victim.completed() else None

    wait_for(all_running, "the worker to run every job at once", JOB_SECONDS, 0.05)
    kill(victim.process)
    unfinished = set(job_ids) - set(victim.completed())
    assert unfinished, "every job finished before the kill"

    (survivor,) = stack.add_workers(1)
    stack.wait_ready([survivor])
    wait_completed(stack, job_ids, REDELIVERY_SECONDS + JOB_SECONDS)
    # Every job the victim had not finished ran again on the survivor; none was lost.
    retried = {job_id for job_id, _ in survivor.processing()}
    assert unfinished <= retried, (unfinished, retried)
    wait_for(
        lambda: True if all_committed(stack) else None,
        "every message to be committed",
        JOB_SECONDS,
        0.5,
    )


def test_a_worker_whose_memory_budget_holds_one_job_takes_no_second_message(
    kafka_bootstrap: str, s3_endpoint: str, tmp_path: Path
) -> None:
    """`JOBS__MEMORY_BUDGET_MB=16`: one 20-s job fills it, so the worker (with `WORKER__MAX_JOBS`
    unset) reads the next message only once the job before has ended, and leaves it on the
    topic meanwhile; none waits, claimed, for admission."""
    with deployed(
        kafka_bootstrap,
        s3_endpoint,
        tmp_path,
        apis=1,
        workers=1,
        cache_dir=tmp_path / "cache",
        JOBS__MEMORY_BUDGET_MB="16",
    ) as stack:
        (worker,) = stack.workers
        job_ids = submit_all(stack, 3)
        wait_completed(stack, job_ids, JOB_SECONDS)
        wait_for(lambda: len(worker.completed()) == 3 or None, "the completed lines", 60)
        log = worker.log()
        order = sorted(job_ids, key=lambda job_id: log.index(f"job {job_id}: processing"))
        for before, after in itertools.pairwise(order):
            assert log.index(f"job {before}: completed") < log.index(f"job {after}: processing"), (
                log[-4000:]
            )
