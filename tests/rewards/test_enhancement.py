"""PESQ, STOI and SI-SDR scorers (vs the clean reference) and the ASR-CER scorer.

SI-SDR against hand-computed values; PESQ / STOI / SI-SDR on espeak speech with seeded white noise
(identical > 30 dB > 20 dB > 10 dB > 0 dB SNR); undecodable outputs, library failures, length
mismatch, corpus scales and the required columns. Scored in this process (``SPEECHRL_AUDIO_WORKERS=0``);
the worker-pool check (spawns processes) is marked slow.
"""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from speechrl.audio.io import AudioError
from speechrl.rewards import REWARDS, combine, score_both, score_corpus, score_samples
from speechrl.rewards import asr as R
from speechrl.rewards import audio as A
from speechrl.rewards import enhancement as E

METRICS = ("pesq", "stoi", "si_sdr")
SNRS = (30, 20, 10, 0)
TEXT = "turn the red light on and open the front door please"
needs_tools = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng and sox needed")


@pytest.fixture(autouse=True)
def in_process(monkeypatch):
    monkeypatch.setenv(A.WORKERS_ENV, "0")


def espeak(d, name: str, text: str, voice: str = "en-us") -> str:
    raw, out = d / f"{name}.raw.wav", d / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True)
    return str(out)


