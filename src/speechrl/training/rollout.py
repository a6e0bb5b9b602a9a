"""Sampling: G completions per prompt with the KV cache (HF ``generate``), plus per-token log-probs.

The old-policy log-probs come from ``generate``'s own logits (no second forward pass): they equal a
teacher-forced forward of the same weights to ~1e-6 (checked in tests). Log-probs are taken under
the sampling temperature (logits / T), as verl and TRL do; top-p truncation is not reflected in them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speechrl.models.build import Model, core, merged_embeds
from speechrl.models.processor import SpeechProcessor
from speechrl.training.data import Sample, collate


@dataclass
class Rollout:
    """N = B * G completions; rows of one prompt are contiguous (b0g0, b0g1, ..., b1g0, ...)."""

    prompt: dict[str, torch.Tensor]  # B prompts: input_ids / attention_mask (B, P), input_features (B, F, 160), input_features_mask (B, K)
    completion_ids: torch.Tensor     # (N, C)
    completion_mask: torch.Tensor    # (N, C) 1 up to and including the first eos
    old_logp: torch.Tensor           # (N, C) log pi_old(y_t | ...), under temperature
    texts: list[str]                 # N decoded completions
    group_size: int


def completion_mask(ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """(N, C) -> (N, C) mask keeping tokens up to and including the first eos."""
    is_eos = ids == eos_id
    after = (is_eos.cumsum(-1) - is_eos.long()) > 0
    return (~after).long()


@torch.no_grad()
def sample(model: Model, proc: SpeechProcessor, samples: list[Sample], group_size: int, *, do_sample: bool = True,
           temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 40) -> Rollout:
    batch = collate(proc, samples, with_answers=False, device=model.device)
    batch.pop("position_ids")  # generate derives positions from the attention mask
    embeds = merged_embeds(model, batch)  # encoder once per prompt, not once per completion
    gen_kwargs = dict(do_sample=do_sample, max_new_tokens=max_new_tokens, num_return_sequences=group_size,
                      return_dict_in_generate=True, output_logits=True,
                      pad_token_id=proc.tokenizer.pad_token_id, eos_token_id=proc.tokenizer.eos_token_id)
    if do_sample:
        gen_kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
    out = model.generate(inputs_embeds=embeds, attention_mask=batch["attention_mask"], **gen_kwargs)
    ids = out.sequences  # with inputs_embeds only, generate returns just the new tokens
    mask = completion_mask(ids, proc.tokenizer.eos_token_id)
    logits = torch.stack(out.logits, dim=1).float()
    t = temperature if do_sample else 1.0
    old_logp = torch.log_softmax(logits / t, dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1) * mask
    texts = proc.tokenizer.batch_decode(ids * mask + proc.tokenizer.pad_token_id * (1 - mask), skip_special_tokens=True)
    return Rollout(batch, ids, mask, old_logp, [s.strip() for s in texts], group_size)


def token_logp(model: Model, r: Rollout, temperature: float = 1.0, with_entropy: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Teacher-forced log pi(y_t | x, y_<t) for the rollout's completions: (N, C), and entropy (N, C)."""
    g, P = r.group_size, r.prompt["input_ids"].shape[1]
    prompt = merged_embeds(model, r.prompt).repeat_interleave(g, dim=0)
    embeds = torch.cat([prompt, core(model).get_input_embeddings()(r.completion_ids)], dim=1)
    att = torch.cat([r.prompt["attention_mask"].repeat_interleave(g, dim=0), torch.ones_like(r.completion_ids)], dim=1)
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    logits = model(inputs_embeds=embeds, attention_mask=att, position_ids=pos).logits[:, P - 1:-1].float() / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, r.completion_ids.unsqueeze(-1)).squeeze(-1)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy
