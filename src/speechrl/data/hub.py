"""Real datasets (``data.source: hub``): LibriSQA (task ``sqa``) and CoVoST2 En->De (task ``ast``).

Both are read through ``datasets`` (local files with the ``json`` / ``csv`` / ``parquet`` builders,
hub ids with ``datasets.load_dataset``) and written in the one manifest format, with absolute
audio paths into the audio folders the user downloaded (audio is never copied).

Sources (``data.hub.librisqa`` / ``data.hub.covost2``): a local file or folder when the path
exists, otherwise a hub id. Nothing is downloaded unless downloads are allowed
(``HF_HUB_OFFLINE=0``; the CLI sets it to 1 by default); a failure names what to fetch and which
config key to set.

**LibriSQA** (``data.hub.librisqa``, part ``data.hub.librisqa_part`` = ``I`` or ``II``), the
release of the hub dataset ``ZihanZhao/LibriSQA``::

    DIR/LibriSQA-PartI/LibriSQA-PartI-train.json     DIR/LibriSQA-PartII/LibriSQA-PartII-train.json
    DIR/LibriSQA-PartI/LibriSQA-PartI-test.json      DIR/LibriSQA-PartII/LibriSQA-PartII-test.json

``data.hub.librisqa`` may be ``DIR``, the part folder (``DIR/LibriSQA-PartI``) or one of the JSON
files (its train/test sibling is found by name; ``-training.json``, the release's old name, is
accepted too). Each file is a JSON array (or JSON lines) of objects:

* part I: ``speech_path``, ``question``, ``answer`` (free-form reference), ``text`` (transcript),
  ``duration`` (seconds); prompt = the question in :data:`SQA_PROMPT`, references = [answer].
* part II: ``speech_path``, ``question_and_option`` (question and four options), ``answer`` (the
  option letter), ``answer_and_analysis``; prompt = question and options in :data:`SQA_PROMPT`,
  references = [answer_and_analysis] (or [answer] where that is empty), ``extra.answer_label`` =
  the letter. ``text`` and ``duration`` are used when present.

``speech_path`` points into LibriSpeech (FLAC, 16 kHz mono: train-clean-360 for train, test-clean
for test, https://www.openslr.org/12). It is resolved as given when absolute and present, else
under ``data.hub.librisqa_audio_root`` as ``ROOT/<speech_path>``, and from the LibriSpeech subset
folder on (``.../train-clean-360/103/1240/103-1240-0000.flac``) as ``ROOT/<subset>/...`` or
``ROOT/LibriSpeech/<subset>/...``. LibriSQA has no validation split: ``data.hub.valid_fraction``
of train is held out. Items whose ``duration`` is over ``data.max_audio_seconds`` are dropped (the
count is in ``stats.json``).

**CoVoST2 En->De** (``data.hub.covost2``): a folder (or the TSV itself) holding either

* ``covost_v2.en_de.tsv`` (from https://dl.fbaipublicfiles.com/covost/covost_v2.en_de.tsv.tar.gz)
  with columns ``path``, ``translation``, ``split`` (``train`` / ``train_covost`` -> train,
  ``dev`` -> valid, ``test`` -> test; other values are skipped) and optionally ``sentence``,
  ``client_id``; or
* ``covost_v2.en_de.{train,dev,test}.tsv`` as written by the CoVoST repo's
  ``get_covost_splits.py`` (columns ``path``, ``sentence``, ``translation``, ``client_id``).

TSVs are read tab-separated, unquoted, with ``\\`` as escape character, every value a string
(as the CoVoST scripts do). A hub id must name a data-file repo (parquet/csv/json) with splits
train / validation (or dev) / test and the same columns; ``facebook/covost2`` is a loading script,
which ``datasets`` >= 4 no longer runs. Prompt = :data:`AST_PROMPT`, references = [translation],
``extra.transcript`` = sentence.

``path`` is a Common Voice English clip name (CoVoST2 is built on Common Voice 4.0), resolved
under ``data.hub.covost2_audio_root`` (``ROOT/<path>`` or ``ROOT/clips/<path>``). Common Voice
ships MP3, which the pipeline does not read (it wants 16 kHz mono WAV/FLAC readable by
soundfile): convert the clips once and point the audio root at the converted folder; a clip
``x.mp3`` is found as ``x.wav`` or ``x.flac`` there::

    mkdir -p clips16k && for f in clips/*.mp3; do ffmpeg -nostdin -loglevel error -i "$f" -ar 16000 -ac 1 "clips16k/$(basename "${f%.mp3}").wav"; done
    # or with sox (needs libsox-fmt-mp3):  sox "$f" -r 16000 -c 1 -b 16 "clips16k/$(basename "${f%.mp3}").wav"

Checks before anything is written: every referenced file of the kept examples exists (else a
:class:`FileNotFoundError` with the count and the first few ids and paths), has a .wav/.flac
extension (else an :class:`AudioError` with the conversion command above), and the first files of
each split have ``data.sample_rate``.

Splits and caps: the source's own splits where it has them, else ``valid_fraction`` of train is
held out with a shuffle seeded by ``seed``; then ``data.hub.max_train`` / ``max_eval`` keep the
first N of a seeded shuffle of each split (manifests keep source order). Output, written
atomically like :func:`speechrl.data.synthetic.build_synthetic`: ``train.jsonl``, ``valid.jsonl``,
``test.jsonl``, ``checksums.json`` (sha256 of the manifests) and ``stats.json``.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import soundfile as sf

from speechrl.audio.io import AudioError
from speechrl.config import Config
from speechrl.data.manifest import SPLITS, Example, ManifestError, write_dataset
from speechrl.data.synthetic import AST_PROMPT, SQA_PROMPT

log = logging.getLogger("speechrl")

TASKS = ("sqa", "ast")
AUDIO_EXTS = (".wav", ".flac")
LIBRISPEECH_SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other", "test-clean", "test-other")
COVOST_TSV = "covost_v2.en_de.tsv"
COVOST_SPLIT_TSV = {"train": "covost_v2.en_de.train.tsv", "valid": "covost_v2.en_de.dev.tsv", "test": "covost_v2.en_de.test.tsv"}
SPLIT_NAMES = {"train": "train", "train_covost": "train", "dev": "valid", "validation": "valid", "valid": "valid", "test": "test"}
_TABLE_EXTS = {".json": "json", ".jsonl": "json", ".tsv": "csv", ".csv": "csv", ".parquet": "parquet"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_SHOW = 5  # missing / unconverted files named in an error
_PROBE = 3  # files per split whose sample rate is checked

CONVERT_CMD = ('mkdir -p clips16k && for f in clips/*.mp3; do ffmpeg -nostdin -loglevel error -i "$f" -ar 16000 -ac 1 '
               '"clips16k/$(basename "${f%.mp3}").wav"; done')
LIBRISQA_HINT = ("download the LibriSQA release (`hf download ZihanZhao/LibriSQA --repo-type dataset --local-dir DIR`) and set "
                 "data.hub.librisqa to DIR, or allow downloads with HF_HUB_OFFLINE=0")
LIBRISPEECH_HINT = ("download LibriSpeech train-clean-360 and test-clean (https://www.openslr.org/resources/12/train-clean-360.tar.gz, "
                    "https://www.openslr.org/resources/12/test-clean.tar.gz), extract both into one folder and set "
                    "data.hub.librisqa_audio_root to it (the folder holding LibriSpeech/ or the subset folders)")
COVOST_HINT = ("download https://dl.fbaipublicfiles.com/covost/covost_v2.en_de.tsv.tar.gz, extract covost_v2.en_de.tsv into a folder "
               "and set data.hub.covost2 to that folder (facebook/covost2 on the hub is a loading script, which datasets>=4 does not run)")
COMMON_VOICE_HINT = ("download Common Voice English 4.0 (https://commonvoice.mozilla.org/datasets), convert its clips to 16 kHz mono WAV "
                     f"(`{CONVERT_CMD}`) and set data.hub.covost2_audio_root to the converted folder")


class SourceError(ManifestError):
    """A source file or hub dataset in an unexpected schema; the message names the source and the field."""


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a task's rows come from and how its audio is found (for messages)."""

    name: str  # dataset name, the id prefix
    key: str  # config key of the source
    value: str  # its value
    audio_key: str  # config key of the audio root
    audio_root: Optional[Path]
    audio_hint: str
    extra_dirs: tuple[str, ...]  # sub-folders of the audio root also searched


# ============================================================================ entry point
def build_hub(task: str, cfg: Config, out_dir: Path) -> dict:
    """Read LibriSQA ('sqa') or CoVoST2 En->De ('ast') as configured in ``cfg.data.hub`` and write
    out_dir/{train,valid,test}.jsonl, checksums.json and stats.json. Returns the stats dict (counts
    per split, source counts, dropped items, elapsed seconds)."""
    if task not in TASKS:
        raise ValueError(f"unknown hub task {task!r}; valid: {', '.join(TASKS)}")
    start, hub, out_dir = time.perf_counter(), cfg.data.hub, Path(out_dir)
    source, by_split = (_librisqa(cfg) if task == "sqa" else _covost2(cfg))
    source_counts = {s: len(v) for s, v in by_split.items()}
    dropped = 0
    if task == "sqa":
        by_split, dropped = _drop_long(by_split, cfg.data.max_audio_seconds)
    splits = _split(by_split, hub.valid_fraction, random.Random(f"{cfg.seed}-{task}-holdout"), source)
    splits = {s: _cap(splits[s], hub.max_train if s == "train" else hub.max_eval, random.Random(f"{cfg.seed}-{task}-{s}-cap"))
              for s in SPLITS}
    splits = _resolve_all(splits, source)
    _check_rates(splits, cfg.data.sample_rate)
    counts = {s: len(splits[s]) for s in SPLITS}
    stats = {"task": task, "source": source.value, "seed": cfg.seed, "counts": counts, "utterances": sum(counts.values()),
             "source_counts": source_counts, "dropped_too_long": dropped}
    write_dataset(out_dir, splits, stats, start)
    log.info(f"[hub {task}] {source.name}: {counts['train']}/{counts['valid']}/{counts['test']} examples "
             f"(source {source_counts}, {dropped} over data.max_audio_seconds dropped) -> {out_dir}")
    return stats


