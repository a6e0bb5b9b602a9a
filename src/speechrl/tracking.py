"""MLflow tracking: one run per job, nested under one pipeline run; tracking never costs training.

* URI: ``$MLFLOW_TRACKING_URI`` > ``tracking.uri`` > ``sqlite:///<results_dir>/mlflow.db``;
  artifacts of the default store go to ``<results_dir>/mlartifacts``.
* ``init_pipeline`` (first job of the DAG) creates the experiment and the pipeline run and writes
  its ids to a JSON file every later job reads; ``job_run`` opens a child run (``parent_run_id``)
  with the flattened config as params, buffered step metrics and the job's artifacts, and ends it
  FINISHED, FAILED, or KILLED (KeyboardInterrupt, or an exception class with
  ``mlflow_status = "KILLED"``: a pre-emption checkpoint); ``finish_pipeline`` (the report job)
  replays what is left, marks child runs left RUNNING (a job killed and never rerun) KILLED and
  closes the pipeline run.
* Outages (``speechrl.tracking_spool``): HTTP calls time out in seconds (``MLFLOW_HTTP_REQUEST_TIMEOUT``
  5 s, ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` 1, ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`` 1 unless set);
  an http(s) server is probed once at start (~3 s); while it is away every operation goes to a local
  spool under ``<pipeline file's folder>/spool/``, replayed when the server answers again, at the
  job's end, by ``finish_pipeline`` or by ``speechrl tracking-sync --tracking <pipeline file>``.
* Credentials: the URI written to the pipeline file and every logged URI are redacted (no
  ``user:password@``, no ``?token=``-like parameters). A job connects with ``$MLFLOW_TRACKING_URI``
  when its redacted form equals the stored URI, else with the stored one; MLflow itself also reads
  ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` / ``MLFLOW_TRACKING_TOKEN``, the better
  place for secrets.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from speechrl.config import Config
from speechrl.io import read_json, write_json
from speechrl.tracking_spool import LOCAL, Link, Pending, UnknownRun, new_local_id, now_ms, redact

log = logging.getLogger("speechrl")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
# Read by mlflow.utils.rest_utils at every request (mlflow 3.x); user values win.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # its run links carry user:password


def tracking_uri(cfg: Config) -> str:
    """The URI to connect to (credentials included: never write or log it unredacted)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or cfg.tracking.uri or f"sqlite:///{cfg.results.resolve()}/mlflow.db"


