"""Per-request tokens sealed at submit and opened only by the worker (pipeline/sealing.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audio import tone_wav
from tests.fakes import FakeDiarizer, FakeTranscriber
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.errors import ConfigError, TokenUnavailable, UnsupportedParameter
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.sealing import SEALED_PREFIX, TokenSealer, open_token
from whisperx_api.pipeline.stage import StageContext
from whisperx_api.settings_loader import load_settings

SECRET = "x" * 40


def test_a_sealed_token_opens_with_the_same_secret_in_another_process() -> None:
    sealed = TokenSealer.from_secret(SECRET).seal("hf_abc")
    assert sealed.startswith(SEALED_PREFIX)
    assert "hf_abc" not in sealed
    assert TokenSealer.from_secret(SECRET).open(sealed) == "hf_abc"  # a fresh instance


def test_another_key_or_a_tampered_value_cannot_open_it() -> None:
    sealed = TokenSealer.from_secret(SECRET).seal("hf_abc")
    with pytest.raises(TokenUnavailable) as other_key:
        TokenSealer.from_secret("y" * 40).open(sealed)
    assert (other_key.value.code, other_key.value.param) == ("hf_token_unavailable", "hf_token")
    with pytest.raises(TokenUnavailable):
        TokenSealer.ephemeral().open(TokenSealer.ephemeral().seal("hf_abc"))  # a "restart"
    with pytest.raises(TokenUnavailable):
        TokenSealer.from_secret(SECRET).open(sealed[:-4] + "AAAA")


def test_open_token_passes_unsealed_values_and_refuses_sealed_ones_without_a_key() -> None:
    assert open_token(None, None) is None
    assert open_token(None, "hf_plain") == "hf_plain"  # a spec written before sealing
    with pytest.raises(TokenUnavailable):
        open_token(None, TokenSealer.ephemeral().seal("hf_abc"))


def runner(sealer: TokenSealer | None) -> PipelineRunner:
    return PipelineRunner(FakeTranscriber(), 600.0, diarizer=FakeDiarizer(), sealer=sealer)


def test_check_seals_the_token_of_a_diarize_job_and_drops_it_otherwise() -> None:
    sealer = TokenSealer.ephemeral()
    diarize = runner(sealer).check(
        TranscriptionOptions(model="base", diarize=True, hf_token="hf_abc")
    )
    assert diarize.hf_token is not None
    assert diarize.hf_token.startswith(SEALED_PREFIX)
    assert sealer.open(diarize.hf_token) == "hf_abc"
    plain = runner(sealer).check(TranscriptionOptions(model="base", hf_token="hf_abc"))
    assert plain.hf_token is None


def test_without_a_sealer_a_per_request_token_is_refused() -> None:
    with pytest.raises(UnsupportedParameter) as refused:
        runner(None).check(TranscriptionOptions(model="base", diarize=True, hf_token="hf_abc"))
    assert refused.value.param == "hf_token"
    assert "SECRETS__KEY" in refused.value.message
    # no token, or no diarization: nothing to keep, nothing refused
    runner(None).check(TranscriptionOptions(model="base", diarize=True))
    assert runner(None).check(TranscriptionOptions(model="base", hf_token="x")).hf_token is None


def test_the_diarizer_gets_the_opened_token(tmp_path: Path) -> None:
    sealer = TokenSealer.ephemeral()
    diarizer = FakeDiarizer()
    run = PipelineRunner(FakeTranscriber(), 600.0, diarizer=diarizer, sealer=sealer)
    stored = run.check(TranscriptionOptions(model="base", diarize=True, hf_token="hf_abc"))
    run.run(tone_wav(tmp_path / "a.wav", 2.0), stored, StageContext())
    assert [request.hf_token for request in diarizer.requests] == ["hf_abc"]
    restarted = PipelineRunner(FakeTranscriber(), 600.0, diarizer=FakeDiarizer())
    with pytest.raises(TokenUnavailable):
        restarted.run(tone_wav(tmp_path / "a.wav", 2.0), stored, StageContext())


def test_secrets_key_comes_from_the_environment_and_must_be_long(tmp_path: Path) -> None:
    loaded = load_settings(environ={"SECRETS__KEY": SECRET}, cwd=tmp_path)
    assert loaded.secrets.key is not None
    assert loaded.secrets.key.get_secret_value() == SECRET
    assert load_settings(environ={"SECRETS__KEY": ""}, cwd=tmp_path).secrets.key is None
    with pytest.raises(ConfigError, match="SECRETS__KEY"):
        load_settings(environ={"SECRETS__KEY": "too-short"}, cwd=tmp_path)
