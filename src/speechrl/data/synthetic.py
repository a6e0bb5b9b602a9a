"""Embedded synthetic spoken datasets, synthesised offline with espeak-ng.

Two tasks mirror the public benchmarks the pipeline targets, at a size a CPU can train on:

* **mini-SQA** (LibriSQA-like spoken question answering): the audio is a short passage of
  ``data.synthetic.sqa_facts`` fact sentences about different people ("Anna keeps a green bicycle
  in the garden. Tom works as a baker in Madrid."); the text prompt asks about one fact ("Where
  does Anna keep her bicycle?"); the reference is a short full-sentence answer that reuses the
  words of question and fact ("Anna keeps her bicycle in the garden."). ``extra.answer_span`` is
  the key word(s) of the answer for exact-match scoring.
* **mini-AST** (CoVoST2-like En->De speech translation): English sentences from a small template
  grammar (subject, 3rd-person present verb, accusative object, optional adjectives, time/place
  adverbials, negation) are spoken; the reference is the German translation produced from the same
  structured :class:`Sentence` by :func:`translate_en_de` (gender, case, weak/mixed adjective
  declension, stem-changing verbs, verb-second order after a fronted adverbial, nicht/kein).

Design: the text generators are pure functions of a ``random.Random`` (seeded with
``f"{seed}-{task}"``), draw unique items (unique passage / English sentence) and the splits are
consecutive slices of that list, so splits never share content. Each utterance gets a voice, speed
and pitch drawn from the config; espeak-ng renders it and sox converts it to 16 kHz mono 16-bit
PCM in repeatable, non-dithered mode, so the same seed gives byte-identical files (see
``checksums.json``). Everything is written into :func:`speechrl.io.atomic_dir`, so an interrupted
build never leaves a partial dataset in place.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
import string
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Any

import soundfile as sf

from speechrl.config import Config
from speechrl.data import lexicon as lx
from speechrl.data.manifest import SPLITS, Example, write_manifest
from speechrl.io import atomic_dir, checksums, write_json
from speechrl.progress import Progress

log = logging.getLogger("speechrl")

TASKS = ("sqa", "ast")
SQA_PROMPT = "Listen to the passage and answer the question. Question: {question}"
AST_PROMPT = "Translate the English speech into German."
MAX_TRIES = 200  # draws per wanted item before giving up (the item space is too small)


# ============================================================================ mini-AST grammar
@dataclass(frozen=True)
class NounPhrase:
    """``noun`` is an English key of :data:`lexicon.NOUNS` or a name of :data:`lexicon.NAMES`."""

    noun: str
    article: str = "the"  # "the", "a", or "" for a proper name
    adjective: str | None = None  # English key of lexicon.ADJECTIVES


@dataclass(frozen=True)
class Sentence:
    """Subject - verb - accusative object, with optional adverbials and negation.

    ``time`` is always sentence-initial; ``place`` is sentence-final unless ``place_first`` (then
    there is no ``time``). Negation is not combined with a sentence-final place adverbial.
    """

    subject: NounPhrase
    verb: str  # English base form, key of lexicon.VERBS
    obj: NounPhrase
    time: str | None = None
    place: str | None = None
    place_first: bool = False
    negated: bool = False


_DEF = {"nom": {"m": "der", "f": "die", "n": "das"}, "acc": {"m": "den", "f": "die", "n": "das"}}
_INDEF = {"nom": {"m": "ein", "f": "eine", "n": "ein"}, "acc": {"m": "einen", "f": "eine", "n": "ein"}}
_WEAK = {"nom": {"m": "e", "f": "e", "n": "e"}, "acc": {"m": "en", "f": "e", "n": "e"}}  # after der/die/das
_MIXED = {"nom": {"m": "er", "f": "e", "n": "es"}, "acc": {"m": "en", "f": "e", "n": "es"}}  # after (k)ein


def _a(word: str) -> str:
    return f"an {word}" if word[0].lower() in "aeiou" else f"a {word}"


def _np_en(np: NounPhrase) -> str:
    if not np.article:
        return np.noun
    words = f"{np.adjective} {np.noun}" if np.adjective else np.noun
    return _a(words) if np.article == "a" else f"the {words}"


def _np_de(np: NounPhrase, case: str, negated: bool = False) -> str:
    """German noun phrase in ``case`` ("nom"/"acc"); ``negated`` turns ein into kein."""
    if not np.article:
        return np.noun
    noun = lx.NOUNS[np.noun]
    if case == "acc" and noun.weak:
        raise ValueError(f"weak noun {np.noun!r} cannot be an object (the grammar does not inflect nouns)")
    if np.article == "a":
        art = ("k" if negated else "") + _INDEF[case][noun.gender]
        ending = _MIXED[case][noun.gender]
    else:
        art, ending = _DEF[case][noun.gender], _WEAK[case][noun.gender]
    adj = f"{lx.ADJECTIVES[np.adjective]}{ending} " if np.adjective else ""
    return f"{art} {adj}{noun.de}"


def _check(s: Sentence) -> None:
    if s.place_first and (s.time or not s.place):
        raise ValueError(f"place_first needs a place and no time adverbial: {s}")
    if s.negated and s.place and not s.place_first:
        raise ValueError(f"negation with a sentence-final place adverbial is not supported: {s}")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def realize_en(s: Sentence) -> str:
    """The English sentence of ``s``."""
    _check(s)
    verb = f"does not {s.verb}" if s.negated else lx.VERBS[s.verb].third
    core = f"{_np_en(s.subject)} {verb} {_np_en(s.obj)}"
    front = s.time or (s.place if s.place_first else None)
    text = f"{front} {core}" if front else core
    if s.place and not s.place_first:
        text += f" {s.place}"
    return _cap(text) + "."


def translate_en_de(s: Sentence) -> str:
    """The German translation of ``s``: nominative subject, accusative object, verb second."""
    _check(s)
    verb = lx.VERBS[s.verb].de
    kein = s.negated and s.obj.article == "a"
    subj, obj = _np_de(s.subject, "nom"), _np_de(s.obj, "acc", negated=kein)
    tail = " nicht" if s.negated and not kein else ""
    if s.time or s.place_first:
        front = lx.TIME_ADVERBIALS[s.time] if s.time else lx.PLACE_ADVERBIALS[s.place or ""]
        text = f"{front} {verb} {subj} {obj}{tail}"
    else:
        text = f"{subj} {verb} {obj}{tail}"
    if s.place and not s.place_first:
        text += f" {lx.PLACE_ADVERBIALS[s.place]}"
    return _cap(text) + "."


@dataclass(frozen=True)
class AstVocab:
    """The part of the lexicon a mini-AST dataset draws from (:func:`ast_vocab`)."""

    nouns: tuple[str, ...]
    names: tuple[str, ...]
    adjectives: dict[str, tuple[str, ...]]  # noun kind -> adjectives
    times: tuple[str, ...]
    places: tuple[str, ...]
    objects: dict[str, tuple[str, ...]]  # verb -> object nouns (verbs without any are left out)


def ast_vocab(words_per_kind: int = 0) -> AstVocab:
    """The first ``words_per_kind`` nouns of each kind, adjectives per kind, names and adverbials
    (lexicon order); 0 keeps everything. Smaller vocabularies make the task learnable by smaller
    models in fewer steps (the number of distinct sentences stays large)."""
    k = words_per_kind or None
    per_kind: dict[str, list[str]] = {}
    for noun, info in lx.NOUNS.items():
        per_kind.setdefault(info.kind, []).append(noun)
    nouns = tuple(n for ns in per_kind.values() for n in ns[:k])
    objects = {}
    for verb, info in lx.VERBS.items():
        objs = tuple(n for n in nouns if not lx.NOUNS[n].weak and (n in info.objects or lx.NOUNS[n].kind in info.objects))
        if objs:
            objects[verb] = objs
    return AstVocab(nouns, lx.NAMES[:k], {kind: adjs[:k] for kind, adjs in lx.ADJ_BY_KIND.items()},
                    tuple(lx.TIME_ADVERBIALS)[:k], tuple(lx.PLACE_ADVERBIALS)[:k], objects)


FULL_VOCAB = ast_vocab()


def _random_np(rng: random.Random, noun: str, p_adj: float, vocab: AstVocab) -> NounPhrase:
    info = lx.NOUNS[noun]
    article = "a" if info.countable and rng.random() < 0.35 else "the"
    adjs = vocab.adjectives[info.kind]
    adj = rng.choice(adjs) if adjs and rng.random() < p_adj else None
    return NounPhrase(noun, article, adj)


def random_sentence(rng: random.Random, vocab: AstVocab = FULL_VOCAB) -> Sentence:
    """One random, semantically plausible :class:`Sentence` over ``vocab``."""
    verb = rng.choice(list(vocab.objects))
    people = [n for n in vocab.nouns if lx.NOUNS[n].kind == "person"]
    animals = [n for n in vocab.nouns if lx.NOUNS[n].kind == "animal"]
    r = rng.random()
    if r < 0.15:
        subject = NounPhrase(rng.choice(vocab.names), "")
    else:
        pool = people + animals if lx.VERBS[verb].animals else people
        subject = _random_np(rng, rng.choice(pool), 0.4, vocab)
    obj_noun = rng.choice([o for o in vocab.objects[verb] if o != subject.noun] or list(vocab.objects[verb]))
    obj = _random_np(rng, obj_noun, 0.5, vocab)
    free = not lx.VERBS[verb].stative
    time_adv = rng.choice(vocab.times) if free and rng.random() < 0.3 else None
    place = rng.choice(vocab.places) if free and rng.random() < 0.3 else None
    place_first = place is not None and time_adv is None and rng.random() < 0.5
    negated = rng.random() < 0.15 and not (place and not place_first)
    return Sentence(subject, verb, obj, time_adv, place, place_first, negated)


def make_ast_items(rng: random.Random, n: int, words_per_kind: int = 0) -> list[dict[str, Any]]:
    """``n`` items with distinct English sentences: ``{"english", "german", "sentence"}``."""
    vocab = ast_vocab(words_per_kind)
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(n * MAX_TRIES):
        if len(items) == n:
            break
        s = random_sentence(rng, vocab)
        en = realize_en(s)
        if en not in seen:
            seen.add(en)
            items.append({"english": en, "german": translate_en_de(s), "sentence": s})
    if len(items) < n:
        raise ValueError(f"mini-AST grammar produced only {len(items)} distinct sentences, {n} requested "
                         "(raise data.synthetic.ast_words_per_kind or lower the split sizes)")
    return items


# ============================================================================ mini-SQA
def _slots(template: lx.FactTemplate) -> list[str]:
    """Sampled slot names of a template in order of first use (derived ones resolved)."""
    texts = [template.fact] + [part for q in template.questions for part in q]
    names: list[str] = []
    for text in texts:
        for _, field, _, _ in string.Formatter().parse(text):
            base = field[2:] if field and field.startswith("a_") else field
            if base and base not in ("name", "pos") and base not in names:
                names.append(base)
    return names


_TEMPLATE_SLOTS = [_slots(t) for t in lx.FACT_TEMPLATES]


def make_sqa_items(rng: random.Random, n: int, n_facts: int) -> list[dict[str, Any]]:
    """``n`` items with distinct passages: ``{"passage", "question", "answer", "answer_span", "subject"}``.

    A passage holds ``n_facts`` facts from different templates about different people, so every
    question (including "Who ...?") has exactly one answer.
    """
    if not 1 <= n_facts <= len(lx.FACT_TEMPLATES):
        raise ValueError(f"n_facts={n_facts} must be between 1 and {len(lx.FACT_TEMPLATES)}")
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    people = list(lx.PEOPLE)
    for _ in range(n * MAX_TRIES):
        if len(items) == n:
            break
        idx = rng.sample(range(len(lx.FACT_TEMPLATES)), n_facts)
        names = rng.sample(people, n_facts)
        facts = []
        for i, name in zip(idx, names):
            values = {slot: rng.choice(lx.SLOTS[slot]) for slot in _TEMPLATE_SLOTS[i]}
            values.update({f"a_{k}": _a(v) for k, v in list(values.items())}, name=name, pos=lx.PEOPLE[name])
            facts.append((lx.FACT_TEMPLATES[i], values))
        template, values = facts[rng.randrange(n_facts)]
        q, a, span = (p.format(**values) for p in rng.choice(template.questions))
        passage = " ".join(t.fact.format(**v) for t, v in facts)
        if passage not in seen:
            seen.add(passage)
            items.append({"passage": passage, "question": q, "answer": a, "answer_span": span, "subject": values["name"]})
    if len(items) < n:
        raise ValueError(f"mini-SQA templates produced only {len(items)} distinct passages, {n} requested")
    return items


# ============================================================================ synthesis
def check_tools() -> None:
    missing = [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]
    if missing:
        raise RuntimeError(f"{' and '.join(missing)} not found on PATH; install espeak-ng and sox: scripts/setup.sh does")


def _run(cmd: list[str], utt_id: str, stdin: bytes | None = None) -> bytes:
    """Run one synthesis command; a non-zero exit (or espeak-ng writing nothing) names the utterance."""
    res = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if res.returncode != 0 or (cmd[0] == "espeak-ng" and not res.stdout):
        err = res.stderr.decode(errors="replace").strip() or "no output"
        raise RuntimeError(f"synthesis of {utt_id} failed: {' '.join(cmd)!r} exited {res.returncode}: {err}")
    return res.stdout


def synthesize(text: str, out: Path, voice: str, speed: int, pitch: int, sample_rate: int, utt_id: str) -> None:
    """Render ``text`` with espeak-ng (22.05 kHz) and convert it to ``sample_rate`` Hz mono 16-bit PCM at ``out``."""
    wav = _run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text], utt_id)
    # sox -R (repeatable) -D (no dither): identical input gives byte-identical output
    _run(["sox", "-R", "-D", "-t", "wav", "-", "-r", str(sample_rate), "-c", "1", "-b", "16", "-e", "signed-integer", str(out)],
         utt_id, stdin=wav)


def synthesize_all(jobs: list[dict[str, Any]], root: Path, cfg: Config, desc: str) -> None:
    """Synthesise every job (in parallel); fills ``job["duration"]``; the first failure cancels the rest."""
    syn, sr = cfg.data.synthetic, cfg.data.sample_rate
    total = 0.0

    def one(job: dict[str, Any]) -> float:
        out = root / job["audio"]
        synthesize(job["text"], out, job["voice"], job["speed"], job["pitch"], sr, job["id"])
        info = sf.info(str(out))
        if info.samplerate != sr or info.channels != 1 or info.frames == 0:
            raise RuntimeError(f"synthesis of {job['id']} produced bad audio: {info.samplerate} Hz, {info.channels} ch, {info.frames} frames")
        return info.frames / sr

    with Progress(total=len(jobs), desc=desc, log_every=max(1, len(jobs) // 10), unit="utt") as bar, \
            ThreadPoolExecutor(max_workers=syn.workers) as pool:
        futures = {pool.submit(one, job): job for job in jobs}
        try:
            for fut in as_completed(futures):
                job = futures[fut]
                job["duration"] = round(fut.result(), 3)
                if job["duration"] > cfg.data.max_audio_seconds:
                    raise RuntimeError(f"{job['id']} is {job['duration']} s, over data.max_audio_seconds={cfg.data.max_audio_seconds}; "
                                       "lower data.synthetic.sqa_facts or raise data.max_audio_seconds")
                total += job["duration"]
                bar.update(audio_s=round(total, 1))
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def duration_stats(durations: list[float]) -> dict[str, float]:
    """Total / mean / min / max seconds of a synthetic dataset's clips (its stats.json)."""
    return {"total_audio_seconds": round(sum(durations), 2), "mean_duration": round(sum(durations) / len(durations), 3),
            "min_duration": min(durations), "max_duration": max(durations)}


