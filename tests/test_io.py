"""Atomic writes: a failure mid-write leaves the previous file / folder untouched; permissions follow the umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from speechrl.io import atomic_dir, atomic_path, checksums, read_json, write_json


def test_atomic_file_keeps_old_content_on_failure(tmp_path):
    p = tmp_path / "m.json"
    write_json(p, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert read_json(p) == {"v": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["m.json"]


def test_atomic_dir_replaces_whole_folder_or_nothing(tmp_path):
    d = tmp_path / "out"
    with atomic_dir(d) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(d) as tmp:
        (tmp / "b.txt").write_text("2")
        raise RuntimeError("crash")
    assert sorted(f.name for f in d.iterdir()) == ["a.txt"]
    with atomic_dir(d) as tmp:
        (tmp / "c.txt").write_text("3")
    assert sorted(f.name for f in d.iterdir()) == ["c.txt"]
    assert list(checksums(d)) == ["c.txt"]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["out"]


def test_read_json_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing file"):
        read_json(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        read_json(bad)


_WRITE_BOTH = """
import sys
from pathlib import Path
from speechrl.io import atomic_dir, write_json
root = Path(sys.argv[1])
write_json(root / "a" / "m.json", {"v": 1})
with atomic_dir(root / "out") as tmp:
    (tmp / "model").mkdir()
    (tmp / "model" / "w.bin").write_bytes(b"w")
"""


@pytest.mark.parametrize(("umask", "file", "folder"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                        (0o002, 0o664, 0o775)])
def test_permissions_follow_the_umask(tmp_path, umask, file, folder):
    # a fresh process under that umask, as a job on a shared cluster (the umask is read once per process)
    subprocess.run([sys.executable, "-c", _WRITE_BOTH, str(tmp_path)], check=True, umask=umask)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "a" / "m.json") == file
    assert mode(tmp_path / "out") == folder
    assert mode(tmp_path / "out" / "model") == folder and mode(tmp_path / "out" / "model" / "w.bin") == file


def test_umask_is_read_without_changing_it():
    from speechrl.io import umask

    before = os.umask(0o027)
    try:
        umask.cache_clear()
        assert umask() == 0o027
        assert os.umask(0o027) == 0o027  # still set
    finally:
        os.umask(before)
        umask.cache_clear()
