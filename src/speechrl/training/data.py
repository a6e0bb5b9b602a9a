"""Load a job's manifest splits with their audio features, once, and serve seeded mini-batches.

:func:`load_job_data` checks the whole data folder before any training step: every split
manifest present (types, empty references, duplicate ids, ids and identical examples shared by two
splits, :mod:`speechrl.data.checks`), then the audio of the splits the job loads. With
``data.on_bad_sample: error`` the first bad sample stops the job (:class:`ManifestError` /
:class:`AudioError` naming file, line and id); with ``skip`` bad samples are left out and returned
as records, which :func:`write_skipped` writes to the job's ``skipped.jsonl``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from speechrl.audio.io import AudioError, load_audio
from speechrl.config import Config
from speechrl.data.checks import cross_split, scan_dir
from speechrl.data.manifest import SPLITS, BadSample, Example, ManifestError, scan_manifest
from speechrl.io import write_jsonl
from speechrl.models.processor import SpeechProcessor

log = logging.getLogger("speechrl")


@dataclass
class Sample:
    example: Example
    features: torch.Tensor  # (frames, 160)
    n_audio: int            # audio placeholder tokens


def _sample(data_dir: Path, manifest: Path, line: int, ex: Example, proc: SpeechProcessor, sample_rate: int,
            max_seconds: float | None) -> Sample:
    wav = load_audio(ex.audio_path(data_dir), sample_rate, max_seconds, context=f"id={ex.id} at {manifest}:{line}")
    feats, n_audio = proc.features(wav)
    return Sample(ex, feats, n_audio)


def load_split(data_dir: Path, split: str, proc: SpeechProcessor, sample_rate: int = 16000,
               max_seconds: float | None = None, limit: int | None = None) -> list[Sample]:
    """Every example of ``data_dir/<split>.jsonl`` with features; the first bad line or clip raises,
    naming file, line and id. (Jobs use :func:`load_job_data`, which also checks the other splits.)"""
    manifest = Path(data_dir) / f"{split}.jsonl"
    good, bad = scan_manifest(manifest)
    if bad:
        raise bad[0].error()
    return [_sample(Path(data_dir), manifest, n, ex, proc, sample_rate, max_seconds) for n, ex in good[:limit]]


def load_job_data(data_dir: Path, splits: tuple[str, ...], proc: SpeechProcessor, cfg: Config
                  ) -> tuple[dict[str, list[Sample]], list[dict[str, Any]]]:
    """Check every split manifest of ``data_dir``, then load ``splits`` with features.

    Reads ``cfg.data.on_bad_sample``, ``sample_rate`` and ``max_audio_seconds`` (the whole config is
    taken, not its ``data`` section, so the config-slice test sees exactly these reads).

    Returns ``({split: samples}, skipped)``; ``skipped`` holds one ``{"file", "line", "id",
    "reason"}`` record per bad sample of the loaded splits (always empty under
    ``data.on_bad_sample: error``, which raises at the first one). A requested split that is missing,
    or has no usable sample left, is an error in both modes.
    """
    data_dir = Path(data_dir)
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ValueError(f"unknown split(s) {', '.join(unknown)}; valid: {', '.join(SPLITS)}")
    for split in splits:
        if not (data_dir / f"{split}.jsonl").exists():
            raise ManifestError(f"manifest not found: {data_dir / f'{split}.jsonl'}")
    skip = cfg.data.on_bad_sample == "skip"
    entries, bad = scan_dir(data_dir)
    bad += cross_split(data_dir, entries)
    if bad and not skip:
        more = f"; {len(bad) - 1} more bad sample(s) in {data_dir}" if len(bad) > 1 else ""
        raise ManifestError(f"{bad[0]}{more} (data.on_bad_sample: skip leaves them out)")
    manifests = {str(data_dir / f"{s}.jsonl"): s for s in splits}
    dropped = {(b.file, b.line) for b in bad}
    skipped = [b for b in bad if b.file in manifests]
    out: dict[str, list[Sample]] = {}
    for split in splits:
        manifest = data_dir / f"{split}.jsonl"
        samples = []
        for n, ex in entries[split]:
            if (str(manifest), n) in dropped:
                continue
            try:
                samples.append(_sample(data_dir, manifest, n, ex, proc, cfg.data.sample_rate,
                                       cfg.data.max_audio_seconds))
            except AudioError as e:
                if not skip:
                    raise
                skipped.append(BadSample(str(manifest), n, ex.id, str(e)))
        if not samples:
            raise ManifestError(f"{manifest}: no usable example left: all {sum(b.file == str(manifest) for b in skipped)} "
                                "were bad and skipped (data.on_bad_sample: skip)")
        out[split] = samples
    skipped.sort(key=lambda b: (SPLITS.index(manifests[b.file]), b.line))
    return out, [b.to_json() for b in skipped]


def write_skipped(out_dir: Path, skipped: list[dict[str, Any]]) -> Path | None:
    """Write ``out_dir/skipped.jsonl`` (atomic) and log one warning line; nothing when none was skipped."""
    if not skipped:
        return None
    path = Path(out_dir) / "skipped.jsonl"
    write_jsonl(path, skipped)
    log.warning(f"skipped {len(skipped)} bad sample(s) (see {path})")
    return path


def collate(proc: SpeechProcessor, samples: list[Sample], with_answers: bool,
            device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Model inputs for ``samples`` (labels = first reference when ``with_answers``), on ``device``."""
    batch = proc.batch([s.features for s in samples], [s.n_audio for s in samples],
                       [s.example.prompt for s in samples],
                       [s.example.references[0] for s in samples] if with_answers else None)
    return {k: v.to(device) for k, v in batch.items()}


def batches(samples: list[Sample], batch_size: int, rng: random.Random) -> Iterator[list[Sample]]:
    """Endless shuffled mini-batches (reshuffled every epoch)."""
    order = list(range(len(samples)))
    while True:
        rng.shuffle(order)
        for i in range(0, len(order) - batch_size + 1 if len(order) >= batch_size else 1, batch_size):
            yield [samples[j] for j in order[i:i + batch_size]]