def connect_uri(stored: str) -> str:
    """The real URI of a pipeline run file's redacted one: ``$MLFLOW_TRACKING_URI`` if it redacts to it."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    return env if env and redact(env) == stored else stored


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v and not (key == "rl.rewards"):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def _params(cfg: Config) -> dict[str, str]:
    return {k: str(v)[:6000] for k, v in flatten(cfg.to_dict()).items()}


def _link(info: dict[str, Any], pipeline_file: Path, name: str) -> Link:
    """The link of a job to the URI its pipeline run file names (jobs need no tracking keys in their
    config slice, speechrl.config.slices) and to the spool folder next to that file."""
    return Link(connect_uri(info["uri"]), Path(pipeline_file).parent / "spool", name,
                sync_hint=f"; `speechrl tracking-sync --tracking {pipeline_file}` replays it later")


def init_pipeline(cfg: Config, out: Path) -> dict[str, Any]:
    """Create (or reuse) the experiment, start the pipeline run, write its ids to ``out``. With the
    server unreachable the run is spooled (a local id) and created at the next sync."""
    info: dict[str, Any] = {"enabled": cfg.tracking.enabled}
    if cfg.tracking.enabled:
        uri = tracking_uri(cfg)
        info.update(uri=redact(uri), experiment=cfg.tracking.experiment, experiment_id=None)
        link = Link(uri, Path(out).parent / "spool", "pipeline",
                    sync_hint=f"; `speechrl tracking-sync --tracking {out}` replays it later")
        loc = (cfg.results.resolve() / "mlartifacts").as_uri() if uri.startswith("sqlite:///") else None
        if link.reachable():
            try:
                exp = link.client.get_experiment_by_name(cfg.tracking.experiment)
                info["experiment_id"] = exp.experiment_id if exp else link.client.create_experiment(
                    cfg.tracking.experiment, artifact_location=loc)
            except Exception as e:  # noqa: BLE001 - any tracking failure: buffer, keep going
                from speechrl.tracking_spool import short

                link.go_offline(short(e))
        else:
            link.go_offline("no answer from /health")
        info["run_id"] = link.do({
            "op": "create_run", "run": new_local_id(), "experiment": cfg.tracking.experiment,
            "experiment_id": info["experiment_id"], "artifact_location": loc, "parent": None,
            "run_name": f"pipeline:{cfg.name}", "start_time": now_ms(),
            "tags": {"speechrl.stage": "pipeline", "speechrl.config_hash": cfg.hash()}, "params": _params(cfg)})
        link._next_try = float("inf") if link.offline else 0.0  # no second probe before writing the file
        write_json(out, info)
        link.close(quiet=True)
        log.info(f"MLflow pipeline run {info['run_id']} in {info['uri']}" + (" (spooled)" if link.offline else ""))
        return info
    write_json(out, info)
    return info


class JobRun:
    """The handle a job logs through; a no-op when tracking is off. ``run_id``: the MLflow run id (a
    ``local-...`` id while the run exists only in the spool); a resumed job passes it to ``job_run``."""

    def __init__(self, link: Link | None = None, run_id: str | None = None, flush_every: int = 25) -> None:
        self.link, self._run_id, self.flush_every = link, run_id, flush_every
        self._buffer: list[list[Any]] = []

    @property
    def run_id(self) -> str | None:
        if self.link and self._run_id and self._run_id.startswith(LOCAL):
            with contextlib.suppress(Pending, UnknownRun, OSError, ValueError, KeyError):
                return self.link.resolve(self._run_id, replay=False)
        return self._run_id

    def metrics(self, values: dict[str, float], step: int) -> None:
        if not self.link:
            return
        ts = now_ms()
        self._buffer += [[k, float(v), ts, int(step)] for k, v in values.items()
                         if v is not None and math.isfinite(v)]
        if len(self._buffer) >= self.flush_every * max(1, len(values)):
            self.flush()

    def flush(self) -> None:
        if self.link and self._buffer:
            buf, self._buffer = self._buffer, []
            self.link.do({"op": "metrics", "run": self._run_id, "metrics": buf})

    def artifact(self, path: Path, folder: str | None = None) -> None:
        if self.link and path.exists():
            self.flush()
            self.link.do({"op": "artifact", "run": self._run_id, "path": str(Path(path).resolve()), "folder": folder})

    def tags(self, values: dict[str, str]) -> None:
        if self.link:
            self.link.do({"op": "tags", "run": self._run_id, "tags": {k: str(v) for k, v in values.items()}})

    def end(self, status: str) -> None:
        """Flush, set the final status, replay what the spool holds if the server is back."""
        if self.link:
            self.flush()
            self.link.do({"op": "status", "run": self._run_id, "status": status, "end_time": now_ms()})
            self.link.close()


def status_of(e: BaseException) -> str:
    """KILLED for an interruption (KeyboardInterrupt, ``mlflow_status = "KILLED"``), else FAILED."""
    if isinstance(e, KeyboardInterrupt) or getattr(type(e), "mlflow_status", None) == "KILLED":
        return "KILLED"
    if isinstance(e, SystemExit) and e.code in (0, None):
        return "FINISHED"
    return "FAILED"


def _reopen(link: Link, run_id: str) -> bool:
    """Set a known run RUNNING again; False if it does not exist (a new one is created instead)."""
    if run_id.startswith(LOCAL):
        if not link.known(run_id):
            return False
    elif not link.offline:
        try:
            link.client.get_run(run_id)
        except Exception as e:  # noqa: BLE001
            from speechrl.tracking_spool import rejected, short

            if rejected(e):
                return False
            link.go_offline(short(e))
    if not link.offline:
        link.sync()  # the killed attempt's spool first, so its ops land before this attempt's
    link.do({"op": "status", "run": run_id, "status": "RUNNING"})
    return True


@contextlib.contextmanager
def job_run(cfg: Config, pipeline_file: Path | str | None, stage: str, name: str,
            run_id: str | None = None) -> Iterator[JobRun]:
    """A child run of the pipeline run for one job (or, with ``run_id``, the run of a killed attempt,
    set RUNNING again); ends FINISHED, FAILED or KILLED. Tracking failures never raise."""
    info = read_json(pipeline_file) if pipeline_file else {"enabled": False}
    if not cfg.tracking.enabled or not info.get("enabled"):
        yield JobRun()
        return
    link = _link(info, Path(pipeline_file), name)
    if not link.reachable():
        link.go_offline("no answer from /health")
    rid = run_id if run_id and _reopen(link, run_id) else None
    if rid is None:
        rid = link.do({
            "op": "create_run", "run": new_local_id(), "experiment": info.get("experiment"),
            "experiment_id": info.get("experiment_id"), "parent": info["run_id"], "run_name": name,
            "start_time": now_ms(), "tags": {"speechrl.stage": stage, "speechrl.config_hash": cfg.hash()},
            "params": _params(cfg)})
    job = JobRun(link, rid)
    try:
        yield job
    except GeneratorExit:  # the context was abandoned, never exited (as by a SIGKILL): leave the run as is
        raise
    except BaseException as e:
        job.end(status_of(e))
        raise
    job.end("FINISHED")


def end_stale_run(pipeline_file: Path | str, run_id: str, status: str = "KILLED") -> None:
    """End the run of a killed attempt that cannot be resumed (spooled if the server is away)."""
    info = read_json(pipeline_file)
    if not info.get("enabled") or not run_id:
        return
    link = _link(info, Path(pipeline_file), "stale")
    if not link.reachable():
        link.go_offline("no answer from /health")
    link.do({"op": "status", "run": run_id, "status": status, "end_time": now_ms()})
    link.close()


def sync(pipeline_file: Path | str) -> tuple[int, int]:
    """Replay every spool next to ``pipeline_file``; returns (ops replayed, ops left)."""
    info = read_json(pipeline_file)
    if not info.get("enabled"):
        return 0, 0
    link = _link(info, Path(pipeline_file), "sync")
    left = sum(sp.left() for sp in link.spools())
    if not link.reachable():
        log.warning(f"MLflow at {link.shown} unreachable: {left} operations stay buffered in {link.folder}")
        return 0, left
    return link.sync()


def finish_pipeline(cfg: Config, pipeline_file: Path, artifacts: list[Path]) -> None:
    """Replay every spool, log the report, mark child runs left RUNNING KILLED, close the pipeline run."""
    info = read_json(pipeline_file)
    if not cfg.tracking.enabled or not info.get("enabled"):
        return
    link = _link(info, Path(pipeline_file), "pipeline-finish")
    if link.reachable():
        link.sync()
    else:
        link.go_offline("no answer from /health")
    run = info["run_id"]
    for p in artifacts:
        if p.exists():
            link.do({"op": "artifact", "run": run, "path": str(p.resolve()), "folder": p.name if p.is_dir() else None})
    link.do({"op": "sweep", "run": run})
    link.do({"op": "status", "run": run, "status": "FINISHED", "end_time": now_ms()})
    if link.close() == 0 and not link.offline:
        link.sync(final=True)
