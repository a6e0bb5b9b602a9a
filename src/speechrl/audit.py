"""Run manifests (every job writes one) and the reproducibility audit.

A manifest records what is needed to reproduce and to check a job: the resolved config and its
hash, the config file it was given (and, for a pipeline job, its config slice), the git commit
(and whether the tree was dirty), package versions, sha256 of its inputs and outputs, the seed,
device, host and timings.

**Paths** in a manifest (inputs, outputs, config file) are stored relative to the manifest's own
folder (``../../data/sqa/train.jsonl``, ``model/config.json``), whatever the working directory of
the job, so a results folder can be audited from anywhere and moved as a whole. One exception:
a path the job was given as an absolute path (a dataset on shared storage) stays absolute, unless
it lies under ``root`` (a keyword of :func:`write_manifest`), the folder that moves as a whole. A
manifest says so with ``"paths": "relative to the manifest"``; older manifests recorded paths
relative to the pipeline's working directory, and the audit reports them as such.

**Git**: the commit is that of the repository holding the speechrl source (not of the working
directory, which for ``snakemake --directory DIR`` is a results folder); an installed package (no
checkout) records ``"unknown"`` with the reason.

:func:`audit` walks a results folder (skipping MLflow's artifact copies, ``mlartifacts/`` and
``mlruns/``, and hidden folders: ``.name.tmp`` / ``.name.old`` of unfinished writes) and reports:

* a recorded input or output that vanished or whose sha256 changed;
* a config that differs from what the job ran with, key by key (``rl.lr: job ran with 0.001,
  results/config.yaml says 0.5``): the config file the job was given, as it is now, and, for a
  pipeline job, its slice regenerated from the resolved config ``<results>/config.yaml``
  (:func:`speechrl.config.slice_config`), so an edit to either is caught;
* a manifest whose ``config_hash`` does not match its own ``config``.

A path that does not exist or holds no manifest is an :class:`AuditError` (``speechrl audit``
exits 2).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from speechrl.config import Config, ConfigError, load_config, slice_config
from speechrl.config.parser import task_cfg
from speechrl.config.slices import model_groups, slice_keys
from speechrl.io import checksums, read_json, sha256_file, write_json

PACKAGES = ("torch", "transformers", "peft", "deepspeed", "datasets", "sacrebleu", "jiwer", "mlflow", "snakemake",
            "numpy", "tokenizers", "rouge-score", "nltk", "bert-score", "sentence-transformers", "soundfile")
MANIFEST = "manifest.json"
RELATIVE = "relative to the manifest"  # the manifest's "paths" field: how its paths are stored
SKIP_DIRS = ("mlartifacts", "mlruns")  # MLflow artifact stores: copies of manifests, not jobs
_SLICE_HEADER = re.compile(r"# Config slice '([^']+)'")  # first line of `speechrl resolve-config --slice`


class AuditError(Exception):
    """The audit cannot run: the results path does not exist or holds no manifest."""


# --------------------------------------------------------------------------------------- manifest
def git_state() -> dict[str, Any]:
    """Commit and dirtiness of the git checkout holding the speechrl source (not of the cwd)."""
    import speechrl

    src = Path(speechrl.__file__).resolve().parent

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=src, capture_output=True, text=True, timeout=10)

    try:
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            why = head.stderr.strip().splitlines()[-1:] or ["git rev-parse failed"]
            return {"commit": "unknown", "dirty": None, "reason": f"{src} is not in a git checkout ({why[0]})"}
        # a venv inside some other checkout: the package file must be tracked by that repository
        if run("ls-files", "--error-unmatch", "__init__.py").returncode != 0:
            return {"commit": "unknown", "dirty": None,
                    "reason": f"{src} is not tracked by the git repository around it (an installed package)"}
        dirty = bool(run("status", "--porcelain", "--untracked-files=no").stdout.strip())
    except (OSError, subprocess.SubprocessError) as e:
        return {"commit": "unknown", "dirty": None, "reason": f"git did not run: {e}"}
    return {"commit": head.stdout.strip(), "dirty": dirty}


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def fingerprint(path: Path) -> dict[str, str]:
    """sha256 of a file, or of every file in a folder (keys: the path as given / its files)."""
    if path.is_dir():
        return {str(path / k): v for k, v in checksums(path).items()}
    return {str(path): sha256_file(path)} if path.exists() else {}


def stored_path(path: str | Path, manifest_dir: Path, root: Path | None = None) -> str:
    """How a manifest in ``manifest_dir`` records ``path`` (module docstring: relative to the
    manifest's folder, unless given absolute and outside ``root``)."""
    path = Path(path)
    full = Path(os.path.abspath(path))
    if path.is_absolute() and (root is None or not full.is_relative_to(os.path.abspath(root))):
        return str(full)
    return os.path.relpath(full, os.path.abspath(manifest_dir))


def slice_of(config_file: Path) -> str | None:
    """The config slice a file written by ``speechrl resolve-config --slice`` holds (None: a whole config)."""
    try:
        with open(config_file) as f:
            m = _SLICE_HEADER.match(f.readline())
    except OSError:
        return None
    return m.group(1) if m else None


def _argv_config() -> Path | None:
    argv = sys.argv
    return Path(argv[argv.index("--config") + 1]) if "--config" in argv[:-1] else None


def write_manifest(out_dir: Path, cfg: Config, stage: str, inputs: list[Path], started: float,
                   extra: dict[str, Any] | None = None, *, config_file: Path | None = None,
                   root: Path | None = None, command: list[str] | None = None) -> dict[str, Any]:
    """Write ``out_dir/manifest.json`` after the job's outputs are complete.

    ``config_file``: the config file the job was given (default: the ``--config`` argument of this
    process, if any). ``root``: the folder that moves as a whole (module docstring, *Paths*).
    ``command``: the command that reruns this output alone (default: this process's ``sys.argv``)."""
    import torch

    out_dir = Path(out_dir)
    config_file = config_file if config_file is not None else _argv_config()
    in_sums: dict[str, str] = {}
    for p in inputs:
        in_sums.update(fingerprint(Path(p)))
    manifest = {
        "stage": stage,
        "config_hash": cfg.hash(),
        "seed": cfg.seed,
        "git": git_state(),
        "versions": versions(),
        "device": {"requested": cfg.device, "torch_threads": torch.get_num_threads(),
                   "cuda": torch.cuda.is_available(), "platform": platform.platform()},
        "host": socket.gethostname(),
        "command": sys.argv if command is None else command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "seconds": round(time.time() - started, 2),
        "paths": RELATIVE,
        "config_file": stored_path(config_file, out_dir, root) if config_file is not None else None,
        "config_slice": slice_of(config_file) if config_file is not None else None,
        "inputs": {stored_path(k, out_dir, root): v for k, v in in_sums.items()},
        "outputs": {os.path.relpath(k, out_dir): v for k, v in fingerprint(out_dir).items() if Path(k).name != MANIFEST},
        "config": cfg.to_dict(),
        **(extra or {}),
    }
    write_json(out_dir / MANIFEST, manifest)
    return manifest


# --------------------------------------------------------------------------------------- audit
def manifests(results: Path) -> list[Path]:
    """Every job manifest under ``results``, skipping MLflow artifact stores and hidden folders."""
    results = Path(results)
    if not results.is_dir():
        raise AuditError(f"{results}: no such folder" if not results.exists() else f"{results}: not a folder")
    found = []
    for folder, dirs, files in os.walk(results):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        if MANIFEST in files:
            found.append(Path(folder) / MANIFEST)
    if not found:
        raise AuditError(f"{results}: no {MANIFEST} under it (not a results folder, or no job has finished)")
    return sorted(found)


def _show(value: Any) -> str:
    return json.dumps(value, default=str)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_diff(ran: dict[str, Any], now: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(dotted key, value the job ran with, value now)`` for every key of both that differs, compared
    as JSON values (a manifest stores tuples as lists). A key on one side only is a field the code
    added (with a default) or removed since the job ran, not an edit of the config: not compared."""
    a, b = (_flat(json.loads(json.dumps(d, default=str))) for d in (ran, now))
    return [(k, a[k], b[k]) for k in sorted(a.keys() & b.keys()) if a[k] != b[k]]


def _seed_override(command: list[str]) -> int | None:
    """``--seed N`` of a job's command (RL, control, evaluation: it replaces the config's seed)."""
    try:
        return int(command[command.index("--seed") + 1])
    except (ValueError, IndexError):
        return None


class _Auditor:
    def __init__(self) -> None:
        self.configs: dict[tuple[Path, str | None], Config | str] = {}

    def load(self, path: Path, slice_name: str | None = None, scope: str | None = None) -> Config | str:
        """The config in ``path`` (its slice ``slice_name`` if given, of task ``scope``'s settings, or of base
        model ``slice_name`` for the scope ``models``), or the error loading it."""
        key = (path.resolve(), slice_name, scope)
        if key not in self.configs:
            try:
                cfg = load_config(path, tasks=False)  # checked as a whole by the pipeline; here only compared
                if scope == "models":  # <results>/config/models/<group>.yaml: the init_model slice of the group's tasks
                    groups = model_groups(cfg.to_dict(), cfg.data.tasks)
                    if slice_name not in groups:
                        raise ConfigError(f"no base model '{slice_name}' in {path}; its models: {', '.join(groups)}")
                    cfg, slice_name = task_cfg(cfg, groups[slice_name][0]), "init_model"
                elif scope:
                    cfg = task_cfg(cfg, scope)
                self.configs[key] = slice_config(cfg, slice_name) if slice_name else cfg
            except (ConfigError, KeyError) as e:
                self.configs[key] = str(e.args[0]) if isinstance(e, KeyError) else str(e)
        return self.configs[key]

    def files(self, mpath: Path, m: dict[str, Any]) -> list[str]:
        problems, unfound = [], 0
        relative = m.get("paths") == RELATIVE
        for kind in ("inputs", "outputs"):
            for f, digest in m.get(kind, {}).items():
                p = mpath.parent / f if relative else Path(f)  # old manifests: cwd-relative
                if not p.exists():
                    if relative or p.is_absolute():
                        problems.append(f"{mpath}: {kind[:-1]} {f} is missing")
                    else:
                        unfound += 1
                elif sha256_file(p) != digest:
                    problems.append(f"{mpath}: {kind[:-1]} {f} changed since the job ran")
        if unfound:
            problems.append(f"{mpath}: {unfound} recorded files not found from {Path.cwd()}: an older manifest, with "
                            "paths relative to the pipeline's working directory (audit from there, or rerun the job)")
        return problems

    def config(self, mpath: Path, m: dict[str, Any]) -> list[str]:
        ran = m.get("config")
        if not isinstance(ran, dict):
            return [f"{mpath}: records no config"]
        problems = []
        if hashlib.sha256(json.dumps(ran, sort_keys=True).encode()).hexdigest()[:16] != m.get("config_hash"):
            problems.append(f"{mpath}: config_hash {m.get('config_hash')} does not match the config it records "
                            "(manifest edited?)")
        command = m.get("command") or []
        if m.get("paths") == RELATIVE:
            if not m.get("config_file"):
                return problems  # written by a caller that had no config file
            cfile = mpath.parent / m["config_file"]
            slice_name = m.get("config_slice")
        elif "--config" in command[:-1]:  # older manifest: cwd-relative --config (files() says so if not found)
            cfile = Path(command[command.index("--config") + 1])
            if not cfile.exists():
                return problems
            slice_name = slice_of(cfile)
        else:
            return problems
        cfile = Path(os.path.normpath(cfile))
        seed = _seed_override(command)

        def compare(where: Path, cfg: Config | str) -> None:
            if isinstance(cfg, str):
                problems.append(f"{mpath}: cannot check its config against {where}: {cfg}")
                return
            if seed is not None:
                cfg = dataclasses.replace(cfg, seed=seed)
            for key, old, new in config_diff(ran, cfg.to_dict()):
                problems.append(f"{mpath}: {key}: job ran with {_show(old)}, {where} says {_show(new)}")

        if cfile.exists():
            compare(cfile, self.load(cfile))
        else:
            problems.append(f"{mpath}: its config file {cfile} is missing")
        if slice_name:
            try:
                slice_keys(slice_name)
            except KeyError as e:
                problems.append(f"{mpath}: {e.args[0]}")
                return problems
            # workflow layout: <results>/config/tracking.yaml, <results>/config/<task>/<slice>.yaml and
            # <results>/config/models/<model>.yaml, from the resolved <results>/config.yaml
            scope = None if cfile.parent.name == "config" else cfile.parent.name
            resolved = (cfile.parent if scope is None else cfile.parent.parent).parent / "config.yaml"
            name = cfile.stem if scope == "models" else slice_name
            if resolved.exists():
                compare(resolved, self.load(resolved, name, scope))
            else:
                problems.append(f"{mpath}: the resolved config {resolved} (that its slice '{slice_name}' comes from) "
                                "is missing")
        return problems


def audit(results: Path) -> list[str]:
    """Problems found under ``results`` (module docstring); raises :class:`AuditError` for a path
    that does not exist or holds no manifest."""
    auditor, problems = _Auditor(), []
    for mpath in manifests(Path(results)):
        try:
            m = read_json(mpath)
        except ValueError as e:
            problems.append(str(e))
            continue
        if not isinstance(m, dict):
            problems.append(f"{mpath}: not a manifest (a JSON {type(m).__name__})")
            continue
        problems += auditor.files(mpath, m) + auditor.config(mpath, m)
    return problems
