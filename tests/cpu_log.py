"""Where the suite's CPU goes: with `SUITE_CPU_LOG=<file>` set, every test appends one line
(node id, xdist worker, start time, wall seconds, CPU seconds of the worker and of the processes
it reaped during the test) to that file. A module's servers are reaped in its last test's
teardown, so summing by module gives each module's CPU, servers and models included; a process
left unreaped is counted where it is reaped at last (Python reaps such zombies in its next
`subprocess` call), so a few lines can carry another module's CPU.

    SUITE_CPU_LOG=/tmp/cpu.tsv make test
    .venv/bin/python tests/cpu_log.py /tmp/cpu.tsv   # CPU by module, highest first
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ENV = "SUITE_CPU_LOG"


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    target = os.environ.get(ENV)
    if not target:
        yield
        return
    started, wall, cpu = time.time(), time.monotonic(), _cpu_seconds()
    yield
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    line = (
        f"{item.nodeid}\t{worker}\t{started:.1f}\t{time.monotonic() - wall:.2f}\t"
        f"{_cpu_seconds() - cpu:.2f}\n"
    )
    with Path(target).open("a") as log:  # one short append per test: lines do not interleave
        log.write(line)


def main(path: str) -> None:
    by_module: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for line in Path(path).read_text().splitlines():
        fields = line.split("\t")
        totals = by_module[fields[0].split("::", 1)[0]]
        totals[0] += float(fields[4])
        totals[1] += float(fields[3])
        totals[2] += 1
    print(f"{'CPU s':>8} {'wall s':>8} {'tests':>6}  module")
    for module, (cpu, wall, count) in sorted(by_module.items(), key=lambda kv: -kv[1][0]):
        print(f"{cpu:8.1f} {wall:8.1f} {count:6.0f}  {module}")
    print(f"{sum(t[0] for t in by_module.values()):8.1f} CPU-s in all")


if __name__ == "__main__":
    main(sys.argv[1])
