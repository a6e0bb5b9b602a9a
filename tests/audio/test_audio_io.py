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


def test_out_of_range_float_audio_is_refused(tmp_path):
    p = tmp_path / "loud.wav"
    x = np.zeros(8000, dtype=np.float32)
    x[100] = 158.0
    sf.write(p, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError) as e:
        load_audio(p, 16000, context="id=x1")
    msg = str(e.value)
    assert "loud.wav" in msg and "id=x1" in msg and "peak amplitude 158 is outside [-1, 1]" in msg and "sox --norm" in msg


def test_float_audio_within_the_tolerance_loads(tmp_path):
    p = tmp_path / "edge.wav"
    x = np.full(800, -1.0005, dtype=np.float32)  # rounding overshoot under PEAK_TOLERANCE (1e-3)
    sf.write(p, x, 16000, subtype="FLOAT")
    assert load_audio(p).shape == (800,)


def test_nan_audio_is_refused(tmp_path):
    p = tmp_path / "nan.wav"
    x = np.zeros(800, dtype=np.float32)
    x[5] = np.nan
    sf.write(p, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: audio contains NaN or infinite samples"):
        load_audio(p)


def test_resample_is_librosas_soxr_hq_without_librosa():
    import librosa

    from speechrl.audio.io import resample

    x = np.random.default_rng(0).uniform(-0.5, 0.5, 12345).astype(np.float32)
    for sr, target in ((16000, 8000), (8000, 16000), (24000, 16000)):
        out = resample(x, sr, target)
        assert out.dtype == np.float32 and np.array_equal(out, librosa.resample(x, orig_sr=sr, target_sr=target, res_type="soxr_hq"))
    assert resample(x, 16000, 16000) is x
