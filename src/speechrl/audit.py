"""Run manifests (every job writes one) and the reproducibility audit.

A manifest records what is needed to reproduce and to check a job: the resolved config and its
hash, the git commit (and whether the tree was dirty), package versions, sha256 of its inputs and
outputs, the seed, device, host and timings. ``audit`` re-hashes the inputs and outputs recorded
in every manifest under a results folder and reports what no longer matches.
"""

from __future__ import annotations

import importlib.metadata
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from speechrl.config import Config
from speechrl.io import checksums, read_json, sha256_file, write_json

PACKAGES = ("torch", "transformers", "peft", "deepspeed", "datasets", "sacrebleu", "jiwer", "mlflow", "snakemake",
            "numpy", "tokenizers", "rouge-score", "nltk", "bert-score", "sentence-transformers", "soundfile")


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    def run(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        commit = run("rev-parse", "HEAD") or "unknown"
        dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "unknown", False
    return {"commit": commit, "dirty": dirty}


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def fingerprint(path: Path) -> dict[str, str]:
    """sha256 of a file, or of every file in a folder."""
    if path.is_dir():
        return {f"{path}/{k}": v for k, v in checksums(path).items()}
    return {str(path): sha256_file(path)} if path.exists() else {}


def write_manifest(out_dir: Path, cfg: Config, stage: str, inputs: list[Path], started: float,
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``out_dir/manifest.json`` after the job's outputs are complete."""
    import torch

    in_sums: dict[str, str] = {}
    for p in inputs:
        in_sums.update(fingerprint(p))
    manifest = {
        "stage": stage,
        "config_hash": cfg.hash(),
        "seed": cfg.seed,
        "git": git_state(),
        "versions": versions(),
        "device": {"requested": cfg.device, "torch_threads": torch.get_num_threads(),
                   "cuda": torch.cuda.is_available(), "platform": platform.platform()},
        "host": socket.gethostname(),
        "command": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "seconds": round(time.time() - started, 2),
        "inputs": in_sums,
        "outputs": {k: v for k, v in fingerprint(out_dir).items() if not k.endswith("manifest.json")},
        "config": cfg.to_dict(),
        **(extra or {}),
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def audit(results: Path) -> list[str]:
    """Problems found: files whose sha256 differs from what a manifest recorded, or that vanished."""
    problems: list[str] = []
    for mpath in sorted(results.rglob("manifest.json")):
        m = read_json(mpath)
        for kind in ("inputs", "outputs"):
            for f, digest in m.get(kind, {}).items():
                p = Path(f)
                if not p.exists():
                    problems.append(f"{mpath}: {kind[:-1]} {f} is missing")
                elif sha256_file(p) != digest:
                    problems.append(f"{mpath}: {kind[:-1]} {f} changed since the job ran")
    return problems
