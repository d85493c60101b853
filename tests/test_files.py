"""digest.files: folders made on demand, and the one way a file is replaced in one step."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from digest.files import make_folder, write_atomically


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_write_says_whether_it_changed_anything_and_leaves_no_temp(tmp_path: Path):
    target = tmp_path / "site" / "topics" / "index.html"
    assert write_atomically(target, b"one\n") is True  # the folders are made
    assert write_atomically(target, b"one\n") is False
    assert write_atomically(target, b"two\n") is True
    assert target.read_bytes() == b"two\n"
    assert [p.name for p in target.parent.iterdir()] == ["index.html"]


def test_a_new_file_is_world_readable_and_a_replaced_one_keeps_its_mode(tmp_path: Path):
    target = tmp_path / "README.md"
    write_atomically(target, b"one\n")
    assert mode(target) == 0o644
    target.chmod(0o600)
    write_atomically(target, b"two\n")
    assert mode(target) == 0o600  # the operator's choice stands
    write_atomically(target, b"three\n", mode=0o644)
    assert mode(target) == 0o644  # a page a web server reads: always readable


def test_only_a_durable_write_is_fsynced(tmp_path: Path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real(fd))
    write_atomically(tmp_path / "page.html", b"page")
    assert synced == []
    write_atomically(tmp_path / "README.md", b"archive", durable=True)
    assert len(synced) == 1


def test_a_failed_write_keeps_the_old_file_and_removes_its_temp(tmp_path: Path, monkeypatch):
    target = tmp_path / "README.md"
    target.write_bytes(b"old\n")

    def refuse(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, b"new\n")
    assert target.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]


def test_a_file_in_the_way_of_a_folder_is_named(tmp_path: Path):
    (tmp_path / "site").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=r"site is a file, not a folder"):
        make_folder(tmp_path / "site" / "days")
    with pytest.raises(NotADirectoryError, match=r"site is a file, not a folder"):
        write_atomically(tmp_path / "site" / "days" / "index.html", b"page")
