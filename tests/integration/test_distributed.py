"""End to end, distributed mode (`MODE=kafka`, §6): API replicas and `whisperx-api worker`
processes on a real Kafka-compatible broker (Tansu) and a real S3 server (moto), transcribing
real speech with the bundled tiny.en model on one CPU thread per worker.

Each stack has its own topics, consumer group and bucket. The worker logs are the witnesses of
who processed what: `job <id>: processing (attempt N)`, `completed`, `dead-lettered`, and
`kafka: partitions assigned` on every assignment. Every wait is a bounded poll.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from openai.types.audio import TranscriptionTextDeltaEvent, TranscriptionTextDoneEvent

from tests.audio import DATA
from tests.distributed_stack import (
    KEY,
    MAX_ATTEMPTS,
    Speech,
    Stack,
    WorkerProcess,
    broken_model,
    build_speech,
    deployed,
    kill,
)
from tests.job_client import api_client, submit_openai_job, wait_for
from tests.job_client import job_status as status
from tests.job_client import submit_job as submit
from tests.kafka_broker import kafka_bootstrap
from tests.s3_server import s3_endpoint
from tests.server import ServerProcess
from tests.stack_tools import all_committed, dead_letters
from tests.wer import normalized_wer
from whisperx_api.config import S3Settings
from whisperx_api.distributed.kafka_messages import DeadLetter, JobMessage
from whisperx_api.distributed.s3 import S3BlobStore, make_s3_client
from whisperx_api.distributed.s3_store import S3JobStore
from whisperx_api.domain.job import JobSpec
from whisperx_api.domain.options import TranscriptionOptions

__all__ = ["kafka_bootstrap", "s3_endpoint"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.slow

LONG = "en_recorded.flac"  # 26 s
MEDIUM = "en_espeak.flac"  # 20 s
SHORT = "good_short.mp3"  # 7 s
REFERENCES = {
    LONG: (DATA / "en_recorded.txt").read_text(),
    MEDIUM: (DATA / "en_espeak.txt").read_text(),
    SHORT: "Good morning, and welcome to the weekly team meeting. "
    "Thank you for listening, and have a nice day.",
}
MAX_WER = 0.10
# tiny.en, long-form, drops one 30 s window of the concatenated fixtures now and then (the same
# window on every run: WER 0.14 on the 194 s file, 0.11 on the 486 s one; base gets 0.00).
# Still far below what a wrong or truncated transcript would score.
MAX_LONG_WER = 0.20
JOB_SECONDS = 240  # generous bound for any one wait on transcription work (a loaded machine)
REDELIVERY_SECONDS = 90  # session timeout + Tansu's slow rebalance after a member vanishes
POLL = 0.1
# A log line written a moment after the state the API shows (a loaded machine delays it).
LOG_SECONDS = 60
# Orphans (recorded, never published) go after this age. Far above the time an API replica
# takes between recording a job and marking it published, even on a loaded machine: a lower
# value made a published job look like an orphan there.
ORPHAN_SECONDS = 12


# Fixtures


@pytest.fixture(scope="session")  # not module: only the tests on `shared` need one worker
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("distributed-cache")


@pytest.fixture(scope="module")
def shared(
    kafka_bootstrap: str,
    s3_endpoint: str,
    cache_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """2 API replicas + 2 workers, shared by the acceptance checks that fit on one deployment.

    One job at a time per worker, so that a job submitted behind a batch stays queued long
    enough to be cancelled (workers holding several jobs: test_kafka_multi_job.py)."""
    root = tmp_path_factory.mktemp("shared-stack")
    with deployed(
        kafka_bootstrap,
        s3_endpoint,
        root,
        apis=2,
        workers=2,
        cache_dir=cache_dir,
        WHISPER_MODELS_DIR=str(root / "models"),  # tests add models by name (never by path)
        WORKER__MAX_JOBS="1",
    ) as stack:
        yield stack


StackFactory = Callable[..., AbstractContextManager[Stack]]


@pytest.fixture
def own_stack(
    kafka_bootstrap: str, s3_endpoint: str, cache_dir: Path, tmp_path: Path
) -> StackFactory:
    """A stack for one test, in its temp dir: `own_stack(apis=1, workers=2, **env_overrides)`."""

    def build(*, apis: int, workers: int, **overrides: str) -> AbstractContextManager[Stack]:
        return deployed(
            kafka_bootstrap,
            s3_endpoint,
            tmp_path / "stack",
            apis=apis,
            workers=workers,
            cache_dir=cache_dir,
            **overrides,
        )

    return build


# HTTP helpers (the conventions of test_jobs_real_server.py)


def api(server: ServerProcess) -> AbstractContextManager[httpx.Client]:
    return api_client(server, KEY)


HEALTHY = {"Queued", "Processing", "Completed"}
RETRYING = {"Queued", "Processing", "Failed"}


def wait_status(
    client: httpx.Client,
    job_id: str,
    wanted: str,
    allowed: set[str] = HEALTHY,
    timeout: float = JOB_SECONDS,
) -> dict[str, Any]:
    """Poll until the job shows `wanted`; any status outside `allowed` fails at once."""
    seen: list[str] = []

    def check() -> dict[str, Any] | None:
        body = status(client, job_id)
        seen.append(body["status"])
        assert body["status"] in allowed, f"{job_id}: {seen[-20:]} {body}"
        return body if body["status"] == wanted else None

    return wait_for(check, f"job {job_id} to be {wanted}", timeout, POLL)


def take(client: httpx.Client, job_id: str) -> str:
    response = client.get(f"/transcription/{job_id}/result")
    assert response.status_code == 200, response.text
    return response.text


def json_text(body: str) -> str:
    """The text of a job's json result, after checking its shape."""
    parsed = json.loads(body)
    assert set(parsed) == {"text", "language", "segments"}, parsed
    assert parsed["language"] == "en"
    assert parsed["segments"], parsed
    return str(parsed["text"])


