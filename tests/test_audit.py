"""The reproducibility audit: changed files, changed configs (named key by key), stale MLflow copies,
wrong paths, audits from another folder or of a moved results folder, and the git commit recorded."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from speechrl.audit import AuditError, audit, git_state, manifests, write_manifest
from speechrl.cli import main
from speechrl.config import load_config

ROOT = Path(__file__).resolve().parents[1]
SLICES = ("data", "sft", "rl-grpo")


def _job(monkeypatch, stage: str, cfg_file: str, out: str, inputs: list[str], files: dict[str, str],
         seed: int | None = None) -> None:
    """A finished job as the workflow runs it: cwd-relative paths, its argv, outputs then manifest."""
    argv = ["speechrl", stage, "--config", cfg_file, "--out", out, *(["--seed", str(seed)] if seed is not None else [])]
    monkeypatch.setattr(sys, "argv", argv)
    cfg = load_config(cfg_file)
    if seed is not None:
        cfg = dataclasses.replace(cfg, seed=seed)
    for name, text in files.items():
        (Path(out) / name).parent.mkdir(parents=True, exist_ok=True)
        (Path(out) / name).write_text(text)
    write_manifest(Path(out), cfg, stage, [Path(p) for p in inputs], time.time(), config_file=Path(cfg_file))


@pytest.fixture
def wd(tmp_path, monkeypatch) -> Path:
    """A pipeline's working directory with ``results/``: resolved config, slices, four jobs."""
    wd = tmp_path / "wd"
    wd.mkdir()
    monkeypatch.chdir(wd)
    Path("user.yaml").write_text(yaml.safe_dump({"name": "audit", "rl": {"lr": 0.001}, "sft": {"lr": 0.002},
                                                 "tracking": {"enabled": False}}))
    main(["resolve-config", "--config", "user.yaml", "--out", "results/config.yaml"])
    for s in SLICES:
        main(["resolve-config", "--config", "results/config.yaml", "--slice", s, "--out", f"results/config/sqa/{s}.yaml"])
    _job(monkeypatch, "data", "results/config/sqa/data.yaml", "results/data/sqa", [], {"train.jsonl": "{}\n", "test.jsonl": "{}\n"})
    _job(monkeypatch, "sft", "results/config/sqa/sft.yaml", "results/sft/sqa", ["results/data/sqa"], {"model/w.bin": "w"})
    _job(monkeypatch, "rl", "results/config/sqa/rl-grpo.yaml", "results/rl/sqa/grpo/s1",
         ["results/data/sqa/train.jsonl", "results/sft/sqa/model"], {"model/w.bin": "r", "metrics.json": "{}"}, seed=1)
    _job(monkeypatch, "report", "results/config.yaml", "results/report", ["results/rl/sqa/grpo/s1/metrics.json"],
         {"index.html": "<html>"})
    return wd


def _edit(path: Path, section: str, key: str, value) -> None:
    d = yaml.safe_load(path.read_text())
    d[section][key] = value
    path.write_text(yaml.safe_dump(d, sort_keys=False))


def test_a_clean_results_folder_audits_clean(wd):
    assert len(manifests(Path("results"))) == 4
    assert audit(Path("results")) == []


def test_paths_are_relative_to_the_manifest(wd):
    m = json.loads(Path("results/rl/sqa/grpo/s1/manifest.json").read_text())
    assert m["paths"] == "relative to the manifest"
    assert set(m["inputs"]) == {"../../../../data/sqa/train.jsonl", "../../../../sft/sqa/model/w.bin"}
    assert set(m["outputs"]) == {"model/w.bin", "metrics.json"}
    assert m["config_file"] == "../../../../config/sqa/rl-grpo.yaml" and m["config_slice"] == "rl-grpo"
    assert json.loads(Path("results/report/manifest.json").read_text())["config_slice"] is None


