"""A job's output folder is replaced as a whole, checked writable before any work, and a job stopped by
SIGTERM resumes from its checkpoint when run again (the CLI, as Snakemake runs it)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from speechrl.cli import main
from speechrl.config import dump_config, parse_config
from speechrl.jobdir import JobDir
from speechrl.models.build import load

from conftest import tiny_dict


@pytest.fixture
def cfg_file(tmp_path):
    d = tiny_dict(tmp_path / "results")
    d["sft"].update({"max_steps": 30, "eval_every": 10, "log_every": 1, "patience": 10})
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(parse_config(d)))
    return path


def test_commit_replaces_the_folder_as_a_whole(tmp_path):
    out = tmp_path / "job"
    out.mkdir()
    (out / "old.txt").write_text("old")
    jd = JobDir(out)
    work = jd.open()
    (work / "new.txt").write_text("new")
    assert (out / "old.txt").exists() and not (out / "new.txt").exists()  # nothing visible before the commit
    jd.commit()
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert not jd.partial.exists() and not jd.checkpoints.exists()


def test_unwritable_output_fails_before_any_work(cfg_file, tiny_data, tiny_model_dir, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the results folder should be")
    with pytest.raises(SystemExit) as e:
        main(["sft", "--config", str(cfg_file), "--task", "sqa", "--data", str(tiny_data["sqa"]),
              "--model", str(tiny_model_dir), "--out", str(blocker / "sft")])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert "not writable" in err and str(blocker / "sft") in err
    assert "step 1/" not in err  # no training step ran


def test_a_failure_while_finishing_keeps_the_previous_folder(cfg_file, tiny_data, tiny_model_dir, tmp_path, monkeypatch):
    """Evaluation into a finished folder; the disk fills up while the manifest is written: the old
    metrics and manifest stay together, no new file leaks in beside them."""
    out = tmp_path / "eval"
    args = ["evaluate", "--config", str(cfg_file), "--task", "sqa", "--system", "base", "--data", str(tiny_data["sqa"]),
            "--model", str(tiny_model_dir), "--out", str(out)]
    main(args)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"metrics.json", "manifest.json", "samples.jsonl"} <= before.keys()

    def full_disk(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("speechrl.audit.write_manifest", full_disk)
    with pytest.raises(OSError):
        main(args)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def _cli(*args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "speechrl.cli", *args], env=env, stderr=subprocess.PIPE, text=True, **kw)


def test_sigterm_checkpoints_and_the_rerun_resumes_exactly(cfg_file, tiny_data, tiny_model_dir, tmp_path):
    args = ["sft", "--config", str(cfg_file), "--task", "sqa", "--data", str(tiny_data["sqa"]), "--model", str(tiny_model_dir)]
    main([*args, "--out", str(tmp_path / "whole")])  # the uninterrupted run, in this process

    out = tmp_path / "cut"
    job = _cli(*args, "--out", str(out))
    lines = []
    for line in job.stderr:  # stop it mid-run, as SLURM does on pre-emption
        lines.append(line)
        if "step 12/30" in line:
            sent = time.perf_counter()
            job.send_signal(signal.SIGTERM)
            break
    lines += job.stderr.readlines()
    assert job.wait(timeout=120) == 128 + signal.SIGTERM, "".join(lines)[-3000:]
    print(f"\nSIGTERM -> checkpoint saved and exited in {time.perf_counter() - sent:.2f} s")
    stopped = int(next(ln for ln in lines if "checkpoint after step" in ln).split("after step ")[1].split()[0])
    assert stopped >= 12 and not out.exists() and (tmp_path / ".cut.ckpt" / "latest" / "loop.json").is_file()

    again = _cli(*args, "--out", str(out))
    err = again.stderr.read()
    assert again.wait(timeout=600) == 0, err[-3000:]
    assert f"after step {stopped}" in err and "resuming from checkpoint" in err
    assert f"step {stopped}/30" not in err  # no step replayed
    a, b = load(tmp_path / "whole" / "model")[0].state_dict(), load(out / "model")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    s_whole, s_cut = (json.loads((d / "summary.json").read_text()) for d in (tmp_path / "whole", out))
    assert s_whole["history"] == s_cut["history"] and s_whole["best_step"] == s_cut["best_step"]
    assert not (tmp_path / ".cut.ckpt").exists() and not (tmp_path / ".cut.partial").exists()
    assert Path(out / "manifest.json").is_file()