def assert_error_envelope(response: httpx.Response, status_code: int) -> dict[str, Any]:
    assert response.status_code == status_code, response.text
    body: dict[str, Any] = response.json()
    error = body["error"]
    assert set(error) >= {"message", "type", "param", "code"}, body
    assert error["message"], body
    return body


def assert_clean_api_logs(stack: Stack) -> None:
    for server in stack.apis:
        assert "Traceback" not in server.log(), server.log()


def sync_transcribe(server: ServerProcess, name: str) -> str:
    """A sync OpenAI request through the official SDK; the transcript text."""
    client = OpenAI(api_key=KEY, base_url=f"{server.base_url}/v1", max_retries=0, timeout=300)
    with (DATA / name).open("rb") as f:
        result = client.audio.transcriptions.create(model="whisper-1", file=f)
    return result.text


def processed_once(stack: Stack, ids: list[str]) -> None:
    """Each job id in exactly one `processing` line across all workers (attempt 1), and no job
    with two `completed` lines."""
    runs = stack.processing()
    for job_id in ids:
        mine = [(w.name, a) for w in stack.workers for j, a in w.processing() if j == job_id]
        assert len(mine) == 1, f"job {job_id} processed {mine}"
        assert mine[0][1] == 1, f"job {job_id} processed {mine}"
    first_attempts = Counter(job_id for job_id, attempt in runs if attempt == 1)
    assert all(n == 1 for n in first_attempts.values()), first_attempts
    completions = Counter(stack.completed())
    assert all(n == 1 for n in completions.values()), completions


# 1. Two APIs, two workers: round robin, sync requests, status/result/cancel through either API


def cancel_queued(submitter: httpx.Client, canceller: httpx.Client) -> str:
    """Submit a job through one API and cancel it through the other straight away.

    The workers are busy with the batch submitted before, so the job is normally still queued;
    if a worker did claim it first (the DELETE then rightly answers 409), try a fresh one.
    """
    refused: list[str] = []
    for _ in range(5):
        job_id = submit(submitter, SHORT, response_format="json")
        response = canceller.delete(f"/transcription/{job_id}")
        if response.status_code == 200:
            assert response.json() == {"success": True, "message": "Job canceled successfully"}
            return job_id
        assert_error_envelope(response, 409)
        assert status(canceller, job_id)["status"] in {"Processing", "Completed"}
        refused.append(job_id)
    pytest.fail(f"no queued job could be cancelled; refused: {refused}")


