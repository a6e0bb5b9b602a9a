"""Rewards and evaluation metrics: one :class:`Scorer` per metric, shared by RL and evaluation.

    from speechrl.rewards import REWARDS, combine, score_corpus

    REWARDS.get("bleu").sample(hyps, refs)            # [0.41, 0.0, ...] per sample, in [0, 1]
    combine({"bleu": 1.0, "chrf": 0.5}, hyps, refs)   # (weighted totals, per-scorer scores)
    score_corpus("bleu", hyps, refs)                  # corpus BLEU, 0-100 (metrics.json)

``refs`` holds one list of references per sample; further dataset columns are keyword arguments.
Registered: bleu, chrf, rouge_1, rouge_2, rouge_l, meteor, bertscore, exact_match (see :mod:`speechrl.rewards.text`);
audio: dnsmos_*, utmos, asr_wer, asr_cer, pesq, stoi, si_sdr (:mod:`~speechrl.rewards.audio`, :mod:`~speechrl.rewards.asr`,
:mod:`~speechrl.rewards.enhancement`).
"""

from speechrl.rewards import text as _text  # noqa: F401  (registers the text scorers)
from speechrl.rewards import asr as _asr, audio as _audio  # noqa: F401  (registers dnsmos_*, utmos, asr_wer, wer, cer)
from speechrl.rewards import embedding as _embedding, reasoning as _reasoning  # noqa: F401,E401  (embedding_cosine, mc_accuracy, format)
from speechrl.rewards import enhancement as _enhancement  # noqa: F401  (registers pesq, stoi, si_sdr)
from speechrl.rewards.base import REWARDS, Scorer, check_inputs, check_references, combine, register, score_both, score_corpus, score_samples

__all__ = ["REWARDS", "Scorer", "check_inputs", "check_references", "combine", "register", "score_both", "score_corpus", "score_samples"]
