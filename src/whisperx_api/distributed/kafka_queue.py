"""The Kafka job queue (`MODE=kafka`): topics, a producer for API replicas, a consumer for workers.

Only imported in kafka mode; requires the `distributed` extra (aiokafka).

Delivery is at least once. A worker takes one message at a time and commits its offset only after
the job's outcome is durably stored; a worker that dies first never commits, so whoever gets the
partition next (a restarted worker, or another group member after the rebalance) reads the
message again. Duplicates are therefore possible and the job store must make them harmless.

Why a long job does not trigger a rebalance. aiokafka enforces `max_poll_interval_ms` on the
client: its heartbeat task leaves the group once no `getmany` has been in progress for that long,
and the group then rebalances, the in-flight message goes to someone else, and our commit fails.
Raising the limit above the longest job is fragile, so the consumer never stops polling instead:

1. it takes exactly one record (`getmany(max_records=1)`), then pauses every assigned partition;
2. while the caller handles the record, a keep-alive task calls `getmany` back to back with a
   short timeout. Paused partitions are not fetched (aiokafka even drops their prefetched
   buffers), so these calls return nothing, but each counts as a poll, and they also let the
   member take part promptly in rebalances that others start;
3. partitions assigned in the meantime are paused by the rebalance listener, and anything that
   still slips through is put back with `seek` and paused;
4. when the caller asks for the next delivery, the keep-alive stops, the finished delivery's
   partition is positioned (after it if committed, back on it if not, so a later commit can never
   silently acknowledge an unfinished job), and the partitions are resumed.

A worker that runs several jobs at once takes its messages with `take` instead: each call
resumes the partitions just long enough to read one more record, then pauses them again behind
the keep-alive while any taken message is unfinished. Such deliveries finish out of order, so
their commits go through an `OffsetLedger`, which commits only each partition's contiguous
finished prefix (a worker that dies redelivers every unfinished message, and no finished one is
acknowledged past an unfinished one).

Heartbeats come from aiokafka's own task, so `session_timeout_ms` only measures process liveness.
`max_poll_interval_ms` still catches a worker whose event loop is blocked; a handler that hangs
while the loop runs is the worker's job-timeout business, not the queue's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    ConsumerStoppedError,
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)
from aiokafka.structs import OffsetAndMetadata  # type: ignore[import-untyped]

from whisperx_api.config import KafkaSettings
from whisperx_api.distributed.kafka_messages import DeadLetter, JobMessage
from whisperx_api.distributed.offsets import OffsetLedger
from whisperx_api.errors import CommitFailed, KafkaQueueError, MessageError

log = logging.getLogger(__name__)

_RETRY_SECONDS = 0.5


@contextlib.contextmanager
def _mapped(action: str) -> Iterator[None]:
    """Translate aiokafka's errors where they enter our code."""
    try:
        yield
    except (KafkaError, ConsumerStoppedError) as exc:
        raise KafkaQueueError(f"kafka: {action} failed: {exc!r}") from exc


async def ensure_topics(
    bootstrap: str,
    topics: Iterable[str],
    partitions: int,
    *,
    replication_factor: int = 1,
    timeout_s: float = 30.0,
) -> None:
    """Create the missing topics and wait until the broker serves them; existing ones are kept."""
    names = sorted(set(topics))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="whisperx-api-admin")
    with _mapped(f"creating topics {names}"):
        await admin.start()
        try:
            missing = [name for name in names if name not in set(await admin.list_topics())]
            if missing:
                new = [NewTopic(name, partitions, replication_factor) for name in missing]
                _check_created(await admin.create_topics(new))
            await _wait_served(admin, names, time.monotonic() + timeout_s)
        finally:
            await admin.close()


def _check_created(response: Any) -> None:
    """Accept "created" and "already exists" (a concurrent creator won); anything else is fatal."""
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        if code not in (0, TopicAlreadyExistsError.errno):
            raise KafkaQueueError(f"kafka: cannot create topic {name!r}: {for_code(code).__name__}")


async def _wait_served(admin: Any, names: list[str], deadline: float) -> None:
    """Topic creation is asynchronous on real clusters: wait for leaders on every partition."""
    while True:
        described = await admin.describe_topics(names)
        if len(described) == len(names) and all(_served(topic) for topic in described):
            return
        if time.monotonic() > deadline:
            raise KafkaQueueError(f"kafka: topics {names} not served in time: {described}")
        await asyncio.sleep(0.1)


