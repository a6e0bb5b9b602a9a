"""Progress for long stages: a live bar (steps, rate, ETA) plus a summary line every N steps.

The bar goes to stderr when it is a terminal (tqdm, refreshed at most every 2 s); the summary lines go
through ``logging`` so they land in the job log (Snakemake redirects stderr there) and the console::

    with Progress(total=1500, desc="sft sqa", log_every=25) as p:
        for step in ...:
            p.update(loss=0.31, lr=1e-3)
    # [sft sqa] step 25/1500 (1.7%) 3.1 it/s eta 7m55s | loss 0.3100 lr 0.001
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from tqdm import tqdm

log = logging.getLogger("speechrl")


def setup_logging(level: int = logging.INFO) -> None:
    """Log lines as ``HH:MM:SS speechrl: message`` to stderr (once per process)."""
    if not log.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
        log.addHandler(h)
        log.setLevel(level)
        log.propagate = False


def fmt_seconds(s: float) -> str:
    s = int(max(s, 0))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


def fmt_metrics(metrics: dict[str, Any]) -> str:
    parts = []
    for k, v in metrics.items():
        parts.append(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}")
    return " ".join(parts)


class Progress:
    """Step counter with rate/ETA; ``update(**metrics)`` advances one step (or ``n``)."""

    def __init__(self, total: int, desc: str, log_every: int = 25, unit: str = "step", enabled: bool = True,
                 initial: int = 0) -> None:
        """``enabled=False`` (ranks other than 0) counts silently; ``initial``: steps already done (a resumed job)."""
        self.total, self.desc, self.log_every, self.unit, self.enabled = total, desc, max(1, log_every), unit, enabled
        self.n = self.initial = initial
        self.start = time.perf_counter()
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr, mininterval=2.0,
                        dynamic_ncols=False, ncols=100, leave=False, disable=not (enabled and sys.stderr.isatty()))

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def update(self, n: int = 1, **metrics: Any) -> None:
        prev = self.n
        self.n += n
        self.bar.update(n)
        if metrics:
            self.bar.set_postfix({k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in metrics.items()}, refresh=False)
        if self.enabled and (self.n // self.log_every > prev // self.log_every or self.n == self.total):
            self.summary(**metrics)

    def summary(self, **metrics: Any) -> None:
        rate = (self.n - self.initial) / self.elapsed if self.elapsed > 0 else 0.0
        eta = (self.total - self.n) / rate if rate > 0 else 0.0
        pct = 100.0 * self.n / self.total if self.total else 100.0
        tail = f" | {fmt_metrics(metrics)}" if metrics else ""
        self.bar.clear()
        log.info(f"[{self.desc}] {self.unit} {self.n}/{self.total} ({pct:.1f}%) {rate:.2f} {self.unit}/s "
                 f"eta {fmt_seconds(eta)}{tail}")

    def close(self) -> None:
        self.bar.close()
