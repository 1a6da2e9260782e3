"""`KafkaJobConsumer.take` against a real broker (Tansu): several messages held at once,
finished out of order, and commits that never pass an unfinished one."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]

from tests.integration.test_kafka_queue import (
    consumer,
    group,
    publish_to_partition,
)
from tests.kafka_broker import kafka_bootstrap
from whisperx_api.distributed.kafka_queue import Delivery, KafkaJobConsumer, ensure_topics

__all__ = ["kafka_bootstrap"]  # the fixture, imported for pytest

pytestmark = pytest.mark.anyio

PARTITIONS = 2


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    name = f"jobs-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [name], PARTITIONS)
    return name


async def committed(bootstrap: str, topic: str, group_id: str, partition: int = 0) -> int:
    """The group's committed offset on `partition` (0 when none), read without joining."""
    probe: Any = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id)
    await probe.start()
    try:
        tp = TopicPartition(topic, partition)
        probe.assign([tp])
        return int(await probe.committed(tp) or 0)
    finally:
        await probe.stop()


async def take_all(member: KafkaJobConsumer, count: int) -> list[Delivery]:
    taken: list[Delivery] = []
    while len(taken) < count:
        delivery = await member.take(timeout_s=20)
        assert delivery is not None, f"only {len(taken)} of {count} messages came"
        taken.append(delivery)
    return taken


async def test_out_of_order_finishes_commit_only_the_finished_prefix(
    kafka_bootstrap: str, topic: str
) -> None:
    for job_id in ("job-0", "job-1", "job-2"):
        await publish_to_partition(kafka_bootstrap, topic, job_id, 0)
    group_id = group()
    async with consumer(kafka_bootstrap, topic, group_id) as member:
        first, second, third = await take_all(member, 3)
        assert [d.offset for d in (first, second, third)] == [0, 1, 2]
        assert [d.message.job_id for d in (first, second, third)] == ["job-0", "job-1", "job-2"]

        await third.commit()
        await second.commit()
        assert await committed(kafka_bootstrap, topic, group_id) == 0  # job-0 still runs
        await first.commit()
        assert await committed(kafka_bootstrap, topic, group_id) == 3
        assert await member.take(timeout_s=2) is None  # nothing is handed out twice


async def test_an_unreadable_message_is_committed_past_only_with_the_prefix(
    kafka_bootstrap: str, topic: str
) -> None:
    await publish_to_partition(kafka_bootstrap, topic, "job-a", 0)
    raw: Any = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await raw.start()
    try:
        await raw.send_and_wait(topic, b"not json", key=b"k", partition=0)
    finally:
        await raw.stop()
    await publish_to_partition(kafka_bootstrap, topic, "job-b", 0)
    group_id = group()
    async with consumer(kafka_bootstrap, topic, group_id) as member:
        a, b = await take_all(member, 2)  # the unreadable one (offset 1) is skipped
        assert (a.offset, b.offset) == (0, 2)
        await b.commit()
        assert await committed(kafka_bootstrap, topic, group_id) == 0
        await a.commit()
        assert await committed(kafka_bootstrap, topic, group_id) == 3


@pytest.mark.slow  # Tansu takes ~10 s to let a new member in after a LeaveGroup
async def test_a_member_stopping_mid_burst_hands_back_every_unfinished_message(
    kafka_bootstrap: str, topic: str
) -> None:
    for job_id in ("job-0", "job-1", "job-2"):
        await publish_to_partition(kafka_bootstrap, topic, job_id, 0)
    group_id = group()
    async with consumer(kafka_bootstrap, topic, group_id) as first:
        _, second, third = await take_all(first, 3)
        await third.commit()  # finished early; job-0 and job-1 never finish here
        await second.commit()
    async with consumer(kafka_bootstrap, topic, group_id) as again:
        redelivered = await take_all(again, 3)
        assert [d.message.job_id for d in redelivered] == ["job-0", "job-1", "job-2"]
        for delivery in redelivered:
            await delivery.commit()
    assert await committed(kafka_bootstrap, topic, group_id) == 3
