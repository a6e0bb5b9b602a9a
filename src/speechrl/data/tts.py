"""Text-to-speech data (task ``tts``): synthetic (espeak-ng) and LibriTTS, in the one manifest format.

Manifest rows (``speechrl.data.manifest``): ``audio`` = the target speech (16 kHz mono PCM16
wav), ``prompt`` = the sentence text, ``references`` = [the sentence text] (for the ASR-WER /
CER of the generated speech), ``extra.transcript`` = the sentence text.

**Synthetic** (:func:`build_tts_synthetic`, ``data.synthetic.tts``): distinct short sentences
(``min_words``..``max_words`` words) from the mini-AST English grammar
(:func:`speechrl.data.synthetic.random_sentence`), drawn with ``random.Random(f"{seed}-tts")``;
the splits are consecutive slices, so they never share a sentence. Every sentence is spoken in
**one** voice / speed / pitch: the model sees only the text, so the text must determine the
speech (a Llasa-style zero-shot speaker prompt is not part of this task). Output as
:func:`speechrl.data.synthetic.build_synthetic`: ``wavs/<id>.wav``, ``{train,valid,test}.jsonl``,
``checksums.json`` (byte-identical for the same seed), ``stats.json``, written atomically.

**LibriTTS** (:func:`build_libritts`, ``data.hub.libritts``; Zen et al. 2019, arXiv 1904.02882),
the layout of https://www.openslr.org/60::

    ROOT/<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<par>_<sent>.wav
    ROOT/<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<par>_<sent>.normalized.txt

(``ROOT/LibriTTS/<subset>/...`` is found too). Train = ``data.hub.libritts_train`` subsets, valid
= ``dev-clean``, test = ``test-clean``. LibriTTS ships 24 kHz audio and the pipeline reads
``data.sample_rate`` (16 kHz): resample a copy once (:data:`RESAMPLE_CMD`); every wav is checked
and a wrong rate is an :class:`~speechrl.audio.io.AudioError` naming the file. A wav without its
``.normalized.txt`` (or with a blank one) is an error naming the file. Utterances longer than
``data.max_audio_seconds`` are left out (counted in ``stats.json``); ``data.hub.max_train`` /
``max_eval`` keep the first N of a seeded shuffle. Audio is referenced by absolute path, not copied.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any, Optional


from speechrl.audio.io import AudioError, audio_info
from speechrl.config import Config
from speechrl.data.manifest import SPLITS, Example, write_dataset
from speechrl.data.synthetic import MAX_TRIES, check_tools, random_sentence, realize_en, write_synthetic

log = logging.getLogger("speechrl")

TASK = "tts"
LIBRITTS_SPLITS = {"valid": ("dev-clean",), "test": ("test-clean",)}  # train: data.hub.libritts_train
LIBRITTS_HINT = ("download LibriTTS from https://www.openslr.org/60 (train-clean-100, dev-clean, test-clean), extract it, "
                 "resample a copy to 16 kHz and set data.hub.libritts to it")
RESAMPLE_CMD = ("cp -r LibriTTS LibriTTS16k && find LibriTTS16k -name '*.wav' -exec sh -c "
                "'sox \"$1\" -r 16000 \"$1.tmp.wav\" && mv \"$1.tmp.wav\" \"$1\"' _ {} \\;")
_SHOW = 5  # problem files named in one error


# ============================================================================ sentences
def short_sentences(rng: random.Random, n: int, min_words: int, max_words: int) -> list[str]:
    """``n`` distinct English sentences of ``min_words``..``max_words`` words (mini-AST grammar)."""
    if min_words > max_words:
        raise ValueError(f"min_words={min_words} is more than max_words={max_words}")
    out: list[str] = []
    seen: set[str] = set()
    for _ in range(n * MAX_TRIES):
        if len(out) == n:
            break
        text = realize_en(random_sentence(rng))
        if min_words <= len(text.split()) <= max_words and text not in seen:
            seen.add(text)
            out.append(text)
    if len(out) < n:
        raise ValueError(f"the English grammar produced only {len(out)} distinct sentences of {min_words}-{max_words} words, "
                         f"{n} requested (raise max_words or lower the split sizes)")
    return out


# ============================================================================ synthetic
def build_tts_synthetic(cfg: Config, out_dir: Path) -> dict:
    """Generate the synthetic TTS dataset into ``out_dir``; returns the stats dict (also stats.json)."""
    check_tools()
    start, tts, out_dir = time.perf_counter(), cfg.data.synthetic.tts, Path(out_dir)
    counts = {"train": tts.n_train, "valid": tts.n_valid, "test": tts.n_test}
    texts = iter(short_sentences(random.Random(f"{cfg.seed}-{TASK}"), sum(counts.values()), tts.min_words, tts.max_words))
    jobs = [{"id": (uid := f"{TASK}-{split}-{i:05d}"), "split": split, "audio": f"wavs/{uid}.wav", "text": next(texts),
             "voice": tts.voice, "speed": tts.speed, "pitch": tts.pitch}
            for split in SPLITS for i in range(counts[split])]
    vocab = len({w.strip(".").lower() for j in jobs for w in j["text"].split()})
    stats = write_synthetic(out_dir, jobs, cfg, TASK, _example, {"vocab": vocab}, start)
    log.info(f"[synth {TASK}] {len(jobs)} utterances ({counts['train']}/{counts['valid']}/{counts['test']}), "
             f"{stats['total_audio_seconds']:.0f} s audio, {stats['elapsed_seconds']:.1f} s -> {out_dir}")
    return stats


def _example(job: dict[str, Any]) -> Example:
    extra = {"transcript": job["text"], "voice": job["voice"], "speed": job["speed"], "pitch": job["pitch"], "duration": job["duration"]}
    return Example(job["id"], job["audio"], job["text"], [job["text"]], TASK, "en", job["split"], "en", extra)


# ============================================================================ LibriTTS
def _subset_dir(root: Path, subset: str) -> Path:
    for cand in (root / subset, root / "LibriTTS" / subset):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"data.hub.libritts={str(root)!r}: no {subset}/ folder (looked for {root / subset} and "
                            f"{root / 'LibriTTS' / subset}); {LIBRITTS_HINT}")


def _listing(items: list[str]) -> str:
    more = f"; ... {len(items) - _SHOW} more" if len(items) > _SHOW else ""
    return "; ".join(items[:_SHOW]) + more


def _libritts_subset(folder: Path, split: str, sample_rate: int, max_seconds: float) -> tuple[list[Example], int]:
    """The examples of one subset folder (sorted by utterance id) and the number left out as too long."""
    examples: list[Example] = []
    no_text: list[str] = []
    bad_rate: list[str] = []
    too_long = 0
    for wav in sorted(folder.glob("*/*/*.wav")):
        utt = wav.name.removesuffix(".wav")
        txt = wav.with_name(f"{utt}.normalized.txt")
        text = txt.read_text(encoding="utf-8").strip() if txt.is_file() else ""
        if not text:
            no_text.append(f"{wav} ({txt.name} {'is blank' if txt.is_file() else 'missing'})")
            continue
        info = audio_info(wav)
        if info.samplerate != sample_rate:
            bad_rate.append(f"{wav} ({info.samplerate} Hz)")
            continue
        duration = info.frames / info.samplerate
        if duration > max_seconds:
            too_long += 1
            continue
        spk = utt.split("_")[0]
        examples.append(Example(f"libritts-{utt}", str(wav.absolute()), text, [text], TASK, "en", split, "en",
                                {"transcript": text, "speaker": spk, "subset": folder.name, "duration": round(duration, 3)}))
    if no_text:
        raise FileNotFoundError(f"{len(no_text)} LibriTTS wav file(s) without a transcript: {_listing(no_text)}")
    if bad_rate:
        raise AudioError(f"{len(bad_rate)} LibriTTS wav file(s) not at data.sample_rate={sample_rate} Hz: {_listing(bad_rate)}; "
                         f"resample a copy once, e.g. `{RESAMPLE_CMD}`, and set data.hub.libritts to LibriTTS16k")
    return examples, too_long


def _cap(examples: list[Example], n: Optional[int], rng: random.Random) -> list[Example]:
    """The first ``n`` of a seeded shuffle, kept in source order (all when ``n`` is None)."""
    if n is None or len(examples) <= n:
        return examples
    keep = sorted(rng.sample(range(len(examples)), n))
    return [examples[i] for i in keep]


def build_libritts(cfg: Config, out_dir: Path) -> dict:
    """Read LibriTTS from ``data.hub.libritts`` into ``out_dir`` (manifests, checksums.json, stats.json)."""
    hub, start, out_dir = cfg.data.hub, time.perf_counter(), Path(out_dir)
    if not hub.libritts:
        raise FileNotFoundError(f"data.hub.libritts is not set; {LIBRITTS_HINT}")
    root = Path(hub.libritts).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data.hub.libritts={hub.libritts!r}: no such folder; {LIBRITTS_HINT}")
    subsets = {"train": tuple(hub.libritts_train), **LIBRITTS_SPLITS}
    splits: dict[str, list[Example]] = {}
    dropped = 0
    for split in SPLITS:
        splits[split] = []
        for subset in subsets[split]:
            examples, too_long = _libritts_subset(_subset_dir(root, subset), split, cfg.data.sample_rate, cfg.data.max_audio_seconds)
            if not examples:
                raise FileNotFoundError(f"data.hub.libritts={hub.libritts!r}: {subset}/ holds no usable <speaker>/<chapter>/<utt>.wav "
                                        f"({too_long} over data.max_audio_seconds={cfg.data.max_audio_seconds})")
            splits[split] += examples
            dropped += too_long
        cap = hub.max_train if split == "train" else hub.max_eval
        splits[split] = _cap(splits[split], cap, random.Random(f"{cfg.seed}-{TASK}-{split}-cap"))
    if dropped:
        log.warning(f"[libritts] {dropped} utterances are longer than data.max_audio_seconds={cfg.data.max_audio_seconds} "
                    "and were left out (raise it to keep them)")
    counts = {s: len(splits[s]) for s in SPLITS}
    stats: dict[str, Any] = {"task": TASK, "source": str(root), "seed": cfg.seed, "subsets": subsets, "counts": counts,
                             "utterances": sum(counts.values()), "dropped_too_long": dropped,
                             "total_audio_seconds": round(sum(e.extra["duration"] for s in splits.values() for e in s), 2)}
    write_dataset(out_dir, splits, stats, start)
    log.info(f"[libritts] {counts['train']}/{counts['valid']}/{counts['test']} utterances ({dropped} too long left out) -> {out_dir}")
    return stats