def refuse_cancel_of_processing(clients: list[httpx.Client], ids: list[str]) -> str:
    """Find a job that is processing and check the other API refuses to cancel it (409)."""

    def find() -> tuple[int, str] | None:
        for i, job_id in enumerate(ids):
            if status(clients[(i + 1) % 2], job_id)["status"] == "Processing":
                return i, job_id
        return None

    index, job_id = wait_for(find, "a job to be processing", JOB_SECONDS, 0.02)
    other = clients[index % 2]
    assert_error_envelope(other.delete(f"/transcription/{job_id}"), 409)
    assert status(other, job_id)["status"] in {"Processing", "Completed"}
    return job_id


def skipped(stack: Stack, job_id: str) -> Callable[[], bool | None]:
    """A check for `wait_for`: some worker logged that it skipped the job."""
    line = f"job {job_id}: skipped ("
    return lambda: True if any(line in w.log() for w in stack.workers) else None


def test_two_apis_two_workers_round_robin_sync_and_cancel(shared: Stack) -> None:
    a, b = shared.apis
    audios = [LONG, MEDIUM, SHORT] * 4
    with api(a) as client_a, api(b) as client_b, ThreadPoolExecutor(2) as pool:
        clients = [client_a, client_b]
        sync_calls: list[tuple[str, Future[str]]] = [
            (MEDIUM, pool.submit(sync_transcribe, a, MEDIUM)),
            (LONG, pool.submit(sync_transcribe, b, LONG)),
        ]
        ids = [
            submit(clients[i % 2], audio, response_format="json") for i, audio in enumerate(audios)
        ]
        cancelled = [cancel_queued(client_a, client_b), cancel_queued(client_b, client_a)]
        refuse_cancel_of_processing(clients, ids)
        for missing in (client_a, client_b):
            assert_error_envelope(missing.delete(f"/transcription/{uuid.uuid4()}"), 404)

        # Status through the API that did not take the job, result through it too.
        for i, job_id in enumerate(ids):
            wait_status(clients[(i + 1) % 2], job_id, "Completed")
        for name, call in sync_calls:
            text = call.result(timeout=JOB_SECONDS)
            assert normalized_wer(REFERENCES[name], text) <= MAX_WER, (name, text)
        for i, (audio, job_id) in enumerate(zip(audios, ids, strict=True)):
            assert status(clients[i % 2], job_id)["status"] == "Completed"
            text = json_text(take(clients[(i + 1) % 2], job_id))
            assert normalized_wer(REFERENCES[audio], text) <= MAX_WER, (audio, text)
            # Delivered once: gone for both replicas.
            for client in clients:
                assert_error_envelope(client.get(f"/transcription/{job_id}/result"), 404)

        for job_id in cancelled:
            for client in clients:
                assert status(client, job_id)["status"] == "Cancelled"
                assert_error_envelope(client.get(f"/transcription/{job_id}/result"), 409)

    processed_once(shared, ids)
    per_worker = [sum(1 for j, _ in w.processing() if j in ids) for w in shared.workers]
    assert all(n > 0 for n in per_worker), f"one worker did all the work: {per_worker}"
    # The cancelled jobs' messages are still delivered; the workers must skip them.
    for job_id in cancelled:
        wait_for(skipped(shared, job_id), f"a worker to skip cancelled job {job_id}", JOB_SECONDS)
    ran = {job_id for job_id, _ in shared.processing()}
    assert not ran & set(cancelled), "a cancelled job was run"
    assert_clean_api_logs(shared)


# 2. A job that always fails goes to the dead-letter topic


