"""Reward caching and failure isolation: the one path every scorer call goes through.

    cached_sample(scorer, hyps, refs, **columns) -> list[float | None]

* **Cache key**: SHA-1 of (scorer name, scorer function ``module.qualname``, the values of the
  environment variables in ``scorer.settings`` (model / back-end choice), hypothesis, the sample's
  references, and the sample's values of the columns the scorer uses: ``scorer.columns`` plus
  ``scorer.optional_columns`` when given). A path in one of ``scorer.file_columns`` (audio) stands
  for the file's content: its bytes are hashed (memoised per path, size and mtime), so a rewritten
  file is scored again; a path that cannot be read is not cached. Strings, numbers, ``None``, lists/tuples/dicts of them,
  numpy arrays and torch tensors (dtype + shape + bytes) are hashable; a sample with any other column
  value is simply not cached. Scorers with ``cacheable=False`` are never cached.
* **In-process LRU** of :data:`MEMORY_SIZE` entries (env ``SPEECHRL_REWARD_CACHE_SIZE``, default
  100 000; 0 disables the cache).
* **On-disk cache** (optional): env ``SPEECHRL_REWARD_CACHE`` = path of a sqlite file shared by
  processes and jobs (:mod:`speechrl.rewards.store`: table ``scores(key, value)``, a ``NULL`` value is
  a cached "does not apply"; busy timeout, WAL on local filesystems, retries). Delete the file after
  changing a scorer's implementation: the key names the scorer, not its code. A cache problem (locked
  past the retries, corrupt file, read-only directory) is a logged warning, never a failed job: the
  samples are scored and their scores returned as without a cache.
* **Failures**: the misses are scored as one batch; if that raises (or returns a wrong number of
  scores), they are scored one sample at a time and each sample that raises becomes ``None``. Such
  ``None``\\ s, and NaN scores, are counted as failed, logged, and never cached; a scorer never
  turns a failure into a silent 0.
* **Counters**: :data:`STATS` accumulates ``reward/cache_hits``, ``reward/cache_misses`` and
  ``reward/failed`` for the process; :func:`pop_stats` returns and resets them (for a step's
  metrics); ``cached_sample(..., stats=d)`` also adds this call's counts to ``d``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from speechrl.rewards.scorer import Scorer
from speechrl.rewards.store import DiskStore

log = logging.getLogger("speechrl")

CACHE_ENV = "SPEECHRL_REWARD_CACHE"
SIZE_ENV = "SPEECHRL_REWARD_CACHE_SIZE"
MEMORY_SIZE = int(os.environ.get(SIZE_ENV, "100000"))

HITS, MISSES, FAILED = "reward/cache_hits", "reward/cache_misses", "reward/failed"
STATS: dict[str, float] = {HITS: 0.0, MISSES: 0.0, FAILED: 0.0}

_MISSING = object()
_lock = threading.Lock()
_memory: OrderedDict[str, float | None] = OrderedDict()
_disk: dict[str, DiskStore] = {}  # {"store": this process's store}
_inherited: list[DiskStore] = []  # stores a forked child inherited from its parent (kept open, unused)


class _Unhashable(Exception):
    pass


# ------------------------------------------------------------------------------- keys
def _feed(h: Any, v: Any) -> None:
    """Feed a type-tagged encoding of ``v`` into the hash ``h``; raise ``_Unhashable`` if unknown."""
    if v is None:
        h.update(b"N")
    elif isinstance(v, bool):
        h.update(b"B1" if v else b"B0")
    elif isinstance(v, int):
        h.update(b"I" + str(v).encode() + b";")
    elif isinstance(v, float):
        h.update(b"F" + struct.pack("<d", v))
    elif isinstance(v, str):
        b = v.encode("utf-8", "surrogatepass")
        h.update(b"S" + str(len(b)).encode() + b":" + b)
    elif isinstance(v, bytes):
        h.update(b"Y" + str(len(v)).encode() + b":" + v)
    elif isinstance(v, (list, tuple)):
        h.update(b"L" + str(len(v)).encode() + b"[")
        for x in v:
            _feed(h, x)
        h.update(b"]")
    elif isinstance(v, dict):
        h.update(b"D" + str(len(v)).encode() + b"{")
        for k in sorted(v, key=repr):
            _feed(h, k)
            _feed(h, v[k])
        h.update(b"}")
    else:
        arr = _as_array(v)
        if arr is None:
            raise _Unhashable(type(v).__name__)
        import numpy as np

        arr = np.ascontiguousarray(arr)
        h.update(b"A" + str(arr.dtype).encode() + str(arr.shape).encode() + b":")
        h.update(arr.tobytes())


def _as_array(v: Any) -> Any:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return None
    if isinstance(v, (np.ndarray, np.generic)):
        return np.asarray(v)
    if type(v).__module__.startswith("torch") and hasattr(v, "detach"):
        return v.detach().cpu().numpy()
    return None


def scorer_fingerprint(scorer: Scorer) -> str:
    fn = scorer.sample
    env = ";".join(f"{k}={os.environ.get(k, '')}" for k in getattr(scorer, "settings", ()))
    return f"{scorer.name}|{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__name__)}|{env}"


_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-1 of a file's bytes, memoised per (absolute path, size, mtime_ns); raises ``OSError``."""
    p = os.path.abspath(os.fspath(path))
    st = os.stat(p)
    key = (p, st.st_size, st.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        h = hashlib.sha1()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _FILE_DIGESTS[key] = h.hexdigest()
    return _FILE_DIGESTS[key]


def _content(value: Any) -> Any:
    """A file-column value as its content digest (paths) or as is (arrays, dicts); ``_Unhashable`` if unreadable."""
    if isinstance(value, (str, os.PathLike)):
        try:
            return ("file-sha1", file_digest(value))
        except OSError as e:
            raise _Unhashable(str(e)) from None
    return value


def content_key(value: Any) -> str | None:
    """SHA-1 of one value as the cache sees it (a path stands for its file's bytes); ``None`` if unhashable."""
    h = hashlib.sha1()
    try:
        _feed(h, _content(value))
    except _Unhashable:
        return None
    return h.hexdigest()


def sample_key(scorer: Scorer, hyp: str, refs: Sequence[str], columns: dict[str, Any]) -> str | None:
    """The cache key of one sample (``columns`` = this sample's values by name), ``None`` if uncacheable."""
    h = hashlib.sha1()
    files = getattr(scorer, "file_columns", ())
    try:
        _feed(h, scorer_fingerprint(scorer))
        _feed(h, hyp)
        _feed(h, list(refs))
        for name in sorted(columns):
            _feed(h, name)
            _feed(h, _content(columns[name]) if name in files else columns[name])
    except _Unhashable:
        return None
    return h.hexdigest()


def _key_columns(scorer: Scorer, columns: dict[str, Any]) -> list[str]:
    return [c for c in (*scorer.columns, *getattr(scorer, "optional_columns", ())) if c in columns]


# ------------------------------------------------------------------------------- storage
def _store() -> DiskStore | None:
    """This process's :class:`DiskStore` for the file named by ``SPEECHRL_REWARD_CACHE`` (None if unset).
    A forked child opens its own connection; the parent's is kept (never closed there: sqlite forbids
    using a connection across ``fork``)."""
    path = os.environ.get(CACHE_ENV)
    if not path:
        return None
    store = _disk.get("store")
    if store is None or store.path != path or store.pid != os.getpid():
        if store is not None and store.pid != os.getpid():
            _inherited.append(store)
        store = _disk["store"] = DiskStore(path)
    return store


def _get(keys: list[str]) -> dict[str, float | None]:
    found: dict[str, float | None] = {}
    with _lock:
        for k in keys:
            v = _memory.get(k, _MISSING)
            if v is not _MISSING:
                _memory.move_to_end(k)
                found[k] = v  # type: ignore[assignment]
    rest = [k for k in keys if k not in found]
    store = _store() if rest else None
    if store is not None:
        on_disk = store.get(rest)
        found.update(on_disk)
        _put_memory(on_disk)
    return found


def _put_memory(items: dict[str, float | None]) -> None:
    if MEMORY_SIZE <= 0:
        return
    with _lock:
        for k, v in items.items():
            _memory[k] = v
            _memory.move_to_end(k)
        while len(_memory) > MEMORY_SIZE:
            _memory.popitem(last=False)


def _put(items: dict[str, float | None]) -> None:
    if not items:
        return
    _put_memory(items)
    if (store := _store()) is not None:
        store.put(items)


def clear_cache(disk: bool = False) -> None:
    """Empty the in-process cache (and, with ``disk=True``, the sqlite file's table)."""
    with _lock:
        _memory.clear()
    if disk and (store := _store()) is not None:
        store.clear()


def memory_items() -> list[list[Any]]:
    """The in-process cache as ``[[key, score], ...]`` in LRU order (a checkpoint saves it, so a resumed job
    counts the same cache hits as an uninterrupted one)."""
    with _lock:
        return [[k, v] for k, v in _memory.items()]


def restore_memory(items: list[list[Any]]) -> None:
    """Replace the in-process cache with :func:`memory_items`' list."""
    with _lock:
        _memory.clear()
    _put_memory({k: v for k, v in items})


def cache_enabled() -> bool:
    return MEMORY_SIZE > 0 or bool(os.environ.get(CACHE_ENV))


def pop_stats() -> dict[str, float]:
    """The process counters since the last call, then reset to 0."""
    with _lock:
        out = dict(STATS)
        for k in STATS:
            STATS[k] = 0.0
    return out


# ------------------------------------------------------------------------------- scoring
def _subset(columns: dict[str, Any], idx: list[int], n: int) -> dict[str, Any]:
    """Columns restricted to the samples ``idx`` (per-sample columns of length ``n``; others as is)."""
    out: dict[str, Any] = {}
    for name, col in columns.items():
        try:
            per_sample = len(col) == n and not isinstance(col, (str, bytes))
        except TypeError:
            per_sample = False
        out[name] = [col[i] for i in idx] if per_sample else col
    return out


def _clean(v: Any) -> tuple[float | None, bool]:
    """(score, failed): NaN and non-numbers are failures."""
    if v is None:
        return None, False
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None, True
    return (None, True) if math.isnan(f) else (f, False)


def safe_sample(scorer: Scorer, hyps: list[str], refs: list[list[str]], columns: dict[str, Any]) -> tuple[list[float | None], list[bool]]:
    """Score a batch; on an exception (or a wrong count), score one sample at a time.

    Returns ``(scores, failed)``; a failed sample's score is ``None``."""
    n = len(hyps)
    try:
        raw = list(scorer.sample(hyps, refs, **columns))
        if len(raw) != n:
            raise ValueError(f"returned {len(raw)} scores for {n} samples")
    except Exception as e:  # noqa: BLE001 - isolate the failing samples below
        if n == 1:
            log.warning(f"reward '{scorer.name}' failed on a sample: {type(e).__name__}: {e}")
            return [None], [True]
        log.warning(f"reward '{scorer.name}' failed on a batch of {n} ({type(e).__name__}: {e}); scoring one by one")
        scores: list[float | None] = []
        failed: list[bool] = []
        for i in range(n):
            s, f = safe_sample(scorer, [hyps[i]], [refs[i]], _subset(columns, [i], n))
            scores.append(s[0])
            failed.append(f[0])
        return scores, failed
    out = [_clean(v) for v in raw]
    return [s for s, _ in out], [f for _, f in out]


def cached_sample(scorer: Scorer, hyps: Sequence[str], refs: list[list[str]], *, stats: dict[str, float] | None = None,
                  **columns: Any) -> list[float | None]:
    """``scorer.sample`` through the cache with failure isolation (see the module docstring).

    ``refs`` must already be validated lists (:func:`~speechrl.rewards.base.check_inputs`)."""
    hyps = list(hyps)
    n = len(hyps)
    use_cache = getattr(scorer, "cacheable", True) and cache_enabled()
    keys: list[str | None] = [None] * n
    found: dict[str, float | None] = {}
    if use_cache and n:
        names = _key_columns(scorer, columns)
        try:
            cols = {c: columns[c] for c in names}
            keys = [sample_key(scorer, h, r, {c: cols[c][i] for c in names}) for i, (h, r) in enumerate(zip(hyps, refs))]
        except (TypeError, IndexError, KeyError):
            keys = [None] * n
        found = _get([k for k in keys if k is not None])
    out: list[float | None] = [None] * n
    miss = []
    for i, k in enumerate(keys):
        if k is not None and k in found:
            out[i] = found[k]
        else:
            miss.append(i)
    n_failed = 0
    if miss:
        if len(miss) == n:
            scores, failed = safe_sample(scorer, hyps, refs, columns)
        else:
            scores, failed = safe_sample(scorer, [hyps[i] for i in miss], [refs[i] for i in miss], _subset(columns, miss, n))
        new: dict[str, float | None] = {}
        for i, s, f in zip(miss, scores, failed):
            out[i] = s
            n_failed += f
            if use_cache and not f and keys[i] is not None:
                new[keys[i]] = s  # type: ignore[index]
        _put(new)
    counts = {HITS: float(n - len(miss)), MISSES: float(len(miss)), FAILED: float(n_failed)}
    with _lock:
        for k, v in counts.items():
            STATS[k] += v
    if stats is not None:
        for k, v in counts.items():
            stats[k] = stats.get(k, 0.0) + v
    return out
