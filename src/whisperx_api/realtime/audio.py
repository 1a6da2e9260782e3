"""Appended audio: base64 PCM16 little-endian mono at the session's rate, to the 16 kHz float32
samples the VAD and Whisper read. Resampling keeps its filter state across appends, and an odd
trailing byte waits for the next append, so a stream cut anywhere decodes as one recording."""

from __future__ import annotations

import base64
import binascii

import av
import numpy as np
import numpy.typing as npt

from whisperx_api.domain.audio import SAMPLE_RATE
from whisperx_api.errors import InvalidBase64


class PcmDecoder:
    """One session's input format; a new one after every format change."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._odd = b""
        self._resampler = (
            None
            if rate == SAMPLE_RATE
            else av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        )

    def decode(self, audio: str) -> npt.NDArray[np.float32]:
        """16 kHz samples for one `input_audio_buffer.append` payload."""
        raw = self._odd + decode_base64(audio)
        whole = len(raw) - len(raw) % 2
        self._odd = raw[whole:]
        pcm = np.frombuffer(raw[:whole], dtype="<i2")
        if self._resampler is None or len(pcm) == 0:
            return (pcm.astype(np.float32) / 32768.0).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate
        return self._frames(self._resampler.resample(frame))

    @staticmethod
    def _frames(frames: list[av.AudioFrame]) -> npt.NDArray[np.float32]:
        if not frames:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32)


def decode_base64(audio: str) -> bytes:
    """Strict base64 (padding and alphabet checked); `InvalidBase64` otherwise."""
    try:
        return base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64(
            "input_audio_buffer.append: 'audio' is not valid base64.", param="audio"
        ) from None


def encode_pcm16(samples: npt.NDArray[np.float32]) -> bytes:
    """Float samples in [-1, 1] as PCM16 little-endian bytes (for clients and tests)."""
    clipped = np.clip(samples, -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()
