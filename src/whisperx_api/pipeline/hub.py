"""Whether a hub model name can be served now: already in the local hub cache, or the hub answers.

faster-whisper fetches a hub name at its first load. A request must learn at submit, not from a
failed job, that the hub cannot be reached (offline machine, `HF_HUB_OFFLINE=1`, a firewall);
the answer is kept for a minute so that a burst of requests costs one probe. Only the hub
client is imported, never faster-whisper: an API replica in `MODE=distributed` asks too.
"""

from __future__ import annotations

import logging
import threading
import time

from whisperx_api.pipeline.catalog import HUB_REPOS

log = logging.getLogger(__name__)


class HubProbe:
    """Cached-or-reachable checks for faster-whisper's hub names."""

    def __init__(self, timeout_seconds: float = 5.0, remember_seconds: float = 60.0) -> None:
        self._timeout = timeout_seconds
        self._remember = remember_seconds
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[float, bool]] = {}

    def cached(self, name: str) -> bool:
        """The model's weights are in the local hub cache: loading it needs no network."""
        from huggingface_hub import try_to_load_from_cache

        repo = HUB_REPOS.get(name)
        return repo is not None and isinstance(try_to_load_from_cache(repo, "model.bin"), str)

    def reachable(self, name: str) -> bool:
        """The hub answers for this model now (remembered for a minute)."""
        now = time.monotonic()
        with self._lock:
            known = self._answers.get(name)
            if known is not None and now - known[0] < self._remember:
                return known[1]
        answer = self._ask(name)
        with self._lock:
            self._answers[name] = (now, answer)
        return answer

    def _ask(self, name: str) -> bool:
        from huggingface_hub import HfApi

        repo = HUB_REPOS.get(name)
        if repo is None:
            return False
        try:
            HfApi().model_info(repo, timeout=self._timeout)
        except Exception as exc:
            log.debug("the model hub cannot serve %s now: %s", repo, exc)
            return False
        return True
