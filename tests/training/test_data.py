"""load_job_data: the whole data folder is checked before any training step; bad samples stop the job
(data.on_bad_sample: error) or are skipped, counted and listed (skip)."""

from __future__ import annotations

import json
import logging
import zlib

import numpy as np
import pytest
import soundfile as sf

from speechrl.audio.io import AudioError
from speechrl.config import parse_config
from speechrl.data.manifest import ManifestError
from speechrl.models.processor import SpeechProcessor
from speechrl.models.tokenizer import train_tokenizer
from speechrl.training.data import load_job_data, load_split, write_skipped


@pytest.fixture(scope="module")
def proc():
    return SpeechProcessor(train_tokenizer(["listen and answer the question"], 300), 8, 4)


def _cfg(mode: str = "error"):
    return parse_config({"data": {"on_bad_sample": mode, "max_audio_seconds": 1.0}}, registries=False)


def _row(uid: str, split: str, **kw) -> dict:
    row = {"id": uid, "audio": f"wavs/{uid}.wav", "prompt": "Answer.", "references": ["yes"], "task": "sqa",
           "language": "en", "split": split}
    return {**row, **kw}


def _folder(root, rows: dict[str, list], audio: dict[str, np.ndarray] | None = None) -> None:
    """Manifests (a row is a dict, or a raw line) and one 0.1 s clip per id (``audio`` overrides, by id)."""
    (root / "wavs").mkdir(parents=True, exist_ok=True)
    for split, rs in rows.items():
        (root / f"{split}.jsonl").write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rs))
        for i, r in enumerate(rs):
            if isinstance(r, dict) and isinstance(r.get("id"), str) and r["id"]:
                x = (audio or {}).get(r["id"], np.random.default_rng(zlib.crc32(f"{split}/{i}".encode())).uniform(-0.3, 0.3, 1600))
                sf.write(root / "wavs" / f"{r['id']}.wav", x, 16000, subtype="FLOAT")


def test_clean_folder_loads_requested_splits(tmp_path, proc):
    _folder(tmp_path, {"train": [_row("a", "train"), _row("b", "train")], "valid": [_row("c", "valid")], "test": [_row("d", "test")]})
    data, skipped = load_job_data(tmp_path, ("train", "valid"), proc, _cfg())
    assert sorted(data) == ["train", "valid"] and skipped == []
    assert [s.example.id for s in data["train"]] == ["a", "b"] and data["valid"][0].features.shape[1] == 160
    assert write_skipped(tmp_path / "out", skipped) is None and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("train", "needle"),
    [
        ([_row("a", "train", prompt=None)], "train.jsonl:1: field 'prompt' must be a string, got null (id=a)"),
        ([_row("a", "train", references=[""])], "train.jsonl:1: references[0] is empty"),
        ([_row("a", "train"), _row("a", "train")], "train.jsonl:2: duplicate id 'a'"),
        ([_row("t", "train")], "train.jsonl:1: id 't' is also in"),
    ],
)
def test_error_mode_stops_at_the_first_bad_line(tmp_path, proc, train, needle):
    _folder(tmp_path, {"train": train, "test": [_row("t", "test")]})
    with pytest.raises(ManifestError) as e:
        load_job_data(tmp_path, ("train",), proc, _cfg())
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_error_mode_checks_splits_the_job_does_not_load(tmp_path, proc):
    _folder(tmp_path, {"train": [_row("a", "train")], "test": [_row("t", "test", prompt=float("nan"))]})
    with pytest.raises(ManifestError, match=r"test.jsonl:1: not valid JSON \(NaN is not a JSON value"):
        load_job_data(tmp_path, ("train",), proc, _cfg())


def test_error_mode_bad_audio_names_manifest_line_and_id(tmp_path, proc):
    _folder(tmp_path, {"train": [_row("a", "train"), _row("b", "train")]}, audio={"b": np.full(1600, 158.0)})
    with pytest.raises(AudioError) as e:
        load_job_data(tmp_path, ("train",), proc, _cfg())
    assert f"b.wav (id=b at {tmp_path}/train.jsonl:2): peak amplitude 158" in str(e.value)


