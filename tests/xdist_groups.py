"""`--dist loadgroup` that works on pytest 9: tests of one group go to one xdist worker.

pytest-xdist 3.8 groups tests by appending `@group` to each item's `_nodeid` in the workers;
pytest 9 derives `nodeid` from another attribute, so that suffix never reaches the scheduler and
every test is scheduled alone (a module-scoped server was then started in every worker). Here the
workers write each grouped test's group to a file in a directory the controller names, and the
controller's scheduler reads those files instead of the node ids.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling
from xdist.workermanage import WorkerController

GROUPS_DIR = "suite_xdist_groups"  # the workerinput key


class GroupScheduling(LoadScopeScheduling):
    """Load scheduling where a grouped test's scope is its group and any other test's scope is
    the test itself (what xdist's `loadgroup` means)."""

    def __init__(self, config: pytest.Config, log: object, groups_dir: Path) -> None:
        super().__init__(config, log)
        self._groups_dir = groups_dir
        self._groups: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._groups is None:  # every worker has collected (and written) by now
            self._groups = {}
            for path in self._groups_dir.glob("*.json"):
                self._groups.update(json.loads(path.read_text()))
        return self._groups.get(nodeid, nodeid)


def write_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a worker: record this worker's view of the grouped tests for the controller."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or GROUPS_DIR not in workerinput:
        return
    groups = {}
    for item in items:
        mark = item.get_closest_marker("xdist_group")
        if mark is not None:
            groups[item.nodeid] = str(mark.kwargs.get("name", mark.args[0] if mark.args else ""))
    target = Path(workerinput[GROUPS_DIR]) / f"{workerinput['workerid']}.json"
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps(groups))
    os.replace(temporary, target)


def configure_node(node: WorkerController, groups_dir: Path) -> None:
    node.workerinput[GROUPS_DIR] = str(groups_dir)