def test_audit_from_another_folder_and_after_moving_the_results(wd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the cwd-relative paths the jobs were given mean nothing here
    assert audit(wd / "results") == []
    moved = tmp_path / "elsewhere" / "run1"
    moved.parent.mkdir()
    shutil.move(wd / "results", moved)
    assert audit(moved) == []
    (moved / "sft" / "sqa" / "model" / "w.bin").write_text("tampered")
    assert audit(moved) == [f"{moved}/rl/sqa/grpo/s1/manifest.json: input ../../../../sft/sqa/model/w.bin changed since the job ran",
                            f"{moved}/sft/sqa/manifest.json: output model/w.bin changed since the job ran"]


def test_an_absolute_input_outside_the_results_stays_absolute(wd, tmp_path, monkeypatch):
    dataset = tmp_path / "shared" / "train.jsonl"
    dataset.parent.mkdir()
    dataset.write_text("{}\n")
    _job(monkeypatch, "sft", "results/config/sqa/sft.yaml", "results/sft/ast", [str(dataset), str(wd / "results/data/sqa/test.jsonl")],
         {"model/w.bin": "w"})
    m = json.loads(Path("results/sft/ast/manifest.json").read_text())
    assert set(m["inputs"]) == {str(dataset), str(wd / "results/data/sqa/test.jsonl")}
    cfg = load_config("results/config/sqa/sft.yaml")  # with root: an absolute path inside it is stored relative
    m = write_manifest(Path("results/sft/ast"), cfg, "sft", [dataset, wd / "results/data/sqa/test.jsonl"], time.time(),
                       root=wd / "results")
    assert set(m["inputs"]) == {str(dataset), "../../data/sqa/test.jsonl"}
    dataset.write_text("{}\n{}\n")
    assert audit(Path("results")) == [f"results/sft/ast/manifest.json: input {dataset} changed since the job ran"]


def test_an_edited_resolved_config_is_named_key_by_key(wd):
    _edit(Path("results/config.yaml"), "rl", "lr", 0.5)
    assert audit(Path("results")) == [
        "results/report/manifest.json: rl.lr: job ran with 0.001, results/config.yaml says 0.5",
        "results/rl/sqa/grpo/s1/manifest.json: rl.lr: job ran with 0.001, results/config.yaml says 0.5",
    ]
    _edit(Path("results/config.yaml"), "rl", "lr", 0.001)
    _edit(Path("results/config.yaml"), "sft", "lr", 0.1)  # read by the sft job (and the report) only
    assert audit(Path("results")) == [
        "results/report/manifest.json: sft.lr: job ran with 0.002, results/config.yaml says 0.1",
        "results/sft/sqa/manifest.json: sft.lr: job ran with 0.002, results/config.yaml says 0.1",
    ]


def test_an_edited_slice_file_is_named(wd):
    _edit(Path("results/config/sqa/rl-grpo.yaml"), "rl", "group_size", 16)
    [problem] = audit(Path("results"))
    assert problem.startswith("results/rl/sqa/grpo/s1/manifest.json: rl.group_size: job ran with ")
    assert problem.endswith(", results/config/sqa/rl-grpo.yaml says 16")


def test_an_invalid_or_missing_config_is_reported(wd):
    Path("results/config/sqa/sft.yaml").unlink()
    _edit(Path("results/config.yaml"), "rl", "lr", -1.0)
    problems = audit(Path("results"))
    assert "results/sft/sqa/manifest.json: its config file results/config/sqa/sft.yaml is missing" in problems
    assert any(p.startswith("results/rl/sqa/grpo/s1/manifest.json: cannot check its config against results/config.yaml: ")
               and "rl.lr" in p for p in problems)


def test_an_edited_manifest_config_breaks_its_hash(wd):
    path = Path("results/sft/sqa/manifest.json")
    m = json.loads(path.read_text())
    m["config"]["sft"]["lr"] = 0.5
    path.write_text(json.dumps(m))
    problems = audit(Path("results"))
    assert problems[0] == (f"{path}: config_hash {m['config_hash']} does not match the config it records (manifest edited?)")
    assert problems[1:] == [f"{path}: sft.lr: job ran with 0.5, results/config/sqa/sft.yaml says 0.002",
                            f"{path}: sft.lr: job ran with 0.5, results/config.yaml says 0.002"]


def test_a_field_added_to_the_code_since_the_job_ran_is_no_config_edit(wd):
    import hashlib

    path = Path("results/rl/sqa/grpo/s1/manifest.json")
    m = json.loads(path.read_text())
    del m["config"]["rl"]["group_size"]  # the job ran before rl.group_size existed
    m["config_hash"] = hashlib.sha256(json.dumps(m["config"], sort_keys=True).encode()).hexdigest()[:16]
    path.write_text(json.dumps(m))
    assert audit(Path("results")) == []


def test_stale_copies_in_mlflow_stores_and_hidden_folders_are_skipped(wd, monkeypatch):
    for copy in ("results/mlartifacts/1/abc/artifacts", "results/mlruns/1/abc/artifacts", "results/rl/sqa/grpo/.s1.old",
                 "results/sft/.sqa.tmp"):
        shutil.copytree("results/sft/sqa", copy)
    # a legitimate rerun of the SFT job: new weights, new manifest; the copies are stale
    _job(monkeypatch, "sft", "results/config/sqa/sft.yaml", "results/sft/sqa", ["results/data/sqa"], {"model/w.bin": "w2"})
    _job(monkeypatch, "rl", "results/config/sqa/rl-grpo.yaml", "results/rl/sqa/grpo/s1",
         ["results/data/sqa/train.jsonl", "results/sft/sqa/model"], {"model/w.bin": "r2", "metrics.json": "{}"}, seed=1)
    assert len(manifests(Path("results"))) == 4
    assert audit(Path("results")) == []


def test_a_wrong_path_is_an_error(wd, tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "mlartifacts").mkdir(parents=True)
    shutil.copy("results/sft/sqa/manifest.json", empty / "mlartifacts")
    for path, why in ((tmp_path / "typo", "no such folder"), (empty, "no manifest.json under it"),
                      (Path("results/config.yaml"), "not a folder")):
        with pytest.raises(AuditError, match=why):
            audit(path)
        with pytest.raises(SystemExit) as e:
            main(["audit", "--results", str(path)])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"speechrl audit: error: {path}: {why}")


