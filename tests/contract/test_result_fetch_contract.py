"""Two API replicas over one job store (a handle each, as on two hosts; both adapters): a job's
result goes to one fetch. The other replica answers 404 while it is being sent and once it has
gone out; a send that failed gives it back to whichever replica is asked next."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.conftest import OpenStore
from whisperx_api.domain.job import JobSpec
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Segment, Task, Transcript
from whisperx_api.errors import NotFound
from whisperx_api.jobs.messages import dump_transcript
from whisperx_api.jobs.ports import JobStore
from whisperx_api.jobs.service import JobService
from whisperx_api.jobs.signals import JobSignals
from whisperx_api.storage.local import LocalBlobStore

pytestmark = pytest.mark.anyio

OWNER = "key-a"


class NoAdmission:
    """Submit-time checks, unused: the job is written to the store directly."""

    def check(self, options: TranscriptionOptions) -> TranscriptionOptions:
        return options

    def probe(self, audio_path: Path, options: TranscriptionOptions | None = None) -> None:
        return None


def replica(store: JobStore, root: Path) -> JobService:
    return JobService(
        store,
        LocalBlobStore(root),
        NoAdmission(),
        JobSignals(),
        max_file_size=1 << 20,
        max_queued_jobs=10,
    )


def completed_job(store: JobStore, job_id: str, text: str) -> None:
    segment = Segment(id=0, start=0.0, end=1.0, text=text)
    transcript = Transcript(task=Task.TRANSCRIBE, language="en", duration=1.0, segments=(segment,))
    store.insert(job_id, JobSpec(TranscriptionOptions(model="base"), owner=OWNER))
    assert store.claim("w1", 60.0, job_id) is not None
    assert store.complete(job_id, "w1", dump_transcript(transcript))


async def test_a_result_goes_to_one_replica_and_back_if_unsent(
    open_store: OpenStore, tmp_path: Path
) -> None:
    completed_job(open_store(), "job", "hello")
    a, b = replica(open_store(), tmp_path / "a"), replica(open_store(), tmp_path / "b")
    sending = await a.take_result("job", OWNER)
    assert sending.transcript.text == "hello"
    with pytest.raises(NotFound):
        await b.take_result("job", OWNER)  # while A sends it
    assert (await b.status("job", OWNER)).record.status.value == "Completed"
    await a.return_result(sending)  # A's client went away mid-download
    resent = await b.take_result("job", OWNER)
    assert resent.transcript.text == "hello"
    await b.release_result("job")  # B's client got all of it
    for either in (a, b):
        with pytest.raises(NotFound):
            await either.take_result("job", OWNER)
        with pytest.raises(NotFound):
            await either.status("job", OWNER)


async def test_another_keys_fetch_takes_nothing(open_store: OpenStore, tmp_path: Path) -> None:
    completed_job(open_store(), "job", "mine")
    service = replica(open_store(), tmp_path)
    with pytest.raises(NotFound):
        await service.take_result("job", "key-b")
    assert (await service.take_result("job", OWNER)).transcript.text == "mine"