def _served(topic: Mapping[str, Any]) -> bool:
    parts = topic["partitions"]
    return topic["error_code"] == 0 and bool(parts) and all(p["leader"] >= 0 for p in parts)


class _Client:
    """`async with` starts and stops a client."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


class RoundRobin:
    """Spreads messages evenly over a topic's partitions, whatever their key.

    A worker owns whole partitions and takes no work from others, so an uneven spread leaves
    one worker idle while another has a backlog; the job id (the key) decides nothing here,
    since the job's state lives in the store.
    """

    def __init__(self) -> None:
        self._next = itertools.count()

    def __call__(self, key: bytes | None, partitions: list[int], available: list[int]) -> int:
        choices = sorted(available or partitions)
        return choices[next(self._next) % len(choices)]


class KafkaJobProducer(_Client):
    """Publishes job messages (keyed by job id) and dead letters; each send waits for acks=all.

    Partitions are chosen round-robin (see `RoundRobin`).
    """

    def __init__(
        self,
        bootstrap: str,
        request_topic: str,
        dead_letter_topic: str,
        *,
        client_id: str = "whisperx-api",
        request_timeout_ms: int = 30_000,
    ) -> None:
        self._bootstrap = bootstrap
        self._request_topic = request_topic
        self._dead_letter_topic = dead_letter_topic
        self._client_id = client_id
        self._request_timeout_ms = request_timeout_ms
        self._producer: Any = None

    @classmethod
    def from_settings(cls, settings: KafkaSettings, **options: Any) -> Self:
        return cls(
            settings.bootstrap_servers,
            settings.request_topic,
            settings.dead_letter_topic,
            **options,
        )

    async def start(self) -> None:
        # No idempotent producer: Tansu rejects InitProducerId, and a duplicate caused by a
        # retried send is harmless because delivery is at least once anyway.
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=False,
            request_timeout_ms=self._request_timeout_ms,
            partitioner=RoundRobin(),
        )
        await _start_or_close(producer, "starting the producer")
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def publish(self, message: JobMessage) -> None:
        """Returns once every in-sync replica has the message."""
        await self._send(self._request_topic, message.job_id, message.to_bytes())

    async def publish_dead_letter(self, letter: DeadLetter) -> None:
        await self._send(self._dead_letter_topic, letter.job_id, letter.to_bytes())

    async def _send(self, topic: str, key: str, value: bytes) -> None:
        if self._producer is None:
            raise KafkaQueueError("kafka: the producer is not started")
        with _mapped(f"publishing to {topic!r}"):
            await self._producer.send_and_wait(topic, value, key=key.encode())


async def _start_or_close(client: Any, action: str) -> None:
    """A client whose start failed still holds sockets and tasks: stop it before raising."""
    try:
        with _mapped(action):
            await client.start()
    except BaseException:
        await client.stop()
        raise


@dataclass(slots=True, eq=False, repr=False)
class Delivery:
    """One job message handed to a worker; `commit()` once the job's outcome is stored."""

    consumer: KafkaJobConsumer
    message: JobMessage
    topic: str
    partition: int
    offset: int
    shared: bool = False  # taken with `take`: committed through the offset ledger
    committed: bool = field(default=False, init=False)

    def __repr__(self) -> str:
        where = f"{self.topic}[{self.partition}]@{self.offset}"
        return f"Delivery({self.message.job_id!r}, {where}, committed={self.committed})"

    async def commit(self) -> None:
        """Acknowledge this message (a shared one: once every earlier message of its partition
        is acknowledged too). Raises `CommitFailed` if the group moved the partition away
        meanwhile: the new owner will then run the job again."""
        await self.consumer._commit(self)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A record on the request topic that is no job message this build can read."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    reason: str

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


