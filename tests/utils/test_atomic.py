"""Atomic writes: the temporary name they use, and clearing what a killed writer left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from facegan.utils.atomic import atomic_open, atomic_write_bytes, is_temp_name, remove_temp_files
from factories import killed_while_writing


def test_the_temp_name_pattern_matches_the_names_atomic_open_uses(tmp_path: Path) -> None:
    names = ("step-00000010.pt", "best.json", "a.b.c")
    for name in names:
        with atomic_open(tmp_path / name) as handle:
            handle.write(b"x")
            (temp,) = [p for p in tmp_path.iterdir() if p.name not in names]
            assert is_temp_name(temp.name), temp.name
    assert not [p for p in tmp_path.iterdir() if is_temp_name(p.name)]


def test_remove_temp_files_takes_what_a_killed_writer_left_and_nothing_else(tmp_path: Path) -> None:
    left = killed_while_writing(tmp_path / "step-00000004.pt")
    keep = [".step-00000004.pt.tmp", "step-00000004.pt.abcd1234.tmp", ".x.abc1234.tmp", ".x.ABCD1234.tmp",
            ".x.abcd1234.tmp.bak", "notes.tmp", "step-00000002.pt"]
    for name in keep:
        (tmp_path / name).write_bytes(b"mine")
    (tmp_path / ".dir.abcd1234.tmp").mkdir()  # the right name, but not a file
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".y.abcd1234.tmp").write_bytes(b"below: not touched")
    os.symlink(tmp_path / "notes.tmp", tmp_path / ".link.abcd1234.tmp")
    assert remove_temp_files(tmp_path) == [left]
    assert not left.exists()
    assert all((tmp_path / name).exists() for name in [*keep, ".dir.abcd1234.tmp", "sub/.y.abcd1234.tmp"])
    assert (tmp_path / ".link.abcd1234.tmp").is_symlink()
    assert remove_temp_files(tmp_path / "missing") == []


def test_a_durable_write_reaches_the_disk_before_it_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync of the file before the rename and of its folder after: a machine lost a moment later keeps it."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        mode = os.fstat(fd).st_mode
        synced.append("folder" if stat.S_ISDIR(mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    atomic_write_bytes(tmp_path / "plain.pt", b"x")
    assert synced == []
    atomic_write_bytes(tmp_path / "step-00000004.pt", b"weights", durable=True)
    assert synced == ["file", "folder"]
    assert (tmp_path / "step-00000004.pt").read_bytes() == b"weights"
