"""Checks across the splits of one data folder: an example belongs to one split only.

:func:`check_splits` reads every ``<split>.jsonl`` present and reports, besides the bad lines of
each manifest, (a) an id present in two splits and (b) an identical example in two splits: the
same audio content (sha256 of the audio file's bytes) with the same prompt. Of each pair the copy
in the split that matters less is the bad one: test is kept over valid and train, valid over train
(``data.on_bad_sample: skip`` drops the copy from train, or from valid for a valid / test pair).

Cost: only files whose prompt and byte size match a file of another split are hashed, so a folder
of thousands of clips is checked in well under a second (one ``stat`` per clip).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from speechrl.data.manifest import SPLITS, BadSample, Example, scan_manifest

KEEP_ORDER = ("test", "valid", "train")  # a cross-split duplicate is kept in the first split of this order
Entries = dict[str, list[tuple[int, Example]]]


def scan_dir(data_dir: str | Path) -> tuple[Entries, list[BadSample]]:
    """The good ``(line, example)`` pairs of every split manifest present, and every bad line."""
    data_dir = Path(data_dir)
    entries: Entries = {}
    bad: list[BadSample] = []
    for split in SPLITS:
        path = data_dir / f"{split}.jsonl"
        if path.exists():
            entries[split], problems = scan_manifest(path)
            bad += problems
    return entries, bad


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cross_split(data_dir: str | Path, entries: Entries) -> list[BadSample]:
    """Ids and identical examples (audio bytes + prompt) found in two splits; one record per dropped copy."""
    data_dir = Path(data_dir)
    order = [s for s in KEEP_ORDER if s in entries]
    where = {s: str(data_dir / f"{s}.jsonl") for s in order}
    bad: list[BadSample] = []
    ids: dict[str, tuple[str, int]] = {}
    dropped: set[tuple[str, int]] = set()
    for split in order:
        for n, ex in entries[split]:
            if ex.id in ids and ids[ex.id][0] != split:
                ks, kn = ids[ex.id]
                bad.append(BadSample(where[split], n, ex.id, f"id {ex.id!r} is also in {where[ks]}:{kn}; an id must be in one split only"))
                dropped.add((split, n))
            else:
                ids.setdefault(ex.id, (split, n))

    # identical content: stat every clip, hash only those whose (prompt, size) occurs in two splits
    sized: dict[tuple[str, int], set[str]] = {}
    size_of: dict[tuple[str, int], int] = {}
    for split in order:
        for n, ex in entries[split]:
            try:
                size = ex.audio_path(data_dir).stat().st_size
            except OSError:
                continue  # a missing clip is reported when its split is loaded
            size_of[split, n] = size
            sized.setdefault((ex.prompt, size), set()).add(split)
    hashes: dict[Path, str] = {}
    kept: dict[tuple[str, str], tuple[str, int, str]] = {}
    for split in order:
        for n, ex in entries[split]:
            if (split, n) in dropped or (split, n) not in size_of or len(sized[ex.prompt, size_of[split, n]]) < 2:
                continue
            path = ex.audio_path(data_dir)
            if path not in hashes:
                hashes[path] = _sha256(path)
            key = (ex.prompt, hashes[path])
            if key in kept and kept[key][0] != split:
                ks, kn, kid = kept[key]
                bad.append(BadSample(where[split], n, ex.id,
                                     f"id={ex.id} has the same audio content (sha256 {key[1][:12]}) and prompt as {where[ks]}:{kn} "
                                     f"(id={kid}); an example must be in one split only"))
            else:
                kept.setdefault(key, (split, n, ex.id))
    return bad


def check_splits(data_dir: str | Path) -> list[BadSample]:
    """Every problem of a data folder: bad manifest lines, then cross-split ids and identical examples."""
    entries, bad = scan_dir(data_dir)
    return bad + cross_split(data_dir, entries)
