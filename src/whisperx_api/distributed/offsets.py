"""Which offset a worker holding several messages of one partition may commit.

A Kafka commit says "everything before this offset is done". A worker that runs several jobs at
once finishes them out of order, so a job that ends early must not commit past one still
running: if the worker then died, the unfinished job's message would never come back. The
ledger therefore commits only the contiguous finished prefix of each partition; a crash
redelivers everything from the first unfinished message on (finished ones among them are
skipped by the worker, since their jobs are already over).

A partition's record is kept across rebalances (aiokafka revokes every partition on each one,
then hands most back, rewound to their committed offsets): messages still running or finished
above the committed prefix are then recognised and not run a second time. A message left
unfinished when the worker stops is simply never finished here, so nothing after it in its
partition is committed either.

Pure bookkeeping: no Kafka here, so the rules are tested on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Partition = tuple[str, int]


@dataclass(slots=True)
class _Track:
    committed: int  # the last offset known done (below the first message taken, at first)
    running: set[int] = field(default_factory=set)
    finished: set[int] = field(default_factory=set)  # done, but above a running one


class OffsetLedger:
    """Messages taken and finished per partition; says when the committable offset moves."""

    def __init__(self) -> None:
        self._tracks: dict[Partition, _Track] = {}

    def take(self, partition: Partition, offset: int) -> bool:
        """Record `offset` as running; False when it is running or finished already (a
        rebalance rewound the partition to its committed offset), so it is not run twice."""
        track = self._tracks.setdefault(partition, _Track(committed=offset - 1))
        if offset in track.running or offset in track.finished:
            return False
        track.running.add(offset)
        return True

    def knows(self, partition: Partition, offset: int) -> bool:
        """Whether `offset` is running or finished above its partition's committed prefix."""
        track = self._tracks.get(partition)
        return track is not None and (offset in track.running or offset in track.finished)

    def finish(self, partition: Partition, offset: int) -> int | None:
        """Mark `offset` done; the offset to commit (the next one to read) when the finished
        prefix grew, else None (an earlier message still runs)."""
        track = self._tracks.get(partition)
        if track is None or offset not in track.running:
            raise KeyError(f"{partition}@{offset} is not running")
        track.running.discard(offset)
        track.finished.add(offset)
        upto = min(track.running) if track.running else max(track.finished) + 1
        track.finished = {done for done in track.finished if done >= upto}
        if upto - 1 <= track.committed:
            return None
        track.committed = upto - 1
        if not track.running and not track.finished:
            del self._tracks[partition]
        return upto

    def running(self) -> int:
        """Messages taken and not yet finished, over all partitions."""
        return sum(len(track.running) for track in self._tracks.values())
