"""Cross-split checks: an id or an identical example (same audio bytes and prompt) in two splits is reported."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from speechrl.data.checks import check_splits


def _wav(path, seed: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.random.default_rng(seed).uniform(-0.5, 0.5, 1600), 16000)
    return path.name


def _row(uid: str, split: str, audio: str, prompt: str = "Translate.") -> dict:
    return {"id": uid, "audio": f"wavs/{audio}", "prompt": prompt, "references": ["r"], "task": "ast", "language": "en", "split": split}


def _write(root, rows: dict[str, list[dict]]) -> None:
    for split, rs in rows.items():
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))


def test_clean_folder_passes(tmp_path):
    for i in range(4):
        _wav(tmp_path / "wavs" / f"{i}.wav", i)
    _write(tmp_path, {"train": [_row("a", "train", "0.wav"), _row("b", "train", "1.wav")],
                      "valid": [_row("c", "valid", "2.wav")], "test": [_row("d", "test", "3.wav")]})
    assert check_splits(tmp_path) == []


def test_id_in_two_splits_names_both_files_and_lines(tmp_path):
    for i in range(3):
        _wav(tmp_path / "wavs" / f"{i}.wav", i)
    _write(tmp_path, {"train": [_row("a", "train", "0.wav"), _row("x", "train", "1.wav")],
                      "test": [_row("x", "test", "2.wav")]})
    (bad,) = check_splits(tmp_path)
    assert (bad.file, bad.line, bad.id) == (str(tmp_path / "train.jsonl"), 2, "x")  # the train copy is the bad one
    assert str(bad) == f"{tmp_path}/train.jsonl:2: id 'x' is also in {tmp_path}/test.jsonl:1; an id must be in one split only"


def test_identical_example_in_two_splits_is_reported(tmp_path):
    _wav(tmp_path / "wavs" / "0.wav", 0)
    _wav(tmp_path / "wavs" / "1.wav", 1)
    (tmp_path / "wavs" / "copy.wav").write_bytes((tmp_path / "wavs" / "1.wav").read_bytes())  # same bytes, other file
    _wav(tmp_path / "wavs" / "2.wav", 2)
    _write(tmp_path, {"train": [_row("a", "train", "0.wav"), _row("b", "train", "copy.wav")],
                      "valid": [_row("c", "valid", "1.wav")],
                      "test": [_row("d", "test", "2.wav"), _row("e", "test", "0.wav", prompt="Other prompt.")]})
    (bad,) = check_splits(tmp_path)  # train:1 vs test:2 share audio but not the prompt: no leak
    assert (bad.file, bad.line, bad.id) == (str(tmp_path / "train.jsonl"), 2, "b")
    assert "same audio content (sha256 " in bad.reason and f"and prompt as {tmp_path}/valid.jsonl:1 (id=c)" in bad.reason


def test_valid_test_duplicate_is_dropped_from_valid(tmp_path):
    _wav(tmp_path / "wavs" / "0.wav", 0)
    _wav(tmp_path / "wavs" / "1.wav", 1)
    _write(tmp_path, {"train": [_row("a", "train", "1.wav", prompt="p1")], "valid": [_row("v", "valid", "0.wav")],
                      "test": [_row("t", "test", "0.wav")]})
    (bad,) = check_splits(tmp_path)
    assert (bad.file, bad.line, bad.id) == (str(tmp_path / "valid.jsonl"), 1, "v") and f"{tmp_path}/test.jsonl:1 (id=t)" in bad.reason


def test_bad_lines_of_every_split_are_listed(tmp_path):
    _wav(tmp_path / "wavs" / "0.wav", 0)
    _write(tmp_path, {"train": [_row("a", "train", "0.wav")], "test": [_row("t", "test", "0.wav", prompt=None)]})
    (bad,) = check_splits(tmp_path)
    assert (bad.file, bad.line, bad.id) == (str(tmp_path / "test.jsonl"), 1, "t") and "'prompt' must be a string, got null" in bad.reason


def test_embedded_synthetic_data_has_no_leak(tiny_data):
    for root in tiny_data.values():
        assert check_splits(root) == []
