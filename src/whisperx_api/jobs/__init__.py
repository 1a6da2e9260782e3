"""The job engine: submit, status, result, cancel, wait; the SQLite store and the worker pool."""
