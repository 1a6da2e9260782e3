"""What each CTranslate2 call of a long file costs on this machine, in CPU and wall seconds.

The server and faster-whisper's batched pipeline make different calls for the same file: the
server encodes chunk by chunk on a CPU, detects each batch's languages, and decodes batches of
`WHISPER__BATCH_SIZE` (4 on CPU); faster-whisper encodes and decodes batches of 8 and detects
the language once. This prints, for 8 real 30-s chunks of speech and `base` (int8), the best of
`--repeats` runs of each call: the encoder chunk by chunk and in one batch, decoding (beam 5)
batches of 1, 4 and 8, and detection on a batch of 4, for each `--threads` setting (0: the
library's default). CPU seconds are the work done, which other load on the machine changes far
less than the wall time.

    .venv/bin/python bench/model_calls.py [--threads 0 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.distributed_stack import build_speech  # noqa: E402

CHUNKS = 8
CHUNK_SAMPLES = 30 * 16_000


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured(call: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one call."""
    cpu, wall = cpu_seconds(), time.perf_counter()
    call()
    return time.perf_counter() - wall, cpu_seconds() - cpu


def calls(model: Any, features: Any, prompt: list[int]) -> dict[str, Callable[[], object]]:
    """The calls to time, by name, on `model` (a faster-whisper `WhisperModel`)."""
    import ctranslate2
    import numpy as np

    encoded = np.asarray(model.encode(features))

    def rows(count: int) -> Any:
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded[:count]))

    def decode(count: int) -> object:
        return model.model.generate(
            rows(count),
            [prompt] * count,
            beam_size=5,
            max_length=model.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )

    return {
        f"encode {CHUNKS} chunks one by one": lambda: [
            model.encode(features[i : i + 1]) for i in range(CHUNKS)
        ],
        f"encode {CHUNKS} chunks in one call": lambda: model.encode(features),
        "decode a batch of 1": lambda: decode(1),
        "decode a batch of 4": lambda: decode(4),
        "decode a batch of 8": lambda: decode(8),
        "detect languages, batch of 4": lambda: model.model.detect_language(rows(4)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import numpy as np
    from faster_whisper import WhisperModel, decode_audio
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    from whisperx_api.pipeline.catalog import ModelCatalog

    print(f"before: load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_speech(root / "speech.wav", CHUNKS * 30 + 5)
        source = ModelCatalog("base", cache_dir=root / "cache").resolve("base").source
        audio = decode_audio(str(root / "speech.wav"))
        models = {
            threads: WhisperModel(source, device="cpu", compute_type="int8", cpu_threads=threads)
            for threads in args.threads
        }
    first = next(iter(models.values()))
    features = np.stack(
        [
            pad_or_trim(
                first.feature_extractor(audio[i * CHUNK_SAMPLES : (i + 1) * CHUNK_SAMPLES])[
                    ..., :-1
                ]
            )
            for i in range(CHUNKS)
        ]
    )
    tokenizer = Tokenizer(first.hf_tokenizer, True, task="transcribe", language="en")
    prompt = first.get_prompt(tokenizer, previous_tokens=[], without_timestamps=True)
    best: dict[tuple[int, str], tuple[float, float]] = {}
    for _ in range(args.repeats):  # alternating, so that load hits every setting alike
        for threads, model in models.items():
            for name, call in calls(model, features, prompt).items():
                wall, cpu = measured(call)
                low_wall, low_cpu = best.get((threads, name), (float("inf"), float("inf")))
                best[(threads, name)] = (min(low_wall, wall), min(low_cpu, cpu))
    print(f"best of {args.repeats}, {CHUNKS} chunks of 30 s, base int8, beam 5")
    for (threads, name), (wall, cpu) in best.items():
        print(f"threads {threads}: {name:<32} {cpu:6.2f} CPU-s  {wall:6.2f} s wall")
    print(f"after: load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
