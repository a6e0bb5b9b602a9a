"""The one manifest format every dataset is written in (JSONL, one example per line).

    {"id": "sqa-train-00000", "audio": "wavs/sqa-train-00000.wav", "prompt": "Question: ...",
     "references": ["..."], "task": "sqa", "language": "en", "target_language": "en",
     "split": "train", "extra": {...}}

``audio`` is relative to the manifest's folder (or absolute). ``references`` holds one or more
reference outputs. ``extra`` carries source-specific fields (voice, passage text, duration, ...)
which reach rewards as keyword arguments.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speechrl.io import write_jsonl

REQUIRED = ("id", "audio", "prompt", "references", "task", "language", "split")
SPLITS = ("train", "valid", "test")


class ManifestError(ValueError):
    """A malformed manifest line; the message names the file, line and field."""


@dataclass
class Example:
    id: str
    audio: str
    prompt: str
    references: list[str]
    task: str
    language: str
    split: str
    target_language: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def audio_path(self, root: Path) -> Path:
        p = Path(self.audio)
        return p if p.is_absolute() else root / p

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _parse_line(line: str, where: str) -> Example:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{where}: not valid JSON ({e.msg})") from None
    if not isinstance(row, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(row).__name__}")
    missing = [k for k in REQUIRED if k not in row]
    if missing:
        raise ManifestError(f"{where}: missing field(s) {', '.join(missing)} (id={row.get('id', '?')}); required: {', '.join(REQUIRED)}")
    refs = row["references"]
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
        raise ManifestError(f"{where}: field 'references' must be a non-empty list of strings (id={row['id']})")
    if row["split"] not in SPLITS:
        raise ManifestError(f"{where}: field 'split' is {row['split']!r}; valid: {', '.join(SPLITS)}")
    unknown = set(row) - set(REQUIRED) - {"target_language", "extra"}
    extra = dict(row.get("extra") or {})
    extra.update({k: row[k] for k in unknown})
    return Example(
        id=str(row["id"]), audio=str(row["audio"]), prompt=str(row["prompt"]), references=refs,
        task=str(row["task"]), language=str(row["language"]), split=str(row["split"]),
        target_language=str(row.get("target_language", "")), extra=extra,
    )


def read_manifest(path: str | Path) -> list[Example]:
    """Read and validate a manifest; errors name the file and line."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"manifest not found: {path}")
    examples, seen = [], set()
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            ex = _parse_line(line, f"{path}:{n}")
            if ex.id in seen:
                raise ManifestError(f"{path}:{n}: duplicate id {ex.id!r}")
            seen.add(ex.id)
            examples.append(ex)
    if not examples:
        raise ManifestError(f"{path}: manifest is empty")
    return examples


def write_manifest(path: str | Path, examples: list[Example]) -> None:
    write_jsonl(path, (ex.to_json() for ex in examples))
