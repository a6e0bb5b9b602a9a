"""The tokenize stage: a dataset's audio -> codec token ids, and a round-trip quality check.

:func:`tokenize_dataset` reads ``<data_dir>/{train,valid,test}.jsonl`` (the manifest format of
:mod:`speechrl.data.manifest`), encodes everything in memory, then writes into ``out_dir`` (each
file atomically; other files there are left alone, so it can be a job's staging folder,
:mod:`speechrl.jobdir`, which makes the set atomic). A failure before that point, such as a bad
sample with ``on_bad_sample="error"``, writes nothing:

* ``codec.json``: ``codec.info()`` (name, options, vocab_size, rates), what the LM stage needs;
* ``<split>.jsonl``: one line per kept example, ``{"id": ..., <key>: [ids], ...}`` for each
  output key of ``fields`` (se: ``{"input": "audio", "target": "clean_audio"}``; tts:
  ``{"target": "audio"}``);
* ``skipped.jsonl``: the examples left out, as :class:`speechrl.data.manifest.BadSample` rows
  (file, line, id, reason);
* ``stats.json``: the returned stats.

A manifest field is ``audio`` or a key of ``extra`` holding a path; relative paths are resolved
against ``data_dir``. In the test split the ``target`` field may be absent (DNS2020's real recordings
have no clean reference; nothing trains on the test split): such a row has no ``target`` and is
counted in ``stats["no_target"]``; its inputs are still required (a task whose only field is the target
still needs it). Audio is read with :func:`speechrl.audio.io.load_audio` (so a file at a rate
other than ``sample_rate``, NaN samples or a float file outside [-1, 1] is refused there, and
multi-channel files are downmixed) and encoded with ``codec.encode``. A bad manifest line, a
missing field, unreadable audio or a :class:`~speechrl.audio.codecs.CodecError` (too short,
digital silence, ...) is a bad sample: ``on_bad_sample="skip"`` counts and lists it,
``"error"`` raises :class:`TokenizeError` on the first one, naming manifest file, line and id.

:func:`roundtrip_quality` decodes ``encode(x)`` for a few utterances and scores it against ``x``:
DNSMOS OVRL and the ASR word error rate of both (``asr_wer``, pocketsphinx with a task LM built
from the transcripts unless ``SPEECHRL_ASR_LM`` / ``SPEECHRL_ASR_MODEL`` is set), and wideband
PESQ, STOI and SI-SDR of the decoded vs the original, all through the registered scorers.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from speechrl.audio.codecs import CLIP_WARN_SAMPLES, AudioCodec, CodecError, count_clipped
from speechrl.audio.io import AudioError, load_audio
from speechrl.data.manifest import SPLITS, BadSample, Example, ManifestError, scan_manifest
from speechrl.io import write_json, write_jsonl

log = logging.getLogger("speechrl.audio.tokenize")

ON_BAD_SAMPLE = ("skip", "error")
ROUNDTRIP_UTTERANCES = 8


class TokenizeError(ValueError):
    """A bad sample with ``on_bad_sample="error"``, or unusable arguments; names file, line and id."""


def field_path(ex: Example, field: str, data_dir: Path) -> Path:
    """The audio path of manifest field ``field`` (``audio`` or an ``extra`` key), resolved against ``data_dir``."""
    if field == "audio":
        value: Any = ex.audio
    elif field in ex.extra:
        value = ex.extra[field]
    else:
        raise ManifestError(f"field '{field}' missing (id={ex.id}); extra has: {', '.join(sorted(ex.extra)) or 'nothing'}")
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"field '{field}' must be a non-empty path string, got {value!r} (id={ex.id})")
    p = Path(value)
    return p if p.is_absolute() else data_dir / p


def _check_args(fields: dict[str, str], on_bad_sample: str) -> None:
    if on_bad_sample not in ON_BAD_SAMPLE:
        raise TokenizeError(f"on_bad_sample={on_bad_sample!r}; valid: {', '.join(ON_BAD_SAMPLE)}")
    if not isinstance(fields, dict) or not fields:
        raise TokenizeError(f"fields must map output key -> manifest field, e.g. {{'target': 'audio'}}; got {fields!r}")
    for key, field in fields.items():
        if not isinstance(key, str) or not key or key == "id" or not isinstance(field, str) or not field:
            raise TokenizeError(f"fields: bad entry {key!r}: {field!r} (keys other than 'id', values manifest field names)")


def tokenize_dataset(data_dir: str | Path, out_dir: str | Path, codec: AudioCodec, fields: dict[str, str],
                     on_bad_sample: str = "skip", *, sample_rate: int = 16000,
                     max_seconds: float | None = None) -> dict[str, Any]:
    """Tokenize every split of ``data_dir`` into ``out_dir`` (see the module docstring); returns the stats:

    ``{"codec": info, "examples": {split: n}, "tokens": {key: {"mean", "max", "total"}},
    "audio_seconds": {key: s}, "clipped": {key: n examples}, "skipped": n,
    "skipped_by_split": {split: n}, "seconds": wall time}``.
    """
    _check_args(fields, on_bad_sample)
    start = time.perf_counter()
    data_dir = Path(data_dir)
    rows: dict[str, list[dict[str, Any]]] = {}
    skipped: list[BadSample] = []
    lengths: dict[str, list[int]] = {k: [] for k in fields}
    seconds = dict.fromkeys(fields, 0.0)
    clipped = dict.fromkeys(fields, 0)
    no_target = 0

    def bad(sample: BadSample) -> None:
        if on_bad_sample == "error":
            raise TokenizeError(f"{sample} (on_bad_sample=error; set it to skip to leave such samples out)")
        log.warning("tokenize: skipping %s", sample)
        skipped.append(sample)

    for split in SPLITS:
        manifest = data_dir / f"{split}.jsonl"
        good, bad_lines = scan_manifest(manifest)  # a missing / empty manifest raises ManifestError
        events = sorted([(b.line, b) for b in bad_lines] + [(n, ex) for n, ex in good], key=lambda e: e[0])
        rows[split] = []
        for line, item in events:
            if isinstance(item, BadSample):
                bad(item)
                continue
            row: dict[str, Any] = {"id": item.id}
            try:
                for key, field in fields.items():
                    if split == "test" and key == "target" and len(fields) > 1 and field != "audio" and field not in item.extra:
                        no_target += 1  # evaluated on its input alone (reference-free metrics)
                        continue
                    path = field_path(item, field, data_dir)
                    wav = load_audio(path, sample_rate, max_seconds, context=item.id)
                    ids = codec.encode(wav, sample_rate, where=f"{path} ({item.id})")
                    row[key] = ids
                    clipped[key] += int(count_clipped(wav) >= CLIP_WARN_SAMPLES)
                    seconds[key] += len(wav) / sample_rate
            except (ManifestError, AudioError, CodecError) as e:
                bad(BadSample(str(manifest), line, item.id, f"id={item.id}: {key} ({field}): {e}"))
                continue
            for key in fields:
                if key in row:
                    lengths[key].append(len(row[key]))
            rows[split].append(row)
    kept = sum(len(r) for r in rows.values())
    if kept == 0:
        reasons = "; ".join(str(b) for b in skipped[:3])
        raise TokenizeError(f"{data_dir}: every example was skipped ({len(skipped)}), nothing to tokenize; first: {reasons}")
    stats = {
        "codec": codec.info(),
        "fields": dict(fields),
        "examples": {s: len(r) for s, r in rows.items()},
        "tokens": {k: {"mean": round(float(np.mean(v)), 2) if v else 0.0, "max": max(v, default=0), "total": int(sum(v))}
                   for k, v in lengths.items()},
        "audio_seconds": {k: round(v, 3) for k, v in seconds.items()},
        "clipped": clipped,
        "skipped": len(skipped),
        "no_target": no_target,
        "skipped_by_split": {s: sum(b.file == str(data_dir / f"{s}.jsonl") for b in skipped) for s in SPLITS},
        "seconds": round(time.perf_counter() - start, 3),
    }
    out = Path(out_dir)
    write_json(out / "codec.json", codec.info())
    for split, split_rows in rows.items():
        write_jsonl(out / f"{split}.jsonl", split_rows)
    write_jsonl(out / "skipped.jsonl", (b.to_json() for b in skipped))
    write_json(out / "stats.json", stats)
    log.info("tokenize: %s examples, %d skipped, tokens %s, %.1f s", stats["examples"], len(skipped), stats["tokens"], stats["seconds"])
    return stats


# ------------------------------------------------------------------------------- round-trip quality
def roundtrip_inputs(data_dir: str | Path, field: str = "audio", split: str = "valid",
                     n: int = ROUNDTRIP_UTTERANCES) -> tuple[list[Path], list[str]]:
    """The first ``n`` usable (audio path of ``field``, first reference) pairs of ``split`` (bad lines skipped)."""
    data_dir = Path(data_dir)
    good, _ = scan_manifest(data_dir / f"{split}.jsonl")
    paths, refs = [], []
    for _, ex in good:
        try:
            p = field_path(ex, field, data_dir)
        except ManifestError:
            continue
        if p.is_file():
            paths.append(p)
            refs.append(ex.references[0])
        if len(paths) == n:
            break
    return paths, refs


_LM_DIRS: dict[tuple[str, ...], str] = {}


@contextmanager
def _task_lm(refs: Sequence[str]) -> Iterator[None]:
    """Point ``SPEECHRL_ASR_LM`` at a task LM of ``refs`` for the block (unless an ASR is configured).

    One LM folder per distinct set of texts, kept until the process exits: a second call with the
    same texts reuses it, its ASR worker pool and the transcripts already memoised."""
    from speechrl.rewards.asr import LM_ENV, MODEL_ENV, build_task_lm

    if os.environ.get(LM_ENV, "").strip() or os.environ.get(MODEL_ENV, "").strip():
        yield
        return
    key = tuple(sorted(set(refs)))
    if key not in _LM_DIRS:
        folder = tempfile.mkdtemp(prefix="speechrl-lm-")
        atexit.register(shutil.rmtree, folder, True)
        build_task_lm(list(key), folder)
        _LM_DIRS[key] = folder
    os.environ[LM_ENV] = _LM_DIRS[key]
    try:
        yield
    finally:
        os.environ.pop(LM_ENV, None)


def _value(x: float, scale: float = 1.0) -> float | None:
    return None if not math.isfinite(x) else round(float(x) / scale, 4)


def roundtrip_quality(codec: AudioCodec, wav_paths: Sequence[str | Path], refs: Sequence[str],
                      out_dir: str | Path | None = None, max_utterances: int = ROUNDTRIP_UTTERANCES,
                      sample_rate: int = 16000) -> dict[str, Any]:
    """Score ``decode(encode(x))`` against ``x`` on the first ``max_utterances`` files.

    Returns (and writes to ``out_dir/roundtrip.json`` when given)::

        {"codec": info, "n": n, "n_invalid_ids": 0,
         "original": {"dnsmos_ovrl": MOS, "asr_wer": WER},
         "decoded": {"dnsmos_ovrl": MOS, "asr_wer": WER, "pesq": MOS-LQO, "stoi": 0-1, "si_sdr": dB},
         "utterances": [{"audio", "seconds", "decoded_seconds"}, ...]}

    Every value is the corpus value of the registered scorer (one implementation per metric,
    :mod:`speechrl.rewards`), on its native scale: DNSMOS OVRL mean MOS (1-5), PESQ wideband mean
    MOS-LQO, STOI mean (0-1), SI-SDR mean dB, WER pooled (edits / reference words, a fraction).
    """
    from speechrl.rewards import score_corpus

    if len(wav_paths) != len(refs):
        raise ValueError(f"roundtrip_quality: {len(wav_paths)} audio files but {len(refs)} transcripts")
    pairs = list(zip(wav_paths, refs))[:max_utterances]
    if not pairs:
        raise ValueError("roundtrip_quality: no utterances given")
    originals, decoded, per = [], [], []
    n_invalid = 0
    for path, _ in pairs:
        x = load_audio(path, sample_rate)
        y, bad = codec.decode(codec.encode(x, sample_rate, where=str(path)))
        n_invalid += bad
        originals.append(x)
        decoded.append(y)  # an empty waveform scores None
        per.append({"audio": str(path), "seconds": round(len(x) / sample_rate, 3), "decoded_seconds": round(len(y) / 16000, 3)})
    texts = [[r] for _, r in pairs]
    hyps = [""] * len(pairs)

    def corpus(name: str, audio: list[Any], **columns: Any) -> float:
        return score_corpus(name, hyps, texts, audio=audio, **columns)

    with _task_lm([r for _, r in pairs]):
        wer_x, wer_y = corpus("asr_wer", originals), corpus("asr_wer", decoded)
    result = {
        "codec": codec.info(),
        "n": len(pairs),
        "n_invalid_ids": n_invalid,
        "original": {"dnsmos_ovrl": _value(corpus("dnsmos_ovrl", originals)), "asr_wer": _value(100.0 - wer_x, 100.0)},
        "decoded": {
            "dnsmos_ovrl": _value(corpus("dnsmos_ovrl", decoded)),
            "asr_wer": _value(100.0 - wer_y, 100.0),
            "pesq": _value(corpus("pesq", decoded, clean_audio=originals)),
            "stoi": _value(corpus("stoi", decoded, clean_audio=originals), 100.0),
            "si_sdr": _value(corpus("si_sdr", decoded, clean_audio=originals)),
        },
        "utterances": per,
    }
    if out_dir is not None:
        write_json(Path(out_dir) / "roundtrip.json", result)
    return result
