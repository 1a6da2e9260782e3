"""Where the faster-whisper backend puts a model, with and without CUDA: device, GPU index,
compute type, batch size and encoder path, checked through the backend's CTranslate2 seams
(`cuda_devices`, `model_factory`), so the CUDA choices run on a machine without a GPU."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from whisperx_api.config import Settings
from whisperx_api.errors import InvalidRequest
from whisperx_api.pipeline.catalog import ModelCatalog
from whisperx_api.pipeline.registry import default_registry
from whisperx_api.pipeline.stages.faster_whisper import DeviceConfig, FasterWhisperBackend


class Factory:
    """Stands in for `WhisperModel`: records each placement it is asked for."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, source: str, **placement: Any) -> Any:
        self.calls.append(placement)
        return SimpleNamespace(model=SimpleNamespace(device=placement["device"]))


@pytest.fixture
def factory() -> Factory:
    return Factory()


@pytest.fixture
def make(tmp_path: Path, factory: Factory) -> Iterator[Any]:
    made: list[FasterWhisperBackend] = []

    def build(
        gpus: int, devices: DeviceConfig | None = None, **kwargs: Any
    ) -> FasterWhisperBackend:
        backend = FasterWhisperBackend(
            ModelCatalog("tiny.en", cache_dir=tmp_path),
            devices or DeviceConfig(),
            cuda_devices=lambda: gpus,
            model_factory=factory,
            **kwargs,
        )
        made.append(backend)
        return backend

    yield build
    for backend in made:
        backend.close()


def loaded(backend: FasterWhisperBackend, key: str) -> Any:
    with backend._cache.acquire(key) as found:
        return found


def test_without_cuda_auto_is_the_cpu_with_int8_batches_of_four(
    make: Any, factory: Factory
) -> None:
    backend = make(gpus=0)
    found = loaded(backend, backend._cache_key("tiny.en", None, None))
    assert factory.calls[0]["device"] == "cpu"
    assert factory.calls[0]["device_index"] == 0
    assert factory.calls[0]["compute_type"] == "int8"
    assert (found.batch_size, found.scheduler._max_batch) == (4, 4)
    assert found.runner.encode_per_batch is False
    with pytest.raises(InvalidRequest, match="this machine has 0 CUDA device") as info:
        backend.check_device("cuda", 0)
    assert info.value.param == "device"


def test_with_cuda_auto_is_gpu_zero_with_float16_batches_of_eight(
    make: Any, factory: Factory
) -> None:
    backend = make(gpus=2)
    found = loaded(backend, backend._cache_key("tiny.en", None, None))
    placement = factory.calls[0]
    assert (placement["device"], placement["device_index"]) == ("cuda", 0)
    assert placement["compute_type"] == "float16"
    assert (found.batch_size, found.scheduler._max_batch) == (8, 8)
    assert found.runner.encode_per_batch is True
    # A request for the default placement shares the default model.
    assert backend._cache_key("tiny.en", "cuda", 0) == "tiny.en"


def test_a_request_for_a_second_gpu_loads_a_copy_there(make: Any, factory: Factory) -> None:
    backend = make(gpus=2)
    key = backend._cache_key("tiny.en", "cuda", 1)
    assert key == "tiny.en@cuda:1"
    loaded(backend, key)
    assert (factory.calls[-1]["device"], factory.calls[-1]["device_index"]) == ("cuda", 1)
    assert backend.loaded_models() == ["tiny.en@cuda:1"]
    assert backend.unload_model("tiny.en@cuda:1") == "tiny.en@cuda:1"
    with pytest.raises(InvalidRequest, match="CUDA device 2 is not available; this machine has 2"):
        backend._cache_key("tiny.en", "cuda", 2)


def test_the_configured_gpu_index_is_the_default_placement(make: Any, factory: Factory) -> None:
    backend = make(gpus=2, devices=DeviceConfig(device="cuda", device_index=1))
    assert backend._cache_key("tiny.en", None, None) == "tiny.en"
    assert backend._cache_key("tiny.en", "cuda", 1) == "tiny.en"
    assert backend._cache_key("tiny.en", "cuda", 0) == "tiny.en@cuda:0"
    loaded(backend, "tiny.en")
    assert (factory.calls[0]["device"], factory.calls[0]["device_index"]) == ("cuda", 1)


def test_a_cpu_request_on_a_gpu_machine_gets_int8_on_the_cpu(make: Any, factory: Factory) -> None:
    backend = make(gpus=1)
    key = backend._cache_key("tiny.en", "cpu", 5)
    assert key == "tiny.en@cpu:0"  # an index means nothing on the CPU
    found = loaded(backend, key)
    assert (factory.calls[0]["device"], factory.calls[0]["device_index"]) == ("cpu", 0)
    assert factory.calls[0]["compute_type"] == "int8"
    assert (found.batch_size, found.runner.encode_per_batch) == (4, False)


@pytest.mark.parametrize(("gpus", "device"), [(0, "cpu"), (1, "cuda")])
def test_a_configured_compute_type_and_batch_size_win(
    make: Any, factory: Factory, gpus: int, device: str
) -> None:
    backend = make(gpus=gpus, devices=DeviceConfig(compute_type="int8_float32"), batch_size=3)
    found = loaded(backend, "tiny.en")
    assert (factory.calls[0]["device"], factory.calls[0]["compute_type"]) == (
        device,
        "int8_float32",
    )
    assert found.batch_size == 3


def test_the_cpu_batched_encoder_setting_runs_the_gpu_encoder_path_on_cpu(
    make: Any, factory: Factory
) -> None:
    backend = make(gpus=0, devices=DeviceConfig(cpu_batched_encoder=True))
    found = loaded(backend, "tiny.en")
    assert factory.calls[0]["device"] == "cpu"
    assert found.runner.encode_per_batch is True
    assert found.batch_size == 4  # the batch size still follows the device


def test_the_setting_reaches_the_backend(tmp_path: Path) -> None:
    settings = Settings(
        whisper={"model": "tiny.en", "cache_dir": tmp_path, "cpu_batched_encoder": True}
    )
    backend = default_registry().transcription("faster-whisper")(settings)
    try:
        assert isinstance(backend, FasterWhisperBackend)
        assert backend._devices.cpu_batched_encoder is True
    finally:
        backend.close()
