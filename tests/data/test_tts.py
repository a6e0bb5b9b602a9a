"""Text-to-speech data: sentence generator, synthetic espeak-ng dataset, LibriTTS reader."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechrl.audio.io import AudioError, load_audio
from speechrl.config import parse_config
from speechrl.data.manifest import read_manifest
from speechrl.data.tts import build_libritts, build_tts_synthetic, short_sentences
from speechrl.io import checksums

SR = 16000


def test_short_sentences() -> None:
    texts = short_sentences(random.Random(0), 200, 3, 5)
    assert len(set(texts)) == 200 and all(3 <= len(t.split()) <= 5 and t.endswith(".") for t in texts)
    assert short_sentences(random.Random(0), 20, 3, 6) == short_sentences(random.Random(0), 20, 3, 6)
    with pytest.raises(ValueError, match="only 0 distinct sentences of 30-40 words, 2 requested"):
        short_sentences(random.Random(0), 2, 30, 40)
    with pytest.raises(ValueError, match="min_words=7 is more than max_words=6"):
        short_sentences(random.Random(0), 2, 7, 6)


def tts_cfg(seed: int = 0):
    return parse_config({"seed": seed, "data": {"synthetic": {"tts": {"n_train": 2, "n_valid": 1, "n_test": 1}}}})


def test_synthetic_tts(tmp_path: Path) -> None:
    stats = build_tts_synthetic(tts_cfg(), tmp_path / "tts")
    assert stats["counts"] == {"train": 2, "valid": 1, "test": 1} and stats["total_audio_seconds"] > 2
    root = tmp_path / "tts"
    stored = json.loads((root / "checksums.json").read_text())
    assert stored == checksums(root, "*.jsonl") | checksums(root, "wavs/*") and len(stored) == 7
    seen = set()
    for split in ("train", "valid", "test"):
        for ex in read_manifest(root / f"{split}.jsonl"):
            assert ex.task == "tts" and ex.split == split and ex.prompt == ex.references[0] == ex.extra["transcript"]
            assert ex.extra["voice"] == "en-us" and ex.extra["speed"] == 160 and ex.prompt not in seen
            seen.add(ex.prompt)
            wav = load_audio(ex.audio_path(root), SR)
            assert abs(len(wav) / SR - ex.extra["duration"]) < 0.01
    build_tts_synthetic(tts_cfg(), tmp_path / "again")
    assert (tmp_path / "again" / "checksums.json").read_bytes() == (root / "checksums.json").read_bytes()


# ------------------------------------------------------------------------------ LibriTTS stand-in
def _utt(root: Path, subset: str, utt: str, text: str | None, seconds: float = 0.2, sr: int = SR) -> Path:
    spk, chapter = utt.split("_")[:2]
    wav = root / subset / spk / chapter / f"{utt}.wav"
    wav.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(wav), 0.1 * np.random.default_rng(len(utt)).standard_normal(int(seconds * sr)), sr, subtype="PCM_16")
    if text is not None:
        wav.with_name(f"{utt}.normalized.txt").write_text(text + "\n")
    return wav


@pytest.fixture()
def libritts(tmp_path: Path) -> Path:
    root = tmp_path / "LibriTTS16k"
    _utt(root / "LibriTTS", "train-clean-100", "19_198_000001_000000", "Northanger Abbey.")
    _utt(root / "LibriTTS", "train-clean-100", "19_198_000000_000000", "Chapter one.")
    _utt(root / "LibriTTS", "train-clean-100", "26_495_000004_000000", "A long one.", seconds=3.0)
    _utt(root / "LibriTTS", "dev-clean", "84_121123_000008_000000", "Go, do you hear?")
    _utt(root / "LibriTTS", "test-clean", "121_121726_000004_000003", "He hoped there would be stew for dinner.")
    return root


def lt_cfg(root: Path, **data):
    return parse_config({"data": {"hub": {"libritts": str(root)}, **data}})


def test_libritts_stand_in(libritts: Path, tmp_path: Path) -> None:
    stats = build_libritts(lt_cfg(libritts, max_audio_seconds=2.0), tmp_path / "out")
    assert stats["counts"] == {"train": 2, "valid": 1, "test": 1} and stats["dropped_too_long"] == 1
    train = read_manifest(tmp_path / "out" / "train.jsonl")
    assert [ex.id for ex in train] == ["libritts-19_198_000000_000000", "libritts-19_198_000001_000000"]
    ex = train[0]
    assert ex.prompt == ex.references[0] == ex.extra["transcript"] == "Chapter one." and ex.extra["speaker"] == "19"
    assert Path(ex.audio).is_absolute() and load_audio(ex.audio, SR).shape == (3200,)
    assert read_manifest(tmp_path / "out" / "test.jsonl")[0].references == ["He hoped there would be stew for dinner."]


def test_libritts_bad_input_names_the_file(libritts: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="data.hub.libritts is not set"):
        build_libritts(parse_config({}), out)
    bare = _utt(libritts / "LibriTTS", "dev-clean", "84_121123_000009_000000", None)
    with pytest.raises(FileNotFoundError, match=r"84_121123_000009_000000.wav \(84_121123_000009_000000.normalized.txt missing\)"):
        build_libritts(lt_cfg(libritts), out)
    bare.unlink()
    _utt(libritts / "LibriTTS", "test-clean", "121_121726_000004_000004", "Original rate.", sr=24000)
    with pytest.raises(AudioError, match=r"121_121726_000004_000004.wav \(24000 Hz\).*sox"):
        build_libritts(lt_cfg(libritts), out)
    with pytest.raises(FileNotFoundError, match="no train-clean-360/ folder"):
        build_libritts(parse_config({"data": {"hub": {"libritts": str(libritts), "libritts_train": ["train-clean-360"]}}}), out)
    assert not out.exists()
