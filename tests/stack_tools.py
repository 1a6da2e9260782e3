"""Reaching into a distributed test stack from the test itself: its S3 job store, raw records
on its request topic, and what its dead-letter topic holds."""

from __future__ import annotations

import asyncio
import time
import uuid

from tests.distributed_stack import Stack
from whisperx_api.config import S3Settings
from whisperx_api.distributed.kafka_messages import DeadLetter
from whisperx_api.distributed.s3 import make_s3_client
from whisperx_api.distributed.s3_store import S3JobStore

READ_SECONDS = 60


def stack_store(stack: Stack) -> S3JobStore:
    """The stack's job store, as its processes see it."""
    settings = S3Settings(
        endpoint_url=stack.env["S3__ENDPOINT_URL"],
        bucket=stack.env["S3__BUCKET"],
        access_key_id=stack.env["S3__ACCESS_KEY_ID"],
        secret_access_key=stack.env["S3__SECRET_ACCESS_KEY"],
    )
    return S3JobStore(make_s3_client(settings), settings.bucket)


def put_raw_record(stack: Stack, job_id: str, body: bytes) -> None:
    """Overwrite a job's record with `body` (what another version, or damage, leaves)."""
    store = stack_store(stack)
    store._client.put_object(Bucket=store._bucket, Key=store._record_key(job_id), Body=body)


def publish_raw(stack: Stack, value: bytes, key: bytes | None) -> tuple[int, int]:
    """Publish `value` on the request topic as is; (partition, offset) it landed at."""
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]

    async def send() -> tuple[int, int]:
        producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, enable_idempotence=False)
        await producer.start()
        try:
            meta = await producer.send_and_wait(stack.request_topic, value, key=key)
            return int(meta.partition), int(meta.offset)
        finally:
            await producer.stop()

    return asyncio.run(send())


def dead_letters(stack: Stack) -> list[DeadLetter]:
    """Everything on the stack's dead-letter topic now, from the beginning to its end."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read() -> list[DeadLetter]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=stack.bootstrap,
            group_id=f"dlq-reader-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            await consumer.topics()
            topic = stack.dead_letter_topic
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
            assert partitions, f"no dead-letter topic {topic}"
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            letters: list[DeadLetter] = []
            deadline = time.monotonic() + READ_SECONDS
            while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
                assert time.monotonic() < deadline, "could not read the dead-letter topic"
                batches = await consumer.getmany(timeout_ms=500)
                letters.extend(
                    DeadLetter.from_bytes(r.value) for rs in batches.values() for r in rs
                )
            return letters
        finally:
            await consumer.stop()

    return asyncio.run(read())


def all_committed(stack: Stack) -> bool:
    """Whether the group has committed every message on the request topic (read without
    joining the group)."""
    return asyncio.run(_all_committed(stack))


async def _all_committed(stack: Stack) -> bool:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    probe = AIOKafkaConsumer(
        bootstrap_servers=stack.bootstrap,
        group_id=stack.env["KAFKA__CONSUMER_GROUP"],
        enable_auto_commit=False,
    )
    await probe.start()
    try:
        partitions = [TopicPartition(stack.request_topic, p) for p in range(stack.partitions)]
        probe.assign(partitions)
        ends = await probe.end_offsets(partitions)
        committed = {tp: await probe.committed(tp) or 0 for tp in partitions}
        return bool(committed == ends)
    finally:
        await probe.stop()
