"""MLflow tracking: one run per job, nested under one pipeline run.

* URI: ``$MLFLOW_TRACKING_URI`` > ``tracking.uri`` > ``sqlite:///<results_dir>/mlflow.db``;
  artifacts of the default store go to ``<results_dir>/mlartifacts``.
* ``init_pipeline`` (first job of the DAG) creates the experiment and the pipeline run and writes
  its ids to a JSON file every later job reads; ``job_run`` opens a child run (``parent_run_id``)
  with the flattened config as params, buffered step metrics and the job's artifacts;
  ``finish_pipeline`` (the report job) closes the pipeline run.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from speechrl.config import Config
from speechrl.io import read_json, write_json

log = logging.getLogger("speechrl")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


def tracking_uri(cfg: Config) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or cfg.tracking.uri or f"sqlite:///{cfg.results.resolve()}/mlflow.db"


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v and not (key == "rl.rewards"):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def _client(cfg: Config, info: dict[str, Any] | None = None) -> Any:
    """MLflow client; a job uses the URI its pipeline run file names (written by tracking-init), so
    jobs need no tracking keys in their config slice (speechrl.config.slices)."""
    import mlflow

    mlflow.set_tracking_uri((info or {}).get("uri") or tracking_uri(cfg))
    return mlflow.MlflowClient()


def init_pipeline(cfg: Config, out: Path) -> dict[str, str]:
    """Create (or reuse) the experiment, start the pipeline run, write its ids to ``out``."""
    info = {"enabled": cfg.tracking.enabled}
    if cfg.tracking.enabled:
        client = _client(cfg)
        exp = client.get_experiment_by_name(cfg.tracking.experiment)
        if exp is None:
            uri = tracking_uri(cfg)
            loc = (cfg.results.resolve() / "mlartifacts").as_uri() if uri.startswith("sqlite:///") else None
            exp_id = client.create_experiment(cfg.tracking.experiment, artifact_location=loc)
        else:
            exp_id = exp.experiment_id
        run = client.create_run(exp_id, run_name=f"pipeline:{cfg.name}",
                                tags={"speechrl.stage": "pipeline", "speechrl.config_hash": cfg.hash()})
        client.log_batch(run.info.run_id, params=[_param(k, v) for k, v in flatten(cfg.to_dict()).items()])
        info.update(uri=tracking_uri(cfg), experiment_id=exp_id, run_id=run.info.run_id)
        log.info(f"MLflow pipeline run {run.info.run_id} in {info['uri']}")
    write_json(out, info)
    return info


def _param(k: str, v: Any) -> Any:
    from mlflow.entities import Param

    return Param(k, str(v)[:6000])


class JobRun:
    """The handle a job logs through; a no-op when tracking is off."""

    def __init__(self, client: Any = None, run_id: str | None = None, flush_every: int = 25) -> None:
        self.client, self.run_id, self.flush_every = client, run_id, flush_every
        self._buffer: list[Any] = []

    def metrics(self, values: dict[str, float], step: int) -> None:
        if not self.client:
            return
        import math
        import time

        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        self._buffer += [Metric(k, float(v), ts, step) for k, v in values.items() if v is not None and math.isfinite(v)]
        if len(self._buffer) >= self.flush_every * max(1, len(values)):
            self.flush()

    def flush(self) -> None:
        if self.client and self._buffer:
            for i in range(0, len(self._buffer), 900):
                self.client.log_batch(self.run_id, metrics=self._buffer[i:i + 900])
            self._buffer = []

    def artifact(self, path: Path, folder: str | None = None) -> None:
        if self.client and path.exists():
            self.flush()
            if path.is_dir():
                self.client.log_artifacts(self.run_id, str(path), folder)
            else:
                self.client.log_artifact(self.run_id, str(path), folder)

    def tags(self, values: dict[str, str]) -> None:
        if self.client:
            for k, v in values.items():
                self.client.set_tag(self.run_id, k, str(v))


@contextlib.contextmanager
def job_run(cfg: Config, pipeline_file: Path | None, stage: str, name: str) -> Iterator[JobRun]:
    """A child run of the pipeline run for one job; marked FAILED if the job raises."""
    info = read_json(pipeline_file) if pipeline_file else {"enabled": False}
    if not cfg.tracking.enabled or not info.get("enabled"):
        yield JobRun()
        return
    client = _client(cfg, info)
    run = client.create_run(info["experiment_id"], run_name=name,
                            tags={"mlflow.parentRunId": info["run_id"], "speechrl.stage": stage,
                                  "speechrl.config_hash": cfg.hash()})
    params = flatten(cfg.to_dict())
    client.log_batch(run.info.run_id, params=[_param(k, v) for k, v in params.items()])
    job = JobRun(client, run.info.run_id)
    try:
        yield job
    except BaseException:
        job.flush()
        client.set_terminated(run.info.run_id, "FAILED")
        raise
    job.flush()
    client.set_terminated(run.info.run_id, "FINISHED")


def finish_pipeline(cfg: Config, pipeline_file: Path, artifacts: list[Path]) -> None:
    info = read_json(pipeline_file)
    if not cfg.tracking.enabled or not info.get("enabled"):
        return
    client = _client(cfg, info)
    for p in artifacts:
        if p.is_dir():
            client.log_artifacts(info["run_id"], str(p), p.name)
        elif p.exists():
            client.log_artifact(info["run_id"], str(p))
    client.set_terminated(info["run_id"], "FINISHED")
