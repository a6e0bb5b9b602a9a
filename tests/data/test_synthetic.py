"""mini-SQA / mini-AST: German grammar, determinism, splits, audio, atomic builds."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from speechrl.audio.io import load_audio
from speechrl.config import parse_config
from speechrl.data import lexicon as lx
from speechrl.data import synthetic
from speechrl.data.manifest import read_manifest
from speechrl.data.synthetic import NounPhrase as NP
from speechrl.data.synthetic import Sentence, build_synthetic, make_ast_items, make_sqa_items, realize_en, translate_en_de
from speechrl.io import checksums


def tiny_cfg(seed: int = 0, **synthetic_opts):
    return parse_config({"seed": seed, "data": {"synthetic": {"n_train": 6, "n_valid": 2, "n_test": 2, **synthetic_opts}}})


# ------------------------------------------------------------------------------ German grammar
GERMAN = [
    # V2 after a time adverbial, masc. accusative weak declension
    (Sentence(NP("dog"), "see", NP("ball", "the", "red"), time="today"), "Heute sieht der Hund den roten Ball."),
    # fem. nominative weak, masc. accusative mixed, stem change essen -> isst
    (Sentence(NP("cat", "the", "small"), "eat", NP("apple", "a", "red")), "Die kleine Katze isst einen roten Apfel."),
    # neuter nominative weak + neuter accusative mixed (-es), lesen -> liest
    (Sentence(NP("child", "the", "small"), "read", NP("book", "a", "new")), "Das kleine Kind liest ein neues Buch."),
    # masc. nominative mixed (-er), fem. accusative mixed, halten -> hält
    (Sentence(NP("man", "a", "old"), "hold", NP("flower", "a", "red")), "Ein alter Mann hält eine rote Blume."),
    # neuter nominative mixed, neuter accusative weak, nehmen -> nimmt
    (Sentence(NP("girl", "a", "young"), "take", NP("book", "the", "red")), "Ein junges Mädchen nimmt das rote Buch."),
    # negated indefinite masc. object -> keinen
    (Sentence(NP("woman"), "have", NP("dog", "a", "big"), negated=True), "Die Frau hat keinen großen Hund."),
    # negated definite object -> nicht at the end; fronted place, V2; müde -> müd-
    (Sentence(NP("boy", "the", "tired"), "see", NP("cat", "the", "black"), place="in the garden", place_first=True, negated=True),
     "Im Garten sieht der müde Junge die schwarze Katze nicht."),
    # proper name, teuer -> teuren, sentence-final place
    (Sentence(NP("Anna", ""), "buy", NP("coat", "a", "expensive"), place="at the market"), "Anna kauft einen teuren Mantel auf dem Markt."),
    # time fronted + place final; mass noun with definite article
    (Sentence(NP("teacher"), "drink", NP("milk", "the", "cold"), time="every day", place="in the kitchen"),
     "Jeden Tag trinkt der Lehrer die kalte Milch in der Küche."),
    # negated neuter indefinite -> kein frisches
    (Sentence(NP("baker"), "sell", NP("bread", "a", "fresh"), negated=True), "Der Bäcker verkauft kein frisches Brot."),
    # waschen -> wäscht, fronted time, indefinite masc. subject without adjective
    (Sentence(NP("grandfather", "a"), "wash", NP("car", "the", "blue"), time="on Sunday"), "Am Sonntag wäscht ein Großvater das blaue Auto."),
    # fangen -> fängt, werfen -> wirft
    (Sentence(NP("cat"), "catch", NP("mouse", "a", "small")), "Die Katze fängt eine kleine Maus."),
    (Sentence(NP("boy"), "throw", NP("stone", "the", "heavy")), "Der Junge wirft den schweren Stein."),
]


@pytest.mark.parametrize("sentence,german", GERMAN, ids=[g for _, g in GERMAN])
def test_translate_en_de(sentence: Sentence, german: str) -> None:
    assert translate_en_de(sentence) == german


def test_realize_en() -> None:
    assert realize_en(GERMAN[0][0]) == "Today the dog sees the red ball."
    assert realize_en(GERMAN[3][0]) == "An old man holds a red flower."
    assert realize_en(GERMAN[6][0]) == "In the garden the tired boy does not see the black cat."
    assert realize_en(GERMAN[8][0]) == "Every day the teacher drinks the cold milk in the kitchen."


def test_unsupported_constructions_raise() -> None:
    with pytest.raises(ValueError, match="weak noun"):
        translate_en_de(Sentence(NP("man"), "see", NP("boy")))
    with pytest.raises(ValueError, match="negation"):
        translate_en_de(Sentence(NP("man"), "see", NP("dog"), place="in the park", negated=True))


def test_generated_sentences_respect_the_lexicon() -> None:
    items = make_ast_items(random.Random(3), 400)
    assert len({it["english"] for it in items}) == 400
    for it in items:
        s = it["sentence"]
        obj = lx.NOUNS[s.obj.noun]
        assert not obj.weak and (s.obj.noun in lx.VERBS[s.verb].objects or obj.kind in lx.VERBS[s.verb].objects)
        assert s.subject.noun != s.obj.noun
        if s.obj.article == "a":
            assert obj.countable
        assert it["german"][0].isupper() and it["german"].endswith(".")


def test_small_ast_vocabulary() -> None:
    small = synthetic.ast_vocab(2)
    kinds = [lx.NOUNS[n].kind for n in small.nouns]
    assert max(kinds.count(k) for k in set(kinds)) == 2 and len(small.names) == 2
    items = make_ast_items(random.Random(0), 2000, words_per_kind=2)
    words = {w for it in items for w in it["english"].lower().rstrip(".").split()}
    full = {w for it in make_ast_items(random.Random(0), 2000) for w in it["english"].lower().rstrip(".").split()}
    assert len(words) < len(full) / 2
    assert {it["sentence"].obj.noun for it in items} <= set(small.nouns)
    assert make_ast_items(random.Random(0), 50, words_per_kind=0) == make_ast_items(random.Random(0), 50)


# ------------------------------------------------------------------------------ mini-SQA text
def test_sqa_items() -> None:
    items = make_sqa_items(random.Random(1), 300, 2)
    assert len({it["passage"] for it in items}) == 300
    for it in items:
        assert it["subject"] in it["passage"] and it["subject"] in it["answer"]
        assert it["answer_span"] in it["passage"] and it["answer_span"] in it["answer"]
        assert it["passage"].count(".") == 2 and it["question"].endswith("?")
    kinds = {it["question"].split()[0] for it in items}
    assert {"Who", "What", "Where", "When", "How"} <= kinds
    assert len(make_sqa_items(random.Random(1), 5, 3)[0]["passage"].split(". ")) == 3


def test_generators_are_seeded() -> None:
    assert make_sqa_items(random.Random("0-sqa"), 20, 2) == make_sqa_items(random.Random("0-sqa"), 20, 2)
    assert make_sqa_items(random.Random("0-sqa"), 20, 2) != make_sqa_items(random.Random("1-sqa"), 20, 2)
    assert make_ast_items(random.Random("0-ast"), 20) == make_ast_items(random.Random("0-ast"), 20)


# ------------------------------------------------------------------------------ built datasets
@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("synthetic")
    for task in synthetic.TASKS:
        stats = build_synthetic(task, tiny_cfg(), root / task)
        assert stats["counts"] == {"train": 6, "valid": 2, "test": 2} and stats["total_audio_seconds"] > 0
    return {task: root / task for task in synthetic.TASKS}


@pytest.mark.parametrize("task", synthetic.TASKS)
def test_dataset_layout_and_audio(built: dict[str, Path], task: str) -> None:
    root = built[task]
    stored = json.loads((root / "checksums.json").read_text())
    assert set(stored) == {"train.jsonl", "valid.jsonl", "test.jsonl"} | {f"wavs/{p.name}" for p in (root / "wavs").iterdir()}
    assert stored == checksums(root, "*.jsonl") | checksums(root, "wavs/*")
    stats = json.loads((root / "stats.json").read_text())
    assert stats["utterances"] == 10 and stats["vocab_spoken"] > 10 and stats["elapsed_seconds"] >= 0
    ids, texts = set(), {}
    for split in ("train", "valid", "test"):
        examples = read_manifest(root / f"{split}.jsonl")
        assert len(examples) == {"train": 6, "valid": 2, "test": 2}[split]
        texts[split] = {ex.extra["transcript"] for ex in examples}
        for ex in examples:
            assert ex.id not in ids and ex.split == split and ex.task == task and ex.language == "en"
            ids.add(ex.id)
            wav = load_audio(ex.audio_path(root), 16000)
            assert wav.ndim == 1 and len(wav) / 16000 > 0.5
            assert abs(len(wav) / 16000 - ex.extra["duration"]) < 0.01
            syn = tiny_cfg().data.synthetic
            assert ex.extra["voice"] in syn.voices and ex.extra["speed"] in syn.speeds and ex.extra["pitch"] in syn.pitches
            if task == "sqa":
                assert ex.target_language == "en" and ex.extra["passage"] == ex.extra["transcript"]
                assert ex.prompt == f"Listen to the passage and answer the question. Question: {ex.extra['question']}"
                assert ex.extra["subject"] in ex.references[0] and ex.extra["answer_span"] in ex.references[0]
            else:
                assert ex.target_language == "de" and ex.prompt == "Translate the English speech into German."
    assert not texts["train"] & (texts["valid"] | texts["test"]) and not texts["valid"] & texts["test"]


def test_same_seed_same_bytes_other_seed_other_texts(built: dict[str, Path], tmp_path: Path) -> None:
    build_synthetic("sqa", tiny_cfg(), tmp_path / "again")
    assert (tmp_path / "again" / "checksums.json").read_bytes() == (built["sqa"] / "checksums.json").read_bytes()
    build_synthetic("sqa", tiny_cfg(seed=1), tmp_path / "other")
    a = {ex.extra["transcript"] for ex in read_manifest(built["sqa"] / "train.jsonl")}
    b = {ex.extra["transcript"] for ex in read_manifest(tmp_path / "other" / "train.jsonl")}
    assert a != b


# ------------------------------------------------------------------------------ failures
def _fail_on_third(monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = synthetic.synthesize, []

    def flaky(text: str, out: Path, *args, **kwargs) -> None:
        calls.append(out)
        if len(calls) == 3:
            raise RuntimeError("synthesis of utt-3 failed: boom")
        real(text, out, *args, **kwargs)

    monkeypatch.setattr(synthetic, "synthesize", flaky)


def test_failed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_on_third(monkeypatch)
    with pytest.raises(RuntimeError, match="boom"):
        build_synthetic("ast", tiny_cfg(), tmp_path / "ast")
    assert list(tmp_path.iterdir()) == []


def test_failed_rebuild_keeps_previous_dataset(built: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "ast"
    shutil.copytree(built["ast"], out)
    before = checksums(out)
    _fail_on_third(monkeypatch)
    with pytest.raises(RuntimeError, match="boom"):
        build_synthetic("ast", tiny_cfg(seed=5), out)
    assert checksums(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["ast"]


def test_espeak_error_names_the_utterance(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"synthesis of sqa-\w+-\d{5} failed: .*espeak-ng.*exited 1"):
        build_synthetic("sqa", tiny_cfg(voices=["xx-no-such-voice"]), tmp_path / "sqa")
    assert not (tmp_path / "sqa").exists()


def test_missing_tools_and_unknown_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown synthetic task"):
        build_synthetic("asr", tiny_cfg(), tmp_path / "x")
    monkeypatch.setattr(synthetic.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="install espeak-ng and sox"):
        build_synthetic("sqa", tiny_cfg(), tmp_path / "x")
