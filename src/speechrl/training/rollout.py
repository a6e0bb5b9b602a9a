"""Sampling: n completions per prompt with the KV cache (HF ``generate``), plus per-token log-probs.

The old-policy log-probs come from ``generate``'s own logits (no second forward pass): they equal a
teacher-forced forward of the same weights to ~1e-6 (checked in tests). Log-probs are taken under
the sampling temperature (logits / T), as verl and TRL do; top-p truncation is not reflected in them
(LEAF's reference reads surprisal after top-p: with top_p = 1, the default here, the two agree).

A :class:`Rollout` can also hold rows that were not sampled: the ground-truth reference as MP-GRPO's
off-policy member (:func:`with_reference`), and text-prompted twins of speech prompts for TARS
(:func:`text_variant`). Rollouts of different batches concatenate (:func:`concat`) because every clip
is encoded unpadded (:func:`speechrl.models.build.embeds`).

Outputs are text or audio (``proc.output``). ``texts`` holds the decoded text of every row ("" for
audio outputs); :func:`write_audio` turns audio rows (codec ids) into wav files for the rewards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf
import torch
from transformers import LogitsProcessor, LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

from speechrl.io import atomic_path
from speechrl.models.build import Model, core, embeds
from speechrl.training.data import Processor, Sample, collate


@dataclass
class Rollout:
    """P prompt rows x n completions each: N = P * n rows, those of one prompt contiguous."""

    prompt: dict[str, torch.Tensor]  # P prompts: input_ids / attention_mask (P, L), input_features (P, F, 160), ...
    completion_ids: torch.Tensor     # (N, C)
    completion_mask: torch.Tensor    # (N, C) 1 up to and including the first eos
    old_logp: torch.Tensor           # (N, C) log pi_old(y_t | ...), under temperature; 0 for off-policy rows
    texts: list[str]                 # N decoded completions
    group_size: int                  # n: completions per prompt row
    samples: list[Sample]            # P prompt rows
    off_policy: torch.Tensor = None  # (N,) bool: rows not sampled from pi_old (MP-GRPO's reference)
    states: torch.Tensor | None = None  # (N, L, H) hidden states of layers 1..L pooled over each completion (TARS R_rep)

    def __post_init__(self) -> None:
        if self.off_policy is None:
            self.off_policy = torch.zeros(self.completion_ids.shape[0], dtype=torch.bool, device=self.completion_ids.device)

    @property
    def references(self) -> list[list[str]]:
        """Each row's references (its prompt's)."""
        return [s.example.references for s in self.samples for _ in range(self.group_size)]

    def columns(self) -> dict[str, list[Any]]:
        """Each row's reward columns (its prompt's manifest extra fields and ``input_audio``); a field
        some examples lack is None for them."""
        return row_columns(self.samples, self.group_size)


def completion_mask(ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """(N, C) -> (N, C) mask keeping tokens up to and including the first eos."""
    is_eos = ids == eos_id
    after = (is_eos.cumsum(-1) - is_eos.long()) > 0
    return (~after).long()


class RowNoise(LogitsProcessor):
    """Gumbel-max sampling with one random stream per completion row.

    Adds Gumbel(0, 1) noise drawn from row b's own generator (seeded by ``seeds[b]``) to the processed
    scores; greedy decoding of ``scores + noise`` then samples from softmax(scores) (Gumbel 1954; the
    Gumbel-max trick). A completion therefore depends only on its own seed, not on which other prompts
    share its batch, its rank or the number of ranks: 1 process and N ranks sample the same tokens.
    """

    def __init__(self, seeds: list[int], device: torch.device | str) -> None:
        self.gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        u = torch.stack([torch.rand(scores.shape[-1], generator=g, device=scores.device) for g in self.gens])
        gumbel = -torch.log(-torch.log(u.clamp(min=1e-20, max=1 - 1e-7)))
        return scores + gumbel.to(scores.dtype)


def row_seeds(key: str, rows: int) -> list[int]:
    """``rows`` 63-bit seeds derived from ``key`` (e.g. "seed:step:draw:prompt"), one per completion."""
    return [int.from_bytes(hashlib.blake2b(f"{key}:{j}".encode(), digest_size=8).digest(), "little") >> 1
            for j in range(rows)]


@torch.no_grad()
def sample(model: Model, proc: Processor, samples: list[Sample], group_size: int, *, do_sample: bool = True,
           temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 40, keys: list[str] | None = None,
           states: bool = False) -> Rollout:
    """``group_size`` completions of each prompt. With ``keys`` (one per prompt) sampling is keyed per
    completion (:class:`RowNoise`) and so independent of batching and ranks; without, it draws from
    torch's global generator (HF sampling). ``states``: also return each completion's hidden states, layer by
    layer, mean-pooled over the completion (``Rollout.states``), from the generation's own forward passes:
    step t's last position is the state that predicts completion token t (:func:`generation_states`)."""
    batch = collate(proc, samples, with_answers=False, device=model.device)
    batch.pop("position_ids")  # generate derives positions from the attention mask
    emb = embeds(model, batch)  # encoder once per prompt, not once per completion
    gen_kwargs = dict(do_sample=do_sample, max_new_tokens=max_new_tokens, num_return_sequences=group_size,
                      return_dict_in_generate=True, output_logits=True,
                      pad_token_id=proc.tokenizer.pad_token_id, eos_token_id=proc.tokenizer.eos_token_id)
    if do_sample and keys is not None:
        if len(keys) != len(samples):
            raise ValueError(f"{len(keys)} sampling keys for {len(samples)} prompts")
        procs = [TemperatureLogitsWarper(temperature)] + ([TopPLogitsWarper(top_p)] if top_p < 1 else [])
        seeds = [s for k in keys for s in row_seeds(k, group_size)]
        gen_kwargs.update(do_sample=False, num_return_sequences=1,  # greedy over noisy scores: rows expanded here
                          logits_processor=LogitsProcessorList([*procs, RowNoise(seeds, model.device)]))
        emb = emb.repeat_interleave(group_size, dim=0)
        attention = batch["attention_mask"].repeat_interleave(group_size, dim=0)
    else:
        attention = batch["attention_mask"]
        if do_sample:
            gen_kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
    out = model.generate(inputs_embeds=emb, attention_mask=attention, output_hidden_states=states, **gen_kwargs)
    ids = out.sequences  # with inputs_embeds only, generate returns just the new tokens
    mask = completion_mask(ids, proc.tokenizer.eos_token_id)
    logits = torch.stack(out.logits, dim=1).float()
    t = temperature if do_sample else 1.0
    old_logp = torch.log_softmax(logits / t, dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1) * mask
    pooled = generation_states(out.hidden_states, mask) if states else None
    return Rollout(batch, ids, mask, old_logp, proc.decode_texts(ids, mask), group_size, list(samples), states=pooled)


