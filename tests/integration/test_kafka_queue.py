"""The Kafka job queue against a real broker (Tansu): groups, manual commits, redelivery, DLQ."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    AIOKafkaProducer,
    TopicPartition,
)

from tests.kafka_broker import kafka_bootstrap
from whisperx_api.distributed.kafka_messages import DeadLetter, JobMessage
from whisperx_api.distributed.kafka_queue import KafkaJobConsumer, KafkaJobProducer, ensure_topics

__all__ = ["kafka_bootstrap"]  # the fixture, imported for pytest

pytestmark = pytest.mark.anyio

REPO_ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 4
# Short timeouts keep group joins and evictions in the seconds range.
FAST: dict[str, Any] = {"session_timeout_ms": 6_000, "heartbeat_interval_ms": 500}


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    """A fresh request topic per test, so tests never see each other's messages."""
    name = f"jobs-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [name], PARTITIONS)
    return name


def group() -> str:
    return f"workers-{uuid.uuid4().hex[:8]}"


def job(job_id: str) -> JobMessage:
    return JobMessage(job_id=job_id, attempt=1, submitted_at=time.time())


async def publish(bootstrap: str, topic: str, job_ids: list[str]) -> None:
    async with KafkaJobProducer(bootstrap, topic, "unused-dlq") as producer:
        for job_id in job_ids:
            await producer.publish(job(job_id))


@asynccontextmanager
async def consumer(
    bootstrap: str, topic: str, group_id: str, **options: Any
) -> AsyncIterator[KafkaJobConsumer]:
    async with KafkaJobConsumer(bootstrap, topic, group_id, **{**FAST, **options}) as member:
        yield member