def write_synthetic(out_dir: Path, jobs: list[dict[str, Any]], cfg: Config, task: str,
                    example: Callable[[dict[str, Any]], Example], stats: dict[str, Any], start: float) -> dict[str, Any]:
    """Synthesise ``jobs`` (:func:`synthesize_all`) into a dataset folder replaced as a whole: ``wavs/``, every
    split's manifest (``example(job)`` per job), ``checksums.json`` and ``stats.json`` (task, source, seed,
    counts, durations, then ``stats``, then the elapsed seconds since ``start``); returns the stats."""
    counts = {split: sum(j["split"] == split for j in jobs) for split in SPLITS}
    with atomic_dir(Path(out_dir)) as tmp:
        (tmp / "wavs").mkdir()
        synthesize_all(jobs, tmp, cfg, desc=f"synth {task}")
        for split in SPLITS:
            write_manifest(tmp / f"{split}.jsonl", [example(j) for j in jobs if j["split"] == split])
        write_json(tmp / "checksums.json", checksums(tmp))
        out = {"task": task, "source": "synthetic", "seed": cfg.seed, "counts": counts, "utterances": len(jobs),
               **duration_stats([j["duration"] for j in jobs]), **stats,
               "elapsed_seconds": round(time.perf_counter() - start, 2)}
        write_json(tmp / "stats.json", out)
    return out


