"""Noise, reverberation and SNR mixing for synthetic speech-enhancement data (pure numpy).

Every random function takes a ``numpy.random.Generator``: the same generator state gives the same
samples. Signals are 1-D float64 arrays of ``n`` samples; the noise generators return **unit-RMS**
noise, because :func:`mix_at_snr` sets the level.

* :func:`white`: Gaussian white noise (flat power spectrum).
* :func:`pink`: 1/f noise by FFT shaping of white noise (amplitude spectrum x 1/sqrt(f), DC
  removed): the power falls by 10 log10(2) = 3.01 dB per octave.
* :func:`babble`: the sum of ``talkers`` other utterances, each looped to ``n`` samples, started
  at a random offset and brought to the same RMS.
* :func:`reverb`: convolution with a synthetic room impulse response (:func:`rir`): a direct path
  plus a Gaussian-noise tail decaying exponentially by 60 dB over ``rt60`` seconds (the
  statistical reverberation model of Polack, 1988). It has no early-reflection structure; a
  geometric room simulator (pyroomacoustics) would give one, but it is not a dependency.
* :func:`mix_at_snr`: noise scaled to the asked SNR, where SNR = 10 log10(sum clean^2 / sum
  noise^2) over the **whole clip** (as the DNS Challenge synthesiser computes it; an
  active-speech SNR would need a voice activity detector). Optionally the mixture is brought to
  a target level (dBFS RMS), then mixture and clean target are scaled down together if either
  would clip: the SNR is unchanged by both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import fftconvolve

_EPS = 1e-12
_LN_1000 = np.log(1000.0)  # amplitude decays by 60 dB (x 1/1000) over rt60 seconds


def rms(x: np.ndarray) -> float:
    """Root mean square of ``x``."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def snr_db(clean: np.ndarray, noise: np.ndarray) -> float:
    """10 log10(energy of ``clean`` / energy of ``noise``), over the whole clip."""
    return float(10 * np.log10(np.sum(np.square(clean, dtype=np.float64)) / max(np.sum(np.square(noise, dtype=np.float64)), _EPS)))


def _unit(x: np.ndarray, what: str) -> np.ndarray:
    r = rms(x)
    if r < _EPS:
        raise ValueError(f"{what} is silent (RMS 0): cannot normalise it")
    return x / r


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of unit-RMS Gaussian white noise."""
    if n < 1:
        raise ValueError(f"noise length must be >= 1 sample, got {n}")
    return _unit(rng.standard_normal(n), "white noise")


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of unit-RMS pink (1/f power) noise: white noise shaped in the frequency domain."""
    if n < 2:
        raise ValueError(f"pink noise needs >= 2 samples, got {n}")
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    gain = np.zeros_like(f)
    gain[1:] = 1 / np.sqrt(f[1:])  # power ~ 1/f; DC removed
    return _unit(np.fft.irfft(spec * gain, n), "pink noise")


def babble(others: Sequence[np.ndarray], n: int, rng: np.random.Generator, talkers: int = 3) -> np.ndarray:
    """Unit-RMS babble of ``talkers`` distinct utterances from ``others`` (each looped to ``n``
    samples from a random offset and normalised to unit RMS before summing)."""
    if talkers < 1:
        raise ValueError(f"babble needs >= 1 talker, got {talkers}")
    if len(others) < talkers:
        raise ValueError(f"babble with {talkers} talkers needs {talkers} other utterances, got {len(others)}")
    out = np.zeros(n)
    for i in rng.choice(len(others), size=talkers, replace=False):
        src = np.asarray(others[i], dtype=np.float64)
        if src.size == 0:
            raise ValueError(f"babble source {i} is empty")
        start = int(rng.integers(src.size))
        idx = (start + np.arange(n)) % src.size
        out += _unit(src[idx], f"babble source {i}")
    return _unit(out, "babble")


def rir(rt60: float, rng: np.random.Generator, sample_rate: int = 16000, drr_db: float = 0.0) -> np.ndarray:
    """Synthetic room impulse response: a unit direct path at t=0 and a Gaussian tail
    ``exp(-ln(1000) t / rt60)`` (60 dB decay in ``rt60`` s) lasting ``rt60`` s, scaled so the
    direct-to-reverberant energy ratio is ``drr_db``."""
    if rt60 <= 0:
        raise ValueError(f"rt60 must be > 0 s, got {rt60}")
    n = max(2, int(round(rt60 * sample_rate)))
    t = np.arange(1, n) / sample_rate
    tail = rng.standard_normal(n - 1) * np.exp(-_LN_1000 * t / rt60)
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail**2))
    return np.concatenate([[1.0], tail])


def reverb(wav: np.ndarray, rng: np.random.Generator, rt60: tuple[float, float] = (0.3, 1.3),
           sample_rate: int = 16000) -> tuple[np.ndarray, float]:
    """``wav`` convolved with a :func:`rir` of an RT60 drawn uniformly from ``rt60`` (seconds),
    cut to the input length and brought back to the input RMS. Returns (reverberant, rt60 drawn)."""
    lo, hi = rt60
    if not 0 < lo <= hi:
        raise ValueError(f"rt60 range must satisfy 0 < low <= high, got {list(rt60)}")
    t60 = float(rng.uniform(lo, hi))
    wet = fftconvolve(np.asarray(wav, dtype=np.float64), rir(t60, rng, sample_rate))[: len(wav)]
    return wet * (rms(wav) / max(rms(wet), _EPS)), t60


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr: float, level_dbfs: float | None = None,
               peak: float = 0.99) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean target): ``clean + g * noise`` with ``g`` giving a whole-clip SNR of ``snr`` dB.

    ``level_dbfs`` (optional) sets the mixture's RMS level (dB re full scale); then, if the
    mixture or the target peaks above ``peak``, both are scaled down by the same factor. The
    returned target is the clean signal with those same gains, so noisy - target is the noise.
    """
    clean = np.asarray(clean, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    if clean.shape != noise.shape or clean.ndim != 1:
        raise ValueError(f"clean and noise must be 1-D of the same length, got {clean.shape} and {noise.shape}")
    if rms(clean) < _EPS or rms(noise) < _EPS:
        raise ValueError("clean speech and noise must not be silent")
    noise = noise * (rms(clean) / rms(noise)) * 10 ** (-snr / 20)
    noisy = clean + noise
    if level_dbfs is not None:
        gain = 10 ** (level_dbfs / 20) / rms(noisy)
        noisy, clean = noisy * gain, clean * gain
    top = max(float(np.max(np.abs(noisy))), float(np.max(np.abs(clean))))
    if top > peak:
        noisy, clean = noisy * (peak / top), clean * (peak / top)
    return noisy, clean