def generation_states(hidden: tuple, mask: torch.Tensor) -> torch.Tensor:
    """``generate(output_hidden_states=True).hidden_states`` (one tuple per step of L + 1 tensors (N, s, H)) ->
    (N, L, H): per layer, the last position of each step (the state that predicts that step's token) averaged
    over the completion tokens (``mask`` (N, C)); :func:`speechrl.rewards.state.pool_states`."""
    from speechrl.rewards.state import pool_states

    layers = len(hidden[0])
    per_layer = [torch.stack([step[layer][:, -1] for step in hidden], dim=1).float() for layer in range(layers)]
    return pool_states(per_layer, mask[:, : per_layer[0].shape[1]])


def token_logp(model: Model, r: Rollout, temperature: float = 1.0, with_entropy: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Teacher-forced log pi(y_t | x, y_<t) for the rollout's completions: (N, C), and entropy (N, C)."""
    g, P = r.group_size, r.prompt["input_ids"].shape[1]
    prompt = embeds(model, r.prompt).repeat_interleave(g, dim=0)
    emb = torch.cat([prompt, core(model).get_input_embeddings()(r.completion_ids)], dim=1)
    att = torch.cat([r.prompt["attention_mask"].repeat_interleave(g, dim=0), torch.ones_like(r.completion_ids)], dim=1)
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    logits = model(inputs_embeds=emb, attention_mask=att, position_ids=pos).logits[:, P - 1:-1].float() / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, r.completion_ids.unsqueeze(-1)).squeeze(-1)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


