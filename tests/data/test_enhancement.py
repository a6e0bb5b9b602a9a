"""Speech enhancement data: synthetic noisy/clean pairs (SNR, levels, determinism) and the DNS2020 reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechrl.audio import noise as nz
from speechrl.audio.io import AudioError, load_audio
from speechrl.config import parse_config
from speechrl.data import synthetic
from speechrl.data.checks import check_splits
from speechrl.data.enhancement import NO_TRANSCRIPT, SE_PROMPT, build_dns2020, build_se_synthetic
from speechrl.data.manifest import read_manifest
from speechrl.io import checksums
from speechrl.rewards import REWARDS

SR = 16000


def se_cfg(seed: int = 0, **se):
    opts = {"n_train": 4, "n_valid": 4, "n_test": 4, "reverb_prob": 0.5, **se}
    return parse_config({"seed": seed, "data": {"synthetic": {"se": opts}}})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("se") / "se"
    stats = build_se_synthetic(se_cfg(), root)
    assert stats["counts"] == {"train": 4, "valid": 4, "test": 4} and stats["utterances"] == 12
    assert sum(stats["noises"].values()) == 12 and 0 < stats["reverberant"] < 12
    return root


def test_layout_pairs_and_measured_snr(built: Path) -> None:
    stored = json.loads((built / "checksums.json").read_text())
    assert stored == checksums(built, "*.jsonl") | checksums(built, "noisy/*") | checksums(built, "clean/*")
    assert len([k for k in stored if k.startswith("noisy/")]) == 12
    texts: dict[str, set[str]] = {}
    for split in ("train", "valid", "test"):
        examples = read_manifest(built / f"{split}.jsonl")
        texts[split] = {ex.extra["transcript"] for ex in examples}
        for ex in examples:
            assert ex.task == "se" and ex.prompt == SE_PROMPT and ex.references == [ex.extra["transcript"]]
            assert ex.audio == f"noisy/{ex.id}.wav" and ex.extra["clean_audio"] == f"clean/{ex.id}.wav"
            assert 4 <= len(ex.extra["transcript"].split()) <= 6 and ex.extra["noise"] in ("white", "pink", "babble")
            assert (ex.extra["rt60"] is not None) == ex.extra["reverb"]
            noisy = load_audio(built / ex.audio, SR).astype(np.float64)
            clean = load_audio(built / ex.extra["clean_audio"], SR).astype(np.float64)
            assert len(noisy) == len(clean) and abs(len(noisy) / SR - ex.extra["duration"]) < 0.01
            assert 0 <= ex.extra["snr_db"] <= 20
            # the SNR asked for is the SNR of the written files (PCM16 rounding aside)
            assert nz.snr_db(clean, noisy - clean) == pytest.approx(ex.extra["snr_db"], abs=0.05)
            level = 20 * np.log10(nz.rms(noisy))
            peak = max(np.abs(noisy).max(), np.abs(clean).max())
            assert level == pytest.approx(ex.extra["level_dbfs"], abs=0.05) or (peak > 0.98 and level < ex.extra["level_dbfs"])
    assert not texts["train"] & (texts["valid"] | texts["test"]) and not texts["valid"] & texts["test"]
    assert check_splits(built) == []


def test_same_seed_same_bytes(built: Path, tmp_path: Path) -> None:
    build_se_synthetic(se_cfg(), tmp_path / "again")
    assert (tmp_path / "again" / "checksums.json").read_bytes() == (built / "checksums.json").read_bytes()
    build_se_synthetic(se_cfg(seed=1, n_train=1, n_valid=1, n_test=1, noises=["pink"]), tmp_path / "other")
    assert read_manifest(tmp_path / "other" / "train.jsonl")[0].extra["transcript"] != read_manifest(built / "train.jsonl")[0].extra["transcript"]


def test_config_errors_and_missing_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"babble_talkers=3 needs more than 3 utterances per split.*n_valid=2, n_test=1"):
        build_se_synthetic(se_cfg(n_valid=2, n_test=1), tmp_path / "x")
    with pytest.raises(ValueError, match=r"data.synthetic.se.snr_db must be a range \[low, high\]"):
        build_se_synthetic(se_cfg(snr_db=[10, 0]), tmp_path / "x")
    monkeypatch.setattr(synthetic.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="install espeak-ng and sox"):
        build_se_synthetic(se_cfg(), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_no_transcript_reference_does_not_apply_to_wer() -> None:
    for name in ("wer", "cer"):
        assert REWARDS.get(name).sample(["some words"], [[NO_TRANSCRIPT]]) == [None]


# ------------------------------------------------------------------------------ DNS Challenge 2020
def _wav(path: Path, n: int = 1600, sr: int = SR, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), 0.1 * np.random.default_rng(seed).standard_normal(n), sr, subtype="PCM_16")


def _pair(folder: Path, noisy_name: str, n: int, seed: int = 0) -> None:
    _wav(folder / "noisy" / noisy_name, seed=seed)
    _wav(folder / "clean" / f"clean_fileid_{n}.wav", seed=seed + 100)


@pytest.fixture()
def dns(tmp_path: Path) -> dict[str, Path]:
    test = tmp_path / "DNS-Challenge" / "datasets" / "test_set"
    _pair(test / "synthetic" / "no_reverb", "clnsp1_train_69005_1_snr15_tl-21_fileid_7.wav", 7)
    _pair(test / "synthetic" / "no_reverb", "clnsp2_bus_1_snr0_tl-30_fileid_3.wav", 3, seed=1)
    _pair(test / "synthetic" / "with_reverb", "clnsp9_car_2_snr12_tl-25_fileid_3.wav", 3, seed=2)
    _wav(test / "real_recordings" / "audioset_realrec_car_0AVTgzegI4s.wav", seed=3)
    train = tmp_path / "train"
    for n in range(3):
        _pair(train, f"book_x_snr{5 + n}_tl-20_fileid_{n}.wav", n, seed=10 + n)
    text = tmp_path / "DNS_text" / "DNS1" / "tt_synthetic_no_reverb" / "text"
    text.parent.mkdir(parents=True)
    text.write_text("fileid_3 the birch canoe slid\nfileid_7 glue the sheet to the dark blue background\n")
    return {"root": tmp_path / "DNS-Challenge", "train": train, "text": text.parents[1]}


def dns_cfg(d: dict[str, Path], **hub):
    opts = {"dns2020": str(d["root"]), "dns2020_train": str(d["train"]), "dns2020_transcripts": str(d["text"]),
            "dns2020_subsets": ["no_reverb", "with_reverb", "real_recordings"], **hub}
    return parse_config({"data": {"hub": opts}})


def test_dns2020_stand_in(dns: dict[str, Path], tmp_path: Path) -> None:
    stats = build_dns2020(dns_cfg(dns), tmp_path / "out")
    assert stats["counts"] == {"train": 2, "valid": 1, "test": 4} and stats["parts"] == {"no_reverb": 2, "with_reverb": 1, "real_recordings": 1}
    test = {ex.id: ex for ex in read_manifest(tmp_path / "out" / "test.jsonl")}
    assert list(test) == ["dns2020-no_reverb-fileid_3", "dns2020-no_reverb-fileid_7", "dns2020-with_reverb-fileid_3",
                          "dns2020-real_recordings-audioset_realrec_car_0AVTgzegI4s"]
    a = test["dns2020-no_reverb-fileid_7"]
    assert a.references == ["glue the sheet to the dark blue background"] and a.extra["has_transcript"]
    assert a.extra["snr_db"] == 15.0 and not a.extra["reverb"] and a.prompt == SE_PROMPT
    assert Path(a.audio).is_absolute() and Path(a.audio).name.endswith("fileid_7.wav")
    assert Path(a.extra["clean_audio"]).name == "clean_fileid_7.wav" and Path(a.extra["clean_audio"]).is_file()
    b = test["dns2020-with_reverb-fileid_3"]  # no transcript file for with_reverb
    assert b.references == [NO_TRANSCRIPT] and b.extra == {**b.extra, "transcript": "", "has_transcript": False, "reverb": True}
    real = test["dns2020-real_recordings-audioset_realrec_car_0AVTgzegI4s"]
    assert "clean_audio" not in real.extra and real.extra["snr_db"] is None
    train = read_manifest(tmp_path / "out" / "train.jsonl") + read_manifest(tmp_path / "out" / "valid.jsonl")
    assert sorted(ex.id for ex in train) == [f"dns2020-train-fileid_{n}" for n in range(3)]
    assert all(ex.references == [NO_TRANSCRIPT] for ex in train)
    assert check_splits(tmp_path / "out") == []


def test_dns2020_bad_input_names_the_file(dns: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="data.hub.dns2020_train is not set"):
        build_dns2020(dns_cfg(dns, dns2020_train=None), out)
    with pytest.raises(FileNotFoundError, match="data.hub.dns2020 is not set"):
        build_dns2020(dns_cfg(dns, dns2020=None), out)
    lonely = dns["train"] / "noisy" / "book_y_snr3_tl-20_fileid_9.wav"
    _wav(lonely)
    with pytest.raises(FileNotFoundError, match=r"book_y_snr3_tl-20_fileid_9.wav: its clean partner .*clean_fileid_9.wav is missing"):
        build_dns2020(dns_cfg(dns), out)
    lonely.unlink()
    slow = dns["train"] / "clean" / "clean_fileid_1.wav"
    _wav(slow, sr=8000)
    with pytest.raises(AudioError, match=r"clean_fileid_1.wav: 8000 Hz"):
        build_dns2020(dns_cfg(dns), out)
    _wav(slow, n=1000)
    with pytest.raises(AudioError, match=r"clean_fileid_1.wav: 1000 samples but its noisy file .*fileid_1.wav has 1600"):
        build_dns2020(dns_cfg(dns), out)
    _wav(slow, seed=11)
    (dns["text"] / "tt_synthetic_no_reverb" / "text").write_text("fileid_3 the birch canoe slid\n")
    with pytest.raises(ValueError, match="no transcript for fileid_7"):
        build_dns2020(dns_cfg(dns), out)
    assert not out.exists()
