"""A byte-level BPE tokenizer trained locally on the task texts (no download).

Special tokens: ``<|pad|>`` (0), ``<|eos|>`` (1), ``<|audio|>`` (2, the placeholder the projector's
outputs replace), ``<|sep|>`` (3, ends the prompt). Saved as a ``PreTrainedTokenizerFast`` so it
reloads with ``AutoTokenizer.from_pretrained(path)`` like any checkpoint's tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, EOS, AUDIO, SEP = "<|pad|>", "<|eos|>", "<|audio|>", "<|sep|>"
SPECIALS = [PAD, EOS, AUDIO, SEP]


def train_tokenizer(texts: Iterable[str], vocab_size: int, extra_specials: Sequence[str] = ()) -> PreTrainedTokenizerFast:
    """BPE on ``texts``; ``extra_specials`` (e.g. a codec LM's markers) follow the four specials (ids 4, 5, ...)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[*SPECIALS, *extra_specials], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(sorted(set(texts)), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS,
                                   additional_special_tokens=[AUDIO, SEP, *extra_specials])
    fast.padding_side = "left"
    return fast
