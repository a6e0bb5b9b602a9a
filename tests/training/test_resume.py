"""Checkpoint and resume: a run stopped by SIGUSR1 / SIGTERM and resumed ends with the weights, metrics and
history of an uninterrupted run, bit for bit on CPU (SFT, the control and every RL preset)."""

from __future__ import annotations

import math
import os
import signal

import pytest
import torch

from speechrl import signals
from speechrl.algos import PRESETS, resolve
from speechrl.models.build import load
from speechrl.rewards.cache import clear_cache
from speechrl.training.checkpoint import Checkpoint, fingerprint
from speechrl.training.data import load_split
from speechrl.training.rl import train_rl
from speechrl.training.sft import continue_sft, train_sft


@pytest.fixture(autouse=True)
def _default_handlers():
    yield
    signals.uninstall()


def _weights(path):
    model, _ = load(path)
    return model.state_dict()


def _same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    differ = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:3]}"


def _same(a, b):
    """Equal metrics (NaN equals NaN; time/* and seconds are wall-clock and not compared)."""
    assert a.keys() == b.keys()
    for k in a:
        if k.startswith("time/") or k == "seconds":
            continue
        if isinstance(a[k], float) and math.isnan(a[k]):
            assert isinstance(b[k], float) and math.isnan(b[k]), k
        else:
            assert a[k] == b[k], (k, a[k], b[k])


class Recorder:
    """log_metrics that records every step and sends ``signum`` to this process after step ``stop_at``."""

    def __init__(self, stop_at: int = 0, signum: int = signal.SIGUSR1) -> None:
        self.steps: dict[int, dict] = {}
        self.stop_at, self.signum = stop_at, signum

    def __call__(self, metrics, step):
        self.steps[step] = dict(metrics)
        if step == self.stop_at:
            os.kill(os.getpid(), self.signum)


def _interrupted_then_resumed(run, tmp_path, stop_at, signum=signal.SIGUSR1, saves_best=False):
    """``run(out, log, ckpt)`` stopped after step ``stop_at`` by ``signum``, then run again to the end
    (``saves_best``: the loop writes its best model to ``out`` while it trains, as SFT does)."""
    ckpt_dir = tmp_path / "ckpt"
    first = Recorder(stop_at, signum)
    with pytest.raises(signals.Interrupted) as e:
        run(tmp_path / "out", first, Checkpoint(ckpt_dir, "fp"))
    assert e.value.step == stop_at and e.value.exit_code == 128 + signum
    assert sorted(first.steps) == list(range(1, stop_at + 1))
    assert saves_best or not (tmp_path / "out").exists()  # stopped before writing the final model
    second = Recorder()
    summary = run(tmp_path / "out", second, Checkpoint(ckpt_dir, "fp"))
    assert min(second.steps) == stop_at + 1  # no step replayed
    return summary, second


def test_sft_resumes_exactly(tiny_model_dir, tiny_data, tiny_cfg, tmp_path):
    tiny_cfg.sft.max_steps, tiny_cfg.sft.eval_every, tiny_cfg.sft.patience = 6, 2, 10

    def run(out, log, ckpt=None):
        model, proc = load(tiny_model_dir)
        train, valid = (load_split(tiny_data["sqa"], s, proc) for s in ("train", "valid"))
        return train_sft(tiny_cfg, model, proc, train, valid, out / "model", log, ckpt=ckpt)

    whole = Recorder()
    expected = run(tmp_path / "whole", whole)
    summary, resumed = _interrupted_then_resumed(run, tmp_path / "cut", stop_at=3, signum=signal.SIGTERM, saves_best=True)
    _same_weights(tmp_path / "whole" / "model", tmp_path / "cut" / "out" / "model")
    _same({k: v for k, v in summary.items() if k != "history"}, {k: v for k, v in expected.items() if k != "history"})
    assert summary["history"] == expected["history"]
    for step, m in resumed.steps.items():
        _same(m, whole.steps[step])


def test_control_resumes_exactly(tiny_model_dir, tiny_data, tiny_cfg, tmp_path):
    def run(out, log, ckpt=None):
        model, proc = load(tiny_model_dir)
        train = load_split(tiny_data["sqa"], "train", proc)
        return continue_sft(tiny_cfg, model, proc, train, out / "model", steps=4, batch_size=4, lr=1e-3,
                            log_metrics=log, ckpt=ckpt)

    whole = Recorder()
    expected = run(tmp_path / "whole", whole)
    summary, resumed = _interrupted_then_resumed(run, tmp_path / "cut", stop_at=2)
    _same_weights(tmp_path / "whole" / "model", tmp_path / "cut" / "out" / "model")
    assert summary["history"] == expected["history"]
    for step, m in resumed.steps.items():
        _same(m, whole.steps[step])


@pytest.mark.parametrize("preset", PRESETS.names())
def test_rl_resumes_exactly(preset, tiny_model_dir, tiny_data, tiny_cfg, tmp_path):
    tiny_cfg.rl.steps = 2
    tiny_cfg.rl.rewards = {"chrf": 1.0}

    def run(out, log, ckpt=None):
        clear_cache()  # each run is its own process in real life
        policy, proc = load(tiny_model_dir)
        train = load_split(tiny_data["sqa"], "train", proc)
        return train_rl(tiny_cfg, resolve(preset, tiny_cfg.rl), policy, proc, train, out / "model", log, ckpt=ckpt)

    whole = Recorder()
    expected = run(tmp_path / "whole", whole)
    summary, resumed = _interrupted_then_resumed(run, tmp_path / "cut", stop_at=1)
    _same_weights(tmp_path / "whole" / "model", tmp_path / "cut" / "out" / "model")
    assert len(summary["history"]) == 2
    for got, want in zip(summary["history"], expected["history"]):
        _same(got, want)
    for step, m in resumed.steps.items():
        _same(m, whole.steps[step])  # reward cache hits included: the in-process cache is checkpointed


def test_periodic_checkpoints_and_a_changed_input_starts_afresh(tiny_model_dir, tiny_data, tiny_cfg, tmp_path):
    model, proc = load(tiny_model_dir)
    train = load_split(tiny_data["sqa"], "train", proc)
    ckpt = Checkpoint(tmp_path / "ckpt", fingerprint("cfg", [tiny_data["sqa"]]), every=2)
    continue_sft(tiny_cfg, model, proc, train, tmp_path / "m", steps=5, batch_size=4, lr=1e-3, ckpt=ckpt)
    assert ckpt.exists() and (tmp_path / "ckpt" / "latest" / "loop.json").is_file()
    # the last periodic checkpoint is step 4 (none at the final step: the job's outputs follow)
    from speechrl.io import read_json

    assert read_json(tmp_path / "ckpt" / "latest" / "loop.json")["step"] == 4
    assert Checkpoint(tmp_path / "ckpt", fingerprint("other config", [tiny_data["sqa"]])).exists() is False
    # an incomplete save (no loop.json) is ignored, the previous complete one is used
    (tmp_path / "ckpt" / ".next").mkdir()
    assert ckpt.exists()
