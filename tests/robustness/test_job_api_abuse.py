"""Job API abuse through a real server on the fake WhisperX command: unknown and malformed ids,
cancelling twice, fetching too early or twice, and kill -9 in the middle of a job.

Nothing may be lost (an accepted job delivers its result exactly once, also across a crash) or
left behind (its directory and temp files go once the result is fetched).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.audio import DATA
from tests.robustness.conftest import Deployment, assert_error, wait_status

pytestmark = pytest.mark.slow

AUDIO = "good_short.mp3"
RESULT = "Hello in auto from tiny.en. It costs 42 euros.\n"  # the fake command's txt answer
NOT_FOUND = ("not_found_error", "not_found")
CONFLICT = "conflict_error"
UNKNOWN_IDS = [
    "00000000-0000-0000-0000-000000000000",
    "abc",
    "%00",
    "a" * 5000,
    "%E2%80%AEdcba",  # a right-to-left override
    "'%20OR%201=1%20--",
]


def submit(client: httpx.Client, **fields: str) -> str:
    response = client.post(
        "/transcription", files={"file": (AUDIO, (DATA / AUDIO).read_bytes())}, data=fields
    )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def hold_the_worker(client: httpx.Client) -> str:
    """A job the fake command works on for 30 s, so the next ones stay queued."""
    job_id = submit(client, model="slow")
    wait_status(client, job_id, {"Processing"})
    return job_id


@pytest.fixture
def server(cli_deployment: Callable[..., Deployment]) -> Deployment:
    deployment = cli_deployment(ENABLE_CONCURRENCY="false")  # a held worker keeps the rest queued
    deployment.start()
    return deployment


@pytest.mark.parametrize("job_id", UNKNOWN_IDS, ids=range(len(UNKNOWN_IDS)))
@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("GET", "/result"), ("DELETE", "")], ids=str
)
def test_an_unknown_or_malformed_id_is_404(
    model_server: Deployment, job_id: str, method: str, suffix: str
) -> None:
    with model_server.client() as client:
        response = client.request(method, f"/transcription/{job_id}{suffix}")
    assert_error(response, 404, *NOT_FOUND, None)


def test_an_id_that_escapes_its_path_segment_matches_no_route(model_server: Deployment) -> None:
    with model_server.client() as client:
        response = client.get("/transcription/..%2F..%2Fstatus")
    assert assert_error(response, 404, "not_found_error", None, None) == "Not Found"


def test_cancel_twice_and_fetch_too_early(server: Deployment) -> None:
    with server.client() as client:
        running = hold_the_worker(client)
        queued = submit(client)
        assert_error(
            client.get(f"/transcription/{running}/result"), 409, CONFLICT, "job_not_ready", None
        )
        assert_error(
            client.get(f"/transcription/{queued}/result"), 409, CONFLICT, "job_not_ready", None
        )
        assert_error(client.delete(f"/transcription/{running}"), 409, CONFLICT, "conflict", None)

        first = client.delete(f"/transcription/{queued}")
        assert first.status_code == 200, first.text
        assert first.json() == {"success": True, "message": "Job canceled successfully"}
        assert queued not in server.job_dirs()  # its audio went with the cancel
        assert_error(client.delete(f"/transcription/{queued}"), 409, CONFLICT, "conflict", None)
        assert_error(
            client.get(f"/transcription/{queued}/result"), 409, CONFLICT, "job_cancelled", None
        )
        assert client.get(f"/transcription/{queued}").json()["status"] == "Cancelled"
        # the held job is still the only one at work, untouched by all this
        assert client.get(f"/transcription/{running}").json()["status"] == "Processing"
        assert server.job_dirs() == [running]


def test_fetch_twice_then_cancel_the_fetched_job(server: Deployment) -> None:
    with server.client() as client:
        job_id = submit(client)
        wait_status(client, job_id, {"Completed"})
        assert_error(client.delete(f"/transcription/{job_id}"), 409, CONFLICT, "conflict", None)
        first = client.get(f"/transcription/{job_id}/result")
        assert (first.status_code, first.text) == (200, RESULT)
        assert_error(client.get(f"/transcription/{job_id}/result"), 404, *NOT_FOUND, None)
        assert_error(client.get(f"/transcription/{job_id}"), 404, *NOT_FOUND, None)
        assert_error(client.delete(f"/transcription/{job_id}"), 404, *NOT_FOUND, None)
    server.assert_nothing_left()


def test_a_job_is_visible_only_to_the_key_that_made_it(
    cli_deployment: Callable[..., Deployment], tmp_path_factory: pytest.TempPathFactory
) -> None:
    keys = tmp_path_factory.mktemp("keys") / "keys.json"
    keys.write_text('{"sk-robust": "owner", "sk-other": "other"}')
    deployment = cli_deployment(API_KEYS_FILE=str(keys))
    deployment.start()
    with deployment.client() as owner, deployment.client("sk-other") as other:
        job_id = submit(owner)
        wait_status(owner, job_id, {"Completed"})
        for method, suffix in [("GET", ""), ("GET", "/result"), ("DELETE", "")]:
            response = other.request(method, f"/transcription/{job_id}{suffix}")
            assert_error(response, 404, *NOT_FOUND, None)
        first = owner.get(f"/transcription/{job_id}/result")
        assert (first.status_code, first.text) == (200, RESULT)
    deployment.assert_nothing_left()


def test_kill_9_mid_job_then_restart_delivers_every_job_exactly_once_and_sweeps_orphans(
    cli_deployment: Callable[..., Deployment],
) -> None:
    deployment = cli_deployment()
    deployment.start()
    with deployment.client() as client:
        running = hold_the_worker(client)
        waiting = [submit(client) for _ in range(3)]
    deployment.kill()
    # What a kill in the middle of a submit leaves: staged audio the store never recorded.
    orphan = deployment.data / "jobs" / str(uuid.uuid4())
    orphan.mkdir()
    (orphan / "audio").write_bytes((DATA / AUDIO).read_bytes())

    deployment.start()
    assert orphan.name not in deployment.job_dirs()  # swept before the server answers
    with deployment.client() as client:
        # the interrupted job is retried (and holds the worker 30 s again): let the others pass
        for job_id in waiting:
            wait_status(client, job_id, {"Completed"})
        done = wait_status(client, running, {"Completed"})
        assert done["attempts"] == 2, done  # the one cut short by the kill, and the retry
        for job_id in [running, *waiting]:
            first = client.get(f"/transcription/{job_id}/result")
            assert first.status_code == 200, first.text
            assert_error(client.get(f"/transcription/{job_id}/result"), 404, *NOT_FOUND, None)
    deployment.assert_nothing_left()
