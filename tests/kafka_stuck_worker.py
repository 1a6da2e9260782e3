"""A worker that takes one job message and never finishes it: the test SIGKILLs it mid-job.

    python -m tests.kafka_stuck_worker BOOTSTRAP TOPIC GROUP

Prints `TOOK <job_id>` once it holds a delivery, then sleeps without committing.
"""

from __future__ import annotations

import asyncio
import sys

from whisperx_api.distributed.kafka_queue import KafkaJobConsumer

SESSION_TIMEOUT_MS = 6_000


async def main(bootstrap: str, topic: str, group: str) -> None:
    consumer = KafkaJobConsumer(
        bootstrap,
        topic,
        group,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=500,
        max_poll_interval_ms=SESSION_TIMEOUT_MS,
    )
    await consumer.start()
    delivery = await consumer.next_delivery()
    assert delivery is not None
    print(f"TOOK {delivery.message.job_id}", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
