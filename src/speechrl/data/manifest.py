"""The one manifest format every dataset is written in (JSONL, one example per line).

    {"id": "sqa-train-00000", "audio": "wavs/sqa-train-00000.wav", "prompt": "Question: ...",
     "references": ["..."], "task": "sqa", "language": "en", "target_language": "en",
     "split": "train", "extra": {...}}

``audio`` is relative to the manifest's folder (or absolute). ``references`` holds one or more
reference outputs. ``extra`` carries source-specific fields (voice, passage text, duration, ...)
which reach rewards as keyword arguments.

Types are strict: ``id``, ``audio``, ``prompt``, ``task``, ``language``, ``split`` and
``target_language`` are JSON strings (``id`` and ``audio`` non-empty), every reference is non-blank
text, ``extra`` is an object, and the non-standard JSON constants NaN / Infinity are refused (a
``null`` prompt would otherwise train as the text "None"). A bad line is a :class:`BadSample`
naming file, line, id and the problem; :func:`read_manifest` raises the first one,
:func:`scan_manifest` returns them all (``data.on_bad_sample: skip``).
"""

from __future__ import annotations

import time

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speechrl.io import write_jsonl

REQUIRED = ("id", "audio", "prompt", "references", "task", "language", "split")
SPLITS = ("train", "valid", "test")
_STRINGS = ("id", "audio", "prompt", "task", "language", "split", "target_language")  # must be JSON strings
_NON_EMPTY = ("id", "audio")


class ManifestError(ValueError):
    """A malformed manifest or line; the message names the file, line, id and field."""


@dataclass(frozen=True)
class BadSample:
    """One unusable example: manifest ``file``, 1-based ``line``, its ``id`` (None when unreadable), ``reason``."""

    file: str
    line: int
    id: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"

    def error(self) -> ManifestError:
        return ManifestError(str(self))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value (write a number or a string)")


def _found(value: Any) -> str:
    """What a wrong value is, for messages: ``null``, ``number 3``, ``list [...]``."""
    if value is None:
        return "null"
    kind = {bool: "boolean", int: "number", float: "number", str: "string", list: "list", dict: "object"}.get(type(value), type(value).__name__)
    text = json.dumps(value)
    return f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"


def _blank(text: str) -> bool:
    """No visible character: empty, whitespace, or only format characters such as a zero-width space."""
    return not any(ch.isprintable() and not ch.isspace() for ch in text)


def _parse_line(line: str, where: str) -> Example:
    """One line -> :class:`Example`; a problem raises :class:`ManifestError` ``"<where>: <reason> (id=...)"``."""
    try:
        row = json.loads(line, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{where}: not valid JSON ({e.msg})") from None
    except ValueError as e:  # NaN / Infinity
        raise ManifestError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(row, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(row).__name__}")
    rid = row.get("id")
    ident = f"id={rid}" if isinstance(rid, str) and rid else "id=?"
    missing = [k for k in REQUIRED if k not in row]
    if missing:
        raise ManifestError(f"{where}: missing field(s) {', '.join(missing)} ({ident}); required: {', '.join(REQUIRED)}")
    for key in _STRINGS:
        if key not in row:
            continue  # target_language is optional
        value = row[key]
        if not isinstance(value, str):
            raise ManifestError(f"{where}: field '{key}' must be a string, got {_found(value)} ({ident})")
        if key in _NON_EMPTY and not value.strip():
            raise ManifestError(f"{where}: field '{key}' must be a non-empty string, got {value!r} ({ident})")
    refs = row["references"]
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list) or not refs:
        raise ManifestError(f"{where}: field 'references' must be a non-empty list of strings, got {_found(refs)} ({ident})")
    for i, r in enumerate(refs):
        if not isinstance(r, str):
            raise ManifestError(f"{where}: references[{i}] must be a string, got {_found(r)} ({ident})")
        if _blank(r):
            raise ManifestError(f"{where}: references[{i}] is empty ({r!r}); every reference must be non-blank text ({ident})")
    if row["split"] not in SPLITS:
        raise ManifestError(f"{where}: field 'split' is {row['split']!r}; valid: {', '.join(SPLITS)} ({ident})")
    extra = row.get("extra", {})
    if not isinstance(extra, dict):
        raise ManifestError(f"{where}: field 'extra' must be an object, got {_found(extra)} ({ident})")
    unknown = set(row) - set(REQUIRED) - {"target_language", "extra"}
    extra = {**extra, **{k: row[k] for k in unknown}}
    return Example(
        id=row["id"], audio=row["audio"], prompt=row["prompt"], references=refs, task=row["task"],
        language=row["language"], split=row["split"], target_language=row.get("target_language", ""), extra=extra,
    )


def scan_manifest(path: str | Path) -> tuple[list[tuple[int, Example]], list[BadSample]]:
    """Every line of a manifest: the good ``(line number, example)`` pairs and the bad lines.

    A repeated id is a bad line (the first occurrence is kept). A missing or empty manifest raises
    :class:`ManifestError` (no line to skip).
    """
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"manifest not found: {path}")
    good: list[tuple[int, Example]] = []
    bad: list[BadSample] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                ex = _parse_line(line, where)
            except ManifestError as e:
                bad.append(BadSample(str(path), n, _line_id(line), str(e).removeprefix(f"{where}: ")))
                continue
            if ex.id in seen:
                bad.append(BadSample(str(path), n, ex.id, f"duplicate id {ex.id!r} (first at line {seen[ex.id]})"))
                continue
            seen[ex.id] = n
            good.append((n, ex))
    if not good and not bad:
        raise ManifestError(f"{path}: manifest is empty")
    return good, bad


def _line_id(line: str) -> str | None:
    """The id of a line that failed to parse, when it has a readable string id."""
    try:
        row = json.loads(line, parse_constant=_no_constant)
    except ValueError:
        return None
    rid = row.get("id") if isinstance(row, dict) else None
    return rid if isinstance(rid, str) and rid else None


def read_manifest(path: str | Path) -> list[Example]:
    """Read and validate a manifest; the first bad line raises :class:`ManifestError` naming file, line and id."""
    good, bad = scan_manifest(path)
    if bad:
        raise bad[0].error()
    return [ex for _, ex in good]


def write_manifest(path: str | Path, examples: list[Example]) -> None:
    write_jsonl(path, (ex.to_json() for ex in examples))


def write_dataset(out_dir: str | Path, splits: dict[str, list[Example]], stats: dict[str, Any], start: float) -> None:
    """A dataset folder, replaced as a whole (:func:`speechrl.io.atomic_dir`): every split's manifest,
    ``checksums.json`` of the manifests and ``stats.json`` (``stats`` plus ``elapsed_seconds`` since ``start``, a
    ``time.perf_counter()`` value, also set in ``stats``). For builders whose audio already lies elsewhere."""
    from speechrl.io import atomic_dir, checksums, write_json

    with atomic_dir(Path(out_dir)) as tmp:
        for split in SPLITS:
            write_manifest(tmp / f"{split}.jsonl", splits[split])
        write_json(tmp / "checksums.json", checksums(tmp, "*.jsonl"))
        stats["elapsed_seconds"] = round(time.perf_counter() - start, 2)
        write_json(tmp / "stats.json", stats)
