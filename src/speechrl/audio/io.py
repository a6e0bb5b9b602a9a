"""Validated audio loading: every problem is an :class:`AudioError` naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf


# Float audio may overshoot full scale by rounding (resampling, codecs); more is a wrongly scaled file.
PEAK_TOLERANCE = 1e-3


class AudioError(ValueError):
    """Unreadable, empty, wrongly sampled, out-of-range or too long audio; the message names the file."""


def read_file(path: str | Path, where: str) -> tuple[np.ndarray, int]:
    """(samples, channels) float32 and the sample rate; missing / undecodable -> AudioError naming ``where``."""
    if not Path(path).exists():
        raise AudioError(f"audio file not found: {where}")
    try:
        return sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile's errors are RuntimeError / LibsndfileError
        raise AudioError(f"cannot decode audio {where}: {e}") from None


def load_audio(path: str | Path, sample_rate: int = 16000, max_seconds: float | None = None, context: str = "") -> np.ndarray:
    """Read a mono float32 waveform in [-1, 1], shape (samples,).

    Raises :class:`AudioError` for a missing, corrupt or empty file, a sample rate other than
    ``sample_rate`` (resample it first: the features assume it), NaN / infinite samples, a peak
    amplitude over ``1 + PEAK_TOLERANCE`` (a float file that is not normalised; integer PCM always
    decodes within range), or audio over ``max_seconds``.
    Multi-channel audio is downmixed (mean over channels).
    ``context`` (e.g. a manifest id) is added to the message.
    """
    path = Path(path)
    where = f"{path}" + (f" ({context})" if context else "")
    wav, sr = read_file(path, where)
    if sr != sample_rate:
        raise AudioError(f"{where}: sample rate {sr} Hz, expected {sample_rate} Hz (resample, e.g. `sox in.wav -r {sample_rate} out.wav`)")
    if wav.shape[0] == 0:
        raise AudioError(f"{where}: audio is empty (0 samples)")
    if not np.isfinite(wav).all():
        raise AudioError(f"{where}: audio contains NaN or infinite samples")
    peak = float(np.abs(wav).max())
    if peak > 1 + PEAK_TOLERANCE:
        raise AudioError(f"{where}: peak amplitude {peak:.4g} is outside [-1, 1] (float audio must be normalised, "
                         "e.g. `sox --norm in.wav out.wav`)")
    wav = wav.mean(axis=1) if wav.shape[1] > 1 else wav[:, 0]
    if max_seconds is not None and len(wav) > max_seconds * sample_rate:
        raise AudioError(f"{where}: {len(wav) / sample_rate:.1f} s is longer than data.max_audio_seconds={max_seconds}")
    return np.ascontiguousarray(wav)


def resample(wav: np.ndarray, sr: int, target: int) -> np.ndarray:
    """``wav`` (samples,) at ``sr`` Hz -> float32 at ``target`` Hz: soxr, HQ quality.

    The same samples as ``librosa.resample(res_type="soxr_hq")`` (librosa calls soxr), without librosa's
    import and numba set-up, which cost a fresh process ~4 s (``bench/job_startup.py``)."""
    wav = np.asarray(wav, dtype=np.float32)
    if sr == target:
        return wav
    import soxr

    return soxr.resample(wav, int(sr), int(target), quality="HQ").astype(np.float32, copy=False)


def audio_info(path: str | Path) -> Any:
    """``soundfile.info`` of ``path`` (rate, frames, channels) without reading the samples; an unreadable file is
    an :class:`AudioError` naming it."""
    try:
        return sf.info(str(path))
    except Exception as e:  # libsndfile errors
        raise AudioError(f"cannot decode audio {path}: {e}") from None

