"""The synthetic spoken multiple-choice task (mcq): answers right by construction, the manifest, the scorers on it."""

from __future__ import annotations

import json
import random
import re

import pytest
import soundfile as sf

from speechrl.config import parse_config
from speechrl.data.reasoning import KINDS, LETTERS, build_mcq_synthetic, make_mcq_items, spoken_text
from speechrl.rewards import REWARDS


def _solve(item: dict) -> str:
    """The answer, worked out from the question alone."""
    q = item["question"]
    if m := re.fullmatch(r"What is (\d+) (plus|minus) (\d+)\?", q):
        a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
        return str(a + b if op == "plus" else a - b)
    if m := re.fullmatch(r"Which number is the (largest|smallest)\?", q):
        nums = [int(c) for c in item["choices"]]
        return str(max(nums) if m.group(1) == "largest" else min(nums))
    m = re.fullmatch(r"(\w+) is older than (\w+)\. (\w+) is older than (\w+)\. Who is the (youngest|oldest)\?", q)
    assert m and m.group(2) == m.group(3), q
    return m.group(4) if m.group(5) == "youngest" else m.group(1)


def test_every_item_has_four_distinct_options_and_the_right_answer():
    items = make_mcq_items(random.Random(0), 60)
    assert [it["kind"] for it in items[:3]] == list(KINDS) and len({spoken_text(it) for it in items}) == 60
    for it in items:
        assert len(it["choices"]) == 4 and len(set(it["choices"])) == 4
        assert it["choices"][it["answer"]] == _solve(it), it
    assert {it["answer"] for it in items} == {0, 1, 2, 3}  # the answer position varies
    assert spoken_text(items[0]).endswith(f"D: {items[0]['choices'][3]}.")
    with pytest.raises(ValueError, match="unknown question kind.*valid: arithmetic, comparison, order"):
        make_mcq_items(random.Random(0), 2, ["riddles"])


def test_build_writes_speech_text_and_a_worked_reference(tmp_path):
    cfg = parse_config({"data": {"synthetic": {"n_train": 3, "n_valid": 1, "n_test": 2}}})
    stats = build_mcq_synthetic(cfg, tmp_path / "mcq")
    assert stats["counts"] == {"train": 3, "valid": 1, "test": 2} and sum(stats["kinds"].values()) == 6
    rows = [json.loads(x) for x in (tmp_path / "mcq" / "train.jsonl").read_text().splitlines()]
    r = rows[0]
    assert sf.info(str(tmp_path / "mcq" / r["audio"])).samplerate == 16000
    ex = r["extra"]
    assert ex["transcript"].startswith(ex["question"]) and len(ex["choices"]) == 4 and ex["answer"] in LETTERS
    assert r["references"][0].endswith(f"<answer>{ex['answer']}</answer>") and r["references"][0].startswith("<think>")
    # the worked reference is a correct, well-formatted answer for the task's own scorers
    refs, choices = [[x["references"][0]] for x in rows], [x["extra"]["choices"] for x in rows]
    assert REWARDS.get("mc_accuracy").sample([x["references"][0] for x in rows], refs, choices=choices) == [1.0] * 3
    assert REWARDS.get("format").sample([x["references"][0] for x in rows], refs) == [1.0] * 3
    wrong = [f"<think>no</think><answer>{LETTERS[(LETTERS.index(x['extra']['answer']) + 1) % 4]}</answer>" for x in rows]
    assert REWARDS.get("mc_accuracy").sample(wrong, refs, choices=choices) == [0.0] * 3
    again = build_mcq_synthetic(cfg, tmp_path / "again")
    assert (tmp_path / "mcq" / "checksums.json").read_text() == (tmp_path / "again" / "checksums.json").read_text()
    assert again["answers"] == stats["answers"]