def test_always_failing_job_is_dead_lettered_after_max_attempts(
    shared: Stack, tmp_path: Path
) -> None:
    broken_model(Path(shared.env["WHISPER_MODELS_DIR"]) / "broken-model")
    a, b = shared.apis
    with api(a) as client_a, api(b) as client_b:
        job_id = submit(client_a, SHORT, model="broken-model", response_format="json")
        failed = wait_status(client_b, job_id, "Failed", RETRYING, timeout=2 * JOB_SECONDS)
        assert failed == status(client_a, job_id)
        assert failed["attempts"] == MAX_ATTEMPTS, failed
        assert f"{MAX_ATTEMPTS} attempt" in failed["error"], failed
        for client in (client_a, client_b):  # as in embedded mode: the failure, as an error
            refused = assert_error_envelope(client.get(f"/transcription/{job_id}/result"), 500)
            assert refused["error"]["message"] == failed["error"], refused
            assert refused["error"]["code"] == "max_attempts", refused

    def letters_for_job() -> list[DeadLetter] | None:
        mine = [letter for letter in dead_letters(shared) if letter.job_id == job_id]
        return mine or None

    mine = wait_for(letters_for_job, f"a dead letter for {job_id}", 30, 0.5)
    assert len(mine) == 1, mine
    assert mine[0].attempts == MAX_ATTEMPTS, mine
    assert "could not be loaded" in mine[0].reason, mine  # the cause, not "internal error"
    assert failed["error"].endswith(mine[0].reason), (failed, mine)

    attempts = sorted(attempt for j, attempt in shared.processing() if j == job_id)
    assert attempts == list(range(1, MAX_ATTEMPTS + 1)), attempts
    assert [entry for entry in shared.dead_lettered() if entry[0] == job_id] == [
        (job_id, MAX_ATTEMPTS)
    ]
    assert job_id not in shared.completed()
    assert_clean_api_logs(shared)


# 3. Restarting an API replica loses nothing


def wait_gone(client: httpx.Client, job_id: str) -> None:
    """Until the job's status is 404: a fetched result is deleted just after it went out."""

    def gone() -> bool | None:
        return True if client.get(f"/transcription/{job_id}").status_code == 404 else None

    wait_for(gone, f"job {job_id} to be deleted after its result was fetched", JOB_SECONDS, POLL)


def test_api_restart_while_jobs_run_loses_nothing(shared: Stack, long_speech: Speech) -> None:
    # The first job runs for several seconds, so the restart happens while jobs run.
    audios = [long_speech.path.name, LONG, MEDIUM, SHORT, LONG, MEDIUM]
    contents = [long_speech.path.read_bytes(), *((DATA / a).read_bytes() for a in audios[1:])]
    references = [long_speech.reference, *(REFERENCES[a] for a in audios[1:])]
    a, b = shared.apis
    with api(a) as client_a:
        ids = [
            submit(client_a, audio, content, response_format="json")
            for audio, content in zip(audios, contents, strict=True)
        ]
        wait_for(
            lambda: True if any(j in ids for j, _ in shared.processing()) else None,
            "a worker to start one of the jobs",
            JOB_SECONDS,
        )
    exit_code = shared.stop_api(0)
    assert exit_code == 0, f"API exit code {exit_code} after SIGTERM"
    with api(b) as client_b:  # while A is down, B answers for A's jobs
        unfinished = [j for j in ids if status(client_b, j)["status"] != "Completed"]
    assert unfinished, "every job finished before the API went down; nothing was tested"
    shared.start_api(0)

    a, b = shared.apis
    with api(a) as client_a, api(b) as client_b:
        clients = [client_a, client_b]
        for i, job_id in enumerate(ids):
            wait_status(clients[i % 2], job_id, "Completed")
        for i, (reference, job_id) in enumerate(zip(references, ids, strict=True)):
            text = json_text(take(clients[i % 2], job_id))
            limit = MAX_LONG_WER if i == 0 else MAX_WER
            assert normalized_wer(reference, text) <= limit, (audios[i], text)
            # The result went to one fetch: the other replica's GET is 404 at once, even
            # while the job is still being deleted (after the response's last byte).
            other = clients[(i + 1) % 2]
            assert_error_envelope(other.get(f"/transcription/{job_id}/result"), 404)
            wait_gone(other, job_id)
    processed_once(shared, ids)
    assert_clean_api_logs(shared)