# ============================================================================ reading sources
def _locate(value: str, key: str, hint: str) -> Optional[Path]:
    """The local path ``value`` names, or None when it is a hub id; a missing path is an error."""
    path = Path(value).expanduser()
    if path.exists():
        return path
    looks_local = path.is_absolute() or value.startswith((".", "~")) or path.suffix.lower() in _TABLE_EXTS
    if looks_local or not _HUB_ID.match(value):
        raise FileNotFoundError(f"{key}={value!r}: no such file or folder (and not a hub id); {hint}")
    return None


def _read_local(path: Path) -> list[dict[str, Any]]:
    """Rows of one local JSON / JSON-lines / TSV / CSV / parquet file, read with ``datasets``
    into memory (its cache goes to a temporary folder, removed afterwards)."""
    import datasets

    fmt = _TABLE_EXTS.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(f"{path}: unsupported file type {path.suffix!r}; expected one of {', '.join(sorted(_TABLE_EXTS))}")
    kwargs: dict[str, Any] = {}
    if fmt == "csv":
        kwargs = _csv_options(path)
    with tempfile.TemporaryDirectory(prefix="speechrl-hub-") as cache:
        try:
            ds = datasets.load_dataset(fmt, data_files={"rows": str(path)}, split="rows", cache_dir=cache, keep_in_memory=True, **kwargs)
        except Exception as e:  # pyarrow / pandas / datasets parse errors
            raise SourceError(f"{path}: cannot read it as {fmt} ({type(e).__name__}: {_first_line(e)})") from None
        return ds.to_list()


def _csv_options(path: Path) -> dict[str, Any]:
    """CoVoST's TSV dialect (tab, no quoting, backslash escapes, no NA parsing), every column a string."""
    import datasets

    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\r\n").split(sep)
    features = datasets.Features({name: datasets.Value("string") for name in header})
    return {"sep": sep, "quoting": csv.QUOTE_NONE, "escapechar": "\\", "na_filter": False, "features": features}


def _read_hub(repo: str, key: str, hint: str, **kwargs: Any) -> dict[str, list[dict[str, Any]]]:
    """Rows per split of hub dataset ``repo`` (audio columns left out: audio must be on disk)."""
    import datasets

    try:
        dsd = datasets.load_dataset(repo, **kwargs)
    except Exception as e:  # offline, not found, loading script, ...
        raise FileNotFoundError(f"{key}={repo!r} is not a local file or folder and loading it from the hub with `datasets` failed "
                                f"({type(e).__name__}: {_first_line(e)}); {hint}") from None
    out = {}
    for name, ds in dsd.items():
        audio_cols = [c for c, f in ds.features.items() if isinstance(f, datasets.Audio)]
        out[name] = ds.remove_columns(audio_cols).to_list()
    return out


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else "no message"


