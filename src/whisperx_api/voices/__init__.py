"""Saved voices per API key: the registry (`service`), its storage port and the SQLite adapter.

Apart from the job engine: a job copies its voices' embeddings at submit time, so no worker
reads this registry. The S3 adapter lives with the other S3 code in `distributed`.
"""
