"""whisperx-api: a self-hosted, OpenAI-compatible speech-to-text server."""

from importlib.metadata import PackageNotFoundError, version

try:  # pyproject.toml holds the one version; the installed metadata carries it here
    __version__ = version("whisperx-api")
except PackageNotFoundError:  # sources on sys.path without an install
    __version__ = "0+unknown"
