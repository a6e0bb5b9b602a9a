"""The tokenize stage on a tiny hand-written dataset: outputs, stats, skip vs error, round-trip quality."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechrl.audio.codecs import load_codec
from speechrl.audio.io import load_audio
from speechrl.audio.tokenize import TokenizeError, roundtrip_inputs, roundtrip_quality, tokenize_dataset
from speechrl.data.manifest import ManifestError

SE_FIELDS = {"input": "audio", "target": "clean_audio"}


def voiced(seconds: float, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    phase = 2 * np.pi * np.cumsum(130 + 40 * t) / 16000
    x = sum(np.sin(k * phase) / k for k in range(1, 15)) * (0.55 - 0.45 * np.cos(2 * np.pi * 3 * t))
    return (0.4 * x / np.abs(x).max() + 0.002 * np.random.default_rng(seed).standard_normal(len(t))).astype(np.float32)


def _row(i: str, split: str, audio: str, clean: str) -> dict:
    return {"id": i, "audio": audio, "prompt": "Enhance the speech.", "references": ["hello world"], "task": "se",
            "language": "en", "split": split, "extra": {"clean_audio": clean, "transcript": "hello world", "snr_db": 5.0}}


def make_dataset(root: Path, bad: bool = False) -> Path:
    """train: 2 good (+ 3 bad when ``bad``), valid: 1, test: 1; noisy and clean wavs, relative paths."""
    (root / "wavs").mkdir(parents=True)
    rows = {"train": [], "valid": [], "test": []}
    for n, (split, i) in enumerate([("train", "a"), ("train", "b"), ("valid", "c"), ("test", "d")]):
        clean = voiced(0.5 + 0.1 * n, seed=n)
        sf.write(root / f"wavs/{i}.clean.wav", clean, 16000, subtype="PCM_16")
        sf.write(root / f"wavs/{i}.wav", clean + 0.05 * np.random.default_rng(9 + n).standard_normal(len(clean)).astype(np.float32),
                 16000, subtype="PCM_16")
        rows[split].append(json.dumps(_row(i, split, f"wavs/{i}.wav", f"wavs/{i}.clean.wav")))
    if bad:
        sf.write(root / "wavs/silent.wav", np.zeros(8000, np.float32), 16000, subtype="PCM_16")
        rows["train"].insert(1, json.dumps(_row("s", "train", "wavs/a.wav", "wavs/silent.wav")))  # line 2: digital silence
        rows["train"].append(json.dumps(_row("m", "train", "wavs/a.wav", "wavs/missing.wav")))  # line 4: no such file
        rows["train"].append('{"id": "j", "audio": ')  # line 5: broken JSON
    for split, lines in rows.items():
        (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def codec():
    return load_codec("codec2")


def test_se_dataset_is_tokenized(tmp_path, codec):
    data = make_dataset(tmp_path / "data")
    stats = tokenize_dataset(data, tmp_path / "tok", codec, SE_FIELDS, "skip")
    out = tmp_path / "tok"
    assert json.loads((out / "codec.json").read_text()) == codec.info()
    rows = {s: [json.loads(x) for x in (out / f"{s}.jsonl").read_text().splitlines()] for s in ("train", "valid", "test")}
    assert [r["id"] for r in rows["train"]] == ["a", "b"] and [r["id"] for r in rows["test"]] == ["d"]
    a = rows["train"][0]
    assert set(a) == {"id", "input", "target"}
    assert a["target"] == codec.encode(load_audio(data / "wavs/a.clean.wav"), 16000)
    assert a["input"] == codec.encode(load_audio(data / "wavs/a.wav"), 16000) and a["input"] != a["target"]
    assert (out / "skipped.jsonl").read_text() == ""
    lengths = [len(r["target"]) for s in rows.values() for r in s]
    assert stats["examples"] == {"train": 2, "valid": 1, "test": 1} and stats["skipped"] == 0
    assert stats["tokens"]["target"] == {"mean": round(float(np.mean(lengths)), 2), "max": max(lengths), "total": sum(lengths)}
    assert stats["audio_seconds"]["target"] == pytest.approx(0.5 + 0.6 + 0.7 + 0.8)
    assert json.loads((out / "stats.json").read_text()) == stats


def test_tts_fields_write_only_the_target(tmp_path, codec):
    data = make_dataset(tmp_path / "data")
    tokenize_dataset(data, tmp_path / "tok", codec, {"target": "audio"}, "error")
    row = json.loads((tmp_path / "tok/valid.jsonl").read_text())
    assert set(row) == {"id", "target"} and row["target"] == codec.encode(load_audio(data / "wavs/c.wav"), 16000)


def test_bad_samples_are_skipped_counted_and_listed(tmp_path, codec):
    data = make_dataset(tmp_path / "data", bad=True)
    stats = tokenize_dataset(data, tmp_path / "tok", codec, SE_FIELDS, "skip")
    assert stats["examples"] == {"train": 2, "valid": 1, "test": 1}
    assert stats["skipped"] == 3 and stats["skipped_by_split"] == {"train": 3, "valid": 0, "test": 0}
    skipped = [json.loads(x) for x in (tmp_path / "tok/skipped.jsonl").read_text().splitlines()]
    assert [(s["line"], s["id"]) for s in skipped] == [(2, "s"), (4, "m"), (5, None)]
    assert skipped[0]["file"] == str(data / "train.jsonl")
    assert "target (clean_audio)" in skipped[0]["reason"] and "digital silence" in skipped[0]["reason"]
    assert "audio file not found" in skipped[1]["reason"] and "missing.wav" in skipped[1]["reason"]
    assert "not valid JSON" in skipped[2]["reason"]


def test_error_mode_names_file_line_and_id_and_keeps_the_old_output(tmp_path, codec):
    data = make_dataset(tmp_path / "data", bad=True)
    out = tmp_path / "tok"
    out.mkdir()
    (out / "train.jsonl").write_text("previous\n")
    with pytest.raises(TokenizeError) as e:
        tokenize_dataset(data, out, codec, SE_FIELDS, "error")
    msg = str(e.value)
    assert f"{data / 'train.jsonl'}:2:" in msg and ":2: id=s: target (clean_audio)" in msg and "digital silence" in msg and "on_bad_sample=error" in msg
    assert (out / "train.jsonl").read_text() == "previous\n" and sorted(p.name for p in out.iterdir()) == ["train.jsonl"]


def test_missing_field_and_wrong_rate_are_bad_samples(tmp_path, codec):
    data = make_dataset(tmp_path / "data")
    sf.write(data / "wavs/d.wav", voiced(0.5)[::2], 8000, subtype="PCM_16")  # the test input at 8 kHz
    row = json.loads((data / "valid.jsonl").read_text())
    del row["extra"]["clean_audio"]
    (data / "valid.jsonl").write_text(json.dumps(row) + "\n")
    stats = tokenize_dataset(data, tmp_path / "tok", codec, SE_FIELDS, "skip")
    assert stats["examples"] == {"train": 2, "valid": 0, "test": 0} and stats["skipped"] == 2
    reasons = [json.loads(x)["reason"] for x in (tmp_path / "tok/skipped.jsonl").read_text().splitlines()]
    assert "field 'clean_audio' missing (id=c)" in reasons[0] and "sample rate 8000 Hz, expected 16000 Hz" in reasons[1]


def test_a_test_example_without_a_clean_reference_keeps_its_input(tmp_path, codec):
    """DNS2020's real recordings have no clean file: in the test split the row keeps its input alone (counted);
    in train / valid a missing target is still a bad sample (SFT and RL need it)."""
    data = make_dataset(tmp_path / "data")
    for split in ("test", "valid"):
        row = json.loads((data / f"{split}.jsonl").read_text())
        del row["extra"]["clean_audio"]
        (data / f"{split}.jsonl").write_text(json.dumps(row) + "\n")
    stats = tokenize_dataset(data, tmp_path / "tok", codec, SE_FIELDS, "skip")
    test = json.loads((tmp_path / "tok/test.jsonl").read_text())
    assert set(test) == {"id", "input"} and test["input"] == codec.encode(load_audio(data / "wavs/d.wav"), 16000)
    assert stats["examples"] == {"train": 2, "valid": 0, "test": 1} and stats["no_target"] == 1 and stats["skipped"] == 1
    assert stats["tokens"]["target"]["total"] == sum(len(json.loads(x)["target"]) for x in (tmp_path / "tok/train.jsonl").read_text().splitlines())


def test_clipped_audio_is_kept_and_counted(tmp_path, codec):
    data = make_dataset(tmp_path / "data")
    sf.write(data / "wavs/b.clean.wav", np.clip(voiced(0.6) * 5, -1, 1), 16000, subtype="PCM_16")
    stats = tokenize_dataset(data, tmp_path / "tok", codec, SE_FIELDS, "skip")
    assert stats["examples"]["train"] == 2 and stats["clipped"] == {"input": 0, "target": 1}


def test_bad_arguments_and_empty_results(tmp_path, codec):
    data = make_dataset(tmp_path / "data")
    with pytest.raises(TokenizeError, match="on_bad_sample='ignore'; valid: skip, error"):
        tokenize_dataset(data, tmp_path / "tok", codec, SE_FIELDS, "ignore")
    with pytest.raises(TokenizeError, match="fields must map output key"):
        tokenize_dataset(data, tmp_path / "tok", codec, {}, "skip")
    with pytest.raises(TokenizeError, match="every example was skipped"):
        tokenize_dataset(data, tmp_path / "tok", codec, {"target": "transcript_audio"}, "skip")
    (data / "test.jsonl").unlink()
    with pytest.raises(ManifestError, match="manifest not found: .*test.jsonl"):
        tokenize_dataset(data, tmp_path / "tok", codec, SE_FIELDS, "skip")
    assert not (tmp_path / "tok").exists()


def test_roundtrip_inputs_and_argument_checks(tmp_path, codec):
    data = make_dataset(tmp_path / "data")
    paths, refs = roundtrip_inputs(data, "clean_audio", split="train", n=1)
    assert paths == [data / "wavs/a.clean.wav"] and refs == ["hello world"]
    with pytest.raises(ValueError, match="2 audio files but 1 transcripts"):
        roundtrip_quality(codec, [paths[0], paths[0]], refs)


@pytest.mark.slow
def test_roundtrip_quality_on_espeak_speech(tmp_path, codec, monkeypatch):
    """Real speech through codec2 700C: the numbers are in plausible ranges and the file is written."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng / sox not installed")
    from speechrl.data.synthetic import synthesize

    monkeypatch.setenv("SPEECHRL_AUDIO_WORKERS", "0")
    monkeypatch.delenv("SPEECHRL_ASR_LM", raising=False)
    monkeypatch.delenv("SPEECHRL_ASR_MODEL", raising=False)
    texts = ["Anna keeps a green bicycle in the garden.", "Tom works as a baker in Madrid."]
    paths = []
    for i, t in enumerate(texts):
        synthesize(t, tmp_path / f"{i}.wav", "en-us", 150, 50, 16000, f"u{i}")
        paths.append(tmp_path / f"{i}.wav")
    r = roundtrip_quality(codec, paths, texts, out_dir=tmp_path)
    assert json.loads((tmp_path / "roundtrip.json").read_text()) == r
    assert r["n"] == 2 and r["n_invalid_ids"] == 0 and r["codec"]["name"] == "codec2"
    assert 1.0 <= r["decoded"]["dnsmos_ovrl"] <= 5.0 and 1.0 <= r["original"]["dnsmos_ovrl"] <= 5.0
    assert 1.0 <= r["decoded"]["pesq"] < 4.0 and 0.3 < r["decoded"]["stoi"] < 1.0
    assert 0.0 <= r["original"]["asr_wer"] <= r["decoded"]["asr_wer"] + 0.2
