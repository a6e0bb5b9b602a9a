"""Load a manifest split with its audio features, once, and serve seeded mini-batches."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from speechrl.audio.io import load_audio
from speechrl.data.manifest import Example, read_manifest
from speechrl.models.processor import SpeechProcessor


@dataclass
class Sample:
    example: Example
    features: torch.Tensor  # (frames, 160)
    n_audio: int            # audio placeholder tokens


def load_split(data_dir: Path, split: str, proc: SpeechProcessor, sample_rate: int = 16000,
               max_seconds: float | None = None, limit: int | None = None) -> list[Sample]:
    """Every example of ``data_dir/<split>.jsonl`` with features; bad audio names file and id."""
    manifest = data_dir / f"{split}.jsonl"
    out = []
    for ex in read_manifest(manifest)[:limit]:
        wav = load_audio(ex.audio_path(data_dir), sample_rate, max_seconds, context=f"id={ex.id} in {manifest}")
        feats, n_audio = proc.features(wav)
        out.append(Sample(ex, feats, n_audio))
    return out


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
