"""Work directories of the WhisperX command backend that survive a crash of their server.

Each run gets a private directory named after the server process that made it
(`whisperx-run-<pid>-<random>`), and the command's process id is recorded in it. A server that
is killed (kill -9, the OOM killer) cannot delete its directories, and the command it started
runs on in its own session, computing a result nobody will read. The next server to start on
the same parent directory sweeps them: it kills each orphaned command (only when the process
is still the one working in that directory) and deletes every directory whose server is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "whisperx-run-"
CHILD_PID = "child.pid"
_NAME = re.compile(rf"^{re.escape(PREFIX)}(?P<owner>\d+)-")
_swept: set[Path] = set()
_sweep_lock = threading.Lock()


def make_workdir(parent: Path | None) -> Path:
    """A fresh 0700 directory under `parent` (created if needed), else the system temp."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))


def record_child(workdir: Path, pid: int) -> None:
    """Note which process works in `workdir`, so a later sweep can stop it."""
    (workdir / CHILD_PID).write_text(str(pid))


def sweep_orphans(parent: Path | None) -> int:
    """Once per process and parent: stop and delete what dead servers left; how many dirs."""
    root = parent if parent is not None else Path(tempfile.gettempdir())
    with _sweep_lock:
        if root in _swept:
            return 0
        _swept.add(root)
    if not root.is_dir():
        return 0
    removed = 0
    for entry in root.iterdir():
        match = _NAME.match(entry.name)
        if match is None or not entry.is_dir() or _alive(int(match["owner"])):
            continue
        _stop_child(entry)
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
    if removed:
        log.warning("removed %d work dir(s) of a server that died mid-job in %s", removed, root)
    return removed


def _alive(owner: int) -> bool:
    """A server still running; our own pid means a previous life of this container's server
    (no directory of ours exists before the first sweep)."""
    if owner == os.getpid():
        return False
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_child(workdir: Path) -> None:
    """Kill the orphaned command's process group, if that pid still works in `workdir`."""
    try:
        pid = int((workdir / CHILD_PID).read_text())
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except (OSError, ValueError):
        return  # no record, or the process is gone (or cannot be identified): nothing to stop
    if cwd != workdir.resolve():
        return  # the pid now belongs to some other process
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
