"""The benchmarks still run (smoke: tiny sizes, one repeat). They print figures; nothing is timed here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_train_steps_benchmark_runs():
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "train_steps.py"), "--config", str(ROOT / "tests" / "workflow" / "tiny.yaml"),
                        "--repeats", "1"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]
    for line in ("sft step:", "rollout:", "rl step (grpo):", "greedy decoding:"):
        assert line in p.stdout


@pytest.mark.slow
def test_algos_benchmark_runs():
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "algos.py"), "--prompts", "2", "--group", "4", "--length", "16",
                        "--repeats", "1"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "leaf_tree" in p.stdout and "gspo_segment_window" in p.stdout
