"""Spoken-reasoning scorers: ``mc_accuracy`` (multiple choice) and ``format`` (TARS think/answer format).

``mc_accuracy``: 1.0 if the answer extracted from the output is the reference, else 0.0 (an output
from which no answer can be extracted, or a blank one, is a wrong answer: 0.0). The optional
``choices=`` column gives one list of option strings per sample (option ``i`` has the letter
``"ABCD..."[i]``; a leading ``"A."``/``"(A)"``/``"A)"`` label on an option is ignored). The reference
is the correct letter (``"B"``, ``"(B)"``), the correct option's text, or a worked answer whose last
``<answer>...</answer>`` holds one of those; several references: any.

Answer extraction, first rule that gives an answer wins (:func:`extract_answer`):

1. the text inside the last ``<answer>...</answer>`` (if present, rules 2-5 run on it alone);
2. the last explicit statement "answer: (B)" / "answer is B" / "the correct option is (B)"
   (case-insensitive keyword; the letter must be a capital, or in parentheses);
3. a lone letter: the whole text is ``B``, ``(B)``, ``B.`` ..., or it starts with a label ``B)`` / ``B.`` / ``(B)``
   followed by text;
4. the option text: the normalised text (NFKC, lowercase, no punctuation) equals one choice, or
   exactly one choice occurs in it as a whole-word phrase (an option found only inside a longer
   found option, "blue" in "dark blue", is not counted; several different ones: no answer);
5. without ``choices``: the normalised text itself, compared with a textual reference.

Letters are only valid within the number of choices (A-J without choices).

``format``: 1.0 if the output is exactly ``<think>...</think><answer>...</answer>`` (whitespace
around and between the blocks allowed, nothing else outside them, one block of each, non-blank
answer), else 0.0. The reference is not used.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any

from speechrl.rewards.base import Scorer, check_inputs, register
from speechrl.rewards.text import normalize_answer

LETTERS = string.ascii_uppercase
MAX_LETTERS_WITHOUT_CHOICES = 10  # A-J

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_STATED = re.compile(
    r"\b(?:answer|option|choice)\b\s*(?:is|would be|will be|should be|=|:)?\s*[:\-]?\s*"
    r"(?:\(\s*([A-Za-z])\s*\)|([A-Z])(?![A-Za-z0-9]))", re.I)
_LONE = re.compile(r"^\W*([A-Za-z])\W*$")
_LEADING = re.compile(r"^\s*(?:\(\s*([A-Za-z])\s*\)|([A-Z])\s*[.):])\s*\S")
_LABEL = re.compile(r"^\s*(?:\(\s*[A-Za-z]\s*\)|[A-Z]\s*[.):])\s*")
_FORMAT = re.compile(r"\s*<think>((?:(?!</?think>|</?answer>).)*)</think>\s*<answer>((?:(?!</?think>|</?answer>).)*)</answer>\s*",
                     re.S)


def option_text(choice: str) -> str:
    """A choice's normalised text without a leading ``A.``/``(A)``/``A)`` label."""
    return normalize_answer(_LABEL.sub("", choice, count=1))


def _letter(m: re.Match[str] | None, n_letters: int) -> str | None:
    if m is None:
        return None
    letter = next(g for g in m.groups() if g).upper()
    return letter if LETTERS.index(letter) < n_letters else None


def extract_answer(text: str, choices: Sequence[str] | None = None) -> str | None:
    """The letter (``"B"``) or, without choices, the normalised answer text; ``None`` if none found."""
    tags = _ANSWER_TAG.findall(text)
    if tags:
        text = tags[-1]
    n_letters = len(choices) if choices else MAX_LETTERS_WITHOUT_CHOICES
    # 2. explicit statement, last one wins; the letter must be capital unless parenthesised
    stated = [m for m in _STATED.finditer(text) if m.group(1) or m.group(2).isupper()]
    for m in reversed(stated):
        if (letter := _letter(m, n_letters)) is not None:
            return letter
    # 3. lone letter / leading label
    for pattern in (_LONE, _LEADING):
        if (letter := _letter(pattern.match(text), n_letters)) is not None:
            return letter
    norm = normalize_answer(text)
    if not norm:
        return None
    if choices:  # 4. option text
        opts = [option_text(c) for c in choices]
        for i, o in enumerate(opts):
            if o and norm == o:
                return LETTERS[i]
        found = {i for i, o in enumerate(opts) if o and re.search(rf"(?<!\w){re.escape(o)}(?!\w)", norm)}
        # an option found only inside a longer found option ("blue" in "dark blue") does not count
        found = {i for i in found if not any(opts[i] != opts[j] and opts[i] in opts[j] for j in found)}
        found_texts = {opts[i] for i in found}
        if len(found_texts) == 1:  # the same text twice in the options: take the first
            return LETTERS[min(found)]
        return None
    return norm  # 5. free text


def reference_answer(ref: str, choices: Sequence[str] | None = None) -> str:
    """A reference as a letter when it is one (``B``, ``(B)``) or matches an option's text, else its normalised text.
    A worked reference (``<think>...</think><answer>B</answer>``, an SFT target) stands for its last answer."""
    tags = _ANSWER_TAG.findall(ref)
    if tags:
        ref = tags[-1]
    n_letters = len(choices) if choices else len(LETTERS)
    if (letter := _letter(_LONE.match(ref), n_letters)) is not None:
        return letter
    norm = normalize_answer(ref)
    if choices:
        for i, c in enumerate(choices):
            if norm == option_text(c):
                return LETTERS[i]
    return norm


def _mc_accuracy(hyps: list[str], refs: Any, choices: Sequence[Sequence[str] | None] | None = None,
                 **_columns: Any) -> list[float | None]:
    checked = check_inputs(hyps, refs)
    if choices is not None and len(choices) != len(hyps):
        raise ValueError(f"mc_accuracy: column 'choices' has {len(choices)} values for {len(hyps)} samples")
    out: list[float | None] = []
    for i, (h, rs) in enumerate(zip(hyps, checked)):
        ch = list(choices[i]) if choices is not None and choices[i] else None
        pred = extract_answer(h, ch) if h.strip() else None
        out.append(float(pred is not None and any(pred == reference_answer(r, ch) for r in rs)))
    return out


def is_formatted(text: str) -> bool:
    """``<think>...</think><answer>...</answer>`` with a non-blank answer, whitespace-tolerant."""
    m = _FORMAT.fullmatch(text)
    return bool(m and m.group(2).strip())


def _format(hyps: list[str], refs: Any, **_columns: Any) -> list[float | None]:
    check_inputs(hyps, refs)
    return [float(is_formatted(h)) for h in hyps]


register(Scorer("mc_accuracy", _mc_accuracy, None,
                "multiple-choice accuracy: answer letter/option extracted from <answer>, 'Answer: (B)', a lone letter or option text",
                optional_columns=("choices",)))
register(Scorer("format", _format, None, "TARS format reward: 1 if <think>...</think><answer>...</answer>, else 0"))
