"""What a transcript keeps: mixed languages, speech after noise and music, noise alone.

On the bundled base model (int8, CPU, the server's defaults), prints:

- `languages.flac` (eight sentences alternating en/de/fr/es): per sentence the language(s) of
  the segments heard over it and their WER in the sentence's own language, with no language
  given and with `languages=en,de,fr,es`; the number with text and the number in the right
  language; the warnings' codes; seconds taken.
- each recording alone and after 20 s of noise and chords (`tests/noise_music.py`): WER.
- 60 s of noise and chords alone: the text.

    .venv/bin/python bench/languages.py [--recordings en_recorded.flac conv2.flac]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.audio import DATA  # noqa: E402
from tests.noise_music import RATE, noise_and_music  # noqa: E402
from tests.wer import normalized_wer  # noqa: E402

from whisperx_api.domain.options import TranscriptionOptions  # noqa: E402
from whisperx_api.domain.transcript import Transcript  # noqa: E402
from whisperx_api.pipeline.catalog import ModelCatalog  # noqa: E402
from whisperx_api.pipeline.runner import PipelineRunner  # noqa: E402
from whisperx_api.pipeline.stage import StageContext  # noqa: E402
from whisperx_api.pipeline.stages.decode import decode_audio  # noqa: E402
from whisperx_api.pipeline.stages.faster_whisper import (  # noqa: E402
    DeviceConfig,
    FasterWhisperBackend,
)

CANDIDATES = ("en", "de", "fr", "es")


def words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def write_wav(path: Path, samples: npt.NDArray[np.float32]) -> Path:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm)
    return path


def run(runner: PipelineRunner, path: Path, **options: Any) -> tuple[Transcript, float]:
    began = time.perf_counter()
    made = runner.run(path, TranscriptionOptions(model="base", **options), StageContext())
    return made, time.perf_counter() - began


def mixed(runner: PipelineRunner) -> None:
    sentences = json.loads((DATA / "languages.json").read_text())["sentences"]
    for label, options in (
        ("no language", {}),
        ("languages=en,de,fr,es", {"languages": CANDIDATES}),
    ):
        transcript, seconds = run(runner, DATA / "languages.flac", **options)
        with_text = right = 0
        print(f"languages.flac, {label}: main language {transcript.language}, {seconds:.1f} s")
        for sentence in sentences:
            heard = [
                s
                for s in transcript.segments
                if s.start < sentence["end"] and s.end > sentence["start"]
            ]
            text = words(" ".join(s.text for s in heard))
            wer = float(jiwer.wer(words(sentence["text"]), text)) if text else 1.0
            found = [s.language for s in heard]
            with_text += bool(text)
            right += bool(heard) and all(lang == sentence["language"] for lang in found)
            print(f"  {sentence['language']} -> {found}  WER {wer:.2f}  {text!r}")
        codes = sorted({w.code.value for w in transcript.warnings})
        print(f"  sentences with text {with_text}/8, right language {right}/8, warnings {codes}")


def after_noise(runner: PipelineRunner, names: list[str], tmp: Path) -> None:
    for name in names:
        reference = (DATA / name).with_suffix(".txt").read_text()
        recording = decode_audio(DATA / name, 600).samples
        joined = write_wav(tmp / "after.wav", np.concatenate([noise_and_music(20.0), recording]))
        alone = normalized_wer(reference, run(runner, DATA / name)[0].text)
        after = normalized_wer(reference, run(runner, joined)[0].text)
        print(f"{name}: WER alone {alone:.3f}, after 20 s of noise and music {after:.3f}")
    noise = run(runner, write_wav(tmp / "noise.wav", noise_and_music(60.0)))[0]
    print(f"60 s of noise and music alone: text {noise.text!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recordings", nargs="+", default=["en_recorded.flac", "en_espeak.flac"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        catalog = ModelCatalog("base", cache_dir=tmp / "cache")
        runner = PipelineRunner(FasterWhisperBackend(catalog, DeviceConfig("cpu")), 600)
        mixed(runner)
        after_noise(runner, args.recordings, tmp)


if __name__ == "__main__":
    main()
