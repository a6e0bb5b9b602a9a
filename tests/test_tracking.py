"""MLflow against a real `mlflow server` on 127.0.0.1: pipeline run, nested job run, metrics, artifacts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from speechrl.tracking import finish_pipeline, flatten, init_pipeline, job_run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
                             f"sqlite:///{d}/mlflow.db", "--artifacts-destination", str(d / "artifacts"),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"{url}/health", timeout=1).read() == b"OK":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start")
    yield url
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_nested_runs_on_a_real_server(server, tiny_cfg, tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    tiny_cfg.tracking.enabled = True
    info = init_pipeline(tiny_cfg, tmp_path / "p.json")
    assert info["uri"] == server
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "metrics.json").write_text("{}")
    with job_run(tiny_cfg, tmp_path / "p.json", "sft", "sft:sqa") as run:
        for step in range(1, 4):
            run.metrics({"train/loss": 1.0 / step}, step)
        run.artifact(tmp_path / "out" / "metrics.json")
    with pytest.raises(RuntimeError), job_run(tiny_cfg, tmp_path / "p.json", "rl", "rl:sqa:grpo"):
        raise RuntimeError("boom")
    finish_pipeline(tiny_cfg, tmp_path / "p.json", [])
    client = mlflow.MlflowClient(server)
    children = {r.info.run_name: r for r in client.search_runs([info["experiment_id"]])
                if r.data.tags.get("mlflow.parentRunId") == info["run_id"]}
    assert children["sft:sqa"].info.status == "FINISHED" and children["rl:sqa:grpo"].info.status == "FAILED"
    assert [m.value for m in client.get_metric_history(children["sft:sqa"].info.run_id, "train/loss")] == [1.0, 0.5, 1 / 3]
    assert [a.path for a in client.list_artifacts(children["sft:sqa"].info.run_id)] == ["metrics.json"]
    assert client.get_run(info["run_id"]).info.status == "FINISHED"
    assert children["sft:sqa"].data.params["sft.lr"] == str(tiny_cfg.sft.lr)


def test_flatten_and_disabled_tracking(tiny_cfg, tmp_path):
    flat = flatten(tiny_cfg.to_dict())
    assert flat["rl.rewards"] == {"bleu": 1.0} and flat["model.tiny.hidden_size"] == 32
    init_pipeline(tiny_cfg, tmp_path / "p.json")  # tracking disabled in tiny_cfg
    with job_run(tiny_cfg, tmp_path / "p.json", "sft", "x") as run:
        run.metrics({"a": 1.0}, 1)  # no-op


def test_credentials_are_redacted_and_the_real_uri_is_used(monkeypatch):
    from speechrl.tracking import connect_uri
    from speechrl.tracking_spool import redact, redact_text

    assert redact("http://alice:s3cret@host:5000/p?token=abc&x=1#f") == "http://host:5000/p?x=1#f"
    assert redact("https://host/mlflow?api_key=k&password=p") == "https://host/mlflow"
    assert redact("sqlite:////tmp/r/mlflow.db") == "sqlite:////tmp/r/mlflow.db"
    assert "s3cret" not in redact_text("API request to http://alice:s3cret@h:1/api failed; see https://h/?token=s3cret")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://alice:s3cret@host:5000")
    assert connect_uri("http://host:5000") == "http://alice:s3cret@host:5000"  # the job connects with the secret
    assert connect_uri("http://other:5000") == "http://other:5000"  # env var of another server: the stored URI


def test_run_status_of_an_exception():
    from speechrl.tracking import status_of

    class Interrupted(Exception):
        mlflow_status = "KILLED"

    assert [status_of(e) for e in (Interrupted(), KeyboardInterrupt(), ValueError(), SystemExit(2), SystemExit(0))] == [
        "KILLED", "KILLED", "FAILED", "FAILED", "FINISHED"]


def test_http_timeouts_default_to_seconds_and_user_values_win():
    import subprocess
    import sys

    code = ("import os, speechrl.tracking; from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_TIMEOUT as T, "
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES as R; print(T.get(), R.get())")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MLFLOW_HTTP")}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.split() == ["5", "1"]
    env["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "30"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.split() == ["30", "1"]
