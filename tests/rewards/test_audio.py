"""DNSMOS and UTMOS scorers: clean vs noisy espeak speech, resampling, stereo, clipping, NaN, errors.

One module-scoped DNSMOS batch (the first call starts the worker pool; in a fresh environment it also
compiles librosa's numba kernels, ~20 s, cached on disk afterwards).
"""

from __future__ import annotations

import logging
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from speechrl.audio.io import AudioError
from speechrl.rewards import REWARDS, score_corpus, score_samples
from speechrl.rewards import audio as A

SUBS = ["ovrl", "sig", "bak", "p808"]
TEXT = "the quick brown fox jumps over the lazy dog near the river bank"
needs_tools = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng and sox needed")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Clean espeak speech in several forms + 0 dB white noise; DNSMOS of all of them in one call."""
    d = tmp_path_factory.mktemp("dnsmos")
    raw, clean = d / "raw.wav", d / "clean.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), TEXT], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", str(clean)], check=True)
    subprocess.run(["sox", str(raw), "-r", "22050", "-c", "1", str(d / "r22.wav")], check=True)
    wav, _ = sf.read(str(clean), dtype="float32")
    sf.write(str(d / "stereo.wav"), np.stack([wav, wav], axis=1), 16000)
    noise = np.random.default_rng(0).standard_normal(len(wav)).astype(np.float32)
    noise *= np.sqrt(np.mean(wav**2) / np.mean(noise**2))  # 0 dB SNR
    noisy = wav + noise
    noisy /= max(1.0, float(np.abs(noisy).max()))
    nan = wav.copy()
    nan[100] = np.nan
    items = {
        "clean": str(clean),
        "noisy": noisy,
        "r22": str(d / "r22.wav"),
        "stereo": str(d / "stereo.wav"),
        "nan": nan,
        "clipped": wav * 4.0,
        "pair": (wav, 16000),
        "empty": np.zeros(0, dtype=np.float32),
    }
    return items, dict(zip(items, A.dnsmos_mos(list(items.values()))))


@needs_tools
def test_clean_beats_noisy_on_every_subscore(batch) -> None:
    _, mos = batch
    print({k: {s: round(v, 2) for s, v in mos[k].items()} for k in ("clean", "noisy")})
    for s in SUBS:
        assert 1.0 <= mos["noisy"][s] < mos["clean"][s] <= 5.0, s
    assert mos["clean"]["ovrl"] - mos["noisy"]["ovrl"] > 0.8


@needs_tools
def test_resampled_stereo_and_array_forms_match_clean(batch) -> None:
    _, mos = batch
    for s in SUBS:
        assert mos["stereo"][s] == pytest.approx(mos["clean"][s], abs=1e-4)
        assert mos["pair"][s] == pytest.approx(mos["clean"][s], abs=1e-4)
        # sox 22.05 kHz then soxr back to 16 kHz: not bit-identical (BAK moves ~0.2), still far above noise
        assert mos["r22"][s] == pytest.approx(mos["clean"][s], abs=0.4)
        assert mos["r22"][s] > mos["noisy"][s]
    assert mos["clipped"] is not None and all(1 <= v <= 5 for v in mos["clipped"].values())


@needs_tools
def test_nan_and_empty_give_none(batch) -> None:
    _, mos = batch
    assert mos["nan"] is None and mos["empty"] is None


@needs_tools
def test_notes_logged_for_resample_downmix_clip_nan(batch, caplog) -> None:
    items, _ = batch
    A._MOS_CACHE.clear()  # re-score to see the notes
    with caplog.at_level(logging.INFO, logger="speechrl.rewards.audio"):
        A.dnsmos_mos([items["r22"], items["stereo"], items["clipped"], items["nan"]])
    text = caplog.text
    assert "resampled 22050 Hz -> 16000 Hz" in text and "2 channels downmixed" in text
    assert "clipped" in text and "NaN" in text and "1 of 4 samples not scorable" in text


@needs_tools
def test_reward_mapping_and_corpus(batch) -> None:
    items, mos = batch
    audio = [items["clean"], items["noisy"], items["nan"]]
    refs = [["-"]] * 3
    for s in SUBS:
        r = score_samples(f"dnsmos_{s}", ["", "", ""], refs, audio=audio)
        assert r[0] == pytest.approx((mos["clean"][s] - 1) / 4) and r[1] == pytest.approx((mos["noisy"][s] - 1) / 4) and r[2] is None
        mean_mos = (mos["clean"][s] + mos["noisy"][s]) / 2
        assert score_corpus(f"dnsmos_{s}", ["", "", ""], refs, audio=audio) == pytest.approx(mean_mos)  # 1-5 scale
        assert A.corpus_mos(f"dnsmos_{s}", audio) == pytest.approx(mean_mos)
    assert A.mos_to_reward(5.7) == 1.0 and A.mos_to_reward(0.5) == 0.0


def test_registered_with_audio_column() -> None:
    for name in [*(f"dnsmos_{s}" for s in SUBS), "utmos"]:
        sc = REWARDS.get(name)
        assert sc.columns == ("audio",) and sc.description
    with pytest.raises(ValueError, match="needs the column 'audio'"):
        score_samples("dnsmos_ovrl", ["x"], [["x"]])


def test_missing_file_names_it(tmp_path) -> None:
    with pytest.raises(AudioError, match="audio file not found: .*nope.wav"):
        A.prepare_audio(str(tmp_path / "nope.wav"))
    with pytest.raises(AudioError, match="expected a file path"):
        A.prepare_audio(3)


def test_workers_env_validated(monkeypatch) -> None:
    monkeypatch.setenv(A.WORKERS_ENV, "two")
    with pytest.raises(ValueError, match="SPEECHRL_AUDIO_WORKERS='two' is not an integer"):
        A.n_workers()
    monkeypatch.setenv(A.WORKERS_ENV, "3")
    assert A.n_workers() == 3


def test_utmos_without_checkpoint_says_how(monkeypatch) -> None:
    monkeypatch.delenv(A.UTMOS_ENV, raising=False)
    with pytest.raises(RuntimeError, match=r"no UTMOS weights ship offline.*SPEECHRL_UTMOS_CHECKPOINT=/path/to/utmos.pt.*TorchScript"):
        REWARDS.get("utmos").sample([""], [["x"]], audio=[np.zeros(16000, dtype=np.float32)])
    monkeypatch.setenv(A.UTMOS_ENV, "/nonexistent/utmos.pt")
    with pytest.raises(RuntimeError, match="no such file"):
        REWARDS.get("utmos").sample([""], [["x"]], audio=[np.zeros(16000, dtype=np.float32)])


def test_utmos_plugin_with_torchscript_checkpoint(tmp_path, monkeypatch) -> None:
    torch = pytest.importorskip("torch")

    class FakeMos(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # louder -> higher "MOS", 1..5
            return 1.0 + 4.0 * x.abs().mean(dim=1).clamp(0, 1)

    path = tmp_path / "utmos.pt"
    torch.jit.script(FakeMos()).save(str(path))
    monkeypatch.setenv(A.UTMOS_ENV, str(path))
    quiet, loud = np.full(16000, 0.25, np.float32), np.full(16000, 0.75, np.float32)
    nan = quiet.copy()
    nan[0] = np.nan
    assert REWARDS.get("utmos").sample(["", "", ""], [["x"]] * 3, audio=[quiet, loud, nan]) == [pytest.approx(0.25), pytest.approx(0.75), None]