async def assert_all_committed(bootstrap: str, topic: str, group_id: str) -> None:
    """Read the group's committed offsets without joining it: each partition is fully acked."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id)
    await probe.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        probe.assign(partitions)
        ends = await probe.end_offsets(partitions)
        committed = {tp: await probe.committed(tp) or 0 for tp in partitions}
        assert committed == ends
    finally:
        await probe.stop()


async def test_ensure_topics_is_idempotent(kafka_bootstrap: str) -> None:
    name = f"jobs-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [name, f"{name}.dlq"], 3)
    await ensure_topics(kafka_bootstrap, [name, f"{name}.dlq"], 3)

    probe = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
    await probe.start()
    try:
        topics = await probe.topics()
        assert {name, f"{name}.dlq"} <= topics
        assert probe.partitions_for_topic(name) == {0, 1, 2}
    finally:
        await probe.stop()


async def test_group_of_two_gets_each_message_exactly_once(
    kafka_bootstrap: str, topic: str
) -> None:
    group_id = group()
    got: dict[str, list[str]] = {"a": [], "b": []}
    done = asyncio.Event()

    async def work(member: KafkaJobConsumer, name: str) -> None:
        while not done.is_set():
            delivery = await member.next_delivery(timeout_s=0.3)
            if delivery is not None:
                got[name].append(delivery.message.job_id)
                await delivery.commit()

    async with (
        consumer(kafka_bootstrap, topic, group_id) as a,
        consumer(kafka_bootstrap, topic, group_id) as b,
    ):
        workers = [asyncio.create_task(work(a, "a")), asyncio.create_task(work(b, "b"))]
        await _until(lambda: _split_between(a, b), "both members hold partitions")
        job_ids = [f"job-{i}" for i in range(20)]
        await publish(kafka_bootstrap, topic, job_ids)
        await _until(lambda: len(got["a"]) + len(got["b"]) >= len(job_ids), "all delivered")
        await asyncio.sleep(1.0)  # room for a duplicate to show up
        done.set()
        await asyncio.gather(*workers)

    assert sorted(got["a"] + got["b"]) == sorted(job_ids)
    assert got["a"]
    assert got["b"]
    await assert_all_committed(kafka_bootstrap, topic, group_id)


async def test_uncommitted_delivery_comes_back_to_the_same_worker(
    kafka_bootstrap: str, topic: str
) -> None:
    for job_id in ("job-x", "job-y"):  # one partition: the order within it is fixed
        await publish_to_partition(kafka_bootstrap, topic, job_id, 0)
    async with consumer(kafka_bootstrap, topic, group()) as member:
        first = await member.next_delivery(timeout_s=20)
        assert first is not None
        again = await member.next_delivery(timeout_s=10)  # first was not committed
        assert again is not None
        assert (again.message, again.partition, again.offset) == (
            first.message,
            first.partition,
            first.offset,
        )
        await again.commit()
        other = await member.next_delivery(timeout_s=10)
        assert other is not None
        assert (again.message.job_id, other.message.job_id) == ("job-x", "job-y")
        await other.commit()
        assert await member.next_delivery(timeout_s=1) is None


@pytest.mark.slow  # Tansu takes ~10 s to let a new member in after a LeaveGroup
async def test_worker_stopping_without_commit_hands_the_job_to_another(
    kafka_bootstrap: str, topic: str
) -> None:
    group_id = group()
    await publish(kafka_bootstrap, topic, ["job-1"])
    async with consumer(kafka_bootstrap, topic, group_id) as first:
        taken = await first.next_delivery(timeout_s=20)
        assert taken is not None
    async with consumer(kafka_bootstrap, topic, group_id) as second:
        again = await second.next_delivery(timeout_s=30)
        assert again is not None
        assert again.message.job_id == "job-1"
        assert (again.partition, again.offset) == (taken.partition, taken.offset)
        await again.commit()


@pytest.mark.slow
async def test_killed_worker_job_is_redelivered_to_another_member(
    kafka_bootstrap: str, topic: str
) -> None:
    group_id = group()
    await publish(kafka_bootstrap, topic, ["job-killed"])
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.kafka_stuck_worker",
        kafka_bootstrap,
        topic,
        group_id,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert worker.stdout is not None
        line = await asyncio.wait_for(worker.stdout.readline(), timeout=30)
        assert line.decode().strip() == "TOOK job-killed"
    finally:
        worker.send_signal(signal.SIGKILL)
        await worker.wait()

    async with consumer(kafka_bootstrap, topic, group_id) as survivor:
        started = time.monotonic()
        again = await survivor.next_delivery(timeout_s=45)
        assert again is not None, "the killed worker's job never came back"
        assert again.message.job_id == "job-killed"
        await again.commit()
        print(f"redelivered {time.monotonic() - started:.1f}s after the kill")


@pytest.mark.slow
async def test_job_longer_than_max_poll_interval_causes_no_rebalance(
    kafka_bootstrap: str, topic: str
) -> None:
    await publish(kafka_bootstrap, topic, ["job-long"])
    async with consumer(kafka_bootstrap, topic, group(), max_poll_interval_ms=3_000) as member:
        delivery = await member.next_delivery(timeout_s=20)
        assert delivery is not None
        before = (member.generation, member.rebalances, member.assignment)
        await asyncio.sleep(6.0)  # the "job": twice max_poll_interval_ms
        assert (member.generation, member.rebalances, member.assignment) == before
        await delivery.commit()
        assert await member.next_delivery(timeout_s=3) is None, "redelivered after commit"
        assert (member.generation, member.rebalances, member.assignment) == before


async def test_dead_letters_can_be_read_back(kafka_bootstrap: str, topic: str) -> None:
    dlq = f"{topic}.dlq"
    await ensure_topics(kafka_bootstrap, [dlq], 1)
    letters = [
        DeadLetter(job_id=f"job-{i}", attempts=3, reason=f"boom {i}", failed_at=time.time())
        for i in range(3)
    ]
    async with KafkaJobProducer(kafka_bootstrap, topic, dlq) as producer:
        for letter in letters:
            await producer.publish_dead_letter(letter)

    assert await _read_all(kafka_bootstrap, dlq, len(letters)) == letters


async def test_unreadable_message_is_skipped_not_stuck(kafka_bootstrap: str, topic: str) -> None:
    raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await raw.start()
    try:
        for value in (b"not json", b'{"v": 99, "job_id": "future"}'):
            await raw.send_and_wait(topic, value, key=b"same", partition=0)
    finally:
        await raw.stop()
    await publish_to_partition(kafka_bootstrap, topic, "job-ok", partition=0)

    async with consumer(kafka_bootstrap, topic, group()) as member:
        delivery = await member.next_delivery(timeout_s=20)
        assert delivery is not None
        assert delivery.message.job_id == "job-ok"
        assert delivery.offset == 2
        await delivery.commit()


async def test_jobs_are_spread_evenly_over_the_partitions(kafka_bootstrap: str, topic: str) -> None:
    """Round-robin, not by key: each worker's share of a batch is the same size."""
    await publish(kafka_bootstrap, topic, [f"job-{i}" for i in range(3 * PARTITIONS)])
    probe = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
    await probe.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await probe.end_offsets(partitions)
    finally:
        await probe.stop()
    assert sorted(ends.values()) == [3] * PARTITIONS


async def publish_to_partition(bootstrap: str, topic: str, job_id: str, partition: int) -> None:
    raw = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await raw.start()
    try:
        await raw.send_and_wait(topic, job(job_id).to_bytes(), partition=partition)
    finally:
        await raw.stop()


async def _read_all(bootstrap: str, topic: str, count: int) -> list[DeadLetter]:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        reader.assign([TopicPartition(topic, 0)])
        await reader.seek_to_beginning()
        letters: list[DeadLetter] = []
        deadline = time.monotonic() + 20
        while len(letters) < count and time.monotonic() < deadline:
            batch = await reader.getmany(timeout_ms=500)
            letters += [DeadLetter.from_bytes(r.value) for rs in batch.values() for r in rs]
        return letters
    finally:
        await reader.stop()


def _split_between(a: KafkaJobConsumer, b: KafkaJobConsumer) -> bool:
    held_a, held_b = a.assignment, b.assignment
    whole = held_a | held_b == set(range(PARTITIONS))
    return bool(held_a and held_b) and not held_a & held_b and whole


async def _until(condition: Any, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.1)