def _words(texts: list[str]) -> int:
    return len({w for t in texts for w in re.findall(r"[\wäöüß']+", t.lower())})


def build_synthetic(task: str, cfg: Config, out_dir: Path) -> dict:
    """Generate task 'sqa' or 'ast' into out_dir: train.jsonl, valid.jsonl, test.jsonl, wavs/<id>.wav (16 kHz mono 16-bit PCM), checksums.json (sha256 of every file), stats.json. Returns the stats dict (counts per split, total audio seconds, mean duration, vocabulary sizes, elapsed seconds).

    ``checksums.json`` covers the manifests and wavs (identical for identical seeds); ``stats.json``
    is left out of it because it records the wall time.
    """
    if task not in TASKS:
        raise ValueError(f"unknown synthetic task {task!r}; valid: {', '.join(TASKS)}")
    check_tools()
    start = time.perf_counter()
    syn, out_dir = cfg.data.synthetic, Path(out_dir)
    counts = {"train": syn.n_train, "valid": syn.n_valid, "test": syn.n_test}
    rng = random.Random(f"{cfg.seed}-{task}")
    n = sum(counts.values())
    items = make_sqa_items(rng, n, syn.sqa_facts) if task == "sqa" else make_ast_items(rng, n, syn.ast_words_per_kind)

    jobs: list[dict[str, Any]] = []
    it = iter(items)
    for split in SPLITS:
        for i in range(counts[split]):
            item, uid = next(it), f"{task}-{split}-{i:05d}"
            jobs.append({"id": uid, "split": split, "item": item, "audio": f"wavs/{uid}.wav",
                         "text": item["passage"] if task == "sqa" else item["english"],
                         "voice": rng.choice(syn.voices), "speed": rng.choice(syn.speeds), "pitch": rng.choice(syn.pitches)})

    with atomic_dir(out_dir) as tmp:
        (tmp / "wavs").mkdir()
        synthesize_all(jobs, tmp, cfg, desc=f"synth {task}")
        for split in SPLITS:
            write_manifest(tmp / f"{split}.jsonl", [_example(task, j) for j in jobs if j["split"] == split])
        write_json(tmp / "checksums.json", checksums(tmp))
        durations = [j["duration"] for j in jobs]
        refs = [_example(task, j).references[0] for j in jobs]
        stats = {
            "task": task, "seed": cfg.seed, "counts": counts, "utterances": len(jobs),
            "total_audio_seconds": round(sum(durations), 2), "mean_duration": round(sum(durations) / len(jobs), 3),
            "min_duration": min(durations), "max_duration": max(durations),
            "vocab_spoken": _words([j["text"] for j in jobs]), "vocab_reference": _words(refs),
            "elapsed_seconds": round(time.perf_counter() - start, 2),
        }
        write_json(tmp / "stats.json", stats)
    log.info(f"[synth {task}] {len(jobs)} utterances ({counts['train']}/{counts['valid']}/{counts['test']}), "
             f"{stats['total_audio_seconds']:.0f} s audio, mean {stats['mean_duration']:.2f} s, "
             f"{stats['elapsed_seconds']:.1f} s -> {out_dir}")
    return stats


def _example(task: str, job: dict[str, Any]) -> Example:
    item = job["item"]
    extra: dict[str, Any] = {"voice": job["voice"], "speed": job["speed"], "pitch": job["pitch"],
                             "duration": job["duration"], "transcript": job["text"]}
    if task == "sqa":
        extra.update(question=item["question"], passage=item["passage"], answer_span=item["answer_span"], subject=item["subject"])
        return Example(job["id"], job["audio"], SQA_PROMPT.format(question=item["question"]), [item["answer"]],
                       "sqa", "en", job["split"], "en", extra)
    return Example(job["id"], job["audio"], AST_PROMPT, [item["german"]], "ast", "en", job["split"], "de", extra)
