"""Tracking never costs training: a real `mlflow server` on 127.0.0.1 that the tests stop, freeze
(SIGSTOP) and restart on the same port and store; the job keeps going, buffers to its spool, and
`speechrl tracking-sync` (or the job itself) replays it: nothing lost, nothing duplicated, no
password written or logged, every run ends FINISHED, FAILED or KILLED."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from speechrl.config import dump_config, parse_config
from speechrl.io import read_json
from speechrl.tracking import end_stale_run, finish_pipeline, flatten, init_pipeline, job_run

pytestmark = pytest.mark.slow
SECRET = "s3cret"


class Server:
    """``mlflow server`` on 127.0.0.1:<port> with one sqlite store, stoppable and restartable."""

    def __init__(self, root: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.root, self.proc = root, None
        self.url = f"http://127.0.0.1:{self.port}"
        self.uri = f"http://alice:{SECRET}@127.0.0.1:{self.port}"  # the server checks no auth: fine

    def start(self) -> None:
        if self.proc is not None:
            return
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{self.root}/mlflow.db",
             "--artifacts-destination", str(self.root / "artifacts"), "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(480):
            try:
                if urllib.request.urlopen(f"{self.url}/health", timeout=1).read() == b"OK":
                    return
            except OSError:
                time.sleep(0.25)
        self.stop()
        pytest.fail("mlflow server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGCONT)
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)
            self.proc = None

    def freeze(self, frozen: bool) -> None:
        """SIGSTOP: the port accepts connections and never answers (a hung server); SIGCONT: back."""
        os.killpg(self.proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = Server(tmp_path_factory.mktemp("mlflow"))
    yield srv
    srv.stop()


@pytest.fixture
def setup(server, tmp_path, monkeypatch):
    """A tracking-enabled tiny config whose MLFLOW_TRACKING_URI carries user:password; captured logs."""
    from conftest import tiny_dict

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    d = tiny_dict(tmp_path / "results")
    d["tracking"] = {"enabled": True}
    cfg = parse_config(d)
    (tmp_path / "cfg.yaml").write_text(dump_config(cfg))
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("speechrl")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield cfg, tmp_path / "results" / "tracking" / "pipeline.json", records
    logger.removeHandler(handler)
    logger.setLevel(old_level)
    text = "\n".join(r.getMessage() for r in records)
    assert SECRET not in text, "a log line carries the password"
    leaks = [p for p in (tmp_path / "results").rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not leaks, f"the password is written in {leaks}"


def _client(server):
    from mlflow import MlflowClient

    return MlflowClient(server.url)


def _children(client, pipeline_id: str) -> dict:
    exp = client.get_run(pipeline_id).info.experiment_id
    return {r.info.run_name: r for r in client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{pipeline_id}'")}


def _history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def _spooled(pipeline_file: Path) -> list[Path]:
    return sorted((pipeline_file.parent / "spool").glob("*.jsonl"))


def test_unreachable_at_start_buffers_then_tracking_sync_replays(server, setup, tmp_path, capfd):
    from speechrl.cli import main

    cfg, pf, records = setup
    server.stop()  # a closed port
    main(["tracking-init", "--config", str(tmp_path / "cfg.yaml"), "--out", str(pf)])  # returns: exit 0
    warnings = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and f"MLflow at {server.url} unreachable" in warnings[0] and "buffering to" in warnings[0]
    info = read_json(pf)
    assert info["uri"] == server.url and info["run_id"].startswith("local-") and info["experiment_id"] is None
    with job_run(cfg, pf, "sft", "sft:sqa") as run:
        for step in range(1, 31):
            run.metrics({"train/loss": 1.0 / step, "train/lr": 1e-3 * step}, step)
        run.tags({"speechrl.note": "offline"})
        (tmp_path / "metrics.json").write_text("{}")
        run.artifact(tmp_path / "metrics.json")
    with pytest.raises(RuntimeError), job_run(cfg, pf, "rl", "rl:sqa:grpo:s0") as run:
        run.metrics({"train/reward": 0.5}, 1)
        raise RuntimeError("boom")
    assert len(_spooled(pf)) == 3  # pipeline, sft, rl

    server.start()
    main(["tracking-sync", "--tracking", str(pf)])
    assert "tracking-sync: " in capfd.readouterr().out
    client = _client(server)
    pipeline_id = read_json(pf.parent / "spool" / "ids" / f"{info['run_id']}.json")["run_id"]
    pipeline = client.get_run(pipeline_id)
    assert pipeline.info.run_name == f"pipeline:{cfg.name}" and pipeline.data.params["sft.lr"] == str(cfg.sft.lr)
    children = _children(client, pipeline_id)
    assert set(children) == {"sft:sqa", "rl:sqa:grpo:s0"}
    sft = children["sft:sqa"]
    assert sft.info.status == "FINISHED" and children["rl:sqa:grpo:s0"].info.status == "FAILED"
    assert _history(client, sft.info.run_id, "train/loss") == [(s, 1.0 / s) for s in range(1, 31)]
    assert _history(client, sft.info.run_id, "train/lr") == [(s, 1e-3 * s) for s in range(1, 31)]
    assert _history(client, children["rl:sqa:grpo:s0"].info.run_id, "train/reward") == [(1, 0.5)]
    assert sft.data.tags["speechrl.note"] == "offline" and sft.data.tags["speechrl.stage"] == "sft"
    assert len(sft.data.params) == len(flatten(cfg.to_dict())) and sft.data.params["sft.lr"] == str(cfg.sft.lr)
    assert [a.path for a in client.list_artifacts(sft.info.run_id)] == ["metrics.json"]
    assert _spooled(pf) == []  # every spool was closed by its writer and fully replayed: deleted

    main(["tracking-sync", "--tracking", str(pf)])  # twice: nothing more
    assert "tracking-sync: 0 operations replayed, 0 left" in capfd.readouterr().out
    finish_pipeline(cfg, pf, [])
    assert client.get_run(pipeline_id).info.status == "FINISHED" and _spooled(pf) == []
    assert set(_children(client, pipeline_id)) == {"sft:sqa", "rl:sqa:grpo:s0"}
    assert _history(client, sft.info.run_id, "train/loss") == [(s, 1.0 / s) for s in range(1, 31)]


def test_server_killed_mid_job_loses_nothing(server, setup):
    cfg, pf, records = setup
    server.start()
    info = init_pipeline(cfg, pf)
    with job_run(cfg, pf, "rl", "rl:sqa:grpo:s0") as run:
        run.flush_every = 4
        for step in range(1, 61):
            run.metrics({"train/loss": 1.0 / step, "train/reward": step / 60}, step)
            if step == 21:
                server.stop()  # mid-job: the rest of the job runs without a server
        run_id = run.run_id
    assert any("unreachable" in r.getMessage() and "buffering to" in r.getMessage() for r in records)
    (spool,) = _spooled(pf)
    assert sum(len(line) > 0 for line in spool.read_text().splitlines()) > 5  # metrics, status, close
    server.start()
    from speechrl.tracking import sync

    replayed, left = sync(pf)
    assert replayed > 0 and left == 0 and _spooled(pf) == []
    assert sync(pf) == (0, 0)
    client = _client(server)
    assert _history(client, run_id, "train/loss") == [(s, 1.0 / s) for s in range(1, 61)]
    assert _history(client, run_id, "train/reward") == [(s, s / 60) for s in range(1, 61)]
    assert client.get_run(run_id).info.status == "FINISHED"
    assert client.get_run(run_id).data.tags["mlflow.parentRunId"] == info["run_id"]


def test_hung_server_mid_job_reconnects_and_replays(server, setup, monkeypatch):
    """A frozen server times out the calls (1 s here); once it answers again the job replays its spool
    itself and goes on logging directly; the calls that timed out but were kept by the server are
    not duplicated by the replay."""
    cfg, pf, records = setup
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    server.start()
    init_pipeline(cfg, pf)
    with job_run(cfg, pf, "sft", "sft:sqa") as run:
        run.flush_every = 4
        for step in range(1, 41):
            run.metrics({"train/loss": 1.0 / step}, step)
            if step == 9:
                server.freeze(True)
            if step == 20:
                assert run.link.offline
                server.freeze(False)
                run.link.retry_every = run.link._next_try = 0  # probe at the next call, not in 60 s
        assert not run.link.offline
        run_id = run.run_id
    assert any("reachable again" in r.getMessage() for r in records) and _spooled(pf) == []
    client = _client(server)
    assert _history(client, run_id, "train/loss") == [(s, 1.0 / s) for s in range(1, 41)]
    assert client.get_run(run_id).info.status == "FINISHED"


class Interrupted(Exception):
    """What speechrl.signals raises after a SIGTERM / SIGUSR1 checkpoint (only the attribute matters)."""

    mlflow_status = "KILLED"


def test_run_status_killed_failed_resumed_and_stale(server, setup):
    cfg, pf, _ = setup
    server.start()
    info = init_pipeline(cfg, pf)
    client = _client(server)
    with pytest.raises(Interrupted), job_run(cfg, pf, "rl", "rl:a") as run:
        run.metrics({"x": 1.0}, 1)
        killed = run.run_id
        raise Interrupted
    with pytest.raises(KeyboardInterrupt), job_run(cfg, pf, "rl", "rl:b") as run:
        interrupted = run.run_id
        raise KeyboardInterrupt
    with pytest.raises(ValueError), job_run(cfg, pf, "rl", "rl:c") as run:
        failed = run.run_id
        raise ValueError("bad")
    assert [client.get_run(r).info.status for r in (killed, interrupted, failed)] == ["KILLED", "KILLED", "FAILED"]

    with job_run(cfg, pf, "rl", "rl:a", run_id=killed) as run:  # the resumed attempt
        assert run.run_id == killed and client.get_run(killed).info.status == "RUNNING"
        run.metrics({"x": 2.0}, 2)
    assert client.get_run(killed).info.status == "FINISHED" and _history(client, killed, "x") == [(1, 1.0), (2, 2.0)]
    with job_run(cfg, pf, "rl", "rl:d", run_id="0" * 32) as run:  # an id the store does not know: a new run
        assert run.run_id != "0" * 32

    stale = job_run(cfg, pf, "rl", "rl:e")  # a job SIGKILLed: its run is left RUNNING
    stale_id = stale.__enter__().run_id
    end_stale_run(pf, stale_id)
    never = job_run(cfg, pf, "rl", "rl:f").__enter__().run_id  # killed and never rerun
    assert client.get_run(never).info.status == "RUNNING"
    finish_pipeline(cfg, pf, [])
    children = _children(client, info["run_id"])
    assert sorted(children) == ["rl:a", "rl:b", "rl:c", "rl:d", "rl:e", "rl:f"]
    assert {n: r.info.status for n, r in children.items()} == {
        "rl:a": "FINISHED", "rl:b": "KILLED", "rl:c": "FAILED", "rl:d": "FINISHED", "rl:e": "KILLED", "rl:f": "KILLED"}
    assert client.get_run(info["run_id"]).info.status == "FINISHED"


def test_credentials_are_used_but_never_written_or_logged(server, setup, tmp_path, capfd):
    from speechrl.cli import main

    cfg, pf, records = setup
    server.start()
    main(["tracking-init", "--config", str(tmp_path / "cfg.yaml"), "--out", str(pf)])
    assert read_json(pf)["uri"] == server.url
    with job_run(cfg, pf, "sft", "sft:sqa") as run:
        run.metrics({"train/loss": 0.5}, 1)
    server.stop()  # failures carry MLflow's "API request to http://alice:...@..." messages
    with job_run(cfg, pf, "rl", "rl:sqa:grpo:s0") as run:
        run.metrics({"train/loss": 0.25}, 1)
    server.start()
    main(["tracking-sync", "--tracking", str(pf)])
    out = capfd.readouterr()
    assert SECRET not in out.out + out.err and any("unreachable" in r.getMessage() for r in records)
    assert set(_children(_client(server), read_json(pf)["run_id"])) == {"sft:sqa", "rl:sqa:grpo:s0"}
    # (the fixture greps every file under results/ and every log line for the password)
