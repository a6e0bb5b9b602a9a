"""Benchmark codec round trips on espeak-ng speech: quality of decode(encode(x)) vs x, and speed.

    python bench/codec_roundtrip.py [--n 20] [--modes 700,1300,3200] [--tokens-per-frame 4]

Synthesises ``n`` English sentences of the mini-AST grammar (:mod:`speechrl.data.synthetic`,
6 voices, 3 speeds) at 16 kHz, then for each Codec 2 mode: encode + decode every utterance
(speed as x real time: audio seconds / wall seconds, one process, warm) and score the round trip
with :func:`speechrl.audio.tokenize.roundtrip_quality` (DNSMOS OVRL, wideband PESQ, STOI, SI-SDR,
ASR-WER with a task LM of the sentences). The first row is the original audio. Figures are
printed, never asserted (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-us+m7", "en-gb+f2"]
SPEEDS = [150, 170, 190]


def speech(n: int, folder: Path) -> tuple[list[Path], list[str]]:
    from speechrl.data.synthetic import make_ast_items, synthesize

    items = make_ast_items(random.Random("bench-codec"), n)
    paths, texts = [], []
    for i, item in enumerate(items):
        p = folder / f"u{i:03d}.wav"
        synthesize(item["english"], p, VOICES[i % len(VOICES)], SPEEDS[i % len(SPEEDS)], 50, 16000, f"u{i}")
        paths.append(p)
        texts.append(item["english"])
    return paths, texts


def speed(codec, waves: list) -> tuple[float, float]:
    """(encode, decode) speed in x real time over all ``waves`` (16 kHz float32), after one warm-up."""
    codec.decode(codec.encode(waves[0], 16000))
    seconds = sum(len(w) for w in waves) / 16000
    t = time.perf_counter()
    ids = [codec.encode(w, 16000) for w in waves]
    enc = time.perf_counter() - t
    t = time.perf_counter()
    for x in ids:
        codec.decode(x)
    dec = time.perf_counter() - t
    return seconds / enc, seconds / dec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="utterances")
    ap.add_argument("--modes", default="700,1300,3200", help="Codec 2 modes (bit/s), comma-separated")
    ap.add_argument("--tokens-per-frame", type=int, default=4)
    args = ap.parse_args()

    from speechrl.audio.codecs import load_codec
    from speechrl.audio.io import load_audio
    from speechrl.audio.tokenize import roundtrip_quality

    with tempfile.TemporaryDirectory(prefix="speechrl-codec-bench-") as tmp:
        t = time.perf_counter()
        paths, texts = speech(args.n, Path(tmp))
        waves = [load_audio(p) for p in paths]
        total = sum(len(w) for w in waves) / 16000
        print(f"{args.n} espeak-ng utterances, {total:.1f} s of audio, synthesised in {time.perf_counter() - t:.1f} s")
        header = f"{'codec':<16}{'tok/s':>7}{'vocab':>8}{'DNSMOS':>8}{'PESQ-wb':>9}{'STOI':>7}{'SI-SDR':>8}{'WER':>7}{'enc xRT':>9}{'dec xRT':>9}"
        rows = []
        for mode in (int(m) for m in args.modes.split(",")):
            codec = load_codec("codec2", mode=mode, tokens_per_frame=args.tokens_per_frame)
            enc, dec = speed(codec, waves)
            r = roundtrip_quality(codec, paths, texts, max_utterances=args.n)
            if not rows:
                o = r["original"]
                rows.append(f"{'original':<16}{'':>7}{'':>8}{o['dnsmos_ovrl']:>8.2f}{'':>9}{'':>7}{'':>8}{o['asr_wer']:>7.3f}")
            d = r["decoded"]
            name = f"codec2 {'700C' if mode == 700 else mode}"
            rows.append(f"{name:<16}{codec.tokens_per_second:>7.0f}{codec.vocab_size:>8}{d['dnsmos_ovrl']:>8.2f}{d['pesq']:>9.2f}"
                        f"{d['stoi']:>7.3f}{d['si_sdr']:>8.1f}{d['asr_wer']:>7.3f}{enc:>9.0f}{dec:>9.0f}")
        print(header)
        for row in rows:
            print(row)
        print("DNSMOS = OVRL MOS (1-5); PESQ wideband MOS-LQO; STOI 0-1; SI-SDR dB; WER pocketsphinx + task LM; xRT = audio s / wall s")


if __name__ == "__main__":
    main()