# 3b. A duplicate message while the first worker is alive: nobody runs the job twice


async def publish_duplicates(stack: Stack, job_id: str) -> None:
    """The job's message again, on every partition, as a rebalance or a retried send would."""
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]

    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
    await producer.start()
    try:
        message = JobMessage(job_id=job_id, attempt=1, submitted_at=time.time()).to_bytes()
        for partition in range(stack.partitions):
            await producer.send_and_wait(stack.request_topic, message, partition=partition)
    finally:
        await producer.stop()


def test_duplicate_delivery_while_the_worker_lives_is_skipped(
    shared: Stack, long_speech: Speech
) -> None:
    a, _ = shared.apis
    with api(a) as client:
        job_id = submit(client, long_speech.path.name, long_speech.path.read_bytes())
        wait_status(client, job_id, "Processing")
        asyncio.run(publish_duplicates(shared, job_id))
        wait_for(
            lambda: (
                True
                if f"job {job_id}: skipped (another worker holds it)"
                in "".join(w.log() for w in shared.workers)
                else None
            ),
            "the idle worker to skip the duplicate",
            JOB_SECONDS,
        )
        wait_status(client, job_id, "Completed")
        text = take(client, job_id)
    assert normalized_wer(long_speech.reference, text) <= MAX_LONG_WER, text
    processed_once(shared, [job_id])
    wait_for(lambda: job_id in shared.completed() or None, "the completed log line", LOG_SECONDS)
    assert shared.completed().count(job_id) == 1


@pytest.fixture(scope="session")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> Speech:
    """About 3 minutes of speech: several seconds of work for tiny.en on one thread."""
    return build_speech(tmp_path_factory.mktemp("speech") / "long.wav", 180)


def test_streamed_text_comes_through_an_api_replica(shared: Stack, long_speech: Speech) -> None:
    """stream=true in kafka mode: the worker's text so far reaches the client via the S3 store."""
    client = OpenAI(api_key=KEY, base_url=f"{shared.apis[0].base_url}/v1", max_retries=0)
    deltas: list[str] = []
    done: list[str] = []
    with long_speech.path.open("rb") as f:
        stream = client.audio.transcriptions.create(
            model="tiny.en", file=f, stream=True, extra_body={"batch_size": 1}, timeout=JOB_SECONDS
        )
        for event in stream:
            if isinstance(event, TranscriptionTextDeltaEvent):
                deltas.append(event.delta)
            else:
                assert isinstance(event, TranscriptionTextDoneEvent)
                done.append(event.text)
    assert len(deltas) >= 2, deltas
    assert done == ["".join(deltas)]
    assert normalized_wer(long_speech.reference, done[0]) <= MAX_LONG_WER, done[0]


# 4. A worker killed mid-job: the other one finishes it


def test_sigkilled_worker_job_is_redelivered_and_completed_once(
    own_stack: StackFactory,
    long_speech: Speech,
) -> None:
    with (
        own_stack(apis=1, workers=2) as stack,
        api(stack.apis[0]) as client,
    ):
        job_id = submit(
            client, long_speech.path.name, long_speech.path.read_bytes(), response_format="json"
        )

        def running_on() -> WorkerProcess | None:
            for worker in stack.workers:
                if (job_id, 1) in worker.processing():
                    return worker
            return None

        victim = wait_for(running_on, f"a worker to start {job_id}", JOB_SECONDS, 0.05)

        def transcribing() -> dict[str, Any] | None:
            body = status(client, job_id)
            assert body["status"] == "Processing", body
            return body if body["progress"] > 0 else None

        wait_for(transcribing, f"{job_id} to make progress", JOB_SECONDS, 0.05)
        kill(victim.process)
        survivor = next(w for w in stack.workers if w is not victim)

        wait_for(
            lambda: True if (job_id, 2) in survivor.processing() else None,
            f"{survivor.name} to take over {job_id}",
            REDELIVERY_SECONDS,
        )
        done = wait_status(client, job_id, "Completed", timeout=REDELIVERY_SECONDS + JOB_SECONDS)
        assert done["attempts"] == 2, done
        text = json_text(take(client, job_id))
        assert normalized_wer(long_speech.reference, text) <= MAX_LONG_WER, text
        assert_error_envelope(client.get(f"/transcription/{job_id}/result"), 404)

        assert victim.processing() == [(job_id, 1)]
        assert [j for j, _ in survivor.processing()] == [job_id]
        wait_for(lambda: survivor.completed() or None, "the completed log line", LOG_SECONDS)
        assert survivor.completed() == [job_id]
        assert victim.completed() == []
        assert_clean_api_logs(stack)


