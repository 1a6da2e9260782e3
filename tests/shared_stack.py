"""One distributed deployment (`MODE=kafka`: an API replica and a worker on Tansu + moto) for
every test that needs a plain one and leaves it as it found it.

A deployment costs two process boots, a model load and a consumer-group join (seconds on
Tansu), so the feature checks that merely submit jobs and read their results share this one
instead of each module deploying its own. Tests that kill, restart or reconfigure processes, or
count what a process did, keep their own (`tests.distributed_stack.deployed`).

The settings are the union of what the sharing tests need, each harmless to the others:
downloads from loopback are allowed (`audio_url` from a local file server), and a second key,
`OTHER_KEY`, belongs to another tenant. The default model is tiny.en; a test that needs base
asks for it per request. Every test on it works with its own job ids, voices and keys.

Import the fixture into a test module: `from tests.shared_stack import shared_stack` (with
`kafka_bootstrap` and `s3_endpoint`). tests/conftest.py puts every test that uses it in one
xdist group, so a parallel run deploys it once, in one worker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.distributed_stack import Stack, deployed

OTHER_KEY = "sk-other-tenant"
XDIST_GROUP = "shared-kafka-stack"


@pytest.fixture(scope="session")
def shared_stack(
    kafka_bootstrap: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A ready deployment: `apis[0]` answers with `tests.distributed_stack.KEY` (and
    `OTHER_KEY` for another tenant), `workers[0]` holds every partition."""
    root = tmp_path_factory.mktemp("shared-kafka")
    keys = root / "keys.json"
    keys.write_text(json.dumps({OTHER_KEY: "other"}))
    with deployed(
        kafka_bootstrap,
        s3_endpoint,
        root,
        apis=1,
        workers=1,
        FETCH__ALLOW_PRIVATE_NETWORKS="true",
        API_KEYS_FILE=str(keys),
    ) as running:
        yield running
