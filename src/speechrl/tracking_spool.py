"""MLflow that never costs training: short timeouts, a local spool while the server is away, replay.

A :class:`Link` is one process's connection to the tracking store. Every MLflow operation is a small
JSON-able dict (an *op*)::

    {"op": "create_run", "run": "local-<hex>", "experiment": NAME, "experiment_id": ID | None,
     "artifact_location": URI | None, "parent": RUN_ID | None, "run_name": ..., "tags": {...},
     "params": {...}, "start_time": MS}
    {"op": "metrics", "run": ID, "metrics": [[key, value, timestamp_ms, step], ...]}
    {"op": "tags", "run": ID, "tags": {...}}
    {"op": "artifact", "run": ID, "path": ABSOLUTE_PATH, "folder": NAME | None}
    {"op": "status", "run": ID, "status": "RUNNING" | "FINISHED" | "FAILED" | "KILLED", "end_time": MS}
    {"op": "sweep", "run": PIPELINE_ID}     every child run of it still RUNNING -> KILLED
    {"op": "close"}                         the writer will append nothing more

While the server answers, an op is applied at once. When it does not (connection refused, timeout,
5xx), the link says so in one log line and appends that op and every later one to its spool,
``<pipeline file's folder>/spool/<time>-<job>-<id>.jsonl`` (one line per op, plain appends; readers
take complete lines only). It probes the server at most every ``retry_every`` seconds (a ~3 s
``GET <uri>/health``) and, once it answers, replays its spool and goes back to direct calls. A run
created while the server was away gets a local id (``local-<hex>``); its replay creates the real run
with the tag ``speechrl.local_id`` and records ``spool/ids/<local id>.json``, through which every
later op (and a child run spooled before its parent existed) finds the real id.

Replay is idempotent: progress is kept per spool (``<spool>.done``: lines applied), a run is created
once per local id (looked up by its tag first), a metric carries the timestamp it was logged with
(the store drops an exact duplicate), tags / params / artifacts / status are overwrites. A spool is
deleted once fully replayed after its ``close`` op. An op the server rejects (4xx: e.g. a changed
param value) is dropped with a warning, never retried forever. Spools replay in creation order under
a per-spool ``flock``, so ``speechrl tracking-sync`` and the jobs themselves may run at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import re
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from speechrl.io import write_json, write_text

log = logging.getLogger("speechrl")

LOCAL = "local-"
PROBE_TIMEOUT_S = 3.0
_SECRET = ("token", "password", "passwd", "pwd", "secret", "key", "auth", "credential", "signature", "sig")
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s'\"]*@")
_QUERY_SECRET = re.compile(r"([?&][^=&#\s'\"]*(?:" + "|".join(_SECRET) + r")[^=&#\s'\"]*=)[^&#\s'\"]*", re.I)


def redact(uri: str) -> str:
    """``uri`` without ``user:password@`` and without token-like query parameters (``?token=``...)."""
    out = _USERINFO.sub(r"\1", uri, count=1)
    base, sep, rest = out.partition("?")
    if not sep:
        return out
    query, hsep, frag = rest.partition("#")
    kept = [kv for kv in query.split("&") if kv and not any(s in kv.split("=", 1)[0].lower() for s in _SECRET)]
    return base + ("?" + "&".join(kept) if kept else "") + hsep + frag


def redact_text(text: str) -> str:
    """Any URI inside ``text`` (e.g. an MLflow error message) with its credentials masked."""
    return _QUERY_SECRET.sub(r"\1***", _USERINFO.sub(r"\1", text))


def probe(uri: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the server behind an http(s) ``uri`` answers (any status below 500) within ``timeout``.
    Local stores (sqlite, file) are always 'reachable': their failures come back as errors."""
    if not uri.startswith(("http://", "https://")):
        return True
    base = redact(uri).split("?", 1)[0].rstrip("/")
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=timeout):
            return True
    except urllib.error.HTTPError as e:
        return e.code < 500
    except (OSError, socket.timeout, ValueError):
        return False


def rejected(e: BaseException) -> bool:
    """The store answered and refused the op (4xx, unknown run): retrying it would never succeed."""
    if isinstance(e, UnknownRun):
        return True
    code = getattr(e, "get_http_status_code", None)
    with contextlib.suppress(Exception):
        return code is not None and 400 <= int(code()) < 500 and "API request to" not in str(e)
    return False


class UnknownRun(Exception):
    """A local run id no spool creates (its creation was rejected or its spool deleted)."""


class Pending(Exception):
    """A local run id whose creation is still waiting in a spool that cannot be replayed now."""


def short(e: BaseException) -> str:
    """One short, redacted line for an MLflow failure (the socket error, not the whole retry story)."""
    text = redact_text(str(e))
    cause = re.search(r"\[Errno -?\d+\] [^'\")\]]+|[Rr]ead timed out|timed out|\b[45]\d\d [A-Z][A-Za-z ]+", text)
    return (cause.group(0) if cause else f"{type(e).__name__}: {text}").splitlines()[0][:160].strip()