# 5. A job longer than max_poll_interval_ms does not make its worker leave the group


POLL_INTERVAL_MS = 3_000


def test_job_longer_than_poll_interval_causes_no_rebalance(
    own_stack: StackFactory,
    tmp_path: Path,
) -> None:
    speech = build_speech(tmp_path / "very-long.wav", 480)
    with (
        own_stack(apis=1, workers=1, KAFKA__MAX_POLL_INTERVAL_MS=str(POLL_INTERVAL_MS)) as stack,
        api(stack.apis[0]) as client,
    ):
        (worker,) = stack.workers
        assert len(worker.assignments()) == 1, worker.assignments()
        job_id = submit(client, speech.path.name, speech.path.read_bytes(), response_format="json")
        done = wait_status(client, job_id, "Completed", timeout=3 * JOB_SECONDS)
        assert done["attempts"] == 1, done

        began = worker.time_of(f"job {job_id}: processing")
        assert began is not None, worker.log()
        # The API can show Completed a moment before the worker's log line is written.
        ended = wait_for(
            lambda: worker.time_of(f"job {job_id}: completed"),
            "the completed log line",
            LOG_SECONDS,
        )
        busy = (ended - began).total_seconds()
        assert busy >= 3 * POLL_INTERVAL_MS / 1000, f"the job took only {busy:.1f} s"

        assert worker.processing() == [(job_id, 1)]
        # aiokafka revokes at once when a member is dropped but assigns again only on its next
        # poll, so both lines are checked: no partition ever taken away, one assignment only.
        assert worker.revocations() == [], worker.log()
        assert worker.assignments() == [frozenset(range(stack.partitions))], worker.log()
        wait_for(
            lambda: True if all_committed(stack) else None,
            "the job's message to be committed",
            JOB_SECONDS,
            0.5,
        )
        assert worker.revocations() == [], worker.log()
        assert len(worker.assignments()) == 1, worker.log()
        text = json_text(take(client, job_id))
        assert normalized_wer(speech.reference, text) <= MAX_LONG_WER, text

        worker.process.terminate()
        assert worker.process.wait(JOB_SECONDS) == 0, worker.log()[-4000:]
        assert_clean_api_logs(stack)


# 6. SIGTERM drains a worker: its running job finishes, then it exits 0


def test_sigterm_lets_the_running_job_finish_then_the_worker_exits(
    own_stack: StackFactory,
    long_speech: Speech,
) -> None:
    # The grace outlasts the job even on a loaded machine: the job must finish, not be put back.
    grace = 3 * JOB_SECONDS
    with (
        own_stack(apis=1, workers=1, JOBS__SHUTDOWN_GRACE_SECONDS=str(grace)) as stack,
        api(stack.apis[0]) as client,
    ):
        (worker,) = stack.workers
        content = long_speech.path.read_bytes()
        job_id = submit(client, long_speech.path.name, content, response_format="json")
        wait_status(client, job_id, "Processing")
        worker.process.terminate()
        assert worker.process.wait(grace) == 0, worker.log()[-4000:]
        log = worker.log()
        assert "stopping; waiting for 1 running job(s)" in log, log  # the default: several
        assert log.index(f"job {job_id}: completed") < log.index("stopped"), log
        done = status(client, job_id)
        assert (done["status"], done["attempts"]) == ("Completed", 1), done
        text = json_text(take(client, job_id))
        assert normalized_wer(long_speech.reference, text) <= MAX_LONG_WER, text


