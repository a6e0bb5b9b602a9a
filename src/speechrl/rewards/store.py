"""The optional on-disk reward cache: one sqlite file shared by every process and job that names it.

    store = DiskStore(path)
    store.get(keys) -> {key: value}     # the keys found; a NULL value is a cached "does not apply" (None)
    store.put({key: value})             # INSERT OR REPLACE, one transaction
    store.clear()

Table ``scores(key TEXT PRIMARY KEY, value REAL)``. Many cluster jobs may write the same file at once,
often on a shared filesystem. A cache only saves work, so it must never fail a job:

* **Busy timeout** :data:`BUSY_TIMEOUT_S` (10 s): a writer waits for another's lock instead of failing.
  Writes take the write lock up front (``BEGIN IMMEDIATE``), so two writers never deadlock on a
  read-to-write upgrade (which sqlite reports as "database is locked" at once, without waiting).
* **WAL journal** on a local filesystem only (ext4, xfs, btrfs, tmpfs, ... from ``/proc/mounts``), with
  ``synchronous=NORMAL``: readers do not block the writer and a commit costs one append. WAL keeps its
  index in shared memory, which processes on different hosts cannot share, so on a network filesystem
  (NFS, Lustre, GPFS, BeeGFS, CIFS, ...) or an unknown one the default rollback journal is kept
  (sqlite's documented limit). Env ``SPEECHRL_REWARD_CACHE_WAL`` = ``1`` / ``0`` forces the choice.
  A file already in WAL mode stays in it (sqlite stores the mode in the file).
* **Retry**: an operation that still fails with "database is locked" / "busy" is retried
  :data:`RETRIES` times after a short random back-off.
* **Failure isolation**: any sqlite or OS error left (locked past the retries, a corrupt or unreadable
  file, a read-only directory) is logged as a warning naming the file (the 1st, 10th, 100th, ... failure
  of a process, so a read-only file does not flood the log), and the operation is skipped:
  ``get`` answers "not found" (the samples are scored), ``put`` drops the rows (the scores are still
  returned). A file that cannot be opened at all is skipped for the rest of the process.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger("speechrl")

WAL_ENV = "SPEECHRL_REWARD_CACHE_WAL"
BUSY_TIMEOUT_S = 10.0
RETRIES = 3
LOCAL_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "jfs", "reiserfs",
                               "bcachefs", "tmpfs", "ramfs", "overlay", "apfs", "hfs"})
T = TypeVar("T")
_jitter = random.Random()  # private: back-off jitter must not consume the global (seeded) random state


def filesystem_type(path: str) -> str | None:
    """Type of the filesystem holding ``path`` (longest mount-point match in ``/proc/mounts``); None if unknown."""
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            mounts = [line.split()[1:3] for line in f if len(line.split()) >= 3]
    except OSError:
        return None
    target = os.path.realpath(path)
    best, kind = "", None
    for point, fstype in mounts:
        point = point.replace("\\040", " ")
        if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, fstype
    return kind


def use_wal(path: str) -> bool:
    """WAL for a file in ``path``'s directory: env override, else only on a known local filesystem."""
    forced = os.environ.get(WAL_ENV, "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    return filesystem_type(os.path.dirname(os.path.abspath(path))) in LOCAL_FILESYSTEMS


def _transient(e: Exception) -> bool:
    msg = str(e).lower()
    return isinstance(e, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg)


class DiskStore:
    """One process's connection to the sqlite cache file at ``path`` (see the module docstring)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.broken = False
        self.failures = 0

    # -------------------------------------------------------------- connection
    def _open(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            if use_wal(self.path):
                try:
                    mode = self._retry(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
                except sqlite3.OperationalError as e:   # still locked: keep the file's journal mode
                    if not _transient(e):
                        raise
                    mode = None
                if str(mode).lower() == "wal":
                    conn.execute("PRAGMA synchronous=NORMAL")
            self._retry(lambda: conn.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value REAL)"))
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None and not self.broken:
            try:
                self._conn = self._open()
            except (sqlite3.Error, OSError) as e:
                self.broken = True
                log.warning(f"reward cache {self.path}: cannot open ({type(e).__name__}: {e}); "
                            "continuing without the on-disk cache in this process")
        return self._conn

    @staticmethod
    def _retry(op: Callable[[], T]) -> T:
        for attempt in range(RETRIES + 1):
            try:
                return op()
            except sqlite3.OperationalError as e:
                if not _transient(e) or attempt == RETRIES:
                    raise
                time.sleep(_jitter.uniform(0.01, 0.05) * 2 ** attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self, what: str, op: Callable[[sqlite3.Connection], T], default: T) -> T:
        """``op(conn)`` under the lock with retries; ``default`` (and a warning) on any sqlite / OS error."""
        with self._lock:
            conn = self._connection()
            if conn is None:
                return default
            try:
                return self._retry(lambda: op(conn))
            except (sqlite3.Error, OSError) as e:
                self.failures += 1
                if str(self.failures).strip("0") == "1":   # the 1st, 10th, 100th, ... failure: no log flood
                    log.warning(f"reward cache {self.path}: {what} failed ({type(e).__name__}: {e}; failure "
                                f"{self.failures} in this process); continuing without it (scores are unaffected)")
                return default

    # -------------------------------------------------------------- operations
    def get(self, keys: list[str]) -> dict[str, float | None]:
        """The stored values of ``keys`` that are present (chunks of 500 keys per query)."""

        def op(conn: sqlite3.Connection) -> dict[str, float | None]:
            found: dict[str, float | None] = {}
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                found.update(conn.execute(f"SELECT key, value FROM scores WHERE key IN ({','.join('?' * len(chunk))})",
                                          chunk).fetchall())
            return found

        return self._run("read", op, {}) if keys else {}

    def put(self, items: dict[str, float | None]) -> None:
        """Store ``items`` in one write transaction (the write lock taken up front)."""
        rows = list(items.items())

        def op(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR REPLACE INTO scores (key, value) VALUES (?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        if rows:
            self._run("write", op, None)

    def clear(self) -> None:
        """Delete every row."""
        self._run("clear", lambda conn: conn.execute("DELETE FROM scores"), None)
