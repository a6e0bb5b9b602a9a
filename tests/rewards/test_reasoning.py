"""mc_accuracy answer extraction (each rule, its order) and the TARS format reward."""

from __future__ import annotations

import pytest

from speechrl.rewards import REWARDS, combine, score_corpus, score_samples
from speechrl.rewards.reasoning import extract_answer, is_formatted, reference_answer

CHOICES = ["A. red", "B. green", "(C) blue", "D) dark blue"]


@pytest.mark.parametrize("text, expected", [
    ("<think>maybe A</think><answer>B</answer>", "B"),           # 1. answer tag wins over the reasoning
    ("<answer>the answer is (c)</answer>", "C"),                 # 1 + 2
    ("Answer: (C)", "C"),                                        # 2
    ("I first thought A. So the answer is D.", "D"),              # 2 beats the leading label
    ("Option (a) is wrong; the answer is C.", "C"),               # 2: last statement
    ("the answer is a dog", None),                               # lowercase 'a' is no letter
    ("B", "B"), ("(b)", "B"), ("C.", "C"),                        # 3. lone letter
    ("B) green, because leaves", "B"),                           # 3. leading label
    ("green", "B"), ("It is Green!", "B"),                       # 4. option text
    ("the sky is dark blue", "D"),                               # 4. longer option wins
    ("red or green", None),                                      # 4. ambiguous
    ("E", None), ("the answer is E", None),                      # letter beyond the choices
    ("", None),
])
def test_extraction(text: str, expected: str | None) -> None:
    assert extract_answer(text, CHOICES) == expected


def test_extraction_without_choices() -> None:
    assert extract_answer("The answer is (B).") == "B"
    assert extract_answer("Paris.") == "paris"
    assert reference_answer("(C)") == "C" and reference_answer("Paris") == "paris"
    assert reference_answer("dark blue", CHOICES) == "D" and reference_answer("b", CHOICES) == "B"


def test_mc_accuracy_scores() -> None:
    hyps = ["<think>x</think><answer>B</answer>", "the answer is green", "Answer: (A)", "Paris", "no idea", ""]
    refs = [["B"], ["green"], ["B"], ["paris"], ["A"], ["A"]]
    choices = [CHOICES, CHOICES, CHOICES, None, CHOICES, CHOICES]
    assert score_samples("mc_accuracy", hyps, refs, choices=choices) == [1.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    assert score_corpus("mc_accuracy", hyps, refs, choices=choices) == pytest.approx(50.0)
    # choices are optional
    assert score_samples("mc_accuracy", ["(B)", "b"], [["B"], ["B"]]) == [1.0, 1.0]
    assert "choices" in REWARDS.get("mc_accuracy").optional_columns


@pytest.mark.parametrize("text, ok", [
    ("<think>reason</think><answer>B</answer>", True),
    ("  <think>\n a\n b \n</think>\n\n<answer> B </answer>\n", True),
    ("<think></think><answer>B</answer>", True),
    ("<think>x</think><answer> </answer>", False),
    ("<answer>B</answer>", False),
    ("<think>x</think>", False),
    ("<think>x</think><answer>B</answer> trailing", False),
    ("preamble <think>x</think><answer>B</answer>", False),
    ("<think>x</think><answer>B</answer><answer>C</answer>", False),
    ("<think>x<think>y</think><answer>B</answer>", False),
    ("<answer>B</answer><think>x</think>", False),
])
def test_format(text: str, ok: bool) -> None:
    assert is_formatted(text) is ok
    assert score_samples("format", [text], [["unused"]]) == [float(ok)]


def test_tars_style_combination() -> None:
    hyps = ["<think>x</think><answer>B</answer>", "B", "<think>x</think><answer>A</answer>"]
    totals, per = combine({"mc_accuracy": 1.0, "format": 0.5}, hyps, [["B"]] * 3, choices=[CHOICES] * 3)
    assert totals == pytest.approx([1.5, 1.0, 0.5])
    assert per["format"] == [1.0, 0.0, 1.0]