# ------------------------------------------------------------------------------- LibriSQA
def _librisqa_files(path: Path, part: str) -> dict[str, Path]:
    """train/test JSON files of ``part`` in a release folder or a part folder, or one file and its sibling."""
    if path.is_file():
        m = re.match(r"^(.*)-(train|training|test)\.json$", path.name)
        if m is None:
            raise SourceError(f"data.hub.librisqa={str(path)!r}: not a LibriSQA release file (<name>-train.json / <name>-test.json); "
                              "give the release folder instead")
        folder, base = path.parent, m.group(1)
        candidates = {"train": [folder / f"{base}-train.json", folder / f"{base}-training.json"], "test": [folder / f"{base}-test.json"]}
    else:
        stem = f"LibriSQA-Part{part}"
        candidates = {s: [d / f"{stem}-{n}.json" for d in (path / stem, path) for n in names]
                      for s, names in (("train", ("train", "training")), ("test", ("test",)))}
    files = {}
    for split, paths in candidates.items():
        found = next((p for p in paths if p.is_file()), None)
        if found is None:
            raise FileNotFoundError(f"data.hub.librisqa={str(path)!r}: no LibriSQA part {part} {split} file; looked for "
                                    f"{', '.join(map(str, paths))}; {LIBRISQA_HINT}")
        files[split] = found
    return files


def _librisqa(cfg: Config) -> tuple[Source, dict[str, list[Example]]]:
    hub = cfg.data.hub
    part, key = hub.librisqa_part, "data.hub.librisqa"
    root = Path(hub.librisqa_audio_root).expanduser() if hub.librisqa_audio_root else None
    source = Source("librisqa", key, hub.librisqa, "data.hub.librisqa_audio_root", root, LIBRISPEECH_HINT, ("LibriSpeech",))
    local = _locate(hub.librisqa, key, LIBRISQA_HINT)
    if local is not None:
        files = _librisqa_files(local, part)
        rows = {s: _read_local(p) for s, p in files.items()}
        where = {s: str(p) for s, p in files.items()}
    else:
        stem = f"LibriSQA-Part{part}/LibriSQA-Part{part}"
        rows = _read_hub(hub.librisqa, key, LIBRISQA_HINT, data_files={"train": f"{stem}-train.json", "test": f"{stem}-test.json"})
        where = {s: f"{hub.librisqa} ({s})" for s in rows}
    to_example = _librisqa_example_i if part == "I" else _librisqa_example_ii
    return source, {s: [to_example(r, f"librisqa-{s}-{i:06d}", s, where[s], i) for i, r in enumerate(rows[s])] for s in ("train", "test")}


def _field(row: dict[str, Any], name: str, where: str, index: int, required: bool = True) -> Any:
    """``row[name]``; a missing or empty required field names the file, row and the fields there are."""
    value = row.get(name)
    if required and (value is None or (isinstance(value, str) and not value.strip())):
        raise SourceError(f"{where} row {index}: field {name!r} is missing or empty; fields: {', '.join(sorted(row))}")
    return value


