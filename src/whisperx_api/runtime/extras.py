"""Optional dependencies a configuration needs, checked before anything imports them."""

from __future__ import annotations

import importlib.util

from whisperx_api.errors import ConfigError

DISTRIBUTED_MODULES = ("aiokafka", "boto3")


def require_distributed_extra() -> None:
    """MODE=distributed imports Kafka and S3 clients: say what to install, not an ImportError."""
    missing = [name for name in DISTRIBUTED_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"MODE=distributed needs {', '.join(missing)}, which is not installed: "
            "pip install 'whisperx-api[distributed]'"
        )
