"""WER / CER text scorers (hand values, jiwer) and the pocketsphinx ASR-WER scorer with a task LM."""

from __future__ import annotations

import shutil
import subprocess

import jiwer
import numpy as np
import pytest
import soundfile as sf

from speechrl.rewards import REWARDS, score_corpus, score_samples
from speechrl.rewards import asr as R

SENTENCES = [
    "turn the red light on",
    "turn the green light off",
    "open the front door",
    "close the back door",
    "play some music now",
    "stop the music",
    "set the alarm for seven",
    "turn the blue light on",
    "open the window please",
    "close the front window",
]
needs_tools = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng and sox needed")


def test_normalizer() -> None:
    assert R.normalize("  Don't STOP—now!!  The end. ") == "dont stop now the end"
    assert R.normalize("Ünïcode, café?") == "ünïcode café"


def test_wer_cer_hand_values() -> None:
    hyp, ref = "the cat sat on mat", "The cat sat on the mat."
    assert R.error_rate(hyp, ref) == pytest.approx(1 / 6) == jiwer.wer("the cat sat on the mat", hyp)
    assert score_samples("wer", [hyp], [[ref]]) == [pytest.approx(5 / 6)]
    assert R.error_rate("hallo world", "Hello, world!", unit="char") == pytest.approx(1 / 11)
    assert score_samples("cer", ["hallo world"], [["Hello, world!"]]) == [pytest.approx(10 / 11)]


def test_best_reference_blank_and_clipping() -> None:
    s = REWARDS.get("wer").sample(["a b c", "", "x y z w v", "a b"], [["q r s", "a b c"], ["a b"], ["a"], ["?!"]])
    assert s == [1.0, 0.0, 0.0, None]  # best ref; blank hyp; WER 5 clipped; ref empty after normalising


def test_corpus_is_100_minus_error_rate() -> None:
    # edits 0 + 2 (1 substitution, 1 deletion) over 2 + 2 reference words: WER 0.5 -> 50
    assert score_corpus("wer", ["a b", "x"], [["a b"], ["y z"]]) == pytest.approx(50.0)
    assert score_corpus("cer", ["ab"], [["abcd"]]) == pytest.approx(50.0)
    assert score_corpus("wer", ["a b c d e f"], [["x"]]) == 0.0


@pytest.fixture(scope="module")
def utterances(tmp_path_factory):
    d = tmp_path_factory.mktemp("asr")
    paths = []
    for i, text in enumerate(SENTENCES):
        voice = ["en-us", "en-us+m3", "en-us+f2"][i % 3]
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(150 + 10 * (i % 3)), "-w", str(d / f"r{i}.wav"), text], check=True)
        subprocess.run(["sox", str(d / f"r{i}.wav"), "-r", "16000", "-c", "1", str(d / f"u{i}.wav")], check=True)
        paths.append(str(d / f"u{i}.wav"))
    return paths, R.build_task_lm(SENTENCES, d / "lm")


@needs_tools
def test_asr_wer_with_task_lm(utterances, monkeypatch) -> None:
    paths, lm = utterances
    monkeypatch.setenv(R.LM_ENV, str(lm))
    texts = R.transcribe(paths)
    wer = jiwer.wer(SENTENCES, texts)
    print(f"pocketsphinx task-LM WER on {len(paths)} espeak utterances: {wer:.3f}")
    assert wer <= 0.10, list(zip(SENTENCES, texts))
    nan = np.full(8000, np.nan, dtype=np.float32)
    wav, _ = sf.read(paths[0], dtype="float32")
    s = score_samples("asr_wer", ["", "", ""], [[SENTENCES[0]], [SENTENCES[0]], [SENTENCES[5], SENTENCES[0]]], audio=[paths[0], nan, wav])
    assert s[0] == s[2] == pytest.approx(1 - R.error_rate(texts[0], SENTENCES[0])) and s[1] is None
    assert s[0] >= 0.75  # the third sample picks its best reference (SENTENCES[0])
    # corpus: errors pooled over reference words (not the mean of per-sample rates)
    long_ref = SENTENCES[6] + " " + SENTENCES[8]  # 9 words; its audio only says SENTENCES[6]: >= 4 deletions
    corpus = score_corpus("asr_wer", ["", ""], [[SENTENCES[5]], [long_ref]], audio=[paths[5], paths[6]])
    edits = [R._best(texts[5], [SENTENCES[5]], "word"), R._best(texts[6], [long_ref], "word")]
    pooled = 100 * (1 - sum(e for e, _ in edits) / sum(n for _, n in edits))
    mean = 100 * sum(1 - e / n for e, n in edits) / 2
    assert corpus == pytest.approx(pooled) and abs(pooled - mean) > 1


@needs_tools
def test_asr_transcripts_follow_file_content_and_lm(utterances, tmp_path, monkeypatch) -> None:
    paths, lm = utterances
    monkeypatch.setenv(R.LM_ENV, str(lm))
    target = tmp_path / "clip.wav"
    shutil.copy(paths[0], target)
    first = score_samples("asr_wer", [""], [[SENTENCES[0]]], audio=[str(target)])
    shutil.copy(paths[2], target)  # same path, new content: neither cache may answer from the old file
    second = score_samples("asr_wer", [""], [[SENTENCES[0]]], audio=[str(target)])
    assert first[0] >= 0.75 and second[0] < 0.5


def test_build_task_lm_files_and_oov(tmp_path) -> None:
    out = R.build_task_lm(["Open the door!", "open the zzqxv window"], tmp_path / "lm")
    assert (out / "oov.txt").read_text().split() == ["zzqxv"]
    dic = (out / "task.dict").read_text().split("\n")
    assert {line.split()[0] for line in dic if line} >= {"open", "the", "door", "window"}
    assert "\\data\\" in (out / "task.lm").read_text() and "zzqxv" not in (out / "task.lm").read_text()
    with pytest.raises(ValueError, match="no words"):
        R.build_task_lm(["?!"], tmp_path / "x")


def test_bad_lm_folder_and_whisper_option_fail_clearly(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(R.LM_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"SPEECHRL_ASR_LM=.*missing task.lm, task.dict.*build_task_lm"):
        R.transcribe([np.zeros(16000, dtype=np.float32)])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(R.MODEL_ENV, "openai/whisper-tiny-not-cached")
    with pytest.raises(RuntimeError, match=r"Whisper model SPEECHRL_ASR_MODEL='openai/whisper-tiny-not-cached'.*cluster option"):
        R.transcribe([np.zeros(16000, dtype=np.float32)])


def test_registered() -> None:
    assert REWARDS.get("asr_wer").columns == ("audio",)
    assert REWARDS.get("wer").columns == () and REWARDS.get("cer").corpus is not None


@needs_tools
def test_a_transcript_does_not_depend_on_the_utterances_before_it(utterances, monkeypatch) -> None:
    """pocketsphinx's front end keeps state across utterances; noisy clips in reverse order must decode the same."""
    paths, lm = utterances
    monkeypatch.setenv(R.LM_ENV, str(lm))
    monkeypatch.setenv("SPEECHRL_AUDIO_WORKERS", "0")
    rng = np.random.default_rng(0)
    noisy = []
    for p in paths:
        wav, _ = sf.read(p, dtype="float32")
        noisy.append((wav + rng.normal(0, 0.05, wav.shape)).astype(np.float32).clip(-1, 1))
    R._load_decoder(str(lm))
    forward = [R._recognise_one(w)[0] for w in noisy]
    backward = [R._recognise_one(w)[0] for w in reversed(noisy)][::-1]
    assert forward == backward