def _extra(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _librisqa_example_i(row: dict[str, Any], uid: str, split: str, where: str, i: int) -> Example:
    question, answer = str(_field(row, "question", where, i)), _field(row, "answer", where, i)
    references = [str(a) for a in (answer if isinstance(answer, list) else [answer]) if a is not None]  # null: no text
    extra = _extra(question=question, transcript=row.get("text"), duration=row.get("duration"), source_split=split)
    return Example(uid, str(_field(row, "speech_path", where, i)), SQA_PROMPT.format(question=question), references,
                   "sqa", "en", split, "en", extra)


def _librisqa_example_ii(row: dict[str, Any], uid: str, split: str, where: str, i: int) -> Example:
    question, label = (str(_field(row, k, where, i)) for k in ("question_and_option", "answer"))
    analysis = _field(row, "answer_and_analysis", where, i, required=False)
    reference = str(analysis).strip() if analysis and str(analysis).strip() else label
    extra = _extra(question=question, answer_label=label, transcript=row.get("text"), duration=row.get("duration"), source_split=split)
    return Example(uid, str(_field(row, "speech_path", where, i)), SQA_PROMPT.format(question=question), [reference],
                   "sqa", "en", split, "en", extra)


def _drop_long(by_split: dict[str, list[Example]], max_seconds: float) -> tuple[dict[str, list[Example]], int]:
    """Leave out examples whose source ``duration`` is over ``max_seconds``; returns the count dropped."""
    kept = {s: [e for e in exs if not _too_long(e, max_seconds)] for s, exs in by_split.items()}
    dropped = sum(len(by_split[s]) - len(kept[s]) for s in by_split)
    if dropped:
        log.warning(f"{dropped} examples are longer than data.max_audio_seconds={max_seconds} and were left out (raise it to keep them)")
    return kept, dropped


def _too_long(ex: Example, max_seconds: float) -> bool:
    try:
        return float(ex.extra.get("duration", 0.0)) > max_seconds
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------------- CoVoST2
def _covost2(cfg: Config) -> tuple[Source, dict[str, list[Example]]]:
    hub = cfg.data.hub
    key = "data.hub.covost2"
    root = Path(hub.covost2_audio_root).expanduser() if hub.covost2_audio_root else None
    source = Source("covost2", key, hub.covost2, "data.hub.covost2_audio_root", root, COMMON_VOICE_HINT, ("clips",))
    local = _locate(hub.covost2, key, COVOST_HINT)
    if local is not None:
        rows, where = _covost_local(local)
    else:
        by_name = _read_hub(hub.covost2, key, COVOST_HINT)
        rows, where = {}, {}
        for name, split_rows in by_name.items():
            if name in SPLIT_NAMES:
                rows.setdefault(SPLIT_NAMES[name], []).extend(split_rows)
                where[SPLIT_NAMES[name]] = f"{hub.covost2} ({name})"
    return source, {s: [_covost_example(r, f"covost2-{s}-{i:06d}", s, where[s], i) for i, r in enumerate(rs)] for s, rs in rows.items()}


def _covost_local(path: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """Rows per split (train/valid/test) of a local CoVoST2 folder or TSV."""
    if path.is_dir():
        per_split = {s: path / n for s, n in COVOST_SPLIT_TSV.items()}
        if (path / COVOST_TSV).is_file():
            path = path / COVOST_TSV
        elif all(p.is_file() for p in per_split.values()):
            return {s: _read_local(p) for s, p in per_split.items()}, {s: str(p) for s, p in per_split.items()}
        else:
            raise FileNotFoundError(f"data.hub.covost2={str(path)!r}: found neither {COVOST_TSV} nor "
                                    f"{', '.join(COVOST_SPLIT_TSV.values())} there; {COVOST_HINT}")
    rows = _read_local(path)
    if rows and "split" not in rows[0]:
        raise SourceError(f"{path}: no 'split' column (columns: {', '.join(rows[0])}); give the combined {COVOST_TSV} "
                          f"or a folder with {', '.join(COVOST_SPLIT_TSV.values())}")
    by_split: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        split = SPLIT_NAMES.get(str(row["split"]).strip())
        if split is not None:
            by_split.setdefault(split, []).append(row)
    return by_split, {s: str(path) for s in by_split}


def _covost_example(row: dict[str, Any], uid: str, split: str, where: str, i: int) -> Example:
    clip = row.get("path") or (row.get("file") if isinstance(row.get("file"), str) else None)
    if not clip:
        raise SourceError(f"{where} row {i}: no 'path' (Common Voice clip) field; fields: {', '.join(sorted(row))}")
    translation = str(_field(row, "translation", where, i))
    extra = _extra(transcript=row.get("sentence") or None, client_id=row.get("client_id") or None, clip=clip, source_split=split)
    return Example(uid, str(clip), AST_PROMPT, [translation], "ast", "en", split, "de", extra)


# ============================================================================ splits and caps
def _split(by_split: dict[str, list[Example]], fraction: float, rng: random.Random, source: Source) -> dict[str, list[Example]]:
    """train/valid/test: the source's own, with valid held out of train when the source has none."""
    for split in ("train", "test"):
        if not by_split.get(split):
            raise SourceError(f"{source.key}={source.value!r}: the source has no {split} examples (splits found: "
                              f"{', '.join(f'{s}={len(v)}' for s, v in by_split.items()) or 'none'})")
    if by_split.get("valid"):
        return {s: by_split[s] for s in SPLITS}
    train, valid = _hold_out(by_split["train"], fraction, rng)
    return {"train": train, "valid": valid, "test": by_split["test"]}


def _hold_out(train: list[Example], fraction: float, rng: random.Random) -> tuple[list[Example], list[Example]]:
    """Move ``fraction`` of ``train`` (at least one, at most all but one; seeded shuffle) to valid."""
    if len(train) < 2:
        raise SourceError(f"cannot hold out a validation split from {len(train)} training example(s)")
    order = list(range(len(train)))
    rng.shuffle(order)
    n_valid = min(len(train) - 1, max(1, round(len(train) * fraction)))
    held = set(order[:n_valid])
    keep = [e for i, e in enumerate(train) if i not in held]
    valid = [dataclasses.replace(e, split="valid") for i, e in enumerate(train) if i in held]
    return keep, valid


def _cap(examples: list[Example], n: Optional[int], rng: random.Random) -> list[Example]:
    """The first ``n`` examples of a seeded shuffle, in source order (all when ``n`` is None)."""
    if n is None or len(examples) <= n:
        return examples
    order = list(range(len(examples)))
    rng.shuffle(order)
    return [examples[i] for i in sorted(order[:n])]


# ============================================================================ audio
def _bases(audio: str, source: Source) -> list[Path]:
    """Paths an item's audio may be at, most likely first (as named by the source)."""
    p, root = Path(audio).expanduser(), source.audio_root
    bases = [p] if p.is_absolute() else []
    if root is not None:
        if not p.is_absolute():
            bases += [root / p] + [root / d / p for d in source.extra_dirs]
        tail = next((Path(*p.parts[i:]) for i, part in enumerate(p.parts) if part in LIBRISPEECH_SUBSETS), None)
        if tail is not None:
            bases += [root / tail] + [root / d / tail for d in source.extra_dirs]
    return list(dict.fromkeys(bases))


def _resolve(ex: Example, source: Source) -> tuple[Optional[Path], Optional[Path], Path]:
    """(the WAV/FLAC file to use or None, an existing file in another format or None, the path to report as missing).

    A name that is not .wav/.flac (Common Voice's .mp3) is looked for as .wav and .flac first."""
    bases = _bases(ex.audio, source)
    cands = [c for b in bases for c in ([b] if b.suffix.lower() in AUDIO_EXTS else [b.with_suffix(e) for e in AUDIO_EXTS])]
    usable = next((c for c in cands if c.is_file()), None)
    other = None if usable else next((b for b in bases if b.suffix.lower() not in AUDIO_EXTS and b.is_file()), None)
    root = source.audio_root
    shown = next((b for b in bases if root is not None and b.is_relative_to(root)), bases[0] if bases else Path(ex.audio))
    return usable, other, shown


def _resolve_all(splits: dict[str, list[Example]], source: Source) -> dict[str, list[Example]]:
    """Every example with an absolute WAV/FLAC path; all files are checked before any error is raised."""
    out: dict[str, list[Example]] = {}
    missing: list[tuple[str, Path]] = []
    unconverted: list[tuple[str, Path]] = []
    for split, examples in splits.items():
        out[split] = []
        for ex in examples:
            usable, other, shown = _resolve(ex, source)
            if usable is None:
                (unconverted if other is not None else missing).append((ex.id, other or shown))
                continue
            out[split].append(dataclasses.replace(ex, audio=str(usable.absolute())))
    total = sum(len(v) for v in splits.values())
    if unconverted:
        raise AudioError(f"{_listing(unconverted, total)} not WAV/FLAC (the pipeline reads 16 kHz mono WAV or FLAC with soundfile): "
                         f"convert them, e.g. `{CONVERT_CMD}`, and set {source.audio_key} to the converted folder "
                         "(a clip x.mp3 is then found as x.wav)")
    if missing:
        where = f"{source.audio_key}={str(source.audio_root)!r}" if source.audio_root else f"{source.audio_key} is not set"
        raise FileNotFoundError(f"{_listing(missing, total)} missing ({where}); {source.audio_hint}")
    return out


def _listing(items: list[tuple[str, Path]], total: int) -> str:
    shown = "; ".join(f"id {uid}: {path}" for uid, path in items[:_SHOW])
    more = f"; ... {len(items) - _SHOW} more" if len(items) > _SHOW else ""
    return f"{len(items)} of {total} audio files ({shown}{more}) are"


def _check_rates(splits: dict[str, list[Example]], sample_rate: int) -> None:
    """The first few files of each split must have ``sample_rate`` (the features assume it)."""
    for examples in splits.values():
        for ex in examples[:_PROBE]:
            _check_rate(ex, sample_rate)


def _check_rate(ex: Example, sample_rate: int) -> None:
    try:
        info = sf.info(ex.audio)
    except Exception as e:  # libsndfile errors
        raise AudioError(f"cannot decode audio {ex.audio} ({ex.id}): {e}") from None
    if info.samplerate != sample_rate:
        raise AudioError(f"{ex.audio} ({ex.id}): sample rate {info.samplerate} Hz, expected {sample_rate} Hz; resample the folder, "
                         f"e.g. `sox in.wav -r {sample_rate} -c 1 out.wav` per file")

