"""Directories and files only the server's user can read: 0700 and 0600, whatever the umask.

The data directory holds uploads, transcripts and the job store; on a shared machine another
user must not be able to list or read any of it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents as 0700; an existing `path` is made 0700 too
    (parents that already existed are left as they are: they may be shared, like /tmp)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another thread
            directory.mkdir(mode=PRIVATE_DIR_MODE)
            _restrict(directory, PRIVATE_DIR_MODE)  # mkdir's mode passes through the umask
    _restrict(path, PRIVATE_DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty as 0600 if it does not exist; make an existing one 0600."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
    _restrict(path, PRIVATE_FILE_MODE)
    return path


def open_private(path: Path) -> BinaryIO:
    """Open `path` for writing (truncated) as a 0600 file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)  # an existing file keeps its mode through O_CREAT
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def _restrict(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
    except PermissionError:
        pass  # not ours (a mounted volume owned by someone else): leave it as it is
