"""An API replica's side of the Kafka queue: one message per queued job."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from whisperx_api.distributed.kafka_messages import JobMessage
from whisperx_api.distributed.kafka_queue import KafkaJobProducer
from whisperx_api.domain.job import JobRecord
from whisperx_api.errors import KafkaQueueError, QueueUnavailable, StorageError

_RETRY_AFTER_SECONDS = 5


class KafkaDispatch:
    """Publishes a `JobMessage` for every queued job; also the replica's background lifecycle.

    `prepare` runs once at start (creating the bucket and topics), before the producer connects.
    `mark_announced(job_id)` records in the job store that the message is out (False: the job
    is gone); until then a job whose replica died is an orphan that workers delete.
    """

    def __init__(
        self,
        producer: KafkaJobProducer,
        mark_announced: Callable[[str], bool],
        prepare: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._producer = producer
        self._mark_announced = mark_announced
        self._prepare = prepare

    async def start(self) -> None:
        if self._prepare is not None:
            await self._prepare()
        await self._producer.start()

    async def stop(self, grace_seconds: float) -> None:
        await asyncio.wait_for(self._producer.stop(), max(grace_seconds, 1.0))

    async def job_queued(self, record: JobRecord) -> None:
        """Publish the job; a broker that cannot take it is a 503 (the job is withdrawn)."""
        message = JobMessage(job_id=record.id, attempt=1, submitted_at=time.time())
        try:
            await self._producer.publish(message)
        except KafkaQueueError as exc:
            raise QueueUnavailable(
                "The job queue is unavailable; try again later.",
                retry_after=_RETRY_AFTER_SECONDS,
            ) from exc
        if not await asyncio.to_thread(self._mark_announced, record.id):
            raise StorageError(f"Job '{record.id}' vanished while it was being queued.")
