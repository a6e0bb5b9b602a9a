"""Resumable training state: every ``train.checkpoint_every`` steps / ``train.checkpoint_minutes``, and on
SIGTERM / SIGUSR1 (:mod:`speechrl.signals`), a training loop saves what it needs to continue exactly.

A checkpoint folder (``<job output>/../.<name>.ckpt``, beside the job's output folder, so Snakemake's
removal of an incomplete output keeps it) holds::

    latest/backend/        weights + optimiser + lr schedule (the backend's save_state: every rank's ZeRO shard)
    latest/rng-<rank>.json torch (CPU and CUDA), numpy and python global RNG states of each rank
    latest/loop.json       the loop's own state (step, its sampler RNG, running metrics, history, ...),
                           the fingerprint, written last: a folder without it is incomplete and ignored
    run.json               the job's MLflow run id (written by the CLI when the job starts)

``latest`` is replaced as a whole (written as ``.next``, then swapped), so a kill during a save leaves the
previous checkpoint. The fingerprint (config hash, world size, size and mtime of every input file) must
match for a checkpoint to be resumed: after a change of config, data or upstream model the job starts
afresh (a log line says why). On CPU a resumed run's weights and metrics equal an uninterrupted run's
bit for bit (tests/training/test_resume.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechrl import signals
from speechrl.io import read_json, write_json

log = logging.getLogger("speechrl")


def fingerprint(config_hash: str, inputs: list[Path], world: int = 1) -> str:
    """What a checkpoint must agree with to be resumed: config, world size, and each input file's size + mtime."""
    h = hashlib.sha256(f"{config_hash}:{world}".encode())
    for root in inputs:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for f in files:
            st = f.stat()
            h.update(f"{f.relative_to(root) if root.is_dir() else f.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def rng_state() -> dict[str, Any]:
    """The global RNG states of this process, as JSON."""
    np_state = np.random.get_state()
    state = {"python": _py(random.getstate()), "torch": torch.get_rng_state().tolist(),
             "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(py_state(state["python"]))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def _py(state: tuple[Any, ...]) -> list[Any]:
    return [state[0], list(state[1]), state[2]]


def py_state(state: list[Any]) -> tuple[Any, ...]:
    """A ``random.Random`` state from its JSON form (:func:`random_state`)."""
    return (state[0], tuple(state[1]), state[2])


def random_state(rng: random.Random) -> list[Any]:
    """A ``random.Random``'s state as JSON."""
    return _py(rng.getstate())


class Checkpoint:
    """One job's checkpoints: ``resume`` at start, ``after_step`` after every step, ``remove`` once the job's
    outputs are in place. Every rank calls every method (the backend's collectives run inside)."""

    def __init__(self, root: Path, fingerprint: str, every: int = 0, minutes: float = 0.0) -> None:
        self.root, self.fp, self.every, self.seconds = Path(root), fingerprint, every, minutes * 60
        self.be: Any = None
        self.on_save: Callable[[], None] | None = None  # rank 0, before a checkpoint is complete (flush MLflow metrics)
        self.last_save = time.monotonic()
        signals.install()

    @property
    def latest(self) -> Path:
        return self.root / "latest"

    def _complete(self) -> Path | None:
        """The newest complete checkpoint folder (``latest``, or ``.old`` if a swap was cut short)."""
        for d in (self.latest, self.root / ".old"):
            if (d / "loop.json").is_file():
                return d
        return None

    def exists(self) -> bool:
        """A complete checkpoint with this job's fingerprint is there to resume."""
        d = self._complete()
        return d is not None and read_json(d / "loop.json").get("fingerprint") == self.fp

    def resume(self, be: Any) -> dict[str, Any] | None:
        """Restore backend state and RNGs from the checkpoint; the loop's state, or None to start afresh."""
        self.be = be
        d = self._complete()
        if d is None:
            return None
        loop = read_json(d / "loop.json")
        if loop.get("fingerprint") != self.fp:
            if be.is_main:
                log.warning(f"checkpoint {d} is for another config, world size or input (fingerprint "
                            f"{loop.get('fingerprint')} != {self.fp}): starting afresh")
            return None
        be.load_state(d / "backend")
        rng = d / f"rng-{be.rank}.json"
        if rng.is_file():
            set_rng_state(read_json(rng))
        if be.is_main:
            log.info(f"resuming from checkpoint {d} after step {loop['step']}")
        self.last_save = time.monotonic()
        return loop["state"] | {"step": loop["step"]}

    def after_step(self, step: int, total: int, state: Callable[[], dict[str, Any]]) -> None:
        """Save if one is due (steps, minutes) or a signal came (on any rank); after a signal raise
        :class:`~speechrl.signals.Interrupted`. ``state()`` builds the loop's JSON state (only when saving)."""
        be = self.be
        flags = torch.tensor([float(signals.requested()), time.monotonic() - self.last_save], dtype=torch.float64)
        sig, elapsed = be.all_reduce(flags, "max").tolist()
        signum = int(sig)
        due = (self.every and step % self.every == 0) or (self.seconds and elapsed >= self.seconds)
        if signum or (due and step < total):
            self.save(step, state())
        if signum:
            raise signals.Interrupted(signum, step, str(self.latest))

    def save(self, step: int, state: dict[str, Any]) -> None:
        be, nxt = self.be, self.root / ".next"
        t0 = time.perf_counter()
        if be.is_main:
            shutil.rmtree(nxt, ignore_errors=True)
            nxt.mkdir(parents=True)
        be.barrier()
        be.save_state(nxt / "backend")
        write_json(nxt / f"rng-{be.rank}.json", rng_state())
        be.barrier()
        if be.is_main:
            if self.on_save:  # what was logged up to this step reaches the tracking store (or its spool) first
                self.on_save()
            write_json(nxt / "loop.json", {"step": step, "fingerprint": self.fp, "state": state})
            old = self.root / ".old"
            shutil.rmtree(old, ignore_errors=True)
            if self.latest.exists():
                self.latest.rename(old)
            nxt.rename(self.latest)
            shutil.rmtree(old, ignore_errors=True)
            log.info(f"checkpoint after step {step} -> {self.latest} ({time.perf_counter() - t0:.1f} s)")
        be.barrier()
        self.last_save = time.monotonic()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
