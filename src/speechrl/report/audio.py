"""Listening examples of the tasks whose output is audio: a few test items, input / each system / clean.

    section = collect_audio(results, spec, out_dir)    # copies the wavs under out_dir/audio/<task>/

The evaluation folder of a result is its ``metrics.json``'s folder; its ``samples.jsonl`` rows hold
``"outputs": {decoding: "audio/<id>.<decoding>.wav"}`` (relative to that folder) and ``"inputs":
{"audio": <input wav, absolute>, "clean_audio": <clean wav, absolute; absent for tasks without one>}``.
For the report decoding, the first :data:`N_EXAMPLES` test ids (file order of the first system's
``samples.jsonl``: deterministic) are copied for the systems :data:`AUDIO_SYSTEMS` and the task's main RL
system (each at its lowest seed), with the input and the clean reference, into
``out_dir/audio/<task>/<id>.<role>.wav``. A missing file, row or folder is skipped and noted, never an error.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechrl.io import atomic_path
from speechrl.report.results import Result
from speechrl.report.spec import TaskSpec
from speechrl.report.tables import system_name

N_EXAMPLES = 3
AUDIO_SYSTEMS = ("base", "sft")
"""Systems whose outputs are shown, before the task's main RL system."""


@dataclass(frozen=True)
class Clip:
    label: str
    file: str | None
    """Path relative to the report folder; None when the file is missing (see the section's notes)."""


@dataclass(frozen=True)
class Example:
    id: str
    text: str
    """The prompt (and reference transcript) of the item."""
    clips: tuple[Clip, ...]


@dataclass(frozen=True)
class AudioSection:
    task: str
    decoding: str
    labels: tuple[str, ...]
    """Column labels: Input, the systems (with their seed), Clean."""
    examples: tuple[Example, ...]
    notes: tuple[str, ...]

    @property
    def files(self) -> list[str]:
        return [c.file for e in self.examples for c in e.clips if c.file]

    def to_dict(self) -> dict[str, Any]:
        return {"decoding": self.decoding, "labels": list(self.labels), "notes": list(self.notes),
                "examples": [{"id": e.id, "text": e.text, "clips": {c.label: c.file for c in e.clips}} for e in self.examples]}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def _read_rows(path: Path, notes: list[str]) -> dict[str, dict[str, Any]] | None:
    """``id -> row`` of a samples.jsonl in file order; None (and a note) when it cannot be read."""
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        notes.append(f"{path}: not readable ({e.strerror or e}); skipped")
        return None
    rows: dict[str, dict[str, Any]] = {}
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            notes.append(f"{path}:{i}: not JSON; line skipped")
            continue
        if isinstance(row, dict) and isinstance(row.get("id"), str):
            rows.setdefault(row["id"], row)
        else:
            notes.append(f"{path}:{i}: no string 'id'; line skipped")
    return rows


def _copy(src: Any, base: Path, dest: Path, out_dir: Path, what: str, notes: list[str]) -> str | None:
    """Copy ``src`` (absolute, or relative to ``base``) to ``dest`` + its suffix; the copy's path relative to
    ``out_dir``, or None and a note."""
    if not isinstance(src, str) or not src:
        notes.append(f"{what}: no file given; skipped")
        return None
    path = Path(src) if Path(src).is_absolute() else base / src
    if not path.is_file():
        notes.append(f"{what}: {path} missing; skipped")
        return None
    dest = dest.with_name(dest.name + (path.suffix or ".wav"))
    try:
        with atomic_path(dest) as tmp:
            shutil.copyfile(path, tmp)
    except OSError as e:
        notes.append(f"{what}: {path} could not be copied ({e.strerror or e}); skipped")
        return None
    return dest.relative_to(out_dir).as_posix()


def _text(row: dict[str, Any]) -> str:
    prompt = str(row.get("prompt") or "")
    refs = row.get("references") or []
    ref = str(refs[0]) if isinstance(refs, list) and refs else ""
    return f"{prompt} — reference: {ref}" if ref and ref != prompt else prompt


def collect_audio(results: list[Result], spec: TaskSpec, out_dir: Path, n: int = N_EXAMPLES) -> AudioSection | None:
    """The listening examples of ``spec.name`` (None unless its output is audio), wavs copied under ``out_dir``."""
    if spec.output != "audio":
        return None
    task, dec, notes = spec.name, spec.decoding, []
    out_dir = Path(out_dir)
    systems = list(dict.fromkeys([*AUDIO_SYSTEMS, *([spec.main_system] if spec.main_system else [])]))
    chosen: list[tuple[Result, dict[str, dict[str, Any]]]] = []
    for system in systems:
        runs = sorted((r for r in results if r.task == task and r.system == system), key=lambda r: r.seed)
        if not runs:
            notes.append(f"{system_name(system)}: no evaluation; column left out")
            continue
        rows = _read_rows(runs[0].path.parent / "samples.jsonl", notes)
        if rows is not None:
            chosen.append((runs[0], rows))
    ids = next((list(by_id)[:n] for _, by_id in chosen if by_id), [])
    if chosen and not ids:
        notes.append("no test items in the samples.jsonl files")
    folder = out_dir / "audio" / _safe(task)
    labels = ("Input", *(f"{system_name(r.system)} (seed {r.seed})" for r, _ in chosen), "Clean")
    examples, given = [], {"Input": False, "Clean": False}
    for id_ in ids:
        hits = [(r, by_id[id_]) for r, by_id in chosen if id_ in by_id]
        r0, inputs = next(((r, row["inputs"]) for r, row in hits if isinstance(row.get("inputs"), dict)), (None, {}))
        base = r0.path.parent if r0 else out_dir  # a relative input path: against its evaluation folder
        stem = folder / _safe(id_)

        def reference(label: str, key: str, role: str) -> Clip:
            src = inputs.get(key)
            given[label] = given[label] or bool(src)
            return Clip(label, _copy(src, base, stem.with_name(f"{stem.name}.{role}"), out_dir, f"{id_} {role}", notes)
                        if src else None)

        clips = [reference("Input", "audio", "input")]
        for (r, by_id), label in zip(chosen, labels[1:-1]):
            row = by_id.get(id_)
            out = row.get("outputs") if row is not None else None
            if not isinstance(out, dict) or dec not in out:
                notes.append(f"{id_} {label}: no '{dec}' output in {r.path.parent / 'samples.jsonl'}; skipped")
                clips.append(Clip(label, None))
                continue
            clips.append(Clip(label, _copy(out[dec], r.path.parent, stem.with_name(f"{stem.name}.{_safe(r.system)}"),
                                           out_dir, f"{id_} {label}", notes)))
        clips.append(reference("Clean", "clean_audio", "clean"))
        examples.append(Example(id_, _text(hits[0][1]) if hits else "", tuple(clips)))
    keep = [i for i, label in enumerate(labels) if given.get(label, True)]  # no input / clean audio at all: no column
    labels = tuple(labels[i] for i in keep)
    examples = [Example(e.id, e.text, tuple(e.clips[i] for i in keep)) for e in examples]
    return AudioSection(task, dec, tuple(labels), tuple(examples), tuple(notes))
