"""The on-disk reward cache under concurrent writers, and its failure isolation: a cache problem never fails a job."""

from __future__ import annotations

import logging
import multiprocessing as mp
import sqlite3
import threading
import time
import traceback
from collections.abc import Iterator

import pytest

from speechrl.rewards import Scorer, score_samples
from speechrl.rewards import cache as C
from speechrl.rewards import store as S
from speechrl.rewards.cache import cached_sample, sample_key

N_KEYS, N_PROCS, STEPS, BATCH = 400, 4, 150, 4


def value(hyp: str) -> float | None:
    """The deterministic score of ``hyp`` = "h<k>": k / 64, or None ("does not apply") for k % 13 == 0."""
    k = int(hyp[1:])
    return None if k % 13 == 0 else k / 64


KEYED = Scorer("t_store", lambda hyps, refs, **_: [value(h) for h in hyps])


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(C.CACHE_ENV, raising=False)
    monkeypatch.delenv(S.WAL_ENV, raising=False)
    C.clear_cache()
    yield
    C.clear_cache()
    C._disk.clear()


def _worker(w: int, barrier, queue) -> None:
    """STEPS rounds of: score BATCH overlapping keys through the cache (disk read, write of the misses), write
    the same keys again directly, read them back from disk. Reports (worker, traceback or None, mismatches)."""
    try:
        C.MEMORY_SIZE = 0              # every read and write goes to the sqlite file
        barrier.wait()
        bad = []
        for i in range(STEPS):
            hyps = [f"h{(i * 7 + w * 3 + j) % N_KEYS}" for j in range(BATCH)]
            out = cached_sample(KEYED, hyps, [["r"]] * BATCH)
            bad += [(h, o) for h, o in zip(hyps, out) if o != value(h)]
            keys = [sample_key(KEYED, h, ["r"], {}) for h in hyps]
            C._put({k: value(h) for k, h in zip(keys, hyps)})
            got = C._get(keys)
            bad += [(h, got.get(k, "missing")) for h, k in zip(hyps, keys) if got.get(k, "missing") != value(h)]
        queue.put((w, None, bad))
    except BaseException:  # noqa: BLE001 - reported to the parent
        queue.put((w, traceback.format_exc(), []))


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs the fork start method")
@pytest.mark.parametrize("wal", ["1", "0"], ids=["wal", "rollback-journal"])
def test_concurrent_writers_share_one_cache_file(tmp_path, monkeypatch: pytest.MonkeyPatch, caplog, wal) -> None:
    """4 processes x 150 rounds (600 cached scores, 600 direct writes, 600 disk reads each) on 400 overlapping
    keys: no exception, no warning, every value read back is its key's value, one row per key. ``wal=0`` is the
    journal used on network filesystems."""
    path = tmp_path / "rewards.sqlite"
    monkeypatch.setenv(C.CACHE_ENV, str(path))
    monkeypatch.setenv(S.WAL_ENV, wal)
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(N_PROCS), ctx.Queue()
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="speechrl"):
        procs = [ctx.Process(target=_worker, args=(w, barrier, queue)) for w in range(N_PROCS)]
        for p in procs:
            p.start()
        results = [queue.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=10)
    elapsed = time.perf_counter() - start
    for w, err, bad in results:
        assert err is None, f"worker {w} raised:\n{err}"
        assert bad == [], f"worker {w} read wrong values (hyp, value): {bad[:5]}"
    assert all(p.exitcode == 0 for p in procs)
    with sqlite3.connect(path) as conn:
        rows = dict(conn.execute("SELECT key, value FROM scores").fetchall())
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    hyps = [f"h{k}" for k in range(N_KEYS)]          # every key is used by some worker
    assert rows == {sample_key(KEYED, h, ["r"], {}): value(h) for h in hyps}
    assert mode == ("wal" if wal == "1" else "delete")
    assert elapsed < 30, f"{elapsed:.1f} s"           # measured ~0.2 s (WAL), ~1 s (rollback journal) on 2 cores