def test_the_cli_prints_problems_and_exits_1(wd, capsys):
    main(["audit", "--results", "results"])
    assert capsys.readouterr().out.splitlines() == ["audit: 4 manifests, 0 problems"]
    _edit(Path("results/config.yaml"), "rl", "lr", 0.5)
    with pytest.raises(SystemExit) as e:
        main(["audit", "--results", "results"])
    assert e.value.code == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "audit: 4 manifests, 2 problems" and "rl.lr: job ran with 0.001, results/config.yaml says 0.5" in out[0]


def test_an_older_manifest_with_cwd_relative_paths_is_reported_as_such(wd, tmp_path, monkeypatch):
    path = Path("results/sft/sqa/manifest.json")
    m = json.loads(path.read_text())
    del m["paths"], m["config_file"], m["config_slice"]
    m["inputs"] = {f"results/data/sqa/{k.rsplit('/', 1)[1]}": v for k, v in m["inputs"].items()}  # + its manifest
    m["outputs"] = {f"results/sft/sqa/{k}": v for k, v in m["outputs"].items()}
    path.write_text(json.dumps(m))
    assert audit(Path("results")) == []  # from the pipeline's folder it still checks
    monkeypatch.chdir(tmp_path)
    assert audit(wd / "results") == [f"{wd}/results/sft/sqa/manifest.json: 4 recorded files not found from {tmp_path}: "
                                     "an older manifest, with paths relative to the pipeline's working directory "
                                     "(audit from there, or rerun the job)"]


# --------------------------------------------------------------------------------------- git
def _head() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def test_the_commit_is_the_package_repository_not_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as `snakemake --directory DIR`: the cwd is no git checkout
    state = git_state()
    assert state["commit"] == _head() and isinstance(state["dirty"], bool) and "reason" not in state


@pytest.mark.parametrize("inside_a_repo", [False, True])
def test_an_installed_package_records_unknown_with_a_reason(tmp_path, inside_a_repo):
    site = tmp_path / "site-packages"
    shutil.copytree(ROOT / "src" / "speechrl", site / "speechrl", ignore=shutil.ignore_patterns("__pycache__"))
    if inside_a_repo:  # a venv inside some other checkout: that repository's commit is not the package's
        subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                        "--allow-empty", "-m", "other"], check=True)
    code = "import json; from speechrl.audit import git_state; print(json.dumps(git_state()))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout
    state = json.loads(out)
    assert state["commit"] == "unknown" and state["dirty"] is None
    assert str(site / "speechrl") in state["reason"]
    assert ("not tracked by the git repository" if inside_a_repo else "not in a git checkout") in state["reason"]
