"""Audio codecs: the codec2 token layout (hand-computed), round trips, invalid ids, bad input, plug-in errors."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pycodec2
import pytest

from speechrl.audio.codecs import CODEC2_DELAY, CODECS, CodecError, FrameLayout, _codec2_rng, load_codec
from speechrl.registry import UnknownNameError


def voiced(seconds: float = 1.0, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: harmonics of a 120-180 Hz glide under a 4 Hz syllable envelope."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 60 * t / max(seconds, 1e-9)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 20) if k * 180 < 3800)
    env = 0.5 * (1 - np.cos(2 * np.pi * 4 * t)) + 0.05
    x = x * env + 0.003 * np.random.default_rng(seed).standard_normal(len(t))
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def c2():
    return load_codec("codec2")


# ------------------------------------------------------------------------------- registry, options, info
def test_unknown_codec_lists_the_valid_names():
    with pytest.raises(UnknownNameError) as e:
        load_codec("codex2")
    msg = str(e.value)
    assert "unknown audio codec 'codex2'" in msg and "did you mean 'codec2'" in msg
    for name in ("codec2", "encodec", "dac", "xcodec2", "snac", "bicodec", "simcodec"):
        assert name in msg and name in CODECS


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"rate": 700}, "unknown option(s) rate; valid: mode, tokens_per_frame"),
        ({"mode": 450}, "mode 450 is not supported; valid: 700, 1300, 1600, 2400, 3200"),
        ({"tokens_per_frame": 0}, "tokens_per_frame must be an integer in 1..28"),
        ({"tokens_per_frame": 1}, "28-bit tokens (> 16); use tokens_per_frame >= 2"),
    ],
)
def test_bad_codec2_options(options, needle):
    with pytest.raises(CodecError) as e:
        load_codec("codec2", **options)
    assert needle in str(e.value)


@pytest.mark.parametrize(
    ("mode", "k", "sizes", "tps"),
    [
        (700, 4, [128] * 4, 100.0),  # 28 bits / 40 ms -> 7+7+7+7
        (700, 3, [1024, 512, 512], 75.0),  # 10+9+9: the first group takes the extra bit
        (1300, 4, [8192] * 4, 100.0),  # 52 bits / 40 ms
        (3200, 8, [256] * 8, 400.0),  # 64 bits / 20 ms
    ],
)
def test_info_layout(mode, k, sizes, tps):
    c = load_codec("codec2", mode=mode, tokens_per_frame=k)
    info = json.loads(json.dumps(c.info()))
    assert info == {"name": "codec2", "options": {"mode": mode, "tokens_per_frame": k}, "vocab_size": sum(sizes),
                    "sample_rate": 8000, "tokens_per_second": tps, "tokens_per_frame": k, "group_sizes": sizes}
    assert c.vocab_size == sum(sizes) and c.tokens_per_second == tps


# ------------------------------------------------------------------------------- codec2 bits and ids
def test_ids_are_the_frame_bits_msb_first(c2):
    """First frame, by hand: libcodec2's packed 28 bits cut into four 7-bit groups, group k offset by 128 k."""
    x = voiced(0.2, sr=8000)
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
    raw = pycodec2.Codec2(700).encode(np.ascontiguousarray(pcm[:320]))
    bits = int.from_bytes(raw, "big") >> (8 * len(raw) - 28)
    expected = [k * 128 + ((bits >> (21 - 7 * k)) & 127) for k in range(4)]
    assert c2.encode(x, 8000)[:4] == expected


def test_decode_matches_libcodec2_on_the_same_bits(c2):
    """decode = libcodec2's decoder on the packed bits, delay dropped, resampled to 16 kHz; repeatable."""
    import librosa

    c2.decode(c2.encode(voiced(0.3), 16000))  # leave the global phase generator elsewhere

    x = voiced(0.5, sr=8000)
    ids = c2.encode(x, 8000)
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
    pcm = np.pad(pcm, (0, -(len(pcm) + 236) % 320 + 236))
    enc, dec = pycodec2.Codec2(700), pycodec2.Codec2(700)
    _codec2_rng().reset()  # the decoder's global phase generator, as decode leaves it
    ref = np.concatenate([dec.decode(enc.encode(np.ascontiguousarray(pcm[i:i + 320]))) for i in range(0, len(pcm), 320)])
    ref = librosa.resample(ref[236:].astype(np.float32) / 32768, orig_sr=8000, target_sr=16000, res_type="soxr_hq")
    y, bad = c2.decode(ids)
    assert bad == 0 and np.allclose(y, np.clip(ref, -1, 1), atol=1e-6)
    assert np.array_equal(c2.decode(ids)[0], y)