UnreadableHandler = Callable[[Unreadable], Awaitable[None]]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Keeps partitions assigned mid-job paused, and counts assignments for diagnostics."""

    def __init__(self, owner: KafkaJobConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("kafka: partitions revoked: %s", sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._owner._on_assigned(assigned)


class KafkaJobConsumer(_Client):
    """A worker's view of the request topic: one message at a time, manual commits.

    See the module docstring for why a job may outlast `max_poll_interval_ms`.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group_id: str,
        *,
        max_poll_interval_ms: int = 300_000,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        poll_timeout_ms: int = 1_000,
        client_id: str = "whisperx-api-worker",
    ) -> None:
        self._topic = topic
        self._poll_timeout_ms = min(poll_timeout_ms, max(1, max_poll_interval_ms // 4))
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "group_id": group_id,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_interval_ms": max_poll_interval_ms,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
        }
        self._consumer: Any = None
        self._current: Delivery | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._closing = False
        self._on_unreadable: UnreadableHandler | None = None
        self._ledger = OffsetLedger()  # messages handed out by `take`
        # How many partition assignments this member has received (1 after the first join).
        self.rebalances = 0

    @classmethod
    def from_settings(cls, settings: KafkaSettings, **options: Any) -> Self:
        return cls(
            settings.bootstrap_servers,
            settings.request_topic,
            settings.consumer_group,
            max_poll_interval_ms=settings.max_poll_interval_ms,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=max(100, settings.session_timeout_ms // 3),
            **options,
        )

    async def start(self) -> None:
        """Connect and subscribe; the group join itself happens on the first poll."""
        consumer = AIOKafkaConsumer(**self._options)
        consumer.subscribe([self._topic], listener=_Listener(self))
        await _start_or_close(consumer, "starting the consumer")
        self._consumer = consumer
        self._closing = False
        self._ledger = OffsetLedger()

    async def stop(self) -> None:
        """Leave the group without committing: an unfinished delivery goes to another member."""
        self._closing = True
        self._current = None
        await self._stop_keepalive()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    def handle_unreadable(self, handler: UnreadableHandler) -> None:
        """Have `handler` deal with each unreadable record (dead-letter it) before it is
        committed past; while the handler fails, the record stays and `next_delivery` raises."""
        self._on_unreadable = handler

    @property
    def assignment(self) -> frozenset[int]:
        """Partitions of the request topic this member holds now."""
        if self._consumer is None:
            return frozenset()
        return frozenset(tp.partition for tp in self._consumer.assignment())

    @property
    def generation(self) -> int:
        """The group generation this member last joined (diagnostics; -1 when not in a group)."""
        if self._consumer is None:
            return -1
        return int(self._consumer._coordinator.generation)

    async def next_delivery(self, timeout_s: float | None = None) -> Delivery | None:
        """The next message, or None after `timeout_s` or once stopped.

        Finishes the previous delivery first: an uncommitted one is delivered again.
        """
        await self._finish_current()
        delivery = await self._read(timeout_s, shared=False)
        if delivery is not None:
            self._hold(delivery)
        return delivery

    async def take(self, timeout_s: float | None = None) -> Delivery | None:
        """One more message while others taken this way may still be running; None after
        `timeout_s` or once stopped. Unlike `next_delivery` nothing earlier is finished or
        rewound: each delivery stays the caller's until it commits it, and an uncommitted one
        comes back only after this member loses its partition (or the process ends)."""
        await self._stop_keepalive()
        consumer = self._running()
        consumer.resume(*consumer.assignment())
        try:
            delivery = await self._read(timeout_s, shared=True)
            if delivery is not None:
                self._ledger.take((delivery.topic, delivery.partition), delivery.offset)
            return delivery
        finally:
            if self._ledger.running() and self._consumer is not None and not self._closing:
                self._consumer.pause(*self._consumer.assignment())
                self._keepalive = asyncio.create_task(self._keep_polling(), name="kafka-keepalive")

    async def _read(self, timeout_s: float | None, *, shared: bool) -> Delivery | None:
        """The next readable message, or None after `timeout_s` or once stopped; a `shared`
        one the ledger knows (a rebalance rewound its partition) is passed over."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._closing:
            wait_ms = self._poll_timeout_ms
            if deadline is not None:
                wait_ms = max(0, min(wait_ms, int((deadline - time.monotonic()) * 1000)))
            batch = await self._poll(self._running(), timeout_ms=wait_ms, max_records=1)
            record = next((records[0] for records in (batch or {}).values() if records), None)
            if record is None:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            if shared and self._ledger.knows((record.topic, record.partition), record.offset):
                continue  # a rebalance rewound the partition: it is running or done here
            delivery = await self._decode(record, shared=shared)
            if delivery is not None:
                return delivery
        return None

    @staticmethod
    async def _poll(consumer: Any, **options: Any) -> Any:
        """One `getmany`; None once the consumer stopped, nothing after a failure (logged,
        then a short pause: the caller simply polls again)."""
        try:
            return await consumer.getmany(**options)
        except ConsumerStoppedError:
            return None
        except KafkaError as exc:
            log.warning("kafka: poll failed, retrying: %r", exc)
            await asyncio.sleep(_RETRY_SECONDS)
            return {}

    async def _decode(self, record: Any, *, shared: bool = False) -> Delivery | None:
        """Unreadable bytes can never succeed: hand them to the handler (which dead-letters them),
        then commit past them; with no handler they are logged loudly and committed past."""
        try:
            message = JobMessage.from_bytes(record.value)
        except MessageError as exc:
            unreadable = Unreadable(
                record.topic, record.partition, record.offset, record.key, str(exc)
            )
            await self._skip(unreadable, shared=shared)
            return None
        return Delivery(self, message, record.topic, record.partition, record.offset, shared=shared)

    async def _skip(self, unreadable: Unreadable, *, shared: bool = False) -> None:
        tp = TopicPartition(unreadable.topic, unreadable.partition)
        if self._on_unreadable is not None:
            try:
                await self._on_unreadable(unreadable)
            except BaseException:
                self._running().seek(tp, unreadable.offset)  # read it again on the next call
                raise
        else:
            log.error(
                "kafka: dropping unreadable message %s: %s", unreadable.where, unreadable.reason
            )
        upto: int | None = unreadable.offset + 1
        if shared:  # past it only once every earlier message taken is done
            place = (unreadable.topic, unreadable.partition)
            self._ledger.take(place, unreadable.offset)
            upto = self._ledger.finish(place, unreadable.offset)
        if upto is not None:
            with contextlib.suppress(KafkaError):
                await self._running().commit({tp: OffsetAndMetadata(upto, "")})

    def _hold(self, delivery: Delivery) -> None:
        consumer = self._running()
        self._current = delivery
        consumer.pause(*consumer.assignment())
        self._keepalive = asyncio.create_task(self._keep_polling(), name="kafka-keepalive")

    async def _keep_polling(self) -> None:
        """Count as polling while paused, so the member stays in the group; see module docstring."""
        consumer = self._running()
        while (leaked := await self._poll(consumer, timeout_ms=self._poll_timeout_ms)) is not None:
            for tp, records in leaked.items():
                consumer.seek(tp, records[0].offset)
                consumer.pause(tp)

    async def _stop_keepalive(self) -> None:
        task, self._keepalive = self._keepalive, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _finish_current(self) -> None:
        current, self._current = self._current, None
        await self._stop_keepalive()
        if current is None or self._consumer is None:
            return
        with contextlib.suppress(KafkaError):  # the partition moved away: nothing to position
            await self._reposition(current)
        self._consumer.resume(*self._consumer.assignment())

    async def _reposition(self, done: Delivery) -> None:
        """After a committed delivery read on past it; before an uncommitted one, read it again.

        A rebalance that handed the partition back to us reset the position to the committed
        offset, which is already right unless our own commit landed after that reset.
        """
        consumer = self._running()
        tp = TopicPartition(done.topic, done.partition)
        if tp not in consumer.assignment():
            return
        position = await consumer.position(tp)
        if done.committed and position <= done.offset:
            consumer.seek(tp, done.offset + 1)
        elif not done.committed and position == done.offset + 1:
            consumer.seek(tp, done.offset)

    async def _commit(self, delivery: Delivery) -> None:
        if self._consumer is None:
            raise CommitFailed(f"kafka: cannot commit {delivery!r}: the consumer is stopped")
        tp = TopicPartition(delivery.topic, delivery.partition)
        upto: int | None = delivery.offset + 1
        if delivery.shared:
            # Finished once: a failed commit is not retried here, the partition's next finished
            # message commits the prefix (or the next owner skips the finished job).
            if delivery.committed:
                return
            delivery.committed = True
            upto = self._ledger.finish((delivery.topic, delivery.partition), delivery.offset)
        if upto is not None:
            try:
                await self._consumer.commit({tp: OffsetAndMetadata(upto, "")})
            except KafkaError as exc:
                raise CommitFailed(f"kafka: cannot commit {delivery!r}: {exc!r}") from exc
        delivery.committed = True

    def _on_assigned(self, assigned: Any) -> None:
        self.rebalances += 1
        log.info("kafka: partitions assigned: %s", sorted(tp.partition for tp in assigned))
        if self._keepalive is not None and self._consumer is not None:
            self._consumer.pause(*assigned)

    def _running(self) -> Any:
        if self._consumer is None:
            raise KafkaQueueError("kafka: the consumer is not started")
        return self._consumer
