"""Synthetic spoken multiple-choice reasoning (task ``mcq``), the embedded stand-in for TARS's benchmarks
(TARS, ACL 2026, arXiv 2601.05543: VoiceBench MMSU and OpenBookQA).

Each item is a question with four options whose answer is checkable by construction, from one of three
generators (:data:`KINDS`):

* ``arithmetic``: "What is 7 plus 5?" (sums and differences of numbers up to 20; distractors near the answer);
* ``comparison``: "Which number is the largest?" over four distinct numbers;
* ``order``: a small templated world, "Tom is older than Anna. Anna is older than Ben. Who is the youngest?",
  the options the people of the world plus one outsider.

The spoken form reads the question and the options ("... A: 12. B: 11. C: 13. D: 10.") with espeak-ng (voices,
speeds and pitches as the other synthetic tasks); ``extra.transcript`` holds the same words as text (TARS's text
branch, :func:`speechrl.training.rollout.text_variant`). Manifest: ``prompt`` = :data:`MCQ_PROMPT`, ``references``
= ``["<think>{worked reasoning}</think><answer>{letter}</answer>"]`` (the SFT target; ``mc_accuracy`` reads its
answer), ``extra``: ``transcript``, ``question``, ``choices`` (four option strings, the ``mc_accuracy`` column),
``answer`` (the letter), ``kind``, voice, speed, pitch, duration.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from speechrl.config import Config
from speechrl.data.manifest import SPLITS, Example
from speechrl.data.synthetic import MAX_TRIES, check_tools, write_synthetic

log = logging.getLogger("speechrl")

TASK = "mcq"
LETTERS = "ABCD"
MCQ_PROMPT = ("Answer the multiple-choice question. Think it through in <think>...</think>, "
              "then give the letter of the option in <answer>...</answer>.")
NAMES = ["Tom", "Anna", "Ben", "Sara", "Paul", "Lena", "Max", "Eva", "Jonas", "Mia"]


def _options(rng: random.Random, answer: str, distractors: list[str]) -> tuple[list[str], int]:
    """The answer and three distinct distractors in a random order; returns (choices, index of the answer)."""
    picked = rng.sample([d for d in dict.fromkeys(distractors) if d != answer], 3)
    choices = [answer, *picked]
    rng.shuffle(choices)
    return choices, choices.index(answer)


def _arithmetic(rng: random.Random) -> dict[str, Any]:
    a, b = rng.randint(2, 20), rng.randint(2, 20)
    if rng.random() < 0.5:
        op, value = "plus", a + b
    else:
        a, b = max(a, b), min(a, b)
        op, value = "minus", a - b
    near = [value + d for d in (-3, -2, -1, 1, 2, 3) if value + d >= 0]
    choices, k = _options(rng, str(value), [str(v) for v in near])
    return {"question": f"What is {a} {op} {b}?", "choices": choices, "answer": k,
            "rationale": f"{a} {op} {b} is {value}."}


def _comparison(rng: random.Random) -> dict[str, Any]:
    nums = rng.sample(range(1, 100), 4)
    largest = rng.random() < 0.5
    value = max(nums) if largest else min(nums)
    word = "largest" if largest else "smallest"
    rest = [str(n) for n in nums if n != value]
    choices, k = _options(rng, str(value), rest)
    return {"question": f"Which number is the {word}?", "choices": choices, "answer": k,
            "rationale": f"Of {', '.join(choices)}, the {word} is {value}."}


def _order(rng: random.Random) -> dict[str, Any]:
    people = rng.sample(NAMES, 4)
    world, outsider = people[:3], people[3]  # world[0] oldest
    facts = f"{world[0]} is older than {world[1]}. {world[1]} is older than {world[2]}."
    youngest = rng.random() < 0.5
    value = world[2] if youngest else world[0]
    word = "youngest" if youngest else "oldest"
    choices, k = _options(rng, value, [p for p in world if p != value] + [outsider])
    return {"question": f"{facts} Who is the {word}?", "choices": choices, "answer": k,
            "rationale": f"{world[0]} is older than {world[1]}, who is older than {world[2]}, so {value} is the {word}."}


KINDS: dict[str, Callable[[random.Random], dict[str, Any]]] = {
    "arithmetic": _arithmetic, "comparison": _comparison, "order": _order}


def spoken_text(item: dict[str, Any]) -> str:
    """What is spoken (and the text branch's transcript): the question, then the lettered options."""
    return f"{item['question']} " + " ".join(f"{LETTERS[i]}: {c}." for i, c in enumerate(item["choices"]))


def make_mcq_items(rng: random.Random, n: int, kinds: list[str] | tuple[str, ...] = tuple(KINDS)) -> list[dict[str, Any]]:
    """``n`` distinct items (by spoken text), the kinds taken in turn."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown question kind(s) {unknown or kinds}; valid: {', '.join(KINDS)}")
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(n * MAX_TRIES):
        if len(items) == n:
            break
        kind = kinds[len(items) % len(kinds)]
        item = {"kind": kind, **KINDS[kind](rng)}
        text = spoken_text(item)
        if text not in seen:
            seen.add(text)
            items.append(item)
    if len(items) < n:
        raise ValueError(f"only {len(items)} distinct questions of kinds {list(kinds)} in {n * MAX_TRIES} draws; ask for fewer")
    return items


def build_mcq_synthetic(cfg: Config, out_dir: Path) -> dict:
    """Generate the spoken multiple-choice dataset into ``out_dir`` (manifests, wavs/, checksums.json, stats.json)."""
    check_tools()
    start, syn, out_dir = time.perf_counter(), cfg.data.synthetic, Path(out_dir)
    counts = {"train": syn.n_train, "valid": syn.n_valid, "test": syn.n_test}
    rng = random.Random(f"{cfg.seed}-{TASK}")
    items = iter(make_mcq_items(rng, sum(counts.values())))
    jobs = []
    for split in SPLITS:
        for i in range(counts[split]):
            item, uid = next(items), f"{TASK}-{split}-{i:05d}"
            jobs.append({"id": uid, "split": split, "item": item, "audio": f"wavs/{uid}.wav", "text": spoken_text(item),
                         "voice": rng.choice(syn.voices), "speed": rng.choice(syn.speeds), "pitch": rng.choice(syn.pitches)})
    kinds = {k: sum(j["item"]["kind"] == k for j in jobs) for k in KINDS}
    answers = {a: sum(LETTERS[j["item"]["answer"]] == a for j in jobs) for a in LETTERS}
    stats = write_synthetic(out_dir, jobs, cfg, TASK, _example, {"kinds": kinds, "answers": answers}, start)
    log.info(f"[synth {TASK}] {len(jobs)} questions ({counts['train']}/{counts['valid']}/{counts['test']}), kinds {kinds}, "
             f"{stats['total_audio_seconds']:.0f} s audio -> {out_dir}")
    return stats


def _example(job: dict[str, Any]) -> Example:
    item = job["item"]
    letter = LETTERS[item["answer"]]
    extra = {"transcript": job["text"], "question": item["question"], "choices": item["choices"], "answer": letter,
             "kind": item["kind"], "voice": job["voice"], "speed": job["speed"], "pitch": job["pitch"],
             "duration": job["duration"]}
    target = f"<think>{item['rationale']}</think><answer>{letter}</answer>"
    return Example(job["id"], job["audio"], MCQ_PROMPT, [target], TASK, "en", job["split"], "en", extra)
