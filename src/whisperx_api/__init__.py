"""whisperx-api: a self-hosted, OpenAI-compatible speech-to-text server."""

__version__ = "0.1.0"