def test_decode_is_repeatable_in_a_fresh_process(c2, tmp_path):
    import subprocess
    import sys

    x = voiced(0.5)
    np.save(tmp_path / "x.npy", x)
    y, _ = c2.decode(c2.encode(x, 16000))
    code = ("import numpy as np; from speechrl.audio.codecs import load_codec; c = load_codec('codec2'); "
            f"x = np.load({str(tmp_path / 'x.npy')!r}); np.save({str(tmp_path / 'y.npy')!r}, c.decode(c.encode(x, 16000))[0])")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert np.array_equal(np.load(tmp_path / "y.npy"), y)


@pytest.mark.parametrize("mode", [700, 1300, 1600, 2400, 3200])
def test_round_trip_length_ranges_and_determinism(mode):
    c = load_codec("codec2", mode=mode)
    x = voiced(0.73)
    ids = c.encode(x, 16000)
    spf, delay = (320 if mode in (700, 1300, 1600) else 160), CODEC2_DELAY[mode]
    frames = math.ceil((len(x) // 2 + delay) / spf)
    assert len(ids) == 4 * frames
    sizes = c.info()["group_sizes"]
    offsets = np.cumsum([0, *sizes])
    assert all(offsets[i % 4] <= t < offsets[i % 4 + 1] for i, t in enumerate(ids))
    y, bad = c.decode(ids)
    assert bad == 0 and y.dtype == np.float32 and len(y) == 2 * (frames * spf - delay) >= len(x)
    assert np.abs(y).max() <= 1.0 and np.isfinite(y).all()
    assert c.encode(x, 16000) == ids and np.array_equal(c.decode(ids)[0], y)


def test_round_trip_follows_the_input_in_time(c2):
    """Frame energies (dB, 10 ms) of the decoded speech track the input's, best at lag 0 (delay compensated)."""
    x = voiced(1.0)
    y, _ = c2.decode(c2.encode(x, 16000))

    def db(s):
        n = len(s) // 160
        return 10 * np.log10(1e-8 + (s[:n * 160].reshape(n, 160) ** 2).mean(1))

    a, b = db(x), db(y[:len(x)])
    r = {lag: np.corrcoef(a[:len(a) - lag], b[lag:])[0, 1] if lag >= 0 else np.corrcoef(a[-lag:], b[:lag])[0, 1] for lag in (-2, 0, 2)}
    assert r[0] > 0.85 and r[0] > r[2] + 0.1 and r[0] > r[-2] + 0.1


def test_any_other_rate_is_resampled(c2):
    import librosa

    x = voiced(1.0)
    x22 = librosa.resample(x, orig_sr=16000, target_sr=22050)
    assert len(c2.encode(x22, 22050)) == len(c2.encode(x, 16000))


# ------------------------------------------------------------------------------- invalid ids
def test_frame_layout_regrouping_by_hand():
    lay = FrameLayout((2, 3))  # position 0: ids 0-1, position 1: ids 2-4
    assert lay.offsets == (0, 2) and lay.vocab_size == 5
    assert lay.ids(np.array([[1, 0], [0, 2]])) == [1, 2, 0, 4]
    # 0,3 -> frame; 1 then 1: resync on the second; 4 -> frame; 2 wrong position; 9 out of range; 0 trailing
    codes, bad = lay.codes([0, 3, 1, 1, 4, 2, 9, 0])
    assert codes.tolist() == [[0, 1], [1, 2]] and bad == 4
    codes, bad = lay.codes([np.int64(1), 3.0, True, "2", None, -1, 1.5])
    assert codes.tolist() == [[1, 1]] and bad == 5


def test_invalid_ids_are_dropped_and_counted(c2):
    ids = c2.encode(voiced(0.5), 16000)
    good, _ = c2.decode(ids)
    noisy = ids[:4] + [-5, 512, 10_000] + ids[4:8] + [130] + ids[8:] + [1, 129]  # out of range, wrong position, trailing
    y, bad = c2.decode(noisy)
    assert bad == 3 + 1 + 2 and np.array_equal(y, good)


def test_nothing_decodable_gives_an_empty_waveform(c2):
    for ids in ([], [1, 2, 3], [-1, 600], [200, 300, 400]):
        y, bad = c2.decode(ids)
        assert y.shape == (0,) and y.dtype == np.float32 and bad == len(ids)


def test_random_ids_decode_to_bounded_audio():
    c = load_codec("codec2", mode=1300)
    rng = np.random.default_rng(1)
    frames = 25
    ids = (rng.integers(0, 8192, size=(frames, 4)) + np.arange(4) * 8192).reshape(-1).tolist()
    y, bad = c.decode(ids)
    assert bad == 0 and len(y) == 2 * (frames * 320 - 160) and np.isfinite(y).all() and np.abs(y).max() <= 1


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("wav", "needle"),
    [
        (np.stack([voiced(0.5)] * 2, 1), "audio must be mono, shape (samples,), got shape (8000, 2)"),
        (np.zeros(0, np.float32), "audio is empty (0 samples)"),
        (np.where(np.arange(8000) == 7, np.nan, voiced(0.5)).astype(np.float32), "NaN or infinite"),
        (np.where(np.arange(8000) == 7, np.inf, voiced(0.5)).astype(np.float32), "NaN or infinite"),
        (voiced(0.03), "30.0 ms, shorter than one codec frame (40 ms)"),
        (np.zeros(16000, np.float32), "digital silence"),
        (np.full(16000, 1e-5, np.float32), "digital silence"),  # under half an LSB of 16-bit PCM
        ((voiced(0.5) * 32768).astype(np.int16), "must be float samples in [-1, 1], got dtype int16"),
    ],
)
def test_bad_input_is_a_codec_error_naming_where(c2, wav, needle):
    with pytest.raises(CodecError) as e:
        c2.encode(wav, 16000, where="x.wav (id=u1)")
    assert needle in str(e.value) and str(e.value).startswith("x.wav (id=u1): ")


def test_bad_sample_rate_is_refused(c2):
    with pytest.raises(CodecError, match="sample rate must be a positive integer"):
        c2.encode(voiced(0.5), 0)


def test_clipped_audio_is_encoded_with_a_warning(c2, caplog):
    x = np.clip(voiced(0.5) * 4, -1, 1)  # many samples at full scale
    with caplog.at_level(logging.WARNING, logger="speechrl.audio.codecs"):
        ids = c2.encode(x, 16000, where="loud.wav")
    assert ids and "loud.wav: clipped audio" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="speechrl.audio.codecs"):
        c2.encode(voiced(0.5), 16000, where="fine.wav")
    assert "clipped" not in caplog.text


