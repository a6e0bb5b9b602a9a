"""A job's output folder, replaced as a whole: no failure leaves a mixed or half-written folder.

Every stage writes into ``<parent>/.<name>.partial`` (created, and so proven writable, before any expensive
work) and, once its outputs and manifest are complete, :meth:`JobDir.commit` swaps it in for ``<parent>/<name>``.
A training job's checkpoints live beside them in ``<parent>/.<name>.ckpt`` (:mod:`speechrl.training.checkpoint`);
both hidden folders sit outside the path Snakemake knows, so its removal of an incomplete output before a
rerun keeps them, and a resumed job finds its checkpoint and the outputs it had already written.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from speechrl.io import read_json, write_json


class OutputError(OSError):
    """The output folder cannot be written; names the path."""


class JobDir:
    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.partial = self.out.with_name(f".{self.out.name}.partial")
        self.checkpoints = self.out.with_name(f".{self.out.name}.ckpt")

    def open(self, keep: bool = False, checkpoints: bool = False) -> Path:
        """Create the staging folder (emptied unless ``keep``: a resumed job keeps what it wrote) and check
        that it (and with ``checkpoints`` the checkpoint folder) is writable; returns the staging folder."""
        try:
            if not keep:
                shutil.rmtree(self.partial, ignore_errors=True)
            for d in (self.partial, self.checkpoints) if checkpoints else (self.partial,):
                d.mkdir(parents=True, exist_ok=True)
                probe = d / f".write-test-{uuid.uuid4().hex}"
                probe.write_bytes(b"")
                probe.unlink()
        except OSError as e:
            raise OutputError(f"output folder {self.out} is not writable ({e.strerror or e}: {e.filename or self.out.parent}); "
                              "fix its permissions or give another results_dir") from None
        return self.partial

    def commit(self) -> None:
        """Replace ``out`` by the staging folder (rename; the old folder, if any, is removed after)."""
        old = self.out.with_name(f".{self.out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if self.out.exists():
            os.replace(self.out, old)
        os.replace(self.partial, self.out)
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(self.checkpoints, ignore_errors=True)

    # the job's MLflow run id, kept with its checkpoints so a rerun resumes (or closes) the same run
    @property
    def _run_file(self) -> Path:
        return self.checkpoints / "run.json"

    def previous_run(self) -> str | None:
        return read_json(self._run_file).get("run_id") if self._run_file.is_file() else None

    def record_run(self, run_id: str | None) -> None:
        if run_id:
            write_json(self._run_file, {"run_id": run_id})
