"""Reference-based speech-enhancement metrics: ``pesq``, ``stoi`` and ``si_sdr`` of an output vs the clean speech.

Columns: ``audio=`` (the system's output; one item per sample, a path or any form
:func:`speechrl.rewards.audio.prepare_audio` accepts, or ``None`` when the output could not be decoded)
and ``clean_audio=`` (the clean reference, same forms). Both are resampled to 16 kHz mono.
``hyps`` are ignored; ``refs`` are only validated by the common entry points.

Length: a generated enhancement need not have the clean signal's length. The output is compared over the
clean signal's span: trimmed at the end when longer, zero-padded at the end when shorter (no time
alignment search; PESQ aligns internally, STOI and SI-SDR do not, so a delayed output scores lower).

Metrics (the raw value, its per-sample reward in [0, 1], and the corpus value of ``metrics.json``):

* ``pesq``: wideband PESQ (ITU-T P.862.2) from the ``pesq`` package (mode ``"wb"``, 16 kHz), MOS-LQO
  between 1.04 and 4.64. Reward ``(MOS-LQO - 1.04) / 3.6`` clipped to [0, 1]. Corpus: mean MOS-LQO on
  that native scale, as SE papers report PESQ (like DNSMOS, not 0-100).
* ``stoi``: STOI (Taal et al., 2011, IEEE TASLP 19(7)) from ``pystoi`` (``extended=False``), about 0-1.
  Reward: STOI clipped to [0, 1]. Corpus: ``100 * mean STOI``, i.e. STOI in percent, as SE tables
  print "STOI (%)" and as the 0-100 ``metrics.json`` convention has it.
* ``si_sdr``: scale-invariant SDR in dB (Le Roux et al., 2019, "SDR - half-baked or well done?",
  arXiv 1811.02508), :func:`si_sdr` (numpy; no installed package provides it). Reward
  ``sigmoid(SI-SDR / 10 dB)``: 0.5 at 0 dB, 0.73 at 10 dB, 0.88 at 20 dB, 0.27 at -10 dB; smooth and not
  saturated over the -20..+20 dB range where generated enhancements fall. Corpus: mean dB.

Samples without a value:

* ``None`` (does not apply): the output is ``None`` (undecodable), empty or has NaN / infinite samples,
  or the clean reference is ``None``;
* ``float('nan')`` (failed): the metric rejects the pair: PESQ on a silent output (the library
  raises), on a clean reference without speech (``NoUtterancesError``) or under 0.25 s; STOI with
  fewer than 30 non-silent frames (pystoi's ``1e-5`` sentinel); SI-SDR on a silent clean reference.
  The common entry points (``score_samples``, ``score_both``, ``combine``) turn NaN into ``None`` and
  count it in ``reward/failed``; the reason is logged. A missing or undecodable file raises
  :class:`~speechrl.audio.io.AudioError` naming it (the entry points isolate that sample).

Throughput: each pair is scored in the audio worker pool (``SPEECHRL_AUDIO_WORKERS``; 0 = in
process) shared by the three metrics. Raw values are memoised per (metric, output content, clean
content) in the process, so the corpus pass after the per-sample pass computes nothing again.
Measured on espeak speech (1-2 s, shared 2-core CPU): see ``bench/rewards_audio.py``.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from speechrl.rewards.audio import SR, prepare_audio, run_pool
from speechrl.rewards.base import Scorer, register
from speechrl.rewards.cache import content_key

log = logging.getLogger("speechrl.rewards.enhancement")

PESQ_RANGE = (1.04, 4.64)
"""Range of wideband PESQ's MOS-LQO (P.862.2 mapping) as the ``pesq`` package returns it."""
SI_SDR_RANGE = (-50.0, 100.0)
"""SI-SDR values are clipped to this range (dB): a silent output (-inf) gives -50, an exact one (+inf) 100."""
SI_SDR_SCALE = 10.0
"""dB per unit of the sigmoid in the SI-SDR reward."""
_MEMO_SIZE = 50_000