def test_sigterm_past_the_grace_puts_the_job_back_for_another_worker(
    own_stack: StackFactory,
    long_speech: Speech,
) -> None:
    """JOBS__SHUTDOWN_GRACE_SECONDS=0: the stopping worker abandons the job at its next segment,
    leaves its message uncommitted, and the other worker runs it as the same attempt."""
    with (
        own_stack(apis=1, workers=2, JOBS__SHUTDOWN_GRACE_SECONDS="0") as stack,
        api(stack.apis[0]) as client,
    ):
        # batch_size=1: one VAD chunk per batch, so the job has segment boundaries to stop at.
        job_id = submit_openai_job(client, long_speech.path, batch_size="1")
        victim = wait_for(
            lambda: next((w for w in stack.workers if (job_id, 1) in w.processing()), None),
            f"a worker to start {job_id}",
            JOB_SECONDS,
        )
        wait_for(
            lambda: True if status(client, job_id).get("progress", 0) > 0 else None,
            f"{job_id} to make progress",
            JOB_SECONDS,
        )
        victim.process.terminate()
        assert victim.process.wait(JOB_SECONDS) == 0, victim.log()[-4000:]
        log = victim.log()
        assert log.index(f"job {job_id}: put back (worker stopping)") < log.index("stopped"), log
        assert victim.completed() == []

        survivor = next(w for w in stack.workers if w is not victim)
        done = wait_status(client, job_id, "Completed", timeout=REDELIVERY_SECONDS + JOB_SECONDS)
        assert done["attempts"] == 1, done  # the abandoned run was not counted
        assert survivor.processing() == [(job_id, 1)]
        text = json.loads(take(client, job_id))["text"]
        assert normalized_wer(long_speech.reference, text) <= MAX_LONG_WER, text
        assert_clean_api_logs(stack)


# 8. A job recorded by an API replica that died before publishing it


def test_a_job_never_published_is_deleted_and_queued_jobs_are_not(
    own_stack: StackFactory,
    long_speech: Speech,
) -> None:
    """KAFKA__ORPHAN_JOB_SECONDS=12: an orphan (recorded, audio stored, no message: its replica
    died in between) is deleted with its audio; a published job queued meanwhile is kept."""
    with (
        own_stack(apis=1, workers=1, KAFKA__ORPHAN_JOB_SECONDS=str(ORPHAN_SECONDS)) as stack,
        api(stack.apis[0]) as client,
    ):
        settings = S3Settings(
            endpoint_url=stack.env["S3__ENDPOINT_URL"],
            bucket=stack.env["S3__BUCKET"],
            access_key_id=stack.env["S3__ACCESS_KEY_ID"],
            secret_access_key=stack.env["S3__SECRET_ACCESS_KEY"],
        )
        s3 = make_s3_client(settings)
        store, blobs = S3JobStore(s3, settings.bucket), S3BlobStore(s3, settings.bucket)
        orphan = str(uuid.uuid4())
        with (DATA / SHORT).open("rb") as f:  # what a replica does before it publishes
            blobs.save_audio(orphan, f, 1 << 30)
        store.insert(orphan, JobSpec(TranscriptionOptions(model="tiny.en")))

        (worker,) = stack.workers
        busy = submit(client, long_speech.path.name, long_speech.path.read_bytes())
        wait_for(  # its own partition may be read later: `waiting` goes in only once it runs
            lambda: True if (busy, 1) in worker.processing() else None,
            "the worker to start the long job",
            JOB_SECONDS,
        )
        waiting = submit(client, SHORT)  # queued behind `busy` while the sweeps run
        wait_for(
            lambda: True if f"job {orphan}: deleted" in worker.log() else None,
            "the worker to delete the orphan",
            JOB_SECONDS,
        )
        assert_error_envelope(client.get(f"/transcription/{orphan}"), 404)
        assert not blobs.job_exists(orphan)

        for job_id in (busy, waiting):
            wait_status(client, job_id, "Completed")
            assert take(client, job_id)
        assert f"job {waiting}: deleted" not in worker.log()
        assert worker.processing() == [(busy, 1), (waiting, 1)]