# ------------------------------------------------------------------------------- neural plug-ins
@pytest.mark.parametrize(
    ("name", "hub_id"),
    [("encodec", "facebook/encodec_24khz"), ("dac", "descript/dac_16khz"), ("xcodec2", "HKUSTAudio/xcodec2-hf")],
)
def test_absent_weights_name_the_download(monkeypatch, tmp_path, name, hub_id):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache: nothing to find
    for kw in ({}, {"path": None}, {"path": str(tmp_path / "missing")}):  # None: the config left tokenize.path unset
        with pytest.raises(CodecError) as e:
            load_codec(name, **kw)
        msg = str(e.value)
        assert f"codec '{name}': cannot load weights" in msg and f"huggingface-cli download {hub_id} --local-dir" in msg
        assert "tokenize.path" in msg


def test_missing_packages_and_unbundled_codecs_say_what_to_do():
    pytest.importorskip("transformers")
    try:
        import snac  # noqa: F401
    except ImportError:
        with pytest.raises(CodecError, match=r"needs the package snac: `pip install snac`"):
            load_codec("snac")
    for name in ("bicodec", "simcodec"):
        with pytest.raises(CodecError, match=rf"codec '{name}' .* is not bundled.*CODECS.register"):
            load_codec(name, path="/x")


