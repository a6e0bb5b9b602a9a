"""Granite log-mel features without torchaudio, and the audio-token count."""

from __future__ import annotations

import math

import numpy as np
import torch

from speechrl.audio.features import FEATURE_DIM, log_mel, num_audio_tokens


def test_shapes_and_token_count_match_granite_formula():
    for n in (16000, 16001, 23999, 48000):
        f = log_mel(np.random.default_rng(0).standard_normal(n).astype(np.float32))
        frames = n // 160 + 1
        assert f.shape == (frames // 2, FEATURE_DIM)
        # GraniteSpeechFeatureExtractor._get_num_audio_features with window 15, downsample 5
        assert num_audio_tokens(n, 15, 5) == math.ceil((frames // 2) / 15) * 3


def test_matches_reference_mel_computation():
    """Same pipeline as torchaudio.MelSpectrogram + Granite post-processing, written with numpy."""
    from transformers.audio_utils import mel_filter_bank

    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(8000)).astype(np.float32)
    padded = np.pad(x, 256, mode="reflect")
    win = np.zeros(512)
    win[56:456] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)  # periodic Hann, centred in n_fft
    frames = np.stack([padded[i:i + 512] * win for i in range(0, len(padded) - 512 + 1, 160)])
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    fb = mel_filter_bank(num_frequency_bins=257, num_mel_filters=80, min_frequency=0, max_frequency=8000,
                         sampling_rate=16000, norm=None, mel_scale="htk")
    mel = np.log10(np.clip(power @ fb, 1e-10, None))
    mel = np.maximum(mel, mel.max() - 8) / 4 + 1
    mel = mel[: len(mel) // 2 * 2].reshape(-1, 160)
    assert torch.allclose(log_mel(x), torch.from_numpy(mel).float(), atol=2e-4)
