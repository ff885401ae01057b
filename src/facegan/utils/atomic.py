"""Atomic file writes: write to a temporary sibling, then rename over the target.

The temporary file is `.NAME.XXXXXXXX.tmp` beside NAME (mkstemp's 8 random characters). Only a process killed
outright (SIGKILL, power loss) leaves one behind; `remove_temp_files` clears those from a folder, matching this
exact pattern and nothing else. A `durable` write also reaches the disk before it counts (fsync of the file before
the rename, of its folder after): what a machine that loses power or is preempted must find again, checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

log = logging.getLogger("facegan.atomic")

TEMP_SUFFIX = ".tmp"
# ".<target>.<8 of mkstemp's characters: a-z, 0-9, _>.tmp"; tests check it against real temporary names.
TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")


def temp_prefix(path: Path) -> str:
    """The prefix of `path`'s temporary siblings."""
    return f".{path.name}."


def fsync_file(handle: IO) -> None:
    """Push an open file's written data to the disk."""
    handle.flush()
    os.fsync(handle.fileno())


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` reach the disk (a no-op where folders cannot be opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a folder; the rename is then as durable as they make it
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", durable: bool = False) -> Iterator[IO]:
    """Open a temporary file beside `path`; on success it replaces `path`, on error it is removed; `durable`:
    the data and the rename are on the disk when the block ends (not only in the page cache)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=TEMP_SUFFIX)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes files private; results are meant to be shared like any other file
        with os.fdopen(fd, mode) as handle:
            yield handle
            if durable:
                fsync_file(handle)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str, durable: bool = False) -> None:
    """Write `text` to `path` atomically (`durable`: on the disk when it returns)."""
    with atomic_open(path, "w", durable=durable) as handle:
        handle.write(text)


def atomic_write_bytes(path: str | Path, data: bytes, durable: bool = False) -> None:
    """Write `data` to `path` atomically (`durable`: on the disk when it returns)."""
    with atomic_open(path, "wb", durable=durable) as handle:
        handle.write(data)


def is_temp_name(name: str) -> bool:
    """Whether `name` is the name of a temporary file `atomic_open` writes."""
    return TEMP_NAME.match(name) is not None


def remove_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files an interrupted `atomic_open` left in `folder` (not below it); returns them.

    Call it only where no other process may be writing into `folder` at the same time.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        if is_temp_name(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    if removed:
        log.info("removed %d temporary file(s) an interrupted write left in %s: %s", len(removed), folder,
                 ", ".join(p.name for p in removed))
    return removed
