"""Per-utterance cost of the audio rewards, to size RL steps of the speech-output tasks (se, tts).

    python bench/rewards_audio.py [--n 16] [--workers 0,2] [--repeats 3] [--only pesq,stoi]

Inputs: ``n`` short espeak-ng utterances (1-2 s, 16 kHz, 3 voices) of a small closed vocabulary as the
clean speech, and as "outputs" the same utterances with seeded white noise at 0-20 dB SNR (a stand-in
for an enhancement model's output). Rows:

* ``dnsmos``: one DNSMOS run per utterance gives all four sub-scores (ovrl, sig, bak, p808), so a
  composite of several DNSMOS rewards costs this once (:func:`speechrl.rewards.audio.dnsmos_mos`);
* ``pesq``, ``stoi``, ``si_sdr``: vs the clean utterance (:mod:`speechrl.rewards.enhancement`);
* ``asr_wer``: pocketsphinx with a task LM built from the utterances' texts (``SPEECHRL_ASR_LM``);
  ``asr_cer`` after it reuses the transcripts (shown as its own row: the memo makes it ~free).

Each scorer's ``sample`` is called directly (no reward cache). Per worker setting
(``SPEECHRL_AUDIO_WORKERS``: 0 = in this process), the first call on 2 utterances starts the pool and
loads the models ("first call"); then the in-process memos are cleared before every timed batch of
``n`` (median of ``--repeats``): wall time per utterance and, in process, CPU time per utterance (the
cost on a free core; wall time grows with the machine's load). Figures are printed, never asserted;
the machine may be shared (the load average is printed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

WORDS = [["turn", "switch"], ["the"], ["red", "green", "blue"], ["light", "fan", "radio"], ["on", "off", "now"]]
VOICES = ["en-us", "en-us+m3", "en-us+f2"]
ROWS = ("dnsmos", "pesq", "stoi", "si_sdr", "asr_wer", "asr_cer")


def make_speech(n: int, d: Path) -> tuple[list[str], list[Any], list[str], float]:
    """(clean paths, noisy output arrays, texts, mean seconds) of ``n`` espeak utterances in ``d``."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    paths, outs, texts, secs = [], [], [], []
    for i in range(n):
        words = [ws[(i * (k + 3) + k) % len(ws)] for k, ws in enumerate(WORDS)]
        text = " ".join(words[: 3 + i % 3])  # 3-5 words: 1-2 s of speech
        raw, wav = d / f"r{i}.wav", d / f"u{i}.wav"
        subprocess.run(["espeak-ng", "-v", VOICES[i % 3], "-s", "170", "-w", str(raw), text], check=True)
        subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(wav)], check=True)
        clean, _ = sf.read(str(wav), dtype="float32")
        snr = 20.0 * (i % 5) / 4  # 0, 5, 10, 15, 20 dB
        noise = rng.standard_normal(len(clean))
        noise *= np.sqrt(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (snr / 10))
        outs.append(np.clip(clean + noise, -1, 1).astype(np.float32))
        paths.append(str(wav))
        texts.append(text)
        secs.append(len(clean) / 16000)
    return paths, outs, texts, sum(secs) / n


def clear_memos() -> None:
    from speechrl.rewards import asr as R
    from speechrl.rewards import audio as A
    from speechrl.rewards import enhancement as E

    A._MOS_CACHE.clear()
    R._TRANSCRIPTS.clear()
    E._MEMO.clear()


def score(row: str, outs: list[Any], clean: list[str], refs: list[list[str]]) -> list[float | None]:
    from speechrl.rewards import REWARDS
    from speechrl.rewards.audio import dnsmos_mos

    if row == "dnsmos":
        return [None if m is None else m["ovrl"] for m in dnsmos_mos(outs)]
    cols: dict[str, Any] = {"audio": outs}
    if row in ("pesq", "stoi", "si_sdr"):
        cols["clean_audio"] = clean
    return REWARDS.get(row).sample([""] * len(outs), refs, **cols)


def run(rows: list[str], workers: int, repeats: int, outs: list[Any], clean: list[str], refs: list[list[str]]) -> list[tuple]:
    from speechrl.rewards.audio import shutdown_pools

    os.environ["SPEECHRL_AUDIO_WORKERS"] = str(workers)
    shutdown_pools()
    table = []
    for row in rows:
        t = time.perf_counter()
        if row != "asr_cer":
            score(row, outs[:2], clean[:2], refs[:2])  # start the pool, load the models
        first = time.perf_counter() - t
        times, cpu, vals = [], [], []
        for _ in range(repeats):
            if row == "asr_cer":
                clear_memos()
                score("asr_wer", outs, clean, refs)  # asr_cer right after asr_wer: the transcripts are memoised
            else:
                clear_memos()
            t, c = time.perf_counter(), time.process_time()
            vals = score(row, outs, clean, refs)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        ok = [v for v in vals if v is not None and v == v]
        own_cpu = statistics.median(cpu) if workers == 0 else None  # pool workers' CPU time is not seen here
        table.append((row, workers, first, statistics.median(times), own_cpu, sum(ok) / max(1, len(ok)), len(vals) - len(ok)))
    shutdown_pools()
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=16, help="utterances per batch (an RL step scores 16)")
    ap.add_argument("--workers", default="0,2", help="comma-separated SPEECHRL_AUDIO_WORKERS settings")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="", help=f"comma-separated rows of {', '.join(ROWS)}")
    a = ap.parse_args()
    rows = [r for r in ROWS if not a.only or r in a.only.split(",")]
    from speechrl.rewards.asr import LM_ENV, build_task_lm

    d = Path(tempfile.mkdtemp(prefix="speechrl-bench-audio-"))
    clean, outs, texts, mean_s = make_speech(a.n, d)
    os.environ[LM_ENV] = str(build_task_lm(texts, d / "lm"))
    refs = [[t] for t in texts]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"audio rewards: {a.n} espeak utterances (mean {mean_s:.2f} s, outputs at 0-20 dB SNR), median of {a.repeats}; "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, load average {load} on {os.cpu_count()} CPUs")
    print(f"{'metric':8s} {'workers':>7s} {'first call s':>12s} {'ms/utt':>8s} {'cpu ms/utt':>10s} {f's per {a.n}':>9s} {'mean':>8s} {'None':>5s}")
    for w in [int(x) for x in a.workers.split(",") if x != ""]:
        for row, workers, first, batch, cpu, mean, n_none in run(rows, w, a.repeats, outs, clean, refs):
            cpu_ms = f"{1000 * cpu / a.n:10.1f}" if cpu is not None else f"{'-':>10s}"
            print(f"{row:8s} {workers:7d} {first:12.2f} {1000 * batch / a.n:8.1f} {cpu_ms} {batch:9.2f} {mean:8.3f} {n_none:5d}")
    print("ms/utt: wall time of a batch / n; cpu ms/utt: this process's CPU time (workers=0 only), what a free core needs;")
    print("mean: DNSMOS OVRL (1-5), the other rows their per-sample reward in [0, 1]")


if __name__ == "__main__":
    main()
