"""Granite-Speech log-mel features without torchaudio.

Reproduces ``GraniteSpeechFeatureExtractor`` (which needs torchaudio, absent on CPU-only installs):
``MelSpectrogram(sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=80)`` (periodic Hann,
centred reflect padding, power 2, HTK mel scale, no filter norm), then
``log10(clip(mel, 1e-10))``, dynamic-range floor ``max - 8``, ``/4 + 1``, drop an odd last frame,
and stack pairs of frames -> shape (frames // 2, 160).

Departure from the reference: features are computed per clip, not on a zero-padded batch. The
padded batch in transformers changes the last frame of shorter clips; per-clip features make a
clip's features independent of its batch (training and decoding see the same input).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from transformers.audio_utils import mel_filter_bank

N_FFT, WIN_LENGTH, HOP_LENGTH, N_MELS, SAMPLE_RATE = 512, 400, 160, 80, 16000
FEATURE_DIM = 2 * N_MELS


@functools.lru_cache(maxsize=1)
def _mel_fb() -> torch.Tensor:
    fb = mel_filter_bank(num_frequency_bins=N_FFT // 2 + 1, num_mel_filters=N_MELS, min_frequency=0.0,
                         max_frequency=SAMPLE_RATE / 2, sampling_rate=SAMPLE_RATE, norm=None, mel_scale="htk")
    return torch.from_numpy(fb).float()  # (257, 80)


@functools.lru_cache(maxsize=1)
def _window() -> torch.Tensor:
    return torch.hann_window(WIN_LENGTH, periodic=True)


def log_mel(wav: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(samples,) float waveform at 16 kHz -> (frames // 2, 160) stacked log-mel features."""
    x = torch.as_tensor(wav, dtype=torch.float32)
    spec = torch.stft(x, N_FFT, HOP_LENGTH, WIN_LENGTH, _window(), center=True, pad_mode="reflect",
                      return_complex=True).abs().pow(2)  # (257, frames)
    mel = (spec.T @ _mel_fb()).clamp_(min=1e-10).log10_()  # (frames, 80)
    mel = torch.maximum(mel, mel.max() - 8.0).div_(4).add_(1)
    if mel.shape[0] % 2:
        mel = mel[:-1]
    return mel.reshape(-1, FEATURE_DIM)


def num_audio_tokens(n_samples: int, window: int, downsample: int) -> int:
    """Projector output length for a clip of ``n_samples`` (as GraniteSpeechFeatureExtractor)."""
    encoder_length = (n_samples // HOP_LENGTH + 1) // 2
    return math.ceil(encoder_length / window) * (window // downsample)
