"""LibriSQA / CoVoST2 loaders (data.source: hub) on tiny local stand-ins in the real schemas (no download)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechrl.audio.io import AudioError
from speechrl.config import parse_config
from speechrl.data.hub import SourceError, _librisqa_example_ii, build_hub
from speechrl.data.manifest import read_manifest
from speechrl.data.synthetic import AST_PROMPT, SQA_PROMPT
from speechrl.io import read_json


def write_audio(path: Path, sample_rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(sample_rate // 10, dtype="float32"), sample_rate)


def hub_cfg(seed: int = 0, **hub: object):
    return parse_config({"seed": seed, "data": {"source": "hub", "hub": hub}, "tracking": {"enabled": False}})


def utt(i: int, subset: str) -> str:
    return f"{subset}/103/1240/103-1240-{i:04d}.flac"


@pytest.fixture
def librisqa(tmp_path: Path) -> dict[str, Path]:
    """A LibriSQA part I release (10 train, 3 test) and a LibriSpeech folder with its FLAC files.

    Train items name foreign absolute paths (resolved from the subset folder on), test items
    paths relative to the LibriSpeech root."""
    release, audio = tmp_path / "LibriSQA", tmp_path / "speech"
    rows = {"train": [], "test": []}
    for i in range(10):
        rows["train"].append({"speech_path": f"/remote/data/LibriSpeech/{utt(i, 'train-clean-360')}", "question": f"What is item {i}?",
                              "answer": f"It is thing {i}.", "text": f"item {i} is thing {i}", "duration": 1.5})
        write_audio(audio / "LibriSpeech" / utt(i, "train-clean-360"))
    for i in range(3):
        rows["test"].append({"speech_path": utt(i, "test-clean"), "question": f"Who is {i}?", "answer": f"Person {i}.",
                             "text": f"person {i}", "duration": 2.0})
        write_audio(audio / utt(i, "test-clean"))
    for split, items in rows.items():
        f = release / "LibriSQA-PartI" / f"LibriSQA-PartI-{split}.json"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(items, indent=1))
    return {"release": release, "audio": audio}


TSV_HEADER = "path\tsentence\ttranslation\tclient_id\tsplit\n"


@pytest.fixture
def covost(tmp_path: Path) -> dict[str, Path]:
    """covost_v2.en_de.tsv with a split column (4 train + 2 train_covost, 2 dev, 2 test, 1 other) and converted WAV clips."""
    folder, clips = tmp_path / "covost", tmp_path / "clips16k"
    splits = ["train"] * 4 + ["train_covost"] * 2 + ["dev"] * 2 + ["test"] * 2 + ["excluded"]
    lines = [TSV_HEADER]
    for i, split in enumerate(splits):
        lines.append(f'common_voice_en_{i}.mp3\tHe said "hi" {i}.\tEr sagte „hallo" {i}.\tc{i}\t{split}\n')
        write_audio(clips / f"common_voice_en_{i}.wav")
    lines.append("common_voice_en_99.mp3\tNA\t1.50\tc99\ttest\n")  # strings stay strings: no NA / number parsing
    write_audio(clips / "common_voice_en_99.wav")
    folder.mkdir()
    (folder / "covost_v2.en_de.tsv").write_text("".join(lines), encoding="utf-8")
    return {"source": folder, "audio": clips}


# ------------------------------------------------------------------------------ LibriSQA
def test_librisqa_part1(librisqa: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "data" / "sqa"
    cfg = hub_cfg(librisqa=str(librisqa["release"]), librisqa_audio_root=str(librisqa["audio"]))
    stats = build_hub("sqa", cfg, out)
    assert stats["counts"] == {"train": 8, "valid": 2, "test": 3}
    assert stats["source_counts"] == {"train": 10, "test": 3}
    assert read_json(out / "stats.json") == stats
    assert set(read_json(out / "checksums.json")) == {"train.jsonl", "valid.jsonl", "test.jsonl"}
    test = read_manifest(out / "test.jsonl")
    ex = test[0]
    assert ex.prompt == SQA_PROMPT.format(question="Who is 0?") and ex.references == ["Person 0."]
    assert (ex.task, ex.language, ex.target_language, ex.split) == ("sqa", "en", "en", "test")
    assert ex.extra["question"] == "Who is 0?" and ex.extra["transcript"] == "person 0"
    assert ex.audio == str(librisqa["audio"] / utt(0, "test-clean"))
    for split in ("train", "valid"):
        for e in read_manifest(out / f"{split}.jsonl"):
            assert Path(e.audio).is_absolute() and Path(e.audio).is_file() and e.split == split
            assert "/LibriSpeech/train-clean-360/" in e.audio and e.audio.startswith(str(librisqa["audio"]))


def test_librisqa_single_file_and_long_items(librisqa: dict[str, Path], tmp_path: Path) -> None:
    """A release file finds its test sibling; items over data.max_audio_seconds are left out."""
    cfg = parse_config({"data": {"source": "hub", "max_audio_seconds": 1.8, "hub": {
        "librisqa": str(librisqa["release"] / "LibriSQA-PartI" / "LibriSQA-PartI-test.json"),
        "librisqa_audio_root": str(librisqa["audio"])}}})
    with pytest.raises(SourceError, match="no test examples"):  # every test item is 2.0 s
        build_hub("sqa", cfg, tmp_path / "out")


def test_librisqa_part2_mapping() -> None:
    row = {"speech_path": "a.flac", "question_and_option": "Who? A. x B. y C. z D. w", "answer": "B",
           "answer_and_analysis": "B. y, because the speaker says so."}
    ex = _librisqa_example_ii(row, "librisqa-test-000000", "test", "f.json", 0)
    assert ex.prompt == SQA_PROMPT.format(question=row["question_and_option"])
    assert ex.references == [row["answer_and_analysis"]] and ex.extra["answer_label"] == "B"
    with pytest.raises(SourceError, match="'answer' is missing"):
        _librisqa_example_ii({"speech_path": "a.flac", "question_and_option": "Q"}, "x", "test", "f.json", 3)


def test_holdout_is_seeded(librisqa: dict[str, Path], tmp_path: Path) -> None:
    def valid_ids(seed: int, name: str) -> list[str]:
        cfg = hub_cfg(seed, librisqa=str(librisqa["release"]), librisqa_audio_root=str(librisqa["audio"]), valid_fraction=0.3)
        build_hub("sqa", cfg, tmp_path / name)
        return [e.id for e in read_manifest(tmp_path / name / "valid.jsonl")]

    first = valid_ids(0, "a")
    assert len(first) == 3 and first == valid_ids(0, "b") and first != valid_ids(1, "c")
    train = {e.id for e in read_manifest(tmp_path / "a" / "train.jsonl")}
    assert not train & set(first) and len(train) == 7


def test_caps(librisqa: dict[str, Path], tmp_path: Path) -> None:
    cfg = hub_cfg(librisqa=str(librisqa["release"]), librisqa_audio_root=str(librisqa["audio"]), max_train=3, max_eval=1)
    stats = build_hub("sqa", cfg, tmp_path / "a")
    assert stats["counts"] == {"train": 3, "valid": 1, "test": 1}
    build_hub("sqa", cfg, tmp_path / "b")
    for split in ("train", "valid", "test"):
        assert (tmp_path / "a" / f"{split}.jsonl").read_text() == (tmp_path / "b" / f"{split}.jsonl").read_text()


def test_missing_audio_names_items(librisqa: dict[str, Path], tmp_path: Path) -> None:
    (librisqa["audio"] / utt(1, "test-clean")).unlink()
    (librisqa["audio"] / utt(2, "test-clean")).unlink()
    cfg = hub_cfg(librisqa=str(librisqa["release"]), librisqa_audio_root=str(librisqa["audio"]))
    with pytest.raises(FileNotFoundError) as e:
        build_hub("sqa", cfg, tmp_path / "out")
    msg = str(e.value)
    assert "2 of 13 audio files" in msg and "librisqa-test-000001" in msg and str(librisqa["audio"] / utt(2, "test-clean")) in msg
    assert "data.hub.librisqa_audio_root" in msg and "test-clean.tar.gz" in msg
    assert not (tmp_path / "out").exists()


def test_audio_root_not_set(librisqa: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="data.hub.librisqa_audio_root is not set"):
        build_hub("sqa", hub_cfg(librisqa=str(librisqa["release"])), tmp_path / "out")


# ------------------------------------------------------------------------------ CoVoST2
def test_covost_split_column(covost: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "ast"
    stats = build_hub("ast", hub_cfg(covost2=str(covost["source"]), covost2_audio_root=str(covost["audio"])), out)
    assert stats["counts"] == {"train": 6, "valid": 2, "test": 3}
    valid = read_manifest(out / "valid.jsonl")
    assert [e.extra["clip"] for e in valid] == ["common_voice_en_6.mp3", "common_voice_en_7.mp3"]
    ex = valid[0]
    assert ex.prompt == AST_PROMPT and ex.references == ['Er sagte „hallo" 6.'] and ex.extra["transcript"] == 'He said "hi" 6.'
    assert (ex.task, ex.language, ex.target_language) == ("ast", "en", "de")
    assert ex.audio == str(covost["audio"] / "common_voice_en_6.wav")
    last = read_manifest(out / "test.jsonl")[-1]
    assert last.references == ["1.50"] and last.extra["transcript"] == "NA"


def test_covost_split_files(tmp_path: Path) -> None:
    """The per-split TSVs of get_covost_splits.py (no split column), clips under ROOT/clips."""
    folder, root = tmp_path / "covost", tmp_path / "en"
    folder.mkdir()
    for split, n in (("train", 3), ("dev", 1), ("test", 2)):
        rows = ["path\tsentence\ttranslation\tclient_id\n"]
        for i in range(n):
            rows.append(f"{split}_{i}.mp3\tHello {i}.\tHallo {i}.\tc\n")
            write_audio(root / "clips" / f"{split}_{i}.flac")
        (folder / f"covost_v2.en_de.{split}.tsv").write_text("".join(rows))
    stats = build_hub("ast", hub_cfg(covost2=str(folder), covost2_audio_root=str(root)), tmp_path / "out")
    assert stats["counts"] == {"train": 3, "valid": 1, "test": 2}
    assert read_manifest(tmp_path / "out" / "valid.jsonl")[0].audio == str(root / "clips" / "dev_0.flac")


def test_mp3_clips_get_conversion_hint(covost: dict[str, Path], tmp_path: Path) -> None:
    mp3s = tmp_path / "clips"
    mp3s.mkdir()
    for wav in covost["audio"].glob("*.wav"):
        (mp3s / wav.with_suffix(".mp3").name).write_bytes(b"ID3")
    with pytest.raises(AudioError) as e:
        build_hub("ast", hub_cfg(covost2=str(covost["source"]), covost2_audio_root=str(mp3s)), tmp_path / "out")
    msg = str(e.value)
    assert "common_voice_en_0.mp3" in msg and "ffmpeg" in msg and "-ar 16000 -ac 1" in msg and "data.hub.covost2_audio_root" in msg


def test_wrong_sample_rate(covost: dict[str, Path], tmp_path: Path) -> None:
    write_audio(covost["audio"] / "common_voice_en_0.wav", sample_rate=8000)
    with pytest.raises(AudioError, match="sample rate 8000 Hz, expected 16000"):
        build_hub("ast", hub_cfg(covost2=str(covost["source"]), covost2_audio_root=str(covost["audio"])), tmp_path / "out")


# ------------------------------------------------------------------------------ sources
def test_missing_local_source_names_key(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as e:
        build_hub("ast", hub_cfg(covost2=str(tmp_path / "nowhere")), tmp_path / "out")
    assert "data.hub.covost2=" in str(e.value) and "covost_v2.en_de.tsv.tar.gz" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no LibriSQA part I train file.*data.hub.librisqa"):
        build_hub("sqa", hub_cfg(librisqa=str(tmp_path / "empty")), tmp_path / "out")


def test_unreachable_hub_id_names_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    import huggingface_hub

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        build_hub("sqa", hub_cfg(librisqa="nobody/no-such-librisqa"), tmp_path / "out")
    assert "data.hub.librisqa='nobody/no-such-librisqa'" in str(e.value) and "hf download ZihanZhao/LibriSQA" in str(e.value)


def test_cli_data_uses_hub(covost: dict[str, Path], tmp_path: Path) -> None:
    from speechrl.cli import main
    from speechrl.config import dump_config

    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(dump_config(hub_cfg(covost2=str(covost["source"]), covost2_audio_root=str(covost["audio"]))))
    main(["data", "--config", str(cfg_file), "--out", str(tmp_path / "ast"), "--task", "ast"])
    assert read_json(tmp_path / "ast" / "stats.json")["counts"] == {"train": 6, "valid": 2, "test": 3}