class Spool:
    """One writer's JSONL file of ops, its replay progress (``.done``) and lock (``.lock``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done_path = path.with_name(path.name + ".done")
        self.lock_path = path.with_name(path.name + ".lock")

    def append(self, op: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(op, default=str) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def ops(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.split("\n")[:-1] if line]  # complete lines only

    def done(self) -> int:
        try:
            return int(self.done_path.read_text() or 0)
        except FileNotFoundError:
            return 0

    def left(self) -> int:
        return max(0, len(self.ops()) - self.done())

    @contextlib.contextmanager
    def lock(self, timeout: float) -> Iterator[bool]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as f:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(0.1)
            try:
                yield True
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def remove(self) -> None:
        for p in (self.path, self.done_path, self.lock_path):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


class Link:
    """One process's MLflow connection to ``uri`` (the real one, credentials included), spooling to
    ``folder`` (``spool/`` next to the pipeline run file) while the server is away."""

    def __init__(self, uri: str, folder: Path, name: str, sync_hint: str = "", retry_every: float = 60.0) -> None:
        self.uri, self.shown, self.folder, self.name = uri, redact(uri), Path(folder), name
        self.sync_hint, self.retry_every = sync_hint, retry_every
        self.offline, self.spool = False, None
        self._client: Any = None
        self._next_try = self._last_probe = 0.0
        self._replaying: set[Path] = set()

    # ---------------------------------------------------------------- connection
    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def reachable(self) -> bool:
        self._last_probe = time.monotonic()
        return probe(self.uri)

    def go_offline(self, why: str) -> None:
        if self.spool is None:
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name)
            stamp = time.strftime("%Y%m%dT%H%M%S") + f"{time.time() % 1:.6f}"[1:]
            self.spool = Spool(self.folder / f"{stamp}-{safe}-{uuid.uuid4().hex[:8]}.jsonl")
        if not self.offline:
            log.warning(f"MLflow at {self.shown} unreachable ({why}): buffering to {self.spool.path}; retrying every "
                        f"{self.retry_every:g} s and at the job's end{self.sync_hint}")
        self.offline = True
        self._next_try = time.monotonic() + self.retry_every

    def maybe_reconnect(self, force: bool = False) -> bool:
        """Probe (at most every ``retry_every`` s, or now when ``force``) and replay the spool if back."""
        if not self.offline:
            return True
        now = time.monotonic()
        if not force and now < self._next_try:
            return False
        self._next_try = now + self.retry_every
        if not self.reachable():
            return False
        n = self.spool.left() if self.spool else 0
        if self.replay(self.spool, timeout=0) == 0:
            self.offline = False
            log.info(f"MLflow at {self.shown} reachable again: replayed {n} buffered operations")
            return True
        return False

    # ---------------------------------------------------------------- ops
    def do(self, op: dict[str, Any]) -> Any:
        """Apply ``op`` now, or spool it while the server is away; returns the run id for create_run.
        Never raises for a tracking failure (KeyboardInterrupt and friends pass)."""
        if self.offline and not self.maybe_reconnect():
            self._append(op)
            return op.get("run")
        try:
            return self.apply(op)
        except Exception as e:
            if rejected(e):
                log.warning(f"MLflow rejected {op['op']} for run {op.get('run')}: {short(e)}")
                return None if op["op"] == "create_run" else op.get("run")
            self.go_offline(short(e))
            self._append(op)
            return op.get("run")

    def _append(self, op: dict[str, Any]) -> None:
        if self.spool is None:
            self.go_offline("not connected")
        try:
            self.spool.append(op)
        except OSError as e:  # a full disk must not stop training either
            log.warning(f"MLflow op {op['op']} lost: cannot write {self.spool.path}: {e}")

    def resolve(self, run_id: str, replay: bool = True) -> str:
        """The store's id of ``run_id`` (itself unless a local id); replays the spool creating it if needed."""
        if not run_id.startswith(LOCAL):
            return run_id
        f = self.folder / "ids" / f"{run_id}.json"
        if not f.exists() and replay:
            for sp in self.spools():
                if any(o["op"] == "create_run" and o["run"] == run_id for o in sp.ops()):
                    self.replay(sp, timeout=30)
                    break
            else:
                raise UnknownRun(f"no spool under {self.folder} creates run {run_id}")
        if not f.exists():
            raise Pending(f"run {run_id} is not created yet")
        from speechrl.io import read_json

        return read_json(f)["run_id"]

    def known(self, run_id: str) -> bool:
        """A local id that was created or is waiting in a spool."""
        return (self.folder / "ids" / f"{run_id}.json").exists() or any(
            o["op"] == "create_run" and o["run"] == run_id for sp in self.spools() for o in sp.ops())

    def apply(self, op: dict[str, Any]) -> Any:
        from mlflow.entities import Metric, Param

        kind, c = op["op"], self.client
        if kind == "close":
            return None
        if kind == "create_run":
            return self._create(op)
        run = self.resolve(op["run"])
        if kind == "metrics":
            ms = [Metric(k, float(v), int(ts), int(step)) for k, v, ts, step in op["metrics"] if math.isfinite(v)]
            for i in range(0, len(ms), 900):
                c.log_batch(run, metrics=ms[i:i + 900])
        elif kind == "params":
            ps = [Param(k, v) for k, v in op["params"].items()]
            for i in range(0, len(ps), 90):
                c.log_batch(run, params=ps[i:i + 90])
        elif kind == "tags":
            for k, v in op["tags"].items():
                c.set_tag(run, k, str(v))
        elif kind == "artifact":
            p = Path(op["path"])
            if not p.exists():
                log.warning(f"MLflow artifact {p} of run {run} no longer exists: skipped")
            elif p.is_dir():
                c.log_artifacts(run, str(p), op.get("folder"))
            else:
                c.log_artifact(run, str(p), op.get("folder"))
        elif kind == "status":
            if op["status"] == "RUNNING":
                c.update_run(run, status="RUNNING")
            else:
                c.set_terminated(run, op["status"], end_time=op.get("end_time"))
        elif kind == "sweep":
            exp = c.get_run(run).info.experiment_id
            for r in c.search_runs([exp], f"tags.`mlflow.parentRunId` = '{run}' and attributes.status = 'RUNNING'",
                                   max_results=5000):
                c.set_terminated(r.info.run_id, "KILLED")
                log.info(f"MLflow run {r.info.run_id} ({r.info.run_name}) was left RUNNING: marked KILLED")
        else:
            raise UnknownRun(f"unknown op {kind!r}")
        return op.get("run")

    def _create(self, op: dict[str, Any]) -> str:
        from mlflow.entities import Param

        c, local = self.client, op["run"]
        tags = {**op.get("tags", {}), "speechrl.local_id": local}
        exp = op.get("experiment_id")
        if op.get("parent"):
            parent = self.resolve(op["parent"])
            tags["mlflow.parentRunId"] = parent
            exp = exp or c.get_run(parent).info.experiment_id
        if not exp:
            found = c.get_experiment_by_name(op["experiment"])
            exp = found.experiment_id if found else c.create_experiment(op["experiment"], op.get("artifact_location"))
        old = c.search_runs([exp], f"tags.`speechrl.local_id` = '{local}'", max_results=1)
        if old:
            run_id = old[0].info.run_id
        else:
            run_id = c.create_run(exp, start_time=op.get("start_time"), tags=tags, run_name=op.get("run_name")).info.run_id
        ps = [Param(k, v) for k, v in op.get("params", {}).items()]
        for i in range(0, len(ps), 90):
            c.log_batch(run_id, params=ps[i:i + 90])
        write_json(self.folder / "ids" / f"{local}.json", {"run_id": run_id, "experiment_id": exp})
        return run_id

    # ---------------------------------------------------------------- replay
    def spools(self) -> list[Spool]:
        """Every spool under the folder, oldest first."""
        return [Spool(p) for p in sorted(self.folder.glob("*.jsonl"))]

    def replay(self, sp: Spool | None, timeout: float = 30, final: bool = False) -> int:
        """Apply the ops of ``sp`` not applied yet; returns how many are left (0: all done)."""
        if sp is None:
            return 0
        if sp.path in self._replaying:
            return sp.left()
        self._replaying.add(sp.path)
        try:
            with sp.lock(timeout) as got:
                if not got:
                    return sp.left()
                ops, done = sp.ops(), sp.done()
                for i in range(done, len(ops)):
                    try:
                        self.apply(ops[i])
                    except Exception as e:
                        if not rejected(e):
                            return len(ops) - i
                        log.warning(f"MLflow rejected {ops[i]['op']} for run {ops[i].get('run')} "
                                    f"from {sp.path.name}: {short(e)}")
                    write_text(sp.done_path, str(i + 1))
                if ops and (final or ops[-1]["op"] == "close"):
                    sp.remove()
                return 0
        finally:
            self._replaying.discard(sp.path)

    def sync(self, final: bool = False) -> tuple[int, int]:
        """Replay every spool of the folder (oldest first); returns (ops replayed, ops left)."""
        replayed = left = 0
        for sp in self.spools():
            n = sp.left()
            rest = self.replay(sp, final=final)
            replayed, left = replayed + n - rest, left + rest
        return replayed, left

    def close(self, quiet: bool = False) -> int:
        """The writer is done: mark its spool closed, try once more to replay it; returns ops left
        (``quiet``: no second warning line when the first one was just logged)."""
        if self.spool is None:
            return 0
        self._append({"op": "close"})
        if self.offline:
            self.maybe_reconnect(force=time.monotonic() - self._last_probe > 10)
        left = self.replay(self.spool, timeout=10) if not self.offline else self.spool.left()
        if left and not quiet:
            log.warning(f"MLflow at {self.shown} still unreachable: {left} operations kept in {self.spool.path}"
                        f"{self.sync_hint}")
        return left


def new_local_id() -> str:
    return LOCAL + uuid.uuid4().hex


def now_ms() -> int:
    return int(time.time() * 1000)
