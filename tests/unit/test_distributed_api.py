"""An API replica in MODE=kafka checks requests as workers would and loads and imports nothing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.audio import DATA, tone_wav
from tests.fakes import FakeDiarizer, FakeTranscriber
from whisperx_api.config import SecretsSettings, Settings
from whisperx_api.distributed.kafka_dispatch import KafkaDispatch
from whisperx_api.distributed.kafka_queue import KafkaJobProducer
from whisperx_api.distributed.runtime import build_distributed_api
from whisperx_api.domain.job import JobSpec, JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.errors import ModelNotFound, Overloaded, UnsupportedParameter
from whisperx_api.jobs.service import JobService
from whisperx_api.jobs.signals import JobSignals
from whisperx_api.jobs.store import SqliteJobStore
from whisperx_api.pipeline.registry import default_registry
from whisperx_api.pipeline.sealing import TokenSealer
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.runtime.embedded import build_runner
from whisperx_api.storage.local import LocalBlobStore

INFERENCE_MODULES = ("faster_whisper", "ctranslate2", "torch", "onnxruntime", "senko")

_IMPORT_PROBE = """
import json, sys
from whisperx_api.api.app import create_app
from whisperx_api.settings_loader import load_settings
from whisperx_api.domain.options import TranscriptionOptions
app = create_app(load_settings())
runner = app.state.runtime.runner
resolved = runner.check(TranscriptionOptions(model="whisper-1"))
runner.probe(__import__("pathlib").Path(sys.argv[1]))
refusals = []
for may_download in (False, True):  # the hub-download gate, asked offline
    try:
        app.state.runtime.models.admit("large-v3", may_download)
    except Exception as exc:
        refusals.append(exc.code)
print(json.dumps({"model": resolved.model, "refusals": refusals, "modules": sorted(sys.modules)}))
"""


def kafka_settings(make_settings: Callable[..., Settings]) -> Settings:
    base = make_settings()
    return base.model_copy(update={"mode": "distributed"})


def test_api_replica_imports_no_inference_library(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MODE": "kafka",
        "HF_HUB_OFFLINE": "1",
        "JOBS__DATA_DIR": str(tmp_path / "data"),
        "WHISPER__CACHE_DIR": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, str(DATA / "en_espeak.flac")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["model"] == "base"
    assert report["refusals"] == ["admin_key_required", "model_not_found"]
    loaded = [m for m in report["modules"] if m.split(".")[0] in INFERENCE_MODULES]
    assert loaded == []
    assert not (tmp_path / "cache").exists(), "the bundled model must not be reassembled"


def test_api_replica_checks_models_and_refuses_model_management(
    make_settings: Callable[..., Settings],
) -> None:
    runtime = build_distributed_api(kafka_settings(make_settings))
    runner = runtime.runner
    assert runner.check(TranscriptionOptions(model="tiny.en")).model == "tiny.en"
    assert runner.check(TranscriptionOptions(model="large-v3")).model == "large-v3"
    with pytest.raises(ModelNotFound, match=r"Available models: base, tiny\.en"):
        runner.check(TranscriptionOptions(model="no-such-model"))
    assert "base" in runner.transcriber.available_models()
    assert runner.transcriber.loaded_models() == []
    with pytest.raises(UnsupportedParameter, match="workers hold the models"):
        runner.transcriber.load_model("base")
    assert runner.diarizer is not None
    with pytest.raises(UnsupportedParameter):
        runner.diarizer.load_model("senko")


def test_api_replica_refuses_an_hf_token_it_could_not_hand_to_a_worker(
    make_settings: Callable[..., Settings],
) -> None:
    """Without SECRETS__KEY a worker in another process could never open the token: 400."""
    asked = TranscriptionOptions(model="base", diarize=True, hf_token="hf_abc")
    runner = build_distributed_api(kafka_settings(make_settings)).runner
    with pytest.raises(UnsupportedParameter, match="SECRETS__KEY") as refused:
        runner.check(asked)
    assert refused.value.param == "hf_token"
    assert runner.check(replace(asked, diarize=False)).hf_token is None  # not needed: dropped

    keyed = kafka_settings(make_settings).model_copy(
        update={"secrets": SecretsSettings(key=SecretStr("k" * 40))}
    )
    sealed = build_distributed_api(keyed).runner.check(asked).hf_token
    assert sealed is not None
    assert "hf_abc" not in sealed
    assert TokenSealer.from_secret("k" * 40).open(sealed) == "hf_abc"  # as a worker opens it


@pytest.mark.anyio
async def test_submit_while_the_broker_is_down_is_a_503_and_leaves_nothing(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """The producer cannot publish (never started: no broker): the job and its audio go."""
    settings = kafka_settings(make_settings)
    runtime = build_distributed_api(settings)
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")  # stands in for S3; dispatch is tested
    staging = LocalBlobStore(tmp_path / "staging")
    dispatch = KafkaDispatch(KafkaJobProducer.from_settings(settings.kafka), lambda _: True)
    service = JobService(
        store,
        staging,
        runtime.runner,
        JobSignals(),
        max_file_size=1 << 20,
        max_queued_jobs=10,
        dispatcher=dispatch,
    )
    upload = io.BytesIO((DATA / "en_espeak.flac").read_bytes())
    with pytest.raises(Overloaded) as raised:
        await service.submit(JobSpec(TranscriptionOptions(model="")), upload)
    assert raised.value.code == "queue_unavailable"
    assert store.counts() == dict.fromkeys(JobStatus, 0)
    assert list((tmp_path / "staging" / "jobs").iterdir()) == []


def test_a_worker_with_the_same_secrets_key_opens_what_the_api_sealed(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """The worker builds its runner as `whisperx-api worker` does (`build_runner`)."""
    keyed = kafka_settings(make_settings).model_copy(
        update={"secrets": SecretsSettings(key=SecretStr("k" * 40))}
    )
    asked = TranscriptionOptions(model="base", diarize=True, hf_token="hf_abc")
    stored = build_distributed_api(keyed).runner.check(asked)
    diarizer = FakeDiarizer()
    registry = default_registry()
    registry.register_transcription("fake", lambda _settings: FakeTranscriber())
    registry.diarization_backends.register("fake", lambda _settings: diarizer)
    backends = keyed.backends.model_copy(update={"transcription": "fake", "diarization": "fake"})
    worker = build_runner(keyed.model_copy(update={"backends": backends}), registry)
    worker.run(tone_wav(tmp_path / "a.wav", 2.0), stored, StageContext())
    assert [request.hf_token for request in diarizer.requests] == ["hf_abc"]