# ------------------------------------------------------------------------- building rollouts
def _pad_cols(x: torch.Tensor, width: int, value: float, left: bool = False) -> torch.Tensor:
    extra = width - x.shape[1]
    if extra <= 0:
        return x
    pad = torch.full((x.shape[0], extra, *x.shape[2:]), value, dtype=x.dtype, device=x.device)
    return torch.cat([pad, x] if left else [x, pad], dim=1)


def with_reference(r: Rollout, proc: Processor) -> Rollout:
    """Append each prompt's first reference (answer + eos) as an off-policy member: n -> n + 1.

    MP-GRPO (Elmakies et al. 2025, arXiv 2509.16990; LUFFY style): pi_old := 1 for that row, i.e. old_logp = 0, so its ratio is
    pi_theta itself; the policy loss skips clipping on ``off_policy`` rows.
    """
    n, dev = r.group_size, r.completion_ids.device
    refs = [proc.reference_ids(s) for s in r.samples]
    width = max(r.completion_ids.shape[1], max(map(len, refs)))
    ids = _pad_cols(r.completion_ids, width, proc.tokenizer.pad_token_id)
    mask, old = _pad_cols(r.completion_mask, width, 0), _pad_cols(r.old_logp, width, 0.0)
    rows_ids, rows_mask, rows_old, texts, off = [], [], [], [], []
    for p, ref in enumerate(refs):
        sl = slice(p * n, (p + 1) * n)
        ref_ids = torch.full((1, width), proc.tokenizer.pad_token_id, dtype=ids.dtype, device=dev)
        ref_ids[0, : len(ref)] = torch.tensor(ref, device=dev)
        ref_mask = (torch.arange(width, device=dev) < len(ref)).long().unsqueeze(0)
        rows_ids += [ids[sl], ref_ids]
        rows_mask += [mask[sl], ref_mask]
        rows_old += [old[sl], torch.zeros(1, width, device=dev)]
        texts += [*r.texts[sl], proc.reference_text(r.samples[p])]
        off += [False] * n + [True]
    return Rollout(r.prompt, torch.cat(rows_ids), torch.cat(rows_mask), torch.cat(rows_old), texts, n + 1,
                   r.samples, torch.tensor(off, device=dev))


def text_variant(s: Sample) -> Sample:
    """The same example prompted with its transcript as text instead of audio (TARS's text branch)."""
    transcript = s.example.extra.get("transcript")
    if not transcript:
        raise ValueError(f"example {s.example.id}: the text branch (TARS) needs a 'transcript' field in the manifest")
    ex = dataclasses.replace(s.example, prompt=f"{transcript} {s.example.prompt}")
    return dataclasses.replace(s, example=ex, features=s.features[:0], n_audio=0)


def select(r: Rollout, prompts: list[int]) -> Rollout:
    """The rollout restricted to the given prompt rows (in that order)."""
    n = r.group_size
    rows = torch.tensor([p * n + j for p in prompts for j in range(n)], dtype=torch.long)
    idx = torch.tensor(prompts, dtype=torch.long)
    prompt = {k: v[idx.to(v.device)] for k, v in r.prompt.items()}
    dev = r.completion_ids.device
    return Rollout(prompt, r.completion_ids[rows.to(dev)], r.completion_mask[rows.to(dev)], r.old_logp[rows.to(dev)],
                   [r.texts[i] for i in rows.tolist()], n, [r.samples[p] for p in prompts], r.off_policy[rows.to(dev)],
                   None if r.states is None else r.states[rows.to(r.states.device)])