def test_a_corrupt_cache_file_is_a_warning_not_a_failure(tmp_path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    path = tmp_path / "rewards.sqlite"
    path.write_bytes(b"this is not an sqlite database, just garbage " * 100)
    monkeypatch.setenv(C.CACHE_ENV, str(path))
    with caplog.at_level(logging.WARNING, logger="speechrl"):
        assert cached_sample(KEYED, ["h1", "h13", "h2"], [["r"]] * 3) == [1 / 64, None, 2 / 64]
        C.clear_cache()
        assert cached_sample(KEYED, ["h1"], [["r"]]) == [1 / 64]   # scored again: nothing was cached on disk
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0] and "cannot open" in warnings[0]
    assert "not a database" in warnings[0]


def test_a_cache_directory_that_cannot_be_created_is_a_warning(tmp_path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv(C.CACHE_ENV, str(tmp_path / "file" / "sub" / "rewards.sqlite"))   # a file where a dir should be
    with caplog.at_level(logging.WARNING, logger="speechrl"):
        assert cached_sample(KEYED, ["h3"], [["r"]]) == [3 / 64]
    assert "cannot open" in caplog.text


def test_a_lock_held_past_the_timeout_drops_the_write_and_returns_the_score(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                                                           caplog) -> None:
    path = tmp_path / "rewards.sqlite"
    monkeypatch.setenv(C.CACHE_ENV, str(path))
    monkeypatch.setattr(S, "BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(S, "RETRIES", 1)
    assert cached_sample(KEYED, ["h1"], [["r"]]) == [1 / 64]          # creates the file and table
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")                                 # another job holds the write lock
    try:
        with caplog.at_level(logging.WARNING, logger="speechrl"):
            assert cached_sample(KEYED, ["h2", "h13"], [["r"]] * 2) == [2 / 64, None]
            monkeypatch.setattr(S, "RETRIES", 0)
            for k in range(30, 39):                                  # 9 more failed writes: only the 10th is logged
                assert cached_sample(KEYED, [f"h{k}"], [["r"]]) == [k / 64]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2 and all("write failed" in w and "database is locked" in w for w in warnings)
        assert "failure 1 in" in warnings[0] and "failure 10 in" in warnings[1]
    finally:
        other.execute("ROLLBACK")
        other.close()
    C.clear_cache()
    assert cached_sample(KEYED, ["h2"], [["r"]]) == [2 / 64]          # lock gone: works again, and is stored now
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 2   # h1 and h2


def test_a_lock_released_within_the_retries_loses_nothing(tmp_path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    path = tmp_path / "rewards.sqlite"
    monkeypatch.setenv(C.CACHE_ENV, str(path))
    monkeypatch.setattr(S, "BUSY_TIMEOUT_S", 0.1)
    monkeypatch.setattr(S, "RETRIES", 3)                # >= 4 x 0.1 s of busy waits plus back-offs
    cached_sample(KEYED, ["h1"], [["r"]])
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    timer = threading.Timer(0.15, lambda: (other.execute("ROLLBACK"), other.close()))
    timer.start()
    with caplog.at_level(logging.WARNING, logger="speechrl"):
        assert cached_sample(KEYED, ["h4"], [["r"]]) == [4 / 64]
    timer.join()
    assert "reward cache" not in caplog.text
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 2


def test_wal_only_on_a_local_filesystem(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert S.filesystem_type("/proc/self") == "proc"
    local = S.filesystem_type(str(tmp_path))
    assert S.use_wal(str(tmp_path / "x.sqlite")) == (local in S.LOCAL_FILESYSTEMS)
    assert not S.use_wal("/proc/self/x.sqlite") and "nfs" not in S.LOCAL_FILESYSTEMS
    monkeypatch.setenv(S.WAL_ENV, "0")
    assert not S.use_wal(str(tmp_path / "x.sqlite"))
    monkeypatch.setenv(S.WAL_ENV, "1")
    assert S.use_wal("/proc/self/x.sqlite")


def test_disk_cache_through_the_public_api(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from speechrl.rewards import REWARDS, register

    register(KEYED)
    try:
        monkeypatch.setenv(C.CACHE_ENV, str(tmp_path / "r.sqlite"))
        assert score_samples("t_store", ["h5", "h26"], [["r"]] * 2) == [5 / 64, None]
        C.clear_cache()
        assert C._get([sample_key(KEYED, "h26", ["r"], {})]) == {sample_key(KEYED, "h26", ["r"], {}): None}
    finally:
        REWARDS._entries.pop("t_store")
