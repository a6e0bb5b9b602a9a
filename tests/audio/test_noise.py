"""Noise generators, reverberation and SNR mixing: measured SNR, spectra, decay, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from speechrl.audio import noise as nz

SR = 16000


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def speechlike(n: int = SR, seed: int = 1) -> np.ndarray:
    """A 200 Hz tone with a syllable-rate envelope and a silent start (not stationary, like speech)."""
    t = np.arange(n) / SR
    x = 0.3 * np.sin(2 * np.pi * 200 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    x[: n // 10] = 0
    return x + 1e-3 * rng(seed).standard_normal(n)


@pytest.mark.parametrize("snr", [-5.0, 0.0, 7.3, 20.0])
@pytest.mark.parametrize("kind", ["white", "pink"])
def test_mixture_snr_measured_back(snr: float, kind: str) -> None:
    clean = speechlike()
    noise = getattr(nz, kind)(len(clean), rng())
    noisy, target = nz.mix_at_snr(clean, noise, snr)
    assert nz.snr_db(target, noisy - target) == pytest.approx(snr, abs=0.01)
    np.testing.assert_allclose(target, clean)  # no level change asked, no clipping: target untouched


def test_level_and_peak_safety_keep_the_snr() -> None:
    clean = speechlike()
    noisy, target = nz.mix_at_snr(clean, nz.white(len(clean), rng()), 10.0, level_dbfs=-25.0)
    assert 20 * np.log10(nz.rms(noisy)) == pytest.approx(-25.0, abs=1e-6)
    assert nz.snr_db(target, noisy - target) == pytest.approx(10.0, abs=0.01)
    # a level that would clip: mixture and target are scaled down together, the SNR stays
    noisy, target = nz.mix_at_snr(clean, nz.white(len(clean), rng()), 0.0, level_dbfs=-1.0)
    assert max(np.abs(noisy).max(), np.abs(target).max()) == pytest.approx(0.99)
    assert nz.snr_db(target, noisy - target) == pytest.approx(0.0, abs=0.01)
    ratio = target[clean != 0] / clean[clean != 0]
    assert np.allclose(ratio, ratio[0])  # one gain for the whole target


def test_mix_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        nz.mix_at_snr(np.ones(10), np.ones(11), 0.0)
    with pytest.raises(ValueError, match="silent"):
        nz.mix_at_snr(np.zeros(10), np.ones(10), 0.0)


def test_white_and_pink_spectra() -> None:
    n = 1 << 18
    f, p = welch(nz.pink(n, rng()), fs=SR, nperseg=4096)
    band = (f >= 50) & (f <= 5000)
    slope = np.polyfit(np.log2(f[band]), 10 * np.log10(p[band]), 1)[0]
    assert slope == pytest.approx(-3.01, abs=0.15)  # dB per octave
    f, p = welch(nz.white(n, rng()), fs=SR, nperseg=4096)
    assert abs(np.polyfit(np.log2(f[band]), 10 * np.log10(p[band]), 1)[0]) < 0.15
    for x in (nz.white(1000, rng()), nz.pink(1000, rng())):
        assert nz.rms(x) == pytest.approx(1.0)


def test_generators_are_deterministic() -> None:
    others = [speechlike(8000, s) for s in range(4)]
    for make in (lambda r: nz.white(500, r), lambda r: nz.pink(500, r), lambda r: nz.babble(others, 500, r, 3),
                 lambda r: nz.reverb(others[0], r)[0]):
        np.testing.assert_array_equal(make(rng(3)), make(rng(3)))
        assert not np.array_equal(make(rng(3)), make(rng(4)))


def test_babble_mixes_distinct_talkers() -> None:
    others = [np.full(100, float(k + 1)) for k in range(5)]  # constant "talkers" 1..5, each unit RMS after scaling
    b = nz.babble(others, 50, rng(), talkers=3)
    assert len(b) == 50 and nz.rms(b) == pytest.approx(1.0)
    np.testing.assert_allclose(b, 1.0)  # 3 unit-RMS constants summed (3), then normalised -> all ones
    with pytest.raises(ValueError, match="needs 3 other utterances, got 2"):
        nz.babble(others[:2], 50, rng(), talkers=3)


def _rt60_schroeder(h: np.ndarray) -> float:
    """RT60 from the -5..-25 dB span of the Schroeder energy decay curve (T20 x 3)."""
    edc = np.cumsum(h[::-1] ** 2)[::-1]
    db = 10 * np.log10(edc / edc[0])
    t = np.arange(len(h)) / SR
    span = (db <= -5) & (db >= -25)
    return -60 / np.polyfit(t[span], db[span], 1)[0]


@pytest.mark.parametrize("t60", [0.3, 0.8])
def test_rir_decays_at_the_asked_rt60(t60: float) -> None:
    h = nz.rir(t60, rng(), SR)
    assert h[0] == 1.0 and len(h) == int(t60 * SR)
    assert _rt60_schroeder(h) == pytest.approx(t60, rel=0.1)
    assert 10 * np.log10(1 / np.sum(h[1:] ** 2)) == pytest.approx(0.0, abs=1e-9)  # DRR 0 dB


def test_reverb_keeps_length_and_level() -> None:
    x = speechlike()
    wet, t60 = nz.reverb(x, rng(), (0.3, 1.3))
    assert wet.shape == x.shape and 0.3 <= t60 <= 1.3
    assert nz.rms(wet) == pytest.approx(nz.rms(x))
    assert not np.allclose(wet, x)
    with pytest.raises(ValueError, match="rt60 range"):
        nz.reverb(x, rng(), (0.0, 1.0))
