"""Text scorers: reference values from the libraries' docs, edge cases, combine(), errors."""

from __future__ import annotations

import math

import pytest

from speechrl.registry import UnknownNameError
from speechrl.rewards import REWARDS, Scorer, combine, score_both, score_corpus, score_samples
from speechrl.rewards import text as T

TEXT = ["bleu", "chrf", "rouge_1", "rouge_2", "rouge_l", "meteor", "bertscore", "exact_match"]
HYP = "the quick brown fox jumps over the lazy dog near the river bank"

# sacrebleu README example
SYS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
REF_STREAMS = [
    ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
    ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
]
PER_SAMPLE = [list(rs) for rs in zip(*REF_STREAMS)]


@pytest.fixture(scope="module")
def bertscore() -> Scorer:
    scorer = REWARDS.get("bertscore")
    scorer.sample(["warm up"], [["warm up"]])  # load the model once for the module
    return scorer


def test_registry_has_text_scorers() -> None:
    assert set(TEXT) <= set(REWARDS.names())
    assert all(isinstance(REWARDS.get(n), Scorer) and REWARDS.get(n).description for n in TEXT)


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown reward 'bleuu'; valid: .*bleu.*chrf.*did you mean 'bleu'"):
        score_corpus("bleuu", ["a"], [["a"]])
    with pytest.raises(KeyError, match="valid: "):
        combine({"nope": 1.0}, ["a"], [["a"]])


def test_corpus_bleu_readme_example() -> None:
    assert score_corpus("bleu", SYS, PER_SAMPLE) == pytest.approx(48.53, abs=0.005)
    assert score_corpus("chrf", SYS, PER_SAMPLE) == pytest.approx(59.73, abs=0.005)


def test_ragged_references_pad_with_first() -> None:
    ragged = [PER_SAMPLE[0], PER_SAMPLE[1][:1], PER_SAMPLE[2]]
    padded = [PER_SAMPLE[0], [PER_SAMPLE[1][0]] * 2, PER_SAMPLE[2]]
    assert T.ref_streams(ragged) == [list(x) for x in zip(*padded)]
    assert score_corpus("bleu", SYS, ragged) == pytest.approx(score_corpus("bleu", SYS, padded))


def test_sentence_bleu_and_plain_string_refs() -> None:
    s = REWARDS.get("bleu").sample(SYS, PER_SAMPLE)
    assert s[0] == pytest.approx(1.0) and 0 < s[1] < s[2] < 1
    assert score_samples("bleu", SYS, [r[0] for r in PER_SAMPLE]) == REWARDS.get("bleu").sample(SYS, [r[:1] for r in PER_SAMPLE])


@pytest.mark.parametrize("name", TEXT)
def test_perfect_and_empty_hypothesis(name: str, bertscore: Scorer) -> None:
    scores = REWARDS.get(name).sample([HYP, "", "   "], [[HYP], [HYP], [HYP, "other"]])
    # METEOR keeps NLTK's fragmentation penalty: a perfect n-word match gives 1 - 0.5 / n**3
    assert scores[0] == (pytest.approx(1 - 0.5 / 13**3) if name == "meteor" else pytest.approx(1.0))
    assert scores[1:] == [0.0, 0.0]
    assert score_corpus(name, [HYP, ""], [[HYP], [HYP]]) < 100


def test_rouge_l_readme_example() -> None:
    s = REWARDS.get("rouge_l").sample(["The quick brown dog jumps on the log."], [["The quick brown fox jumps over the lazy dog"]])
    assert s[0] == pytest.approx(0.5882352941176471)
    two_refs = REWARDS.get("rouge_l").sample(["The quick brown dog jumps on the log."], [["unrelated words", "The quick brown fox jumps over the lazy dog"]])
    assert two_refs == s
    assert score_corpus("rouge_l", ["a b", "c d"], [["a b"], ["x y"]]) == pytest.approx(50.0)
    # the README's ROUGE-1 value, and ROUGE-2 by hand: 2 shared bigrams of 7 (hyp) and 8 (ref)
    pred, target = ["The quick brown dog jumps on the log."], [["The quick brown fox jumps over the lazy dog"]]
    assert REWARDS.get("rouge_1").sample(pred, target)[0] == pytest.approx(0.7058823529411765)
    assert REWARDS.get("rouge_2").sample(pred, target)[0] == pytest.approx(2 * (2 / 7) * (2 / 8) / (2 / 7 + 2 / 8))


def test_meteor_counts_wordnet_synonyms() -> None:
    meteor = REWARDS.get("meteor").sample
    syn, other = meteor(["The car is red."] * 2, [["the auto is red."], ["the cat is red."]])
    assert syn > other
    assert T.meteor_tokens("The dog, big.") == ["the", "dog", ",", "big", "."]


