"""Audio-quality scorers: DNSMOS (``dnsmos_ovrl``, ``dnsmos_sig``, ``dnsmos_bak``, ``dnsmos_p808``)
and a UTMOS plug-in (``utmos``), plus the audio helpers shared with :mod:`speechrl.rewards.asr`.

Input: the column ``audio=`` holds one item per sample: a file path, a float array (taken as 16 kHz),
an ``(array, sample_rate)`` pair or a ``{"array": ..., "sampling_rate": ...}`` dict (the
``datasets`` Audio format). ``hyps`` are ignored (they may be empty strings); ``refs`` are only
validated by the common entry points. Every item goes through :func:`prepare_audio`:

* multi-channel audio is downmixed (mean over channels) and audio at another rate is resampled
  to 16 kHz (soxr, :func:`speechrl.audio.io.resample`); both are logged as a note, never an error;
* samples outside [-1, 1] (clipped / float overflow) are clipped to [-1, 1], with a note;
* audio with NaN / infinite samples, or with no samples at all, scores ``None`` for that sample
  (the count is logged); a missing or undecodable file raises :class:`AudioError` naming it.

DNSMOS: Microsoft's DNSMOS P.835 (SIG, BAK, OVRL) and P.808 ONNX models as shipped by the
``speechmos`` package (no download), run by its reference code (clips under 9.01 s are tiled,
longer ones scored in 9.01 s windows with a 1 s hop and averaged). The reward is
``(MOS - 1) / 4`` clipped to [0, 1]. ``dnsmos_mos(audio)`` gives the raw MOS values (1-5 scale).
The corpus value (``score_corpus``, metrics.json) is the mean MOS on the 1-5 scale, as papers report
DNSMOS (e.g. OVRL 3.43 -> 3.49 in SE-GSPO, "Post-Training Speech Enhancement LMs with Perceptual
Rewards", 2026), not a 0-100 value (:func:`corpus_mos`).

Workers: scoring runs in a ``ProcessPoolExecutor`` (spawn) of ``SPEECHRL_AUDIO_WORKERS`` processes
(default 2; ``0`` = in this process), each loading the models once in its initializer and running
ONNX Runtime with one thread. The first DNSMOS call in a fresh environment compiles librosa's numba
kernels (~20 s, cached on disk afterwards). Results are memoised per process on a hash of the audio,
so several DNSMOS sub-scores of one batch (e.g. in ``combine``) run the model once.

UTMOS: no package ships UTMOS weights offline. ``SPEECHRL_UTMOS_CHECKPOINT`` names a TorchScript
file mapping a ``(1, samples)`` 16 kHz float tensor to a MOS (1-5); the reward is
``(MOS - 1) / 4`` clipped to [0, 1]. Without it, calling ``utmos`` raises a RuntimeError saying so.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import logging
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from speechrl.audio.io import AudioError, read_file, resample
from speechrl.rewards.base import Scorer, register

log = logging.getLogger("speechrl.rewards.audio")

SR = 16000
WORKERS_ENV = "SPEECHRL_AUDIO_WORKERS"
UTMOS_ENV = "SPEECHRL_UTMOS_CHECKPOINT"
DNSMOS_KEYS = {"ovrl": "ovrl_mos", "sig": "sig_mos", "bak": "bak_mos", "p808": "p808_mos"}
_CACHE_SIZE = 4096


# ------------------------------------------------------------------------------- loading
def prepare_audio(item: Any, where: str = "") -> tuple[np.ndarray | None, list[str]]:
    """Turn one ``audio=`` item into a 16 kHz mono float32 waveform in [-1, 1].

    Returns ``(wave, notes)``: ``wave`` is ``None`` for audio that cannot be scored (NaN /
    infinite or empty); ``notes`` lists what was done (downmix, resample, clip, why ``None``).
    Raises :class:`AudioError` for a missing or undecodable file or an unusable item type.
    """
    notes: list[str] = []
    sr = SR
    if item is None:  # a model output with no decodable audio (speechrl.models.codec_lm): not scorable
        return None, ["no audio (the output decoded to nothing)"]
    if isinstance(item, (str, Path)):
        where = f"{item}" + (f" ({where})" if where else "")
        wav, sr = read_file(item, where)
    elif isinstance(item, dict) and "array" in item:
        wav, sr = np.asarray(item["array"], dtype=np.float32), int(item.get("sampling_rate", SR))
    elif isinstance(item, tuple) and len(item) == 2 and np.isscalar(item[1]):
        wav, sr = np.asarray(item[0], dtype=np.float32), int(item[1])
    elif isinstance(item, (np.ndarray, list)) or hasattr(item, "numpy"):
        wav = np.asarray(item.numpy() if hasattr(item, "numpy") else item, dtype=np.float32)
    else:
        raise AudioError(f"{where or 'audio'}: expected a file path, a float array, (array, rate) or {{'array', 'sampling_rate'}}, got {type(item).__name__}")
    where = where or "audio"
    if wav.ndim == 2:
        ch_axis = 1 if wav.shape[1] <= wav.shape[0] else 0  # (samples, channels) or (channels, samples)
        if wav.shape[ch_axis] > 1:
            notes.append(f"{where}: {wav.shape[ch_axis]} channels downmixed to mono")
        wav = wav.mean(axis=ch_axis)
    elif wav.ndim != 1:
        raise AudioError(f"{where}: audio must be 1-D (samples) or 2-D (samples x channels), got shape {wav.shape}")
    if wav.size == 0:
        notes.append(f"{where}: empty audio (0 samples), score None")
        return None, notes
    if not np.isfinite(wav).all():
        notes.append(f"{where}: NaN or infinite samples, score None")
        return None, notes
    if sr != SR:
        notes.append(f"{where}: resampled {sr} Hz -> {SR} Hz")
        wav = resample(wav, sr, SR)
    peak = float(np.abs(wav).max())
    if peak > 1.0:
        notes.append(f"{where}: {int((np.abs(wav) > 1).sum())} samples outside [-1, 1] (peak {peak:.3g}) clipped")
        wav = np.clip(wav, -1.0, 1.0)
    return np.ascontiguousarray(wav, dtype=np.float32), notes


def audio_key(item: Any) -> str:
    """A cache key for one ``audio=`` item: path + size + mtime for files, a hash of the data otherwise."""
    if isinstance(item, (str, Path)):
        try:
            st = os.stat(item)
            return f"f:{os.path.abspath(item)}:{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            return f"f:{item}:missing"
    if isinstance(item, dict) and "array" in item:
        arr, sr = item["array"], item.get("sampling_rate", SR)
    elif isinstance(item, tuple) and len(item) == 2 and np.isscalar(item[1]):
        arr, sr = item
    else:
        arr, sr = item, SR
    a = np.ascontiguousarray(np.asarray(arr.numpy() if hasattr(arr, "numpy") else arr, dtype=np.float32))
    return f"a:{sr}:{a.shape}:{hashlib.sha1(a.tobytes()).hexdigest()}"


# ------------------------------------------------------------------------------- worker pools
def n_workers() -> int:
    """Worker processes for audio scoring (``SPEECHRL_AUDIO_WORKERS``, default 2; 0 = in-process)."""
    raw = os.environ.get(WORKERS_ENV, "2")
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{WORKERS_ENV}={raw!r} is not an integer (worker processes for audio scorers; 0 = in-process)") from None
    if n < 0:
        raise ValueError(f"{WORKERS_ENV}={n} must be >= 0")
    return n


_POOLS: dict[tuple, Executor] = {}


def _init_worker(init: Callable[..., None], args: tuple) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    init(*args)


def run_pool(kind: tuple, init: Callable[..., None], fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """``[fn(x) for x in items]`` in the pool for ``kind`` (``init(*kind[1:])`` ran once per worker).

    ``kind`` = ``(name, *init_args)``; a pool is kept per distinct ``kind`` and worker count.
    With 0 workers ``init`` runs once in this process and ``fn`` is called directly.
    """
    n = n_workers()
    if n == 0:  # init functions are idempotent (each keeps what it loaded, and for which arguments)
        init(*kind[1:])
        return [fn(x) for x in items]
    key = (*kind, n)
    pool = _POOLS.get(key)
    if pool is None:
        import multiprocessing as mp

        pool = ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(init, kind[1:]))
        _POOLS[key] = pool
    chunk = max(1, len(items) // (4 * n))
    return list(pool.map(fn, items, chunksize=chunk))


def shutdown_pools() -> None:
    """Stop every audio worker pool (they restart on the next call)."""
    for pool in _POOLS.values():
        pool.shutdown(wait=True, cancel_futures=True)
    _POOLS.clear()


atexit.register(shutdown_pools)


def log_notes(name: str, results: Sequence[tuple[Any, list[str]]]) -> None:
    """Log the notes of a batch (first few in full, then a count) and how many samples got ``None``."""
    notes = [n for _, ns in results for n in ns]
    for n in notes[:5]:
        log.info("%s: %s", name, n)
    if len(notes) > 5:
        log.info("%s: %d more audio notes", name, len(notes) - 5)
    n_none = sum(r is None for r, _ in results)
    if n_none:
        log.warning("%s: %d of %d samples not scorable (NaN/infinite/empty audio): score None", name, n_none, len(results))


# ------------------------------------------------------------------------------- DNSMOS
_DNSMOS: Any = None


def _load_dnsmos() -> None:
    """Load the DNSMOS P.835 + P.808 ONNX models from the speechmos package (single-threaded ORT)."""
    global _DNSMOS
    if _DNSMOS is not None:
        return
    import onnxruntime as ort
    from speechmos import dnsmos as sm

    root = Path(sm.__file__).parent / "dnsmos_models"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1

    class _Dnsmos(sm.DNSMOS):
        def __init__(self) -> None:  # speechmos' own __init__ uses ORT's default (all-core) threading
            self.primary_model_path = str(root / "sig_bak_ovr.onnx")
            self.onnx_sess = ort.InferenceSession(self.primary_model_path, opts, providers=["CPUExecutionProvider"])
            self.p808_onnx_sess = ort.InferenceSession(str(root / "model_v8.onnx"), opts, providers=["CPUExecutionProvider"])

    _DNSMOS = _Dnsmos()


def _dnsmos_one(item: Any) -> tuple[dict[str, float] | None, list[str]]:
    _load_dnsmos()
    wav, notes = prepare_audio(item)
    if wav is None:
        return None, notes
    out = _DNSMOS(wav, SR, False)
    mos = {k: float(out[v]) for k, v in DNSMOS_KEYS.items()}
    if not all(math.isfinite(v) for v in mos.values()):
        return None, [*notes, "DNSMOS gave a non-finite value, score None"]
    return mos, notes


_MOS_CACHE: OrderedDict[str, dict[str, float] | None] = OrderedDict()


def dnsmos_mos(audio: Sequence[Any]) -> list[dict[str, float] | None]:
    """Raw DNSMOS values per item: ``{"ovrl", "sig", "bak", "p808"}`` on the 1-5 MOS scale, or ``None``."""
    keys = [audio_key(a) for a in audio]
    todo = {k: a for k, a in zip(keys, audio) if k not in _MOS_CACHE}
    if todo:
        results = run_pool(("dnsmos",), _load_dnsmos, _dnsmos_one, list(todo.values()))
        log_notes("dnsmos", results)
        for k, (mos, _) in zip(todo, results):
            _MOS_CACHE[k] = mos
        while len(_MOS_CACHE) > _CACHE_SIZE:
            _MOS_CACHE.popitem(last=False)
    return [_MOS_CACHE[k] for k in keys]


def mos_to_reward(mos: float | None) -> float | None:
    """``(MOS - 1) / 4`` clipped to [0, 1] (``None`` stays ``None``)."""
    return None if mos is None else min(1.0, max(0.0, (mos - 1.0) / 4.0))


def corpus_mos(name: str, audio: Sequence[Any]) -> float:
    """Mean MOS (1-5 scale) of a DNSMOS sub-score (``"dnsmos_ovrl"``...) over the scorable items; nan if none."""
    sub = name.removeprefix("dnsmos_")
    if sub not in DNSMOS_KEYS:
        raise ValueError(f"unknown DNSMOS sub-score {name!r}; valid: {', '.join('dnsmos_' + k for k in DNSMOS_KEYS)}")
    vals = [m[sub] for m in dnsmos_mos(audio) if m is not None]
    return math.fsum(vals) / len(vals) if vals else math.nan


def _dnsmos_scorer(sub: str, what: str) -> Scorer:
    def sample(hyps: list[str], refs: Any = None, *, audio: Sequence[Any], **_columns: Any) -> list[float | None]:
        return [mos_to_reward(None if m is None else m[sub]) for m in dnsmos_mos(audio)]

    def corpus(hyps: list[str], refs: Any = None, *, audio: Sequence[Any]) -> float:
        return corpus_mos(f"dnsmos_{sub}", audio)

    sample.__name__ = f"dnsmos_{sub}"
    return Scorer(
        references=False,
        name=f"dnsmos_{sub}",
        sample=sample,
        corpus=corpus,
        columns=("audio",),
        file_columns=("audio",),
        description=(
            f"DNSMOS {what} (speechmos ONNX models) of the 'audio' column; reward (MOS-1)/4 in [0, 1]; "
            "corpus value: the mean MOS on the 1-5 scale (as papers report DNSMOS), not 0-100"
        ),
    )


for _sub, _what in [("ovrl", "P.835 overall quality"), ("sig", "P.835 speech signal quality"), ("bak", "P.835 background noise"), ("p808", "P.808 overall MOS")]:
    register(_dnsmos_scorer(_sub, _what))


# ------------------------------------------------------------------------------- UTMOS plug-in
@functools.lru_cache(maxsize=4)
def _utmos_model(path: str) -> Any:
    import torch

    p = Path(path)
    if not p.is_file():
        raise RuntimeError(f"{UTMOS_ENV}={path}: no such file (expected a TorchScript checkpoint mapping a (1, samples) 16 kHz float tensor to a MOS)")
    try:
        model = torch.jit.load(str(p), map_location="cpu")
    except Exception as e:
        raise RuntimeError(f"{UTMOS_ENV}={path}: not a loadable TorchScript file ({e}); export one with torch.jit.script/trace(model).save(path)") from None
    return model.eval()


def _utmos(hyps: list[str], refs: Any = None, *, audio: Sequence[Any], **_columns: Any) -> list[float | None]:
    path = os.environ.get(UTMOS_ENV, "").strip()
    if not path:
        raise RuntimeError(
            "utmos: no UTMOS weights ship offline (the utmos/utmosv2 packages download them at run time). "
            f"Provide a checkpoint: set {UTMOS_ENV}=/path/to/utmos.pt, a TorchScript file taking a (1, samples) "
            "16 kHz float tensor in [-1, 1] and returning the MOS (1-5), e.g. exported on a machine with network "
            "by torch.jit.trace(model, torch.zeros(1, 16000)).save('utmos.pt')."
        )
    import torch

    model = _utmos_model(path)
    out: list[float | None] = []
    results = []
    for i, item in enumerate(audio):
        wav, notes = prepare_audio(item, where=f"sample {i}")
        results.append((wav, notes))
        if wav is None:
            out.append(None)
            continue
        with torch.no_grad():
            mos = float(torch.as_tensor(model(torch.from_numpy(wav)[None])).reshape(-1)[0])
        out.append(mos_to_reward(mos) if math.isfinite(mos) else None)
    log_notes("utmos", results)
    return out


register(
    Scorer(
        references=False,
        name="utmos",
        sample=_utmos,
        columns=("audio",),
        file_columns=("audio",),
        settings=(UTMOS_ENV,),
        description=f"UTMOS plug-in: a user-provided TorchScript checkpoint ({UTMOS_ENV}) scores the 'audio' column; reward (MOS-1)/4 in [0, 1]",
    )
)
