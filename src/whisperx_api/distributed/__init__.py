"""MODE=kafka: the Kafka job queue, the S3 job and audio stores, the worker and their wiring.

Everything that needs the `distributed` extra (aiokafka, boto3) lives here, and nothing in the
core imports this package except the runtime selector (`api.app.build_runtime`) and the `worker`
command, both lazily and only in MODE=kafka; the import-linter contracts in pyproject.toml
enforce that.
"""
