"""Audio loading: every bad file is an AudioError that names it."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from speechrl.audio.io import AudioError, load_audio


def _wav(path, sr=16000, seconds=0.5, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * 220 * t)
    sf.write(path, np.stack([x] * channels, 1) if channels > 1 else x, sr)
    return path


def test_loads_mono_float(tmp_path):
    x = load_audio(_wav(tmp_path / "ok.wav"))
    assert x.dtype == np.float32 and x.shape == (8000,) and np.abs(x).max() <= 1


def test_stereo_is_downmixed(tmp_path):
    assert load_audio(_wav(tmp_path / "st.wav", channels=2)).shape == (8000,)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: p, "audio file not found"),
        (lambda p: (p.write_bytes(b"RIFF\x00\x00garbage"), p)[1], "cannot decode audio"),
        (lambda p: _wav(p, sr=22050), "sample rate 22050 Hz, expected 16000 Hz"),
        (lambda p: _wav(p, seconds=0), "audio is empty"),
        (lambda p: _wav(p, seconds=3), "longer than data.max_audio_seconds=2"),
    ],
)
def test_bad_audio_names_the_file(tmp_path, make, needle):
    p = make(tmp_path / "bad.wav")
    with pytest.raises(AudioError) as e:
        load_audio(p, 16000, max_seconds=2, context="id=x1")
    assert needle in str(e.value) and "bad.wav" in str(e.value) and "id=x1" in str(e.value)