# ------------------------------------------------------------------------------- the metrics
def match_length(out: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """``out`` trimmed or zero-padded at the end to ``len(clean)`` samples."""
    if len(out) >= len(clean):
        return out[: len(clean)]
    return np.concatenate([out, np.zeros(len(clean) - len(out), dtype=out.dtype)])


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant SDR (dB) of ``estimate`` vs ``reference`` (1-D, same length), Le Roux et al. 2019.

    Both signals are made zero-mean; ``target = a * s`` with ``a = <s_hat, s> / ||s||^2`` and
    ``SI-SDR = 10 log10(||target||^2 / ||s_hat - target||^2)``, clipped to :data:`SI_SDR_RANGE`.
    Raises ``ValueError`` for different lengths or a reference without energy.
    """
    s_hat = np.asarray(estimate, dtype=np.float64).ravel()
    s = np.asarray(reference, dtype=np.float64).ravel()
    if s_hat.shape != s.shape:
        raise ValueError(f"si_sdr: estimate has {s_hat.size} samples, reference {s.size}")
    s_hat, s = s_hat - s_hat.mean(), s - s.mean()
    ref_energy = float(np.dot(s, s))
    if ref_energy <= 0.0:
        raise ValueError("si_sdr: the reference has no energy (silent after removing its mean)")
    target = (np.dot(s_hat, s) / ref_energy) * s
    t, e = float(np.dot(target, target)), float(np.sum((s_hat - target) ** 2))
    lo, hi = SI_SDR_RANGE
    if e == 0.0:
        return hi if t > 0.0 else lo  # exact (scaled) copy / silent estimate
    if t == 0.0:
        return lo
    return min(hi, max(lo, 10.0 * math.log10(t / e)))


def pesq_wb(clean: np.ndarray, out: np.ndarray) -> float:
    """Wideband PESQ MOS-LQO of ``out`` vs ``clean`` (16 kHz, same length); raises what ``pesq`` raises."""
    from pesq import pesq

    return float(pesq(SR, clean, out, "wb"))


def stoi(clean: np.ndarray, out: np.ndarray) -> float:
    """STOI of ``out`` vs ``clean`` (16 kHz, same length); ``ValueError`` where pystoi has < 30 speech frames."""
    from pystoi import stoi as _stoi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = float(_stoi(clean, out, SR, extended=False))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        raise ValueError("stoi: fewer than 30 STFT frames of speech after removing silent frames (too short or silent)")
    return d


def _si_sdr(clean: np.ndarray, out: np.ndarray) -> float:
    return si_sdr(out, clean)


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"pesq": pesq_wb, "stoi": stoi, "si_sdr": _si_sdr}
"""Metric name -> ``fn(clean, output) -> raw value`` on equal-length 16 kHz float arrays."""


# ------------------------------------------------------------------------------- one pair (worker side)
def _load() -> None:
    """Worker initialiser: import the metric libraries once."""
    import pesq  # noqa: F401
    import pystoi  # noqa: F401


def _score_pair(job: tuple[str, Any, Any, str]) -> tuple[float | None, list[str]]:
    """``(raw value | None | nan, notes)`` of one ``(metric, output item, clean item, where)``."""
    metric, out_item, clean_item, where = job
    out, notes = prepare_audio(out_item, where=f"{where} output")
    clean, clean_notes = prepare_audio(clean_item, where=f"{where} clean_audio")
    notes += clean_notes
    if out is None:
        return None, notes
    if clean is None:
        return math.nan, [*notes, f"{where}: the clean reference is not scorable"]
    if len(out) != len(clean):
        notes.append(f"{where}: output has {len(out)} samples, clean {len(clean)}: {'trimmed' if len(out) > len(clean) else 'zero-padded'} to the clean length")
    try:
        value = METRICS[metric](clean, match_length(out, clean))
    except Exception as e:  # noqa: BLE001 - pesq raises several error types (PesqError, ValueError on silence)
        return math.nan, [*notes, f"{where}: {metric} failed ({type(e).__name__}: {e})"]
    if not math.isfinite(value):
        return math.nan, [*notes, f"{where}: {metric} gave {value}"]
    return value, notes


# ------------------------------------------------------------------------------- batch (memoised)
_MEMO: OrderedDict[tuple[str, str, str], float | None] = OrderedDict()


def raw_values(metric: str, audio: Sequence[Any], clean_audio: Sequence[Any]) -> list[float | None]:
    """Raw ``metric`` values (PESQ MOS-LQO, STOI 0-1, SI-SDR dB) per sample; ``None`` / nan as in the module doc."""
    if metric not in METRICS:
        raise ValueError(f"unknown enhancement metric {metric!r}; valid: {', '.join(METRICS)}")
    if len(audio) != len(clean_audio):
        raise ValueError(f"{metric}: {len(audio)} outputs ('audio') for {len(clean_audio)} clean references ('clean_audio')")
    out: list[float | None] = [None] * len(audio)
    keys: list[tuple[str, str, str] | None] = []
    jobs: dict[Any, tuple[list[int], tuple[str, Any, Any, str]]] = {}
    for i, (a, c) in enumerate(zip(audio, clean_audio)):
        if a is None or c is None:
            keys.append(None)
            continue
        ka, kc = content_key(a), content_key(c)
        key = (metric, ka, kc) if ka is not None and kc is not None else None
        keys.append(key)
        if key is not None and key in _MEMO:
            continue
        slot = key if key is not None else ("uncached", i)
        if slot in jobs:
            jobs[slot][0].append(i)
        else:
            jobs[slot] = ([i], (metric, a, c, f"sample {i}"))
    if jobs:
        results = run_pool(("enhancement",), _load, _score_pair, [job for _, job in jobs.values()])
        _log(metric, results, len(audio))
        for (idx, _), (value, _) in zip(jobs.values(), results):
            for i in idx:
                out[i] = value
            if keys[idx[0]] is not None:
                _MEMO[keys[idx[0]]] = value  # type: ignore[index]
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    for i, key in enumerate(keys):
        if key is not None and key in _MEMO:
            out[i] = _MEMO[key]
    return out


def _log(metric: str, results: Sequence[tuple[float | None, list[str]]], n: int) -> None:
    notes = [x for _, ns in results for x in ns]
    for x in notes[:5]:
        log.info("%s: %s", metric, x)
    if len(notes) > 5:
        log.info("%s: %d more audio notes", metric, len(notes) - 5)
    failed = [x for v, ns in results if v is not None and math.isnan(v) for x in ns[-1:]]
    if failed:
        log.warning("%s: %d of %d samples failed (score None, counted in reward/failed); first: %s", metric, len(failed), n, failed[0])
    n_none = sum(v is None for v, _ in results)
    if n_none:
        log.warning("%s: %d of %d outputs not scorable (undecodable, empty, NaN/infinite audio): score None", metric, n_none, n)


# ------------------------------------------------------------------------------- scorers
def pesq_reward(mos: float) -> float:
    lo, hi = PESQ_RANGE
    return min(1.0, max(0.0, (mos - lo) / (hi - lo)))


def stoi_reward(d: float) -> float:
    return min(1.0, max(0.0, d))


def si_sdr_reward(db: float) -> float:
    return 1.0 / (1.0 + math.exp(-db / SI_SDR_SCALE))


def _mean(vals: Sequence[float | None]) -> float:
    ok = [v for v in vals if v is not None and math.isfinite(v)]
    return math.fsum(ok) / len(ok) if ok else math.nan


def _scorer(name: str, reward: Callable[[float], float], corpus_scale: float, description: str) -> Scorer:
    def sample(hyps: list[str], refs: Any = None, *, audio: Sequence[Any], clean_audio: Sequence[Any], **_columns: Any) -> list[float | None]:
        return [None if v is None else (math.nan if math.isnan(v) else reward(v)) for v in raw_values(name, audio, clean_audio)]

    def corpus(hyps: list[str], refs: Any = None, *, audio: Sequence[Any], clean_audio: Sequence[Any]) -> float:
        return corpus_scale * _mean(raw_values(name, audio, clean_audio))

    sample.__name__ = sample.__qualname__ = f"{name}_sample"
    corpus.__name__ = corpus.__qualname__ = f"{name}_corpus"
    return Scorer(name=name, sample=sample, corpus=corpus, columns=("audio", "clean_audio"), references=False,
                  file_columns=("audio", "clean_audio"), description=description)


register(_scorer("pesq", pesq_reward, 1.0,
                 "wideband PESQ (pesq, P.862.2, 16 kHz) of 'audio' vs 'clean_audio'; reward (MOS-LQO - 1.04) / 3.6 "
                 "in [0, 1]; corpus: mean MOS-LQO (1.04-4.64), not 0-100"))
register(_scorer("stoi", stoi_reward, 100.0,
                 "STOI (pystoi, extended=False) of 'audio' vs 'clean_audio'; reward STOI clipped to [0, 1]; "
                 "corpus: 100 * mean STOI (percent)"))
register(_scorer("si_sdr", si_sdr_reward, 1.0,
                 "SI-SDR (Le Roux et al. 2019, arXiv 1811.02508) of 'audio' vs 'clean_audio' in dB, clipped to [-50, 100]; "
                 "reward sigmoid(SI-SDR / 10 dB); corpus: mean SI-SDR in dB"))
