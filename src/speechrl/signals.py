"""Pre-emption signals: SIGTERM / SIGUSR1 ask a training loop to checkpoint and stop.

SLURM sends SIGTERM when it pre-empts or cancels a job (then SIGKILL after ``KillWait``), and the signal
a user asks for ahead of the time limit with ``--signal=USR1@SECONDS`` (the site file's
``cluster.slurm_extra``; README "Resume after a kill"). A handler only records the request; the loop
polls :func:`requested` between steps (agreeing across ranks through an all-reduce), saves its checkpoint
and raises :class:`Interrupted`, which ends the job's MLflow run as KILLED and exits with ``128 + signal``
so that Snakemake (``retries``) or SLURM (``--requeue``) starts it again and it resumes.
"""

from __future__ import annotations

import signal
from types import FrameType

HANDLED = (signal.SIGTERM, signal.SIGUSR1)
_requested: list[int] = []
_previous: dict[int, object] = {}


class Interrupted(Exception):
    """The job stopped on a signal after saving its checkpoint; rerun it to resume."""

    mlflow_status = "KILLED"  # speechrl.tracking ends the job's run with this status

    def __init__(self, signum: int, step: int, checkpoint: str) -> None:
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} after step {step}; checkpoint {checkpoint}; rerun the job to resume")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _record(signum: int, _frame: FrameType | None) -> None:
    _requested.append(signum)


def install() -> None:
    """Record SIGTERM / SIGUSR1 instead of dying (main thread only; a no-op elsewhere); forget earlier ones."""
    _requested.clear()
    try:
        for s in HANDLED:
            previous = signal.signal(s, _record)
            if previous is not _record:
                _previous[s] = previous
    except ValueError:  # not the main thread (e.g. a test runner's worker thread)
        pass


def uninstall() -> None:
    """Restore the handlers :func:`install` replaced (a process that goes on after its training loop)."""
    for s, handler in list(_previous.items()):
        signal.signal(s, handler)
        del _previous[s]
    _requested.clear()


def requested() -> int:
    """The first signal received since :func:`install` (0 if none)."""
    return _requested[0] if _requested else 0


def reset() -> None:
    _requested.clear()
