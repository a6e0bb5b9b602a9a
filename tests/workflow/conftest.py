"""Fixtures of the workflow tests: a real single-node SLURM cluster for the `slurm` tests."""

from __future__ import annotations

import pytest

from workflow.slurm_cluster import SlurmCluster, SlurmError


@pytest.fixture(scope="module")
def slurm_cluster():
    """A slurm-wlm + munge cluster of two virtual nodes on this machine (the first with one fake GPU),
    started for the module, stopped after.

    If it cannot start, the test fails with the reason (never skipped: CI must run the SLURM tests)."""
    cluster = SlurmCluster(gpus=1, nodes=2)
    try:
        cluster.start()
    except SlurmError as e:
        cluster.stop()
        pytest.fail(f"the test SLURM cluster did not start: {e}", pytrace=False)
    print(f"[slurm] cluster up in {cluster.started_s:.2f} s")
    yield cluster
    cluster.stop()
