"""``codec_lm``: a decoder-only LM over text tokens + audio-codec tokens; its outputs are audio.

Llasa style (Ye et al. 2025, arXiv 2502.04128: a Llama decoder predicting X-Codec 2 tokens after the
text), and for enhancement UniSE / GenSE style (the noisy input's codec tokens in the prompt, the
clean speech's codec tokens as the target; Yao et al. 2025, arXiv 2502.02942). The backbone is
``LlamaForCausalLM`` (default) or ``Qwen2ForCausalLM`` (``model.tiny.backbone`` when the config has
it), loaded through ``AutoModelForCausalLM.from_pretrained`` like any checkpoint.

Vocabulary: the locally trained BPE (:mod:`speechrl.models.tokenizer`) + the markers ``<|in|>`` /
``<|/in|>`` + one added token per codec id, ``token_format.format(id)`` (``<|c_123|>`` here; a real
Llasa checkpoint uses ``<|s_N|>``). The codec ids occupy one contiguous block of token ids
(``offset .. offset + vocab_size - 1``). The token format is stored in the model config
(``speechrl_token_format``); a checkpoint without it is probed for the known formats.

Prompt layout (left-padded)::

    <|pad|>* prompt-text  [<|in|> input-codec-tokens <|/in|>]  <|sep|>  target-codec-tokens <|eos|>
                           \\_ SE only (the noisy input) _/             \\_ labels (training) _/

The codec description (``codec.json`` of the tokenize stage: name, options, vocab_size, ...) is saved
in the checkpoint folder, so the processor can decode outputs with
``speechrl.audio.codecs.load_codec(name, **options)``. Decoding drops every id of the completion
that is not a codec token (text tokens, markers) and counts it; the codec then drops ids that do not
fit its frame layout and counts those.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, PreTrainedTokenizerBase, Qwen2Config

from speechrl.config import Config
from speechrl.io import write_json
from speechrl.models.adapters import ModelAdapter, core, register_adapter
from speechrl.models.tokenizer import PAD, SEP, train_tokenizer

IGNORE = -100
IN_START, IN_END = "<|in|>", "<|/in|>"
TOKEN_FORMAT = "<|c_{}|>"
KNOWN_FORMATS = (TOKEN_FORMAT, "<|s_{}|>")  # ours, Llasa's
CODEC_FILE = "codec.json"
BACKBONES = {"llama": LlamaConfig, "qwen2": Qwen2Config}


def _ids(x: Any) -> list[int]:
    return [int(v) for v in x]


@dataclass
class CodecLMProcessor:
    """Prompt layout, collation and output decoding of a codec LM (see the module docstring)."""

    tokenizer: PreTrainedTokenizerBase
    codec_info: dict[str, Any]
    token_format: str = TOKEN_FORMAT
    output = "audio"
    needs_tokens = True  # its audio comes from the tokenize stage's codec ids
    _codec: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        v = self.vocab_size
        first, last = (self.tokenizer.convert_tokens_to_ids(self.token_format.format(i)) for i in (0, v - 1))
        unk = self.tokenizer.unk_token_id
        if first is None or first == unk or last != first + v - 1:
            raise ValueError(f"codec LM tokenizer: the {v} codec tokens {self.token_format.format(0)} .. "
                             f"{self.token_format.format(v - 1)} are not one contiguous block of token ids")
        self.offset = int(first)

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        """Number of codec ids (the codec's vocabulary, not the LM's)."""
        return int(self.codec_info["vocab_size"])

    @property
    def sep_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(SEP)

    def codec_tokens(self, codes: Sequence[int]) -> list[int]:
        """Codec ids -> LM token ids."""
        return [self.offset + int(c) for c in codes]

    def codec_ids(self, ids: Sequence[int]) -> tuple[list[int], int]:
        """A completion's LM token ids -> (codec ids, number of non-codec ids dropped), up to the first eos."""
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        out, bad = [], 0
        for t in ids:
            t = int(t)
            if t == eos:
                break
            if self.offset <= t < self.offset + self.vocab_size:
                out.append(t - self.offset)
            elif t != pad:
                bad += 1
        return out, bad

    def check_codec(self, info: dict[str, Any], where: str) -> None:
        """The tokenize stage's codec (``where``: its codec.json) must be the model's."""
        keys = ("name", "options", "vocab_size")
        if any(info.get(k) != self.codec_info.get(k) for k in keys):
            raise ValueError(f"{where}: tokens made with codec {[info.get(k) for k in keys]}, but the model was built for "
                             f"{[self.codec_info.get(k) for k in keys]}; tokenize with the model's codec (or rebuild the model)")

    # ------------------------------------------------------------------ examples and batches
    def encode_example(self, ex: Any, load_wav: Callable[[], np.ndarray], tokens: dict[str, Any] | None = None,
                       where: str = "") -> tuple[torch.Tensor, int, list[int] | None]:
        """(input codec ids (n,), n, target codec ids or None) from the example's token row (the audio is not read)."""
        tokens = tokens or {}
        for key in ("input", "target"):
            vals = tokens.get(key)
            if vals is not None and (not isinstance(vals, list) or any(not isinstance(v, int) or not 0 <= v < self.vocab_size for v in vals)):
                raise ValueError(f"{where}: token row field '{key}' must be a list of codec ids in [0, {self.vocab_size})")
        inp = _ids(tokens.get("input") or [])
        target = tokens.get("target")
        return torch.tensor(inp, dtype=torch.long), len(inp), None if target is None else _ids(target)

    def prompt_ids(self, prompt: str, codes: Sequence[int] = ()) -> list[int]:
        tok = self.tokenizer
        ids = tok.encode(prompt, add_special_tokens=False)
        if len(codes):
            ids += [tok.convert_tokens_to_ids(IN_START), *self.codec_tokens(codes), tok.convert_tokens_to_ids(IN_END)]
        return ids + [self.sep_id]

    def reference_ids(self, s: Any) -> list[int]:
        """The target codec tokens + eos of a sample (its SFT labels; MP-GRPO's off-policy row)."""
        if s.target is None:
            raise ValueError(f"example {s.example.id}: no target codec tokens (the tokenize stage's 'target' field)")
        return self.codec_tokens(s.target) + [self.tokenizer.eos_token_id]

    def reference_text(self, s: Any) -> str:
        return ""

    def collate(self, samples: Sequence[Any], with_answers: bool) -> dict[str, torch.Tensor]:
        """input_ids / attention_mask / position_ids (B, T), left-padded; labels (B, T) with answers."""
        seqs, labs = [], []
        for s in samples:
            p = self.prompt_ids(s.example.prompt, s.features.tolist())
            t = self.reference_ids(s) if with_answers else []
            seqs.append(p + t)
            labs.append([IGNORE] * len(p) + t)
        T = max(map(len, seqs))
        B = len(seqs)
        ids = torch.full((B, T), self.tokenizer.pad_token_id, dtype=torch.long)
        att = torch.zeros((B, T), dtype=torch.long)
        labels = torch.full((B, T), IGNORE, dtype=torch.long)
        for i, (s, lab) in enumerate(zip(seqs, labs)):
            ids[i, T - len(s):] = torch.tensor(s)
            att[i, T - len(s):] = 1
            labels[i, T - len(s):] = torch.tensor(lab)
        out = {"input_ids": ids, "attention_mask": att, "position_ids": (att.cumsum(-1) - 1).clamp(min=0)}
        if with_answers:
            out["labels"] = labels
        return out

    # ------------------------------------------------------------------ outputs
    def decode_texts(self, ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
        """Audio outputs have no text: one "" per row."""
        return [""] * ids.shape[0]

    @property
    def codec(self) -> Any:
        if self._codec is None:
            from speechrl.audio.codecs import load_codec

            self._codec = load_codec(self.codec_info["name"], **self.codec_info.get("options", {}))
        return self._codec

    def decode_audio(self, ids: Sequence[int]) -> tuple[np.ndarray | None, int]:
        """A completion's token ids -> (16 kHz float32 waveform, or None if nothing decodable; invalid ids dropped)."""
        codes, bad = self.codec_ids(ids)
        if not codes:
            return None, bad
        wav, n_invalid = self.codec.decode(codes)
        wav = np.asarray(wav, dtype=np.float32)
        return (wav if wav.size else None), bad + int(n_invalid)

    def save_pretrained(self, folder: Path) -> None:
        self.tokenizer.save_pretrained(folder)
        write_json(Path(folder) / CODEC_FILE, self.codec_info)


def codec_tokenizer(texts: list[str], vocab_size: int, codec_vocab: int, token_format: str = TOKEN_FORMAT
                    ) -> PreTrainedTokenizerBase:
    """The BPE trained on ``texts`` + the SE markers + one token per codec id (contiguous ids)."""
    tok = train_tokenizer(texts, vocab_size, extra_specials=(IN_START, IN_END))
    tok.add_tokens([token_format.format(i) for i in range(codec_vocab)], special_tokens=True)
    return tok


def build_tiny(cfg: Config, texts: list[str], codec: dict[str, Any] | None = None) -> tuple[torch.nn.Module, CodecLMProcessor]:
    """Random-init tiny codec LM from ``model.tiny`` (hidden_size, num_layers, num_heads, intermediate_size,
    vocab_size of the text BPE; the encoder sizes do not apply) over the codec's vocabulary."""
    if not codec or "vocab_size" not in codec or "name" not in codec:
        raise ValueError("model.arch codec_lm needs the codec description (the tokenize stage's codec.json with name, "
                         "options and vocab_size): run the tokenize stage and give init-model its output (--tokens)")
    t = cfg.model.tiny
    backbone = getattr(t, "backbone", "llama")
    if backbone not in BACKBONES:
        raise ValueError(f"model.tiny.backbone {backbone!r}; valid: {', '.join(BACKBONES)}")
    tok = codec_tokenizer(texts, t.vocab_size, int(codec["vocab_size"]))
    mcfg = BACKBONES[backbone](vocab_size=len(tok), hidden_size=t.hidden_size, intermediate_size=t.intermediate_size,
                               num_hidden_layers=t.num_layers, num_attention_heads=t.num_heads,
                               num_key_value_heads=t.num_heads, max_position_embeddings=4096,
                               pad_token_id=tok.pad_token_id, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                               tie_word_embeddings=True, speechrl_token_format=TOKEN_FORMAT)
    torch.manual_seed(cfg.seed)
    model = AutoModelForCausalLM.from_config(mcfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model, CodecLMProcessor(tok, dict(codec), TOKEN_FORMAT)


def _token_format(model: torch.nn.Module, tok: PreTrainedTokenizerBase, where: str) -> str:
    fmt = getattr(core(model).config, "speechrl_token_format", None)
    if fmt:
        return fmt
    vocab = tok.get_vocab()
    for f in KNOWN_FORMATS:
        if f.format(0) in vocab:
            return f
    raise ValueError(f"{where}: no codec tokens in the tokenizer (looked for {', '.join(f.format(0) for f in KNOWN_FORMATS)}); "
                     "set 'speechrl_token_format' in its config.json")


def load(path: str | Path, device: str = "cpu", codec: dict[str, Any] | None = None
         ) -> tuple[torch.nn.Module, CodecLMProcessor]:
    """A codec LM checkpoint. Its codec description is the folder's ``codec.json`` (written by :func:`speechrl.models.
    save`), or ``codec`` (the tokenize stage's codec.json) for a released checkpoint (Llasa, UniSE) that has none.
    Markers this layout needs and such a tokenizer lacks (``<|pad|>``, ``<|sep|>``, ``<|in|>``, ``<|/in|>``) are added
    as special tokens, with new (randomly initialised) embedding rows: SFT on this layout trains them."""
    from speechrl.config.errors import ConfigError

    codec_file = Path(path) / CODEC_FILE
    info = json.loads(codec_file.read_text()) if codec_file.exists() else codec
    if info is None:
        raise ConfigError(f"{codec_file} not found: a codec_lm checkpoint needs the description of its codec (the "
                          "tokenize stage's codec.json: name, options, vocab_size); the pipeline's init-model job adds "
                          "it to a released checkpoint (--tokens), or copy it into the folder")
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).to(device)
    tok = AutoTokenizer.from_pretrained(str(path))
    tok.padding_side = "left"
    _ensure_markers(model, tok)
    return model, CodecLMProcessor(tok, info, _token_format(model, tok, str(path)))


def _ensure_markers(model: torch.nn.Module, tok: PreTrainedTokenizerBase) -> None:
    """Add the layout's markers a released tokenizer lacks (a Llama-3 tokenizer has no pad, <|sep|>, <|in|>)."""
    added = 0
    if tok.pad_token is None:
        added += tok.add_special_tokens({"pad_token": PAD})
    missing = [t for t in (SEP, IN_START, IN_END) if t not in tok.get_vocab()]
    if missing:
        added += tok.add_tokens(missing, special_tokens=True)
    if added:
        if len(tok) > core(model).get_input_embeddings().num_embeddings:
            core(model).resize_token_embeddings(len(tok))
        core(model).config.pad_token_id = model.generation_config.pad_token_id = tok.pad_token_id


def embeds(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, T, D) token embeddings (codec tokens are ordinary tokens of the LM)."""
    return core(model).get_input_embeddings()(batch["input_ids"])


ADAPTER = register_adapter(ModelAdapter("codec_lm", "audio", ("llama", "qwen2"), build_tiny, load, embeds,
                                        lora_targets=lambda regex: regex.replace("language_model", "model")))
