"""Atomic writes: a failure mid-write leaves the previous file / folder untouched."""

from __future__ import annotations

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
