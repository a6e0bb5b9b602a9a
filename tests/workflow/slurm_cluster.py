"""A real single-node SLURM cluster (Debian slurm-wlm + munge) for the workflow tests.

Started as root from the packages scripts/setup.sh installs (slurm-wlm slurmctld slurmd slurm-client
munge): munged (as user munge), slurmctld, slurmd, with the settings measured in this sandbox
(STACK_NOTES.md "SLURM, real, on one machine"): proctrack/linuxproc, task/none, no cgroup,
select/cons_tres with CR_Core_Memory, DefMemPerCPU, MinJobAge 600 (>= 120 so the executor plugin's squeue
status command sees finished jobs; 600 keeps every job of a test module in `scontrol show job`),
ReturnToService=2, the node line from `slurmd -C`, and one fake GPU (GRES gpu with File=/dev/null) so
that `gpu=1` jobs are scheduled with their GRES. With nodes=2 it runs two slurmd (`slurmd -N n1`,
`slurmd -N n2`, ports 17001/17002) on this host: two virtual nodes, each with all of this machine's
CPUs (each slurmd checks its node line against the real hardware), so that a multi-node job really
spreads over two nodes (srun starts one task on each).

The configuration goes to /etc/slurm/slurm.conf: the plugin's job step strips SLURM_* variables
(SLURM_CONF too) before its inner srun, so a config elsewhere is not found inside jobs.
Anything that keeps the cluster from starting raises SlurmError with the reason (the tests fail, they
are never skipped).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

CONF_DIR = Path("/etc/slurm")
STATE = Path("/var/spool/speechrl-slurm")
PACKAGES = "slurm-wlm slurmctld slurmd slurm-client munge"


class SlurmError(RuntimeError):
    """The test cluster could not start (message: what failed and how to fix it)."""


def _run(*cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode:
        raise SlurmError(f"`{' '.join(cmd)}` failed ({p.returncode}): {(p.stderr or p.stdout).strip()[-2000:]}")
    return p


class SlurmCluster:
    """Start with `start()`, stop with `stop()`; `scontrol(...)` / `squeue(...)` query it."""

    def __init__(self, gpus: int = 1, nodes: int = 1, requeue_delay: int | None = None):
        """``requeue_delay``: about how many seconds a requeued job waits before it starts again (AuthInfo
        cred_expire, the wait SLURM imposes, and the backfill scheduler's interval bf_interval, which starts
        it then); None = SLURM's defaults (120 s + up to 30 s)."""
        self.gpus, self.nodes, self.requeue_delay = gpus, nodes, requeue_delay
        self.host = socket.gethostname().split(".")[0]
        # one node: this host by name; several: virtual nodes n1..nN, one slurmd each on this host
        self.names = [self.host] if nodes == 1 else [f"n{i + 1}" for i in range(nodes)]
        self.started_s: float | None = None
        self._backup: dict[Path, bytes | None] = {}
        self._munged = False  # started by us: stopped by stop()

    # -- configuration --------------------------------------------------------------------------
    def _node_lines(self) -> str:
        """The node line(s) from `slurmd -C`; several virtual nodes each get all CPUs and a share of memory
        (each slurmd checks its line against the real machine), the fake GPU sits on the first."""
        line = _run("slurmd", "-C").stdout.splitlines()[0]  # NodeName=<host> CPUs=... RealMemory=...
        fields = [f for f in line.split() if not f.startswith(("UpTime", "NodeName="))]
        # leave memory for the test runner itself
        mem = max(1000, (int(next(f for f in fields if f.startswith("RealMemory=")).split("=")[1]) - 2000) // self.nodes)
        fields = [f"RealMemory={mem}" if f.startswith("RealMemory=") else f for f in fields]
        lines = []
        for i, name in enumerate(self.names):
            addr = "" if self.nodes == 1 else f" NodeHostname={self.host} NodeAddr=127.0.0.1 Port={17001 + i}"
            gres = f" Gres=gpu:{self.gpus}" if self.gpus and i == 0 else ""
            lines.append(f"NodeName={name}{addr} {' '.join(fields)}{gres} State=UNKNOWN")
        return "\n".join(lines)

    def _requeue_lines(self) -> str:
        if self.requeue_delay is None:
            return ""
        return f"AuthInfo=cred_expire={self.requeue_delay}\nSchedulerParameters=bf_interval={self.requeue_delay}"

    def config(self) -> dict[str, str]:
        """File name -> content of the cluster's configuration."""
        slurm = f"""# speechrl test cluster (tests/workflow/slurm_cluster.py); single node, no accounting.
ClusterName=speechrl-test
SlurmctldHost={self.host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={STATE}/ctld
SlurmdSpoolDir={STATE}/d-%n
SlurmctldPidFile={STATE}/slurmctld.pid
SlurmdPidFile={STATE}/slurmd-%n.pid
SlurmctldLogFile={STATE}/slurmctld.log
SlurmdLogFile={STATE}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=600
ReturnToService=2
SchedulerType=sched/backfill
MpiDefault=none
GresTypes=gpu
{self._requeue_lines()}
{self._node_lines()}
PartitionName=debug Nodes={",".join(self.names)} Default=YES MaxTime=INFINITE State=UP
"""
        files = {"slurm.conf": slurm}
        if self.gpus:
            files["gres.conf"] = "".join(f"NodeName={self.names[0]} Name=gpu File=/dev/null Count=1\n" for _ in range(self.gpus))
        return files

    # -- life cycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 30) -> "SlurmCluster":
        t0 = time.monotonic()
        missing = [b for b in ("munged", "slurmctld", "slurmd", "sbatch", "scontrol") if not shutil.which(b)
                   and not Path(f"/usr/sbin/{b}").exists()]
        if missing:
            raise SlurmError(f"SLURM binaries missing: {', '.join(missing)}; install `apt-get install {PACKAGES}` "
                             "(scripts/setup.sh does)")
        if os.geteuid() != 0:
            raise SlurmError("the test SLURM cluster starts daemons and writes /etc/slurm: run the slurm tests as root")
        if _run("scontrol", "ping", check=False, timeout=10).stdout.count("UP"):
            raise SlurmError("a slurmctld is already running on this machine; stop it (`scontrol shutdown`) first")
        shutil.rmtree(STATE, ignore_errors=True)
        for d in ("ctld", *(f"d-{n}" for n in self.names)):
            (STATE / d).mkdir(parents=True)
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        for name, text in self.config().items():
            path = CONF_DIR / name
            self._backup[path] = path.read_bytes() if path.exists() else None
            path.write_text(text)
        self._start_munge()
        _run("/usr/sbin/slurmctld")  # daemonises
        for name in self.names:
            _run("/usr/sbin/slurmd", *(["-N", name] if self.nodes > 1 else []))
        self._wait_idle(timeout)
        self.started_s = time.monotonic() - t0
        return self

    def _start_munge(self) -> None:
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            _run("mungekey", "--create")
            shutil.chown(key, "munge", "munge")
        for d in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
            Path(d).mkdir(parents=True, exist_ok=True)
            shutil.chown(d, "munge", "munge")
        if _run("munge", "-n", check=False).returncode == 0:
            return  # already running (left running at stop)
        _run("runuser", "-u", "munge", "--", "/usr/sbin/munged")
        self._munged = True
        for _ in range(50):
            if _run("munge", "-n", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise SlurmError("munged did not answer (`munge -n` fails); see /var/log/munge/munged.log")

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ping = _run("scontrol", "ping", check=False, timeout=10).stdout
            state = _run("sinfo", "-h", "-o", "%T", check=False, timeout=10).stdout.strip()
            if "UP" in ping and set(state.split()) == {"idle"}:
                return
            time.sleep(0.2)
        logs = "\n".join(p.read_text()[-1500:] for p in sorted(STATE.glob("*.log")))
        raise SlurmError(f"SLURM did not come up within {timeout:.0f} s (scontrol ping: {ping.strip()!r}, "
                         f"sinfo: {state!r}).\n{logs}")

    def stop(self) -> None:
        _run("scancel", "--user", "root", check=False)
        _run("scontrol", "shutdown", check=False, timeout=20)  # stops slurmctld and slurmd
        for pidfile in (STATE / "slurmctld.pid", *(STATE / f"slurmd-{n}.pid" for n in self.names)):
            for _ in range(50):
                if not pidfile.exists():
                    break
                time.sleep(0.1)
            else:  # no controller to take the shutdown (e.g. it failed to start): stop the daemon we started
                _run("kill", pidfile.read_text().strip(), check=False)
        pid = Path("/run/munge/munged.pid")
        if self._munged and pid.exists():
            _run("kill", pid.read_text().strip(), check=False)
        for path, data in self._backup.items():
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)

    # -- queries --------------------------------------------------------------------------------
    def scontrol(self, *args: str) -> str:
        return _run("scontrol", *args).stdout

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job -o ID` as key -> value (visible MinJobAge = 600 s after it ends)."""
        out = self.scontrol("show", "job", "-o", "-d", job_id)
        return dict(f.split("=", 1) for f in out.split() if "=" in f)