def test_skip_mode_keeps_the_good_and_lists_the_bad(tmp_path, proc, caplog):
    train = [
        _row("a", "train"),
        _row("b", "train", prompt=None),         # wrong type
        "{not json",                             # malformed
        _row("c", "train", references=[" "]),   # empty reference
        _row("a", "train"),                      # duplicate id
        _row("d", "train"),                      # out-of-range audio
        _row("e", "train"),                      # too long
        _row("f", "train", audio="wavs/none.wav"),  # missing audio
        _row("t", "train"),                      # id also in test
        _row("g", "train"),
        _row("h", "train"),                      # corrupt audio
        _row("i", "train"),                      # wrong sample rate
        _row("j", "train"),                      # NaN samples
    ]
    valid = [_row("v", "valid"), _row("w", "valid")]
    test = [_row("t", "test"), _row("u", "test")]
    audio = {"d": np.full(1600, 3.0), "e": np.zeros(32000), "w": np.full(1600, 0.25)}
    _folder(tmp_path, {"train": train, "valid": valid, "test": test}, audio)
    (tmp_path / "wavs" / "u.wav").write_bytes((tmp_path / "wavs" / "w.wav").read_bytes())  # valid w == test u
    (tmp_path / "wavs" / "h.wav").write_bytes(b"RIFF\x00\x00garbage")
    sf.write(tmp_path / "wavs" / "i.wav", np.zeros(800), 8000)
    sf.write(tmp_path / "wavs" / "j.wav", np.full(800, np.nan), 16000, subtype="FLOAT")
    data, skipped = load_job_data(tmp_path, ("train", "valid"), proc, _cfg("skip"))
    assert [s.example.id for s in data["train"]] == ["a", "g"] and [s.example.id for s in data["valid"]] == ["v"]
    tr, va = str(tmp_path / "train.jsonl"), str(tmp_path / "valid.jsonl")
    assert [(r["file"], r["line"], r["id"]) for r in skipped] == [
        (tr, 2, "b"), (tr, 3, None), (tr, 4, "c"), (tr, 5, "a"), (tr, 6, "d"), (tr, 7, "e"), (tr, 8, "f"), (tr, 9, "t"),
        (tr, 11, "h"), (tr, 12, "i"), (tr, 13, "j"), (va, 2, "w")]
    reasons = [r["reason"] for r in skipped]
    assert "must be a string, got null" in reasons[0] and "not valid JSON" in reasons[1] and "references[0] is empty" in reasons[2]
    assert "duplicate id" in reasons[3] and "peak amplitude 3" in reasons[4] and "longer than data.max_audio_seconds=1.0" in reasons[5]
    assert "audio file not found" in reasons[6] and "also in" in reasons[7] and "cannot decode audio" in reasons[8]
    assert "sample rate 8000 Hz" in reasons[9] and "NaN" in reasons[10] and "same audio content" in reasons[11]
    assert all(f"id={r['id']} at {r['file']}:{r['line']}" in r["reason"] for r in skipped[4:7] + skipped[8:11])  # audio: clip and line
    with caplog.at_level(logging.WARNING, logger="speechrl"):
        path = write_skipped(tmp_path / "out", skipped)
    assert [json.loads(line) for line in path.read_text().splitlines()] == skipped
    assert f"skipped 12 bad sample(s) (see {path})" in caplog.text

    data, skipped = load_job_data(tmp_path, ("test",), proc, _cfg("skip"))  # the test copies are kept
    assert [s.example.id for s in data["test"]] == ["t", "u"] and skipped == []


def test_skip_mode_an_empty_split_is_still_an_error(tmp_path, proc):
    _folder(tmp_path, {"train": [_row("a", "train"), _row("b", "train", prompt=3)]}, audio={"a": np.full(1600, 2.0)})
    with pytest.raises(ManifestError, match="train.jsonl: no usable example left: all 2 were bad"):
        load_job_data(tmp_path, ("train",), proc, _cfg("skip"))


def test_missing_split_is_an_error(tmp_path, proc):
    _folder(tmp_path, {"train": [_row("a", "train")]})
    with pytest.raises(ManifestError, match="manifest not found: .*valid.jsonl"):
        load_job_data(tmp_path, ("train", "valid"), proc, _cfg("skip"))


def test_load_split_is_strict_and_names_the_line(tmp_path, proc):
    _folder(tmp_path, {"train": [_row("a", "train"), _row("b", "train")]})
    assert [s.example.id for s in load_split(tmp_path, "train", proc, limit=1)] == ["a"]
    _folder(tmp_path, {"train": [_row("a", "train"), _row("b", "train", task=None)]})
    with pytest.raises(ManifestError, match="train.jsonl:2: field 'task' must be a string, got null"):
        load_split(tmp_path, "train", proc)
