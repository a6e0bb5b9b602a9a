"""Speech enhancement data (task ``se``): synthetic DNS2020-like pairs, and the DNS Challenge 2020 test set.

Manifest rows (``speechrl.data.manifest``): ``audio`` = the NOISY wav, ``prompt`` =
:data:`SE_PROMPT`, ``references`` = [transcript], ``extra`` = ``{"clean_audio": <clean wav>,
"transcript": str, "has_transcript": bool, "snr_db": float | None, "noise": str, "reverb": bool,
...}``. Audio is 16 kHz mono PCM16.

**Synthetic** (:func:`build_se_synthetic`, ``data.synthetic.se``): distinct 3-6 word sentences of
the mini-AST English grammar (:func:`speechrl.data.tts.short_sentences`), rendered by espeak-ng
with a voice / speed / pitch drawn from ``data.synthetic`` (as mini-SQA / mini-AST), are the
clean speech. Per utterance a seeded ``numpy`` generator then (with probability ``reverb_prob``)
reverberates it (:func:`speechrl.audio.noise.reverb`, RT60 from ``rt60``; the reverberant speech
is the target, as in DNS2020's with_reverb set), draws a noise type from ``noises`` (white, pink,
or babble of ``babble_talkers`` OTHER dry clean utterances of the same split), an SNR from
``snr_db`` and a level from ``level_dbfs``, and mixes (:func:`speechrl.audio.noise.mix_at_snr`:
whole-clip SNR, peak-safe). ``snr_db`` in the manifest is the SNR asked for (two decimals), which
the written files reproduce to ~0.01 dB (PCM16 rounding). Output: ``noisy/<id>.wav``,
``clean/<id>.wav``, ``{train,valid,test}.jsonl``, ``checksums.json`` (sha256 of those; identical
for the same seed), ``stats.json``, written atomically like
:func:`speechrl.data.synthetic.build_synthetic`.

**DNS Challenge 2020** (:func:`build_dns2020`; Reddy et al. 2020, arXiv 2005.13981): the test set of
https://github.com/microsoft/DNS-Challenge (branch ``interspeech2020/master``, ``datasets/test_set``)::

    ROOT/synthetic/no_reverb/noisy/<...>_snr<S>_tl<L>_fileid_<N>.wav   ROOT/synthetic/no_reverb/clean/clean_fileid_<N>.wav
    ROOT/synthetic/with_reverb/noisy/...                               ROOT/synthetic/with_reverb/clean/...
    ROOT/real_recordings/<name>.wav                                    (no clean reference)

is the test split (parts ``data.hub.dns2020_subsets``); the train and valid splits come from
``data.hub.dns2020_train``, a folder ``noisy/*_fileid_<N>.wav`` + ``clean/clean_fileid_<N>.wav``
as the DNS noisyspeech_synthesizer.py writes it (``data.hub.valid_fraction`` held out). Noisy and
clean are paired by the ``fileid_<N>`` suffix; a noisy file without it, or without its clean
partner, a clean file of another length, or a wav not at ``data.sample_rate`` is an error naming
the file. ``snr_db`` is read from the ``_snr<S>_`` part of the name (else None). Audio is
referenced by absolute path, never copied.

**Transcripts.** DNS2020 ships none, and manifests refuse an empty reference. With
``data.hub.dns2020_transcripts`` (Kaldi-style ``fileid_<N> words...`` files, e.g.
https://github.com/Emrys365/DNS_text, DNS1) an utterance's transcript is its reference. Without
one the reference is :data:`NO_TRANSCRIPT` (``"∅"``, a symbol): non-blank, so the manifest is
valid, but it normalises to nothing under :func:`speechrl.rewards.asr.normalize`, so ``wer``,
``cer`` and ``asr_wer`` score such a sample ``None`` ("does not apply") instead of a made-up
error rate; ``extra.has_transcript`` is false and ``extra.transcript`` is "".
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import numpy as np
import soundfile as sf

from speechrl.audio import noise as nz
from speechrl.audio.io import AudioError, audio_info
from speechrl.config import Config, ConfigError
from speechrl.data.manifest import SPLITS, Example, write_dataset, write_manifest
from speechrl.data.synthetic import check_tools, duration_stats, synthesize_all
from speechrl.data.tts import _cap, short_sentences
from speechrl.io import atomic_dir, checksums, write_json

log = logging.getLogger("speechrl")

TASK = "se"
SE_PROMPT = "Enhance the speech."
NO_TRANSCRIPT = "\u2205"  # "∅": non-blank, normalises to nothing -> WER / CER scorers return None
DNS_PARTS = ("no_reverb", "with_reverb", "real_recordings")
DNS_HINT = ("clone https://github.com/microsoft/DNS-Challenge (branch interspeech2020/master; git lfs pull) and set "
            "data.hub.dns2020 to its datasets/test_set folder")
DNS_TRAIN_HINT = ("synthesise DNS2020 training pairs with the challenge's noisyspeech_synthesizer.py (noisy/ and clean/ "
                  "folders, fileid_N suffixes) and set data.hub.dns2020_train to that folder")
_FILEID = re.compile(r"fileid_(\d+)\.wav$")
_SNR = re.compile(r"_snr(-?\d+(?:\.\d+)?)_")
_SHOW = 5


# ============================================================================ synthetic
def _check_se_config(cfg: Config, counts: dict[str, int]) -> None:
    se = cfg.data.synthetic.se
    for key in ("snr_db", "level_dbfs", "rt60"):
        value = getattr(se, key)
        if len(value) != 2 or value[0] > value[1]:
            raise ConfigError(f"data.synthetic.se.{key} must be a range [low, high] with low <= high, got {value}")
    if not se.noises:
        raise ConfigError("data.synthetic.se.noises is empty; valid: white, pink, babble")
    small = [s for s in SPLITS if counts[s] <= se.babble_talkers]
    if "babble" in se.noises and small:
        raise ConfigError(f"babble with data.synthetic.se.babble_talkers={se.babble_talkers} needs more than {se.babble_talkers} "
                         f"utterances per split (babble uses other utterances of the same split); "
                         f"{', '.join(f'n_{s}={counts[s]}' for s in small)}: raise them, lower babble_talkers or drop 'babble'")


def build_se_synthetic(cfg: Config, out_dir: Path) -> dict:
    """Generate the synthetic speech enhancement dataset into ``out_dir``; returns the stats dict."""
    se, syn = cfg.data.synthetic.se, cfg.data.synthetic
    counts = {"train": se.n_train, "valid": se.n_valid, "test": se.n_test}
    _check_se_config(cfg, counts)
    check_tools()
    start, out_dir = time.perf_counter(), Path(out_dir)
    rng = random.Random(f"{cfg.seed}-{TASK}")
    texts = iter(short_sentences(rng, sum(counts.values()), se.min_words, se.max_words))
    jobs: list[dict[str, Any]] = []
    for split in SPLITS:
        for i in range(counts[split]):
            uid = f"{TASK}-{split}-{i:05d}"
            jobs.append({"id": uid, "split": split, "text": next(texts), "audio": f"clean/{uid}.wav", "noisy": f"noisy/{uid}.wav",
                         "voice": rng.choice(syn.voices), "speed": rng.choice(syn.speeds), "pitch": rng.choice(syn.pitches),
                         "noise": rng.choice(se.noises), "snr_db": round(rng.uniform(*se.snr_db), 2),
                         "level_dbfs": round(rng.uniform(*se.level_dbfs), 2), "reverb": rng.random() < se.reverb_prob,
                         "seed": rng.getrandbits(63)})
    with atomic_dir(out_dir) as tmp:
        (tmp / "clean").mkdir()
        (tmp / "noisy").mkdir()
        synthesize_all(jobs, tmp, cfg, desc=f"synth {TASK}")  # dry clean speech -> clean/<id>.wav
        for split in SPLITS:
            _mix_split([j for j in jobs if j["split"] == split], tmp, cfg)
            write_manifest(tmp / f"{split}.jsonl", [_example(j) for j in jobs if j["split"] == split])
        write_json(tmp / "checksums.json", checksums(tmp))
        stats = {"task": TASK, "source": "synthetic", "seed": cfg.seed, "counts": counts, "utterances": len(jobs),
                 **duration_stats([j["duration"] for j in jobs]),
                 "noises": dict(sorted(Counter(j["noise"] for j in jobs).items())), "reverberant": sum(j["reverb"] for j in jobs),
                 "mean_snr_db": round(sum(j["snr_db"] for j in jobs) / len(jobs), 2),
                 "elapsed_seconds": round(time.perf_counter() - start, 2)}
        write_json(tmp / "stats.json", stats)
    log.info(f"[synth {TASK}] {len(jobs)} noisy/clean pairs ({counts['train']}/{counts['valid']}/{counts['test']}), "
             f"noises {stats['noises']}, {stats['reverberant']} reverberant, {stats['elapsed_seconds']:.1f} s -> {out_dir}")
    return stats


def _mix_split(jobs: list[dict[str, Any]], root: Path, cfg: Config) -> None:
    """Reverberate / mix every job of one split; overwrites clean/<id>.wav with the target, writes noisy/<id>.wav."""
    se, sr = cfg.data.synthetic.se, cfg.data.sample_rate
    dry = [sf.read(str(root / j["audio"]), dtype="float64")[0] for j in jobs]
    for k, job in enumerate(jobs):
        g = np.random.default_rng(job["seed"])
        clean, job["rt60"] = dry[k], None
        if job["reverb"]:
            clean, t60 = nz.reverb(clean, g, tuple(se.rt60), sr)
            job["rt60"] = round(t60, 3)
        n = len(clean)
        if job["noise"] == "babble":
            noise = nz.babble([d for i, d in enumerate(dry) if i != k], n, g, se.babble_talkers)
        else:
            noise = getattr(nz, job["noise"])(n, g)
        noisy, target = nz.mix_at_snr(clean, noise, job["snr_db"], job["level_dbfs"])
        sf.write(str(root / job["audio"]), target, sr, subtype="PCM_16")
        sf.write(str(root / job["noisy"]), noisy, sr, subtype="PCM_16")


def _example(job: dict[str, Any]) -> Example:
    extra = {"clean_audio": job["audio"], "transcript": job["text"], "has_transcript": True, "snr_db": job["snr_db"],
             "noise": job["noise"], "reverb": job["reverb"], "rt60": job["rt60"], "level_dbfs": job["level_dbfs"],
             "voice": job["voice"], "speed": job["speed"], "pitch": job["pitch"], "duration": job["duration"]}
    return Example(job["id"], job["noisy"], SE_PROMPT, [job["text"]], TASK, "en", job["split"], "en", extra)


# ============================================================================ DNS Challenge 2020
@dataclasses.dataclass(frozen=True)
class _Item:
    key: str  # fileid_N, or the file stem of a real recording
    noisy: Path
    clean: Optional[Path]
    part: str  # no_reverb / with_reverb / real_recordings / train


def _listing(items: list[str]) -> str:
    more = f"; ... {len(items) - _SHOW} more" if len(items) > _SHOW else ""
    return "; ".join(items[:_SHOW]) + more


def _pairs(folder: Path, part: str, key: str, hint: str) -> list[_Item]:
    """noisy/*_fileid_N.wav paired with clean/clean_fileid_N.wav, in fileid order."""
    noisy_dir, clean_dir = folder / "noisy", folder / "clean"
    for d in (noisy_dir, clean_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"{key}: no folder {d}; {hint}")
    items: dict[int, _Item] = {}
    problems: list[str] = []
    for wav in sorted(noisy_dir.glob("*.wav")):
        m = _FILEID.search(wav.name)
        if not m:
            problems.append(f"{wav}: no fileid_<N> suffix to pair it with a clean file")
            continue
        n = int(m.group(1))
        clean = clean_dir / f"clean_fileid_{n}.wav"
        if n in items:
            problems.append(f"{wav}: fileid_{n} also names {items[n].noisy.name}")
        elif not clean.is_file():
            problems.append(f"{wav}: its clean partner {clean} is missing")
        else:
            items[n] = _Item(f"fileid_{n}", wav, clean, part)
    if problems:
        raise FileNotFoundError(f"{key}: {len(problems)} unusable noisy file(s): {_listing(problems)}")
    if not items:
        raise FileNotFoundError(f"{key}: {noisy_dir} holds no .wav files; {hint}")
    return [items[n] for n in sorted(items)]


def _test_root(value: str) -> Path:
    root = Path(value).expanduser()
    for cand in (root, root / "test_set", root / "datasets" / "test_set"):
        if (cand / "synthetic").is_dir() or (cand / "real_recordings").is_dir():
            return cand
    raise FileNotFoundError(f"data.hub.dns2020={value!r}: no synthetic/ or real_recordings/ folder under it "
                            f"(nor under test_set/ or datasets/test_set/); {DNS_HINT}")


def _dns_items(cfg: Config) -> dict[str, list[_Item]]:
    hub = cfg.data.hub
    if not hub.dns2020:
        raise FileNotFoundError(f"data.hub.dns2020 is not set; {DNS_HINT}")
    if not hub.dns2020_train:
        raise FileNotFoundError(f"data.hub.dns2020_train is not set: the DNS2020 test set has no training split; {DNS_TRAIN_HINT} "
                                "(or train on the synthetic se data with data.source: synthetic)")
    root = _test_root(hub.dns2020)
    test: list[_Item] = []
    for part in hub.dns2020_subsets:
        if part == "real_recordings":
            wavs = sorted((root / part).glob("*.wav"))
            if not wavs:
                raise FileNotFoundError(f"data.hub.dns2020: {root / part} holds no .wav files; {DNS_HINT}")
            test += [_Item(w.name.removesuffix(".wav"), w, None, part) for w in wavs]
        else:
            test += _pairs(root / "synthetic" / part, part, "data.hub.dns2020", DNS_HINT)
    train = _pairs(Path(hub.dns2020_train).expanduser(), "train", "data.hub.dns2020_train", DNS_TRAIN_HINT)
    return {"train": train, "test": test}


def _read_transcripts(folder: Optional[str], part: str) -> Optional[dict[str, str]]:
    """Transcripts of one part (key -> text), or None when there is no file for it."""
    if not folder:
        return None
    base = Path(folder).expanduser()
    if not base.is_dir():
        raise FileNotFoundError(f"data.hub.dns2020_transcripts={folder!r}: no such folder")
    names = [f"tt_synthetic_{part}", part] if part != "train" else ["train"]
    path = next((base / n / "text" for n in names if (base / n / "text").is_file()), None)
    if path is None:
        return None
    out: dict[str, str] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        key, _, text = line.strip().partition(" ")
        if key and text.strip():
            out[key] = text.strip()
        elif key:
            raise ValueError(f"{path}:{i}: key {key!r} has no transcript")
    return out


def _check_audio(items: list[_Item], sample_rate: int, max_seconds: float) -> tuple[list[_Item], int]:
    """Every file decodes at ``sample_rate`` and each clean file matches its noisy one in length; too long clips are left out."""
    problems: list[str] = []
    keep: list[_Item] = []
    dropped = 0
    for it in items:
        frames: list[int] = []
        for path in (it.noisy, it.clean):
            if path is None:
                continue
            info = audio_info(path)
            if info.samplerate != sample_rate:
                problems.append(f"{path}: {info.samplerate} Hz")
            frames.append(info.frames)
        if len(frames) == 2 and frames[0] != frames[1]:
            problems.append(f"{it.clean}: {frames[1]} samples but its noisy file {it.noisy.name} has {frames[0]}")
        elif frames[0] > max_seconds * sample_rate:
            dropped += 1
        else:
            keep.append(it)
    if problems:
        raise AudioError(f"{len(problems)} DNS2020 audio problem(s) (expected {sample_rate} Hz mono wav, noisy and clean of "
                         f"equal length): {_listing(problems)}")
    return keep, dropped


def _dns_example(it: _Item, split: str, transcripts: Optional[dict[str, str]], where: str) -> Example:
    text = None
    if transcripts is not None:
        text = transcripts.get(it.key)
        if text is None:
            raise ValueError(f"{where}: no transcript for {it.key} ({it.noisy}); every utterance of a part with a transcript file needs one")
    snr = _SNR.search(it.noisy.name)
    extra: dict[str, Any] = {"transcript": text or "", "has_transcript": text is not None,
                             "snr_db": float(snr.group(1)) if snr else None, "noise": "real", "reverb": it.part == "with_reverb",
                             "part": it.part, "source_file": it.noisy.name}
    if it.clean is not None:
        extra["clean_audio"] = str(it.clean.absolute())
    uid = f"dns2020-{it.part}-{it.key}"
    return Example(uid, str(it.noisy.absolute()), SE_PROMPT, [text or NO_TRANSCRIPT], TASK, "en", split, "en", extra)


def build_dns2020(cfg: Config, out_dir: Path) -> dict:
    """Read the DNS Challenge 2020 test set (``data.hub.dns2020``) and training pairs (``data.hub.dns2020_train``)
    into ``out_dir`` (manifests, checksums.json, stats.json); returns the stats dict."""
    hub, start, out_dir = cfg.data.hub, time.perf_counter(), Path(out_dir)
    items = _dns_items(cfg)
    dropped = 0
    for split in items:
        items[split], n = _check_audio(items[split], cfg.data.sample_rate, cfg.data.max_audio_seconds)
        dropped += n
    tx_where = f"data.hub.dns2020_transcripts={hub.dns2020_transcripts!r}"
    tx = {part: _read_transcripts(hub.dns2020_transcripts, part) for part in (*hub.dns2020_subsets, "train")}
    examples = {s: [_dns_example(it, s, tx[it.part], tx_where) for it in items[s]] for s in items}
    train = examples["train"]
    if len(train) < 2:
        raise ValueError(f"data.hub.dns2020_train: {len(train)} usable pair(s); at least 2 are needed to hold out a validation split")
    order = list(range(len(train)))
    random.Random(f"{cfg.seed}-{TASK}-holdout").shuffle(order)
    held = set(order[: min(len(train) - 1, max(1, round(len(train) * hub.valid_fraction)))])
    splits = {"train": [e for i, e in enumerate(train) if i not in held],
              "valid": [dataclasses.replace(e, split="valid") for i, e in enumerate(train) if i in held],
              "test": examples["test"]}
    splits = {s: _cap(v, hub.max_train if s == "train" else hub.max_eval, random.Random(f"{cfg.seed}-{TASK}-{s}-cap"))
              for s, v in splits.items()}
    if dropped:
        log.warning(f"[dns2020] {dropped} clips are longer than data.max_audio_seconds={cfg.data.max_audio_seconds} and were left out")
    counts = {s: len(splits[s]) for s in SPLITS}
    with_text = sum(e.extra["has_transcript"] for v in splits.values() for e in v)
    stats: dict[str, Any] = {"task": TASK, "source": "dns2020", "seed": cfg.seed, "counts": counts, "utterances": sum(counts.values()),
                             "parts": dict(Counter(e.extra["part"] for e in splits["test"])), "with_transcript": with_text,
                             "dropped_too_long": dropped}
    write_dataset(out_dir, splits, stats, start)
    log.info(f"[dns2020] {counts['train']}/{counts['valid']}/{counts['test']} pairs, {with_text} with a transcript -> {out_dir}")
    return stats
