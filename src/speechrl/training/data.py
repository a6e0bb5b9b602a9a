"""Load a job's manifest splits with their audio features, once, and serve seeded mini-batches.

:func:`load_job_data` checks the whole data folder before any training step: every split
manifest present (types, empty references, duplicate ids, ids and identical examples shared by two
splits, :mod:`speechrl.data.checks`), then the audio of the splits the job loads. With
``data.on_bad_sample: error`` the first bad sample stops the job (:class:`ManifestError` /
:class:`AudioError` naming file, line and id); with ``skip`` bad samples are left out and returned
as records, which :func:`write_skipped` writes to the job's ``skipped.jsonl``.

The model's processor turns each example into a :class:`Sample` (``proc.encode_example``): speech
LMs (granite_speech, qwen2_audio) read the clip and make their features; a codec LM (``codec_lm``,
``proc.needs_tokens``) takes the codec ids the tokenize stage wrote to ``<tokens_dir>/<split>.jsonl``
(``{"id", "input"?, "target"?}``) instead. Extra fields ending in ``_audio`` (e.g. SE's
``clean_audio``) are made absolute against the data folder, and every sample carries its input
clip's absolute path (column ``input_audio``), so rewards get usable paths.
"""

from __future__ import annotations

import dataclasses
import json
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

log = logging.getLogger("speechrl")
Processor = Any  # a model adapter's processor (speechrl.models.adapters lists its methods)


class TokensError(ValueError):
    """A codec LM job without its token files, or an example missing from them."""


@dataclass
class Sample:
    example: Example
    features: torch.Tensor          # granite (frames, 160); qwen2_audio (128, frames); codec_lm (n,) input codec ids
    n_audio: int                    # audio placeholder tokens (codec_lm: input codec ids)
    target: list[int] | None = None  # codec_lm: the target codec ids (None: the answer is references[0])
    input_audio: str | None = None   # absolute path of the input clip

    @property
    def columns(self) -> dict[str, Any]:
        """What the rewards see of this example: its extra fields and ``input_audio``."""
        return {**self.example.extra, "input_audio": self.input_audio}


def _absolute(ex: Example, data_dir: Path) -> Example:
    """``*_audio`` extra fields (relative paths) made absolute against the data folder."""
    extra = {k: str((data_dir / v).absolute()) if k.endswith("_audio") and isinstance(v, str) and v and not Path(v).is_absolute() else v
             for k, v in ex.extra.items()}
    return dataclasses.replace(ex, extra=extra) if extra != ex.extra else ex


def _sample(data_dir: Path, manifest: Path, line: int, ex: Example, proc: Processor, sample_rate: int,
            max_seconds: float | None, tokens: dict[str, dict[str, Any]] | None = None,
            tokens_file: Path | None = None) -> Sample:
    where = f"id={ex.id} at {manifest}:{line}"
    path = ex.audio_path(data_dir)
    row = None
    if getattr(proc, "needs_tokens", False):
        if tokens is None or ex.id not in tokens:
            raise TokensError(f"{where}: no codec tokens for this id in {tokens_file} (run the tokenize stage on {data_dir})")
        row = tokens[ex.id]
    feats, n_audio, target = proc.encode_example(ex, lambda: load_audio(path, sample_rate, max_seconds, context=where), row, where)
    return Sample(_absolute(ex, Path(data_dir)), feats, n_audio, target, str(Path(path).absolute()))


def read_tokens(tokens_dir: Path | None, split: str, proc: Processor) -> tuple[dict[str, dict[str, Any]] | None, Path | None]:
    """``{id: {"input"?, "target"?}}`` of ``<tokens_dir>/<split>.jsonl`` for a processor that needs codec
    tokens (None otherwise); checks the folder's ``codec.json`` against the processor's codec."""
    if not getattr(proc, "needs_tokens", False):
        return None, None
    if tokens_dir is None:
        raise TokensError("this model reads codec tokens (codec_lm): give the job the tokens folder of its data "
                          "(run the tokenize stage first)")
    path = Path(tokens_dir) / f"{split}.jsonl"
    if not path.exists():
        raise TokensError(f"codec token file not found: {path} (run the tokenize stage)")
    codec_file = Path(tokens_dir) / "codec.json"
    if codec_file.exists() and hasattr(proc, "check_codec"):
        proc.check_codec(json.loads(codec_file.read_text()), str(codec_file))
    out: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                out[str(row["id"])] = row
            except (ValueError, KeyError, TypeError) as e:
                raise TokensError(f"{path}:{n}: not a token row {{\"id\", \"input\"?, \"target\"?}} ({e})") from None
    return out, path


def load_split(data_dir: Path, split: str, proc: Processor, sample_rate: int = 16000,
               max_seconds: float | None = None, limit: int | None = None, tokens_dir: Path | None = None) -> list[Sample]:
    """Every example of ``data_dir/<split>.jsonl`` with features; the first bad line or clip raises,
    naming file, line and id. (Jobs use :func:`load_job_data`, which also checks the other splits.)"""
    manifest = Path(data_dir) / f"{split}.jsonl"
    good, bad = scan_manifest(manifest)
    if bad:
        raise bad[0].error()
    tokens, tfile = read_tokens(tokens_dir, split, proc)
    return [_sample(Path(data_dir), manifest, n, ex, proc, sample_rate, max_seconds, tokens, tfile) for n, ex in good[:limit]]


def load_job_data(data_dir: Path, splits: tuple[str, ...], proc: Processor, cfg: Config, tokens_dir: Path | None = None
                  ) -> tuple[dict[str, list[Sample]], list[dict[str, Any]]]:
    """Check every split manifest of ``data_dir``, then load ``splits`` with features (or, for a
    processor that reads codec tokens, with the ids of ``tokens_dir/<split>.jsonl``).

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
        tokens, tfile = read_tokens(tokens_dir, split, proc)
        samples = []
        for n, ex in entries[split]:
            if (str(manifest), n) in dropped:
                continue
            try:
                samples.append(_sample(data_dir, manifest, n, ex, proc, cfg.data.sample_rate,
                                       cfg.data.max_audio_seconds, tokens, tfile))
            except (AudioError, TokensError) as e:
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


def collate(proc: Processor, samples: list[Sample], with_answers: bool,
            device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Model inputs for ``samples`` (labels = the target: first reference, or codec ids, when
    ``with_answers``), on ``device``."""
    return {k: v.to(device) for k, v in proc.collate(samples, with_answers).items()}


def batches(samples: list[Sample], batch_size: int, rng: random.Random) -> Iterator[list[Sample]]:
    """Endless shuffled mini-batches (reshuffled every epoch)."""
    order = list(range(len(samples)))
    while True:
        rng.shuffle(order)
        for i in range(0, len(order) - batch_size + 1 if len(order) >= batch_size else 1, batch_size):
            yield [samples[j] for j in order[i:i + batch_size]]