@pytest.fixture(scope="module")
def tiny_encodec(tmp_path_factory):
    from transformers import EncodecConfig, EncodecModel

    cfg = EncodecConfig(sampling_rate=24000, audio_channels=1, num_filters=4, num_residual_layers=1, upsampling_ratios=[8, 5, 4],
                        hidden_size=16, codebook_size=64, codebook_dim=16, num_lstm_layers=1, target_bandwidths=[1.8, 3.6],
                        normalize=False, chunk_length_s=None)
    path = tmp_path_factory.mktemp("codecs") / "encodec"
    EncodecModel(cfg).save_pretrained(path)
    return path


def test_tiny_encodec_loads_by_path_and_round_trips(tiny_encodec):
    c = load_codec("encodec", path=str(tiny_encodec), bandwidth=1.8)  # 64-entry codebooks: 6 bits x 150 Hz = 0.9 kbit/s each
    assert (c.sample_rate, c.tokens_per_frame, c.vocab_size, c.tokens_per_second) == (24000, 2, 128, 300.0)
    x = voiced(0.5)
    ids = c.encode(x, 16000)
    assert len(ids) == 2 * 75 and all((i % 2) * 64 <= t < (i % 2 + 1) * 64 for i, t in enumerate(ids))
    assert c.encode(x, 16000) == ids
    y, bad = c.decode(ids + [5])
    assert bad == 1 and y.dtype == np.float32 and len(y) == len(x) and np.abs(y).max() <= 1
    with pytest.raises(CodecError, match=r"bandwidth 6.0 is not one of the model's \[1.8, 3.6\]"):
        load_codec("encodec", path=str(tiny_encodec), bandwidth=6.0)


def test_tiny_dac_loads_by_path_and_round_trips(tmp_path):
    from transformers import DacConfig, DacModel

    cfg = DacConfig(encoder_hidden_size=4, downsampling_ratios=[2, 4], decoder_hidden_size=16, n_codebooks=3, codebook_size=64,
                    codebook_dim=4, hidden_size=16, sampling_rate=16000, upsampling_ratios=[4, 2])
    DacModel(cfg).save_pretrained(tmp_path / "dac")
    c = load_codec("dac", path=str(tmp_path / "dac"), n_quantizers=2)
    assert (c.sample_rate, c.tokens_per_frame, c.vocab_size, c.tokens_per_second) == (16000, 2, 128, 4000.0)
    x = voiced(0.1)
    ids = c.encode(x, 16000)
    assert len(ids) == 2 * 200 and max(ids) < 128
    y, bad = c.decode(ids)
    assert bad == 0 and len(y) == len(x) and np.isfinite(y).all()
    with pytest.raises(CodecError, match=r"n_quantizers must be in 1..3"):
        load_codec("dac", path=str(tmp_path / "dac"), n_quantizers=4)


@pytest.mark.slow
def test_xcodec2_loads_by_path_and_names_a_missing_feature_package(tmp_path):
    """A tiny X-Codec 2 saved to disk loads through the plug-in; its feature extractor needs torchaudio."""
    from transformers import Xcodec2Config, Xcodec2Model

    sem = {"model_type": "wav2vec2-bert", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
           "feature_projection_input_dim": 160, "output_hidden_size": 16}
    cfg = Xcodec2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                        head_dim=16, encoder_hidden_size=4, semantic_model_config=sem, quantization_dim=32, quantization_levels=[4, 4])
    Xcodec2Model(cfg).save_pretrained(tmp_path / "x")
    (tmp_path / "x" / "preprocessor_config.json").write_text(json.dumps(
        {"feature_extractor_type": "Xcodec2FeatureExtractor", "sampling_rate": 16000, "hop_length": 320, "feature_size": 80}))
    try:
        import torchaudio  # noqa: F401
    except Exception:
        with pytest.raises(CodecError, match=r"codec 'xcodec2': AutoFeatureExtractor needs a package that is not installed: .*torchaudio"):
            load_codec("xcodec2", path=str(tmp_path / "x"))
        return
    c = load_codec("xcodec2", path=str(tmp_path / "x"))
    assert (c.vocab_size, c.tokens_per_frame, c.tokens_per_second) == (16, 1, 50.0)
    ids = c.encode(voiced(0.4), 16000)
    assert len(ids) == 20 and max(ids) < 16 and c.decode(ids)[1] == 0