def test_our_wordnet_reader_answers_as_nltks():
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    ours = T.wordnet()
    ref = WordNetCorpusReader(nltk.data.find("corpora/wordnet"), None)  # builds the OMW synset map ours skips
    assert ours.map30 is None and ref.map30 is not None
    for word in ("car", "run", "happy", "quickly"):
        assert [s.name() for s in ours.synsets(word)] == [s.name() for s in ref.synsets(word)]
        assert sorted({lem for s in ours.synsets(word) for lem in s.lemma_names()}) == \
            sorted({lem for s in ref.synsets(word) for lem in s.lemma_names()})


def test_meteor_missing_wordnet_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    import nltk

    T.wordnet.cache_clear()
    monkeypatch.setattr(nltk.data, "find", lambda *a, **k: (_ for _ in ()).throw(LookupError("no")))
    try:
        with pytest.raises(RuntimeError, match="WordNet missing: run scripts/setup.sh"):
            REWARDS.get("meteor").sample(["a b"], [["a b"]])
    finally:
        T.wordnet.cache_clear()


def test_bertscore_identical_beats_unrelated(bertscore: Scorer) -> None:
    same, unrelated, multi = bertscore.sample(
        ["the cat sat on the mat", "the cat sat on the mat", "the cat sat on the mat"],
        [["the cat sat on the mat"], ["quantum chromodynamics is hard"], ["quantum chromodynamics is hard", "the cat sat on the mat"]],
    )
    assert same == pytest.approx(1.0, abs=1e-4) and 0 <= unrelated < same
    assert multi == same


def test_exact_match_normaliser() -> None:
    assert T.normalize_answer("  The   Eiffel-Tower!! ") == "the eiffeltower"
    em = REWARDS.get("exact_match").sample(["the eiffel tower.", "Paris", "?!"], [["The Eiffel Tower"], ["Lyon", "paris!"], ["!?"]])
    assert em == [1.0, 1.0, 0.0]
    assert score_corpus("exact_match", ["a", "b"], [["a"], ["c"]]) == pytest.approx(50.0)
    assert score_both("exact_match", ["a", "b"], [["a"], ["c"]]) == (pytest.approx(50.0), [1.0, 0.0])
    assert score_both("bleu", SYS, PER_SAMPLE)[0] == pytest.approx(48.53, abs=0.005)


def test_combine_weights_and_none() -> None:
    hyps, refs = ["the cat", "a dog"], [["the cat"], ["the cat"]]
    totals, per = combine({"exact_match": 2.0, "bleu": 0.5}, hyps, refs)
    assert set(per) == {"exact_match", "bleu"}
    assert totals == pytest.approx([2.0 * per["exact_match"][i] + 0.5 * per["bleu"][i] for i in range(2)])
    assert totals[0] == pytest.approx(2.5)

    none_scorer = Scorer("maybe", lambda hyps, refs, **c: [None if h == "a dog" else 1.0 for h in hyps])
    REWARDS.register("maybe")(none_scorer)
    try:
        totals, per = combine({"maybe": 1.0, "bleu": 1.0}, hyps, refs)
        assert per["maybe"] == [1.0, None] and totals[0] == pytest.approx(2.0) and math.isnan(totals[1])
        assert combine({"maybe": 0.0, "bleu": 1.0}, hyps, refs)[0][1] == pytest.approx(per["bleu"][1])
        assert score_corpus("maybe", hyps, refs) == pytest.approx(100.0)
    finally:
        REWARDS._entries.pop("maybe")


def test_required_columns() -> None:
    REWARDS.register("needs_audio")(Scorer("needs_audio", lambda hyps, refs, audio, **c: [float(len(a)) for a in audio], columns=("audio",)))
    try:
        with pytest.raises(ValueError, match="needs the column 'audio'"):
            combine({"needs_audio": 1.0}, ["a"], [["a"]])
        assert combine({"needs_audio": 1.0}, ["a"], [["a"]], audio=[[0.0]])[0] == [1.0]
    finally:
        REWARDS._entries.pop("needs_audio")


@pytest.mark.parametrize("name", ["bleu", "exact_match"])
def test_input_errors(name: str) -> None:
    sample = REWARDS.get(name).sample
    with pytest.raises(ValueError, match="2 hypotheses, 1 reference lists"):
        sample(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="sample 1: empty reference"):
        sample(["a", "b"], [["a"], ["x", " "]])
    with pytest.raises(ValueError, match="sample 0: no reference"):
        score_corpus(name, ["a"], [[]])
    with pytest.raises(ValueError, match="at least one"):
        combine({}, ["a"], [["a"]])
