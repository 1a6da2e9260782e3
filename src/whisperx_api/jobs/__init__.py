"""The job engine: submit, status, result, cancel, wait; stores, queue and workers."""