def add_noise(wav: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(wav))
    noise *= np.sqrt(np.mean(wav.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return np.clip(wav + noise, -1.0, 1.0).astype(np.float32)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """(clean path, clean waveform, {snr: noisy waveform})."""
    d = tmp_path_factory.mktemp("enh")
    path = espeak(d, "clean", TEXT)
    wav, _ = sf.read(path, dtype="float32")
    return path, wav, {snr: add_noise(wav, snr) for snr in SNRS}


def call(name: str, audio: list, clean: list) -> list[float | None]:
    return score_samples(name, [""] * len(audio), [["x"]] * len(audio), audio=audio, clean_audio=clean)


# ------------------------------------------------------------------------------- SI-SDR by hand
def test_si_sdr_hand_values() -> None:
    s = np.array([1.0, -1.0, 1.0, -1.0])
    n = np.array([1.0, 1.0, -1.0, -1.0])  # zero-mean, orthogonal to s
    assert E.si_sdr(s + 0.5 * n, s) == pytest.approx(10 * math.log10(4.0 / 1.0))  # 6.0206 dB
    assert E.si_sdr(s + n, s) == pytest.approx(0.0, abs=1e-12)
    assert E.si_sdr(3.0 * (s + 0.5 * n) + 5.0, s) == pytest.approx(6.0206, abs=1e-4)  # scale and offset invariant
    # not orthogonal: s0 = [-1.5,-.5,.5,1.5], e0 = [-1.75,-.75,.25,2.25]; a = 6.5/5 = 1.3,
    # ||a s0||^2 = 8.45, ||e0 - a s0||^2 = .04+.01+.16+.09 = 0.30 -> 10 log10(8.45/0.3) = 14.4973 dB
    assert E.si_sdr(np.array([1.0, 2, 3, 5]), np.array([1.0, 2, 3, 4])) == pytest.approx(14.4973, abs=1e-4)
    lo, hi = E.SI_SDR_RANGE
    assert E.si_sdr(-2.0 * s, s) == hi  # an exact copy (any gain, either sign): +inf clipped
    assert E.si_sdr(n, s) == lo and E.si_sdr(np.zeros(4), s) == lo  # orthogonal / silent estimate: -inf clipped
    with pytest.raises(ValueError, match="reference has no energy"):
        E.si_sdr(s, np.full(4, 0.3))
    with pytest.raises(ValueError, match="estimate has 3 samples, reference 4"):
        E.si_sdr(s[:3], s)


def test_rewards_map_to_unit_interval() -> None:
    assert E.si_sdr_reward(0.0) == 0.5 and E.si_sdr_reward(10.0) == pytest.approx(1 / (1 + math.exp(-1)))
    assert E.si_sdr_reward(E.SI_SDR_RANGE[0]) < 0.01 and E.si_sdr_reward(E.SI_SDR_RANGE[1]) > 0.9999
    assert E.pesq_reward(4.64) == 1.0 and E.pesq_reward(1.04) == 0.0 and E.pesq_reward(2.84) == pytest.approx(0.5)
    assert E.pesq_reward(0.5) == 0.0 and E.stoi_reward(-0.1) == 0.0 and E.stoi_reward(0.93) == 0.93


def test_match_length() -> None:
    clean = np.arange(5, dtype=np.float32)
    assert E.match_length(np.arange(8, dtype=np.float32), clean).tolist() == [0, 1, 2, 3, 4]
    assert E.match_length(np.ones(3, dtype=np.float32), clean).tolist() == [1, 1, 1, 0, 0]


# ------------------------------------------------------------------------------- on speech
@needs_tools
def test_identical_high_and_monotone_in_snr(speech) -> None:
    path, wav, noisy = speech
    audio = [path, *(noisy[s] for s in SNRS)]
    raw = {m: E.raw_values(m, audio, [path] * len(audio)) for m in METRICS}
    print({m: [round(v, 3) for v in vals] for m, vals in raw.items()})
    assert raw["pesq"][0] == pytest.approx(4.64, abs=0.01) and raw["stoi"][0] == pytest.approx(1.0, abs=1e-6)
    assert raw["si_sdr"][0] == E.SI_SDR_RANGE[1]
    for m in METRICS:
        assert all(a > b for a, b in zip(raw[m], raw[m][1:])), (m, raw[m])
    # white noise is independent of the speech: SI-SDR ~ SNR
    assert raw["si_sdr"][1:] == pytest.approx(list(SNRS), abs=0.5)
    rewards = {m: call(m, audio, [path] * len(audio)) for m in METRICS}
    assert rewards["pesq"][0] == 1.0 and rewards["stoi"][0] == pytest.approx(1.0)
    for m in METRICS:
        assert all(0.0 <= r <= 1.0 for r in rewards[m])
        assert all(a > b for a, b in zip(rewards[m], rewards[m][1:])), (m, rewards[m])


@needs_tools
def test_corpus_values_on_native_scales(speech) -> None:
    path, wav, noisy = speech
    audio = [path, noisy[10], noisy[0], None]  # None (undecodable) is left out of the means
    clean = [path] * 4
    hyps, refs = [""] * 4, [["x"]] * 4
    raw = {m: E.raw_values(m, audio[:3], clean[:3]) for m in METRICS}
    pesq_corpus, per = score_both("pesq", hyps, refs, audio=audio, clean_audio=clean)
    assert pesq_corpus == pytest.approx(sum(raw["pesq"]) / 3) and 1.04 < pesq_corpus < 4.64  # MOS-LQO, not 0-100
    assert per[3] is None
    assert score_corpus("stoi", hyps, refs, audio=audio, clean_audio=clean) == pytest.approx(100 * sum(raw["stoi"]) / 3)
    assert score_corpus("si_sdr", hyps, refs, audio=audio, clean_audio=clean) == pytest.approx(sum(raw["si_sdr"]) / 3)
    assert math.isnan(score_corpus("pesq", [""], [["x"]], audio=[None], clean_audio=[path]))


@needs_tools
def test_length_mismatch_trims_or_pads_to_the_clean_length(speech) -> None:
    path, wav, noisy = speech
    longer = np.concatenate([wav, noisy[0][:8000]])  # clean + 0.5 s of noise: the tail is cut
    shorter = noisy[20][:-4000]  # 0.25 s short: zero-padded
    padded = np.concatenate([shorter, np.zeros(4000, dtype=np.float32)])
    for m in METRICS:
        got = E.raw_values(m, [longer, shorter], [path, path])
        same = E.raw_values(m, [wav, padded], [path, path])
        assert got == pytest.approx(same), m
    assert E.raw_values("pesq", [longer], [path])[0] == pytest.approx(4.64, abs=0.01)


@needs_tools
def test_undecodable_missing_and_failed_samples(speech, tmp_path) -> None:
    path, wav, noisy = speech
    silent = np.zeros_like(wav)
    nan = wav.copy()
    nan[10] = np.nan
    audio = [None, noisy[20], silent, nan, np.zeros(0, dtype=np.float32), noisy[20]]
    clean = [path, None, path, path, path, path]
    stats: dict[str, float] = {}
    _, per = combine({m: 1.0 for m in METRICS}, [""] * 6, [["x"]] * 6, stats=stats, audio=audio, clean_audio=clean)
    for m in METRICS:  # undecodable output, no clean reference, NaN output, empty output: None (does not apply)
        assert per[m][0] is None and per[m][1] is None and per[m][3] is None and per[m][4] is None, m
        assert per[m][5] is not None, m
    # a silent output: PESQ raises (-> None, counted as failed), STOI 0, SI-SDR at its floor
    assert per["pesq"][2] is None and per["stoi"][2] == 0.0
    assert per["si_sdr"][2] == pytest.approx(E.si_sdr_reward(E.SI_SDR_RANGE[0]))
    assert stats["reward/failed"] == 1.0
    assert math.isnan(REWARDS.get("pesq").sample([""], [["x"]], audio=[silent], clean_audio=[path])[0])
    # too short for STOI (< 30 speech frames) and PESQ (< 0.25 s): failed, not a crash
    short = wav[:3000]
    assert call("stoi", [short], [short]) == [None] and call("pesq", [short], [short]) == [None]
    # a missing file: the AudioError names it; the entry points isolate that sample
    missing = str(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="nope.wav"):
        E.raw_values("stoi", [missing], [path])
    assert call("stoi", [missing, path], [path, path]) == [None, pytest.approx(1.0)]


def test_columns_are_required() -> None:
    with pytest.raises(ValueError, match="scorer 'pesq' needs the column 'clean_audio'; got: audio"):
        score_samples("pesq", [""], [["x"]], audio=["a.wav"])
    with pytest.raises(ValueError, match="scorer 'si_sdr' needs the column 'audio'; got: clean_audio"):
        score_corpus("si_sdr", [""], [["x"]], clean_audio=["a.wav"])
    with pytest.raises(ValueError, match="unknown enhancement metric 'sdr'; valid: pesq, stoi, si_sdr"):
        E.raw_values("sdr", [], [])
    for m in METRICS:
        assert REWARDS.get(m).columns == ("audio", "clean_audio") == REWARDS.get(m).file_columns


@needs_tools
def test_memoised_per_content(speech, tmp_path) -> None:
    path, wav, noisy = speech
    out = tmp_path / "out.wav"
    sf.write(str(out), noisy[10], 16000, subtype="FLOAT")
    first = E.raw_values("stoi", [str(out)], [path])[0]
    assert E.raw_values("stoi", [noisy[10]], [path])[0] == first  # the same samples as an array: the same value
    sf.write(str(out), noisy[0], 16000, subtype="FLOAT")  # same path, new content: scored again
    assert E.raw_values("stoi", [str(out)], [path])[0] < first


@pytest.mark.slow
@needs_tools
def test_worker_pool_matches_in_process(speech, monkeypatch) -> None:
    path, wav, noisy = speech
    audio = [noisy[s] for s in SNRS]
    local = {m: E.raw_values(m, audio, [path] * 4) for m in METRICS}
    E._MEMO.clear()
    monkeypatch.setenv(A.WORKERS_ENV, "2")
    try:
        pooled = {m: E.raw_values(m, audio, [path] * 4) for m in METRICS}
    finally:
        A.shutdown_pools()
    assert pooled == local


# ------------------------------------------------------------------------------- ASR-CER
@needs_tools
def test_asr_cer_reuses_the_asr_wer_transcripts(tmp_path, monkeypatch) -> None:
    texts = ["turn the red light on", "open the front door", "play some music now"]
    paths = [espeak(tmp_path, f"u{i}", t, v) for i, (t, v) in enumerate(zip(texts, ["en-us", "en-us+m3", "en-us+f2"]))]
    monkeypatch.setenv(R.LM_ENV, str(R.build_task_lm(texts, tmp_path / "lm")))
    calls: list[int] = []
    real = R.run_pool

    def counting(kind, init, fn, items):
        calls.append(len(items))
        return real(kind, init, fn, items)

    monkeypatch.setattr(R, "run_pool", counting)
    audio = [*paths, None]
    refs = [[t] for t in texts] + [[texts[0]]]
    wer = score_samples("asr_wer", [""] * 4, refs, audio=audio)
    cer = score_samples("asr_cer", [""] * 4, refs, audio=audio)
    corpus = score_corpus("asr_cer", [""] * 4, refs, audio=audio)
    assert calls == [3]  # one recognition per utterance, shared by asr_wer and asr_cer; None is not sent
    got = R.transcribe(paths)
    assert wer[3] is None and cer[3] is None
    for i in range(3):
        assert cer[i] == pytest.approx(max(0.0, 1 - R.error_rate(got[i], texts[i], unit="char")))
        assert cer[i] >= 0.8, (texts[i], got[i])
    edits = [R._best(got[i], [texts[i]], "char") for i in range(3)]
    assert corpus == pytest.approx(100 * (1 - sum(e for e, _ in edits) / sum(n for _, n in edits)))


def test_a_reward_that_needs_transcripts_refuses_examples_without_them():
    from types import SimpleNamespace

    from speechrl.rewards import REWARDS, check_references

    assert not any(REWARDS.get(n).references for n in ("dnsmos_ovrl", "utmos", "pesq", "stoi", "si_sdr"))
    assert REWARDS.get("asr_wer").references and REWARDS.get("bleu").references
    examples = [SimpleNamespace(id="a", extra={"has_transcript": True}), SimpleNamespace(id="b", extra={"has_transcript": False})]
    check_references(["dnsmos_ovrl", "pesq"], examples, "rl.rewards")  # reference-free: fine
    check_references(["asr_wer"], examples[:1], "rl.rewards")
    with pytest.raises(ValueError, match=r"rl.rewards: asr_wer compare\(s\) the output with the transcript, but 1 of 2 "
                                         r"examples have none \(first: b\); remove asr_wer from rl.rewards"):
        check_references(["dnsmos_ovrl", "asr_wer"], examples, "rl.rewards")
