"""The speech -> speech tokens track end to end (tasks se and tts): data -> tokenize -> codec LM -> SFT -> RL ->
audio evaluation -> report, through the real Snakefile, then the checks a user would make."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from conftest import run_snakemake

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return run_snakemake(workdir, ROOT / "tests" / "workflow" / "tiny_speech.yaml", *args)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wd = tmp_path_factory.mktemp("speech")
    p = snakemake(wd)
    assert p.returncode == 0, p.stderr[-4000:]
    return wd / "results"


@pytest.mark.workflow
def test_tokenize_writes_codec_ids_and_round_trip_quality(run: Path):
    se, tts = run / "tokens" / "se", run / "tokens" / "tts"
    codec = json.loads((se / "codec.json").read_text())
    assert codec["name"] == "codec2" and codec == json.loads((tts / "codec.json").read_text())
    rows = [json.loads(line) for line in (se / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and all(r["input"] and r["target"] for r in rows)
    assert all(0 <= i < codec["vocab_size"] for r in rows for i in r["input"] + r["target"])
    assert all("input" not in json.loads(line) for line in (tts / "train.jsonl").read_text().splitlines())
    roundtrip = json.loads((se / "summary.json").read_text())["roundtrip"]
    assert roundtrip["n"] == 1 and {"dnsmos_ovrl", "pesq", "stoi", "asr_wer"} <= set(roundtrip["decoded"])
    base = json.loads((run / "models" / "codec_lm" / "summary.json").read_text())
    assert base["codec"] == codec  # se and tts share one codec LM


@pytest.mark.workflow
def test_audio_outputs_are_decoded_written_and_scored(run: Path):
    ev = run / "eval" / "se" / "sft" / "s0"
    rows = [json.loads(line) for line in (ev / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    for r in rows:
        assert Path(r["inputs"]["audio"]).is_file() and Path(r["inputs"]["clean_audio"]).is_file()
        out = r["outputs"]["sampled"]
        if out is not None:  # a completion with no decodable frame has no audio (scored None, counted)
            info = sf.info(str(ev / out))
            assert info.samplerate == 16000 and info.channels == 1
    metrics = json.loads((ev / "metrics.json").read_text())["decodings"]["sampled"]
    assert {"pesq", "stoi", "si_sdr"} <= set(metrics)
    tts = json.loads((run / "eval" / "tts" / "gspo_segment_window" / "s0" / "metrics.json").read_text())["decodings"]["sampled"]
    assert {"dnsmos_ovrl", "asr_wer"} <= set(tts)


@pytest.mark.workflow
def test_rl_runs_on_codec_tokens_and_the_report_has_the_speech_tasks(run: Path):
    window = {}
    for task, system in (("se", "gspo"), ("se", "gspo-pesq"), ("tts", "gspo_segment_window"), ("tts", "gspo_segment_window@window=2")):
        summary = json.loads((run / "rl" / task / system / "s0" / "summary.json").read_text())
        assert summary["steps"] == 2 and len(summary["history"]) == 2 and summary["task"] == task
        assert set(summary["phase_seconds"]) == {"generate", "decode", "score", "update"}
        window[system] = summary["algorithm"]["segmenter_opts"].get("window")
    assert window["gspo_segment_window"] == 4 and window["gspo_segment_window@window=2"] == 2  # the sweep's option
    rep = run / "report"
    summary = json.loads((rep / "summary.json").read_text())
    # se and tts measure different metrics: one main table each (tts keyed by its task); Decoded % is always
    # measured, so the SE table (with the single-metric ablation) and the segment-GSPO table are there
    tables = summary["tables"]
    assert {"sampled", "sampled_tts", "se", "segment_gspo"} <= set(tables)
    sweep = "gspo_segment_window@window=2"
    assert set(tables["sampled"]["se"]) == {"sft", "gspo"}
    assert set(tables["sampled_tts"]["tts"]) == {"sft", "gspo_segment_window", sweep}
    assert set(tables["se"]["se"]) == {"sft", "gspo", "gspo-pesq"}
    assert set(tables["segment_gspo"]["tts"]) == {"gspo_segment_window", sweep}
    # audio examples: the noisy input and the clean reference exist whatever the tiny model emitted
    html = (rep / "index.html").read_text()
    assert "GSPO-segment (window) [W=2]" in html  # the sweep row, named by its option
    assert "<audio" in html and any((rep / "audio" / "se").glob("*.wav"))


@pytest.mark.workflow
def test_rerun_does_nothing_and_audit_is_clean(run: Path):
    p = snakemake(run.parent, "-n")
    assert p.returncode == 0 and "Nothing to be done" in p.stdout + p.stderr
    audit = subprocess.run([str(BIN / "speechrl"), "audit", "--results", "results"], cwd=run.parent, capture_output=True,
                           text=True)
    assert audit.returncode == 0, audit.stdout