def concat(rs: list[Rollout], pad_id: int) -> Rollout:
    """Stack rollouts of different batches (same n): prompts re-padded left, completions right."""
    if len(rs) == 1:
        return rs[0]
    if len({r.group_size for r in rs}) != 1:
        raise ValueError(f"cannot concatenate rollouts with different group sizes {[r.group_size for r in rs]}")
    C = max(r.completion_ids.shape[1] for r in rs)
    left = {"input_ids": pad_id, "attention_mask": 0}  # token rows are left-padded; feature tensors right-padded with 0
    prompt = {}
    for k in rs[0].prompt:
        parts = [r.prompt[k] for r in rs]
        if parts[0].dim() >= 2:
            w = max(x.shape[1] for x in parts)
            parts = [_pad_cols(x, w, left.get(k, False if x.dtype == torch.bool else 0), k in left) for x in parts]
        prompt[k] = torch.cat(parts)
    return Rollout(prompt, torch.cat([_pad_cols(r.completion_ids, C, pad_id) for r in rs]),
                   torch.cat([_pad_cols(r.completion_mask, C, 0) for r in rs]),
                   torch.cat([_pad_cols(r.old_logp, C, 0.0) for r in rs]),
                   [t for r in rs for t in r.texts], rs[0].group_size, [s for r in rs for s in r.samples],
                   torch.cat([r.off_policy for r in rs]),
                   torch.cat([r.states for r in rs]) if all(r.states is not None for r in rs) else None)


# ------------------------------------------------------------------------------- outputs
OUTPUT_SR = 16000


def row_columns(samples: list[Sample], repeat: int = 1) -> dict[str, list[Any]]:
    """``{column: one value per row}`` of ``samples`` (each repeated ``repeat`` times); missing -> None."""
    cols = [s.columns for s in samples]
    keys = sorted({k for c in cols for k in c})
    return {k: [c.get(k) for c in cols for _ in range(repeat)] for k in keys}


def scorer_columns(names: list[str] | dict[str, float], columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The columns that the scorers ``names`` declare (``columns`` / ``optional_columns``), no others."""
    from speechrl.rewards import REWARDS

    want = {c for n in names for c in (*REWARDS.get(n).columns, *REWARDS.get(n).optional_columns)}
    return {k: v for k, v in columns.items() if k in want}


def safe_name(s: str) -> str:
    """A file-name-safe form of an id (anything but letters, digits, '.', '-', '_' -> '_')."""
    return re.sub(r"[^\w.-]", "_", s)


def write_audio(proc: Processor, ids: torch.Tensor, mask: torch.Tensor, paths: list[Path]
                ) -> tuple[list[str | None], dict[str, float]]:
    """Decode each row's codec tokens (``proc.decode_audio``) and write it as a 16 kHz PCM16 wav at
    ``paths[i]`` (atomic). Returns the written paths (None where nothing was decodable) and counts:
    ``decode/invalid_tokens`` (ids dropped: not codec tokens, or not fitting the codec's frames) and
    ``decode/failed`` (rows without audio)."""
    out: list[str | None] = []
    invalid = failed = 0
    for i, path in enumerate(paths):
        wav, bad = proc.decode_audio(ids[i][mask[i].bool()].tolist())
        invalid += bad
        if wav is None:
            failed += 1
            out.append(None)
            continue
        with atomic_path(path) as tmp:
            sf.write(str(tmp), wav, OUTPUT_SR, subtype="PCM_16", format="WAV")
        out.append(str(path))
    return out, {"decode/invalid_tokens": float(invalid), "decode/failed": float(failed)}
