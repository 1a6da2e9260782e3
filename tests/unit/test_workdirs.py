"""Work dirs of the WhisperX command backend: what a killed server left is stopped and swept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from whisperx_api.pipeline.stages.workdirs import (
    PREFIX,
    make_workdir,
    record_child,
    sweep_orphans,
)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_dead_servers_dir_is_deleted_and_its_command_killed(tmp_path: Path) -> None:
    orphan = tmp_path / f"{PREFIX}{dead_pid()}-abc"
    orphan.mkdir()
    (orphan / "audio.wav").write_bytes(b"RIFF")
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        cwd=orphan,
        start_new_session=True,
    )
    try:
        record_child(orphan, child.pid)
        assert sweep_orphans(tmp_path) == 1
        assert child.wait(timeout=30) == -9
    finally:
        child.kill()
        child.wait()
    assert not orphan.exists()


def test_a_live_servers_dir_and_unrelated_dirs_stay(tmp_path: Path) -> None:
    live = tmp_path / f"{PREFIX}{os.getppid()}-abc"  # the process that started this test
    live.mkdir()
    other = tmp_path / "whisperx-something-else"
    other.mkdir()
    assert sweep_orphans(tmp_path) == 0
    assert live.is_dir()
    assert other.is_dir()


def test_a_recorded_pid_now_used_elsewhere_is_not_killed(tmp_path: Path) -> None:
    orphan = tmp_path / f"{PREFIX}{dead_pid()}-abc"
    orphan.mkdir()
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    try:
        record_child(orphan, bystander.pid)  # its working directory is not the orphan's
        assert sweep_orphans(tmp_path) == 1
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
    assert not orphan.exists()


def test_a_dir_named_after_this_process_is_a_previous_lifes_until_the_first_sweep(
    tmp_path: Path,
) -> None:
    """In a container the server is often pid 1 in every life: before this process swept,
    no dir is its own; after, its dirs are never swept again."""
    earlier = tmp_path / f"{PREFIX}{os.getpid()}-old"
    earlier.mkdir()
    assert sweep_orphans(tmp_path) == 1
    assert not earlier.exists()
    workdir = make_workdir(tmp_path)
    assert workdir.name.startswith(f"{PREFIX}{os.getpid()}-")
    assert workdir.stat().st_mode & 0o777 == 0o700
    assert sweep_orphans(tmp_path) == 0
    assert workdir.is_dir()
