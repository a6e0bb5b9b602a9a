"""The RL trainer loop: rollout -> rewards -> advantages -> clipped policy loss + KL -> update.

Every algorithmic choice is a registry lookup (``speechrl.algos``; group builders and batch shapers in
``speechrl.training.groups``); this file is only the loop, and it runs on an execution backend
(``speechrl.training.backend``), one process or many ranks, with the same result:

* **Sampling** is sharded: each draw picks ``rl.prompts_per_step`` prompts with the job's seeded
  generator (the same on every rank); rank r samples a contiguous share, each completion keyed by
  (seed, step, draw, prompt, row) (:class:`~speechrl.training.rollout.RowNoise`), and scores it.
* **The whole batch is visible**: the scored shares are exchanged (``all_gather_object``), so every
  rank holds the global batch in prompt order; batch shapers (dynamic sampling, overlong) and
  advantages (GRPO batch std, LEAF batch z-score, TARS halves) see exactly what one process sees.
* **The update is sharded**: each of the ``rl.epochs x rl.minibatches`` minibatches (whole groups,
  a seeded order) is split over ranks (groups ``r::world``) and ``rl.grad_accum`` micro-batches. The
  loss aggregation gets the minibatch's global token and sequence counts (verl's ``agg_loss`` with
  global batch info), so the objective does not depend on micro-batches or ranks. A rank without a
  group in a minibatch runs one with weight 0, so every rank runs the same collectives.

Old log-probs stay those of sampling, so the ratio is 1 on the first minibatch only. Reference policy
(KL): a frozen copy of the SFT model, or for LoRA the policy with its adapter disabled; not computed
when beta is 0. Dropout is off during RL (``model.eval()``), so sampling and update see one function.

Outputs are text or audio (the processor's ``output``). Audio rows (codec tokens) are decoded to wav
files in ``<job>/rollout_audio/step-N/`` (only the last step's are kept) before scoring. Rewards get
the completions, the references and columns: each prompt's manifest extra fields, ``input_audio``
and, for audio outputs, ``audio`` (the decoded files; None where nothing was decodable). A step is
timed as generate / decode / score / update (``time/*_s``).

Scoring overlaps generation (``RLRun.overlap`` chunks; 2 for audio outputs, whose scorers run in a
process pool, 1 = no overlap for text): a rank's prompts of one draw are generated in that many
chunks, and while chunk k+1 is generated, chunk k is decoded and scored in a background thread.
Sampling is keyed per completion, so the completions, and therefore the rewards and the update, do
not depend on the chunking. Then ``time/decode_s`` and ``time/score_s`` are summed over chunks (they
overlap ``time/generate_s``) and ``time/score_wait_s`` is what the step waited for scoring after its
last generation.
"""

from __future__ import annotations

import contextlib
import copy
from concurrent.futures import Future, ThreadPoolExecutor
import logging
import math
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from speechrl.algos import ADVANTAGES, AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES, RATIOS, SEGMENTERS, Algorithm
from speechrl.algos.aggregation import batch_counts
from speechrl.config import Config, ConfigError
from speechrl.models.build import Model
from speechrl.progress import Progress
from speechrl.rewards import combine
from speechrl.rewards.cache import memory_items, restore_memory
from speechrl.rewards.state import STATE_REWARDS, StateBatch
from speechrl.training.backend import OptimSpec, make_backend
from speechrl.training.checkpoint import Checkpoint, py_state, random_state
from speechrl.training.data import Processor, Sample
from speechrl.training.groups import BATCH_SHAPERS, GROUP_BUILDERS, Batch, concat_batches, modality
from speechrl.training.optim import constant_schedule, cosine_schedule
from speechrl.training.rollout import Rollout, scorer_columns, token_logp, write_audio

log = logging.getLogger("speechrl")

HISTORY_KEYS = ("reward/mean", "actor/kl", "response/length", "actor/entropy")  # summary.json's per-step history
PHASES = ("time/generate_s", "time/decode_s", "time/score_s", "time/update_s")
"""The RL step's phases; summary.json's ``phase_seconds`` holds their means (wall time: not in the history, which
is identical for identical runs)."""


@dataclass
class RLRun:
    """What one RL job's functions share: config, algorithm, backend (policy, optimiser, ranks),
    processor, training prompts, the seeded prompt sampler, the frozen reference (None: LoRA's
    adapter-disabled policy, or no KL), the current step and, for audio outputs, the folder their
    decoded wavs go to."""

    cfg: Config
    algo: Algorithm
    be: Any
    proc: Processor
    train: list[Sample]
    rng: random.Random
    ref: Model | None = None
    step: int = 0
    ref_cache: dict[tuple[int, ...], torch.Tensor] = field(default_factory=dict)
    audio_dir: Path | None = None
    overlap: int = 1  # chunks per draw: score chunk k while generating chunk k + 1 (1 = no overlap)

    @property
    def policy(self) -> torch.nn.Module:
        return self.be.model

    @property
    def audio_output(self) -> bool:
        return getattr(self.proc, "output", "text") == "audio"

    def step_audio_dir(self) -> Path:
        """``<audio_dir>/step-N`` of the current step (made on first use; a temporary folder without ``audio_dir``)."""
        if self.audio_dir is None:
            self.audio_dir = Path(tempfile.mkdtemp(prefix="speechrl-rollout-audio-"))
        return self.audio_dir / f"step-{self.step}"


UNDECODABLE_REWARD = 0.0  # the reward of an audio output with nothing to decode (see score)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def _floats(xs: list[float | None]) -> torch.Tensor:
    return torch.tensor([math.nan if v is None else float(v) for v in xs], dtype=torch.float64)


def decode_outputs(run: RLRun, roll: Rollout, tag: str) -> tuple[list[str | None] | None, dict[str, float]]:
    """Audio outputs: every row decoded to ``<step dir>/<tag>-<row>.wav`` (None: nothing decodable), and the
    decode counts; text outputs: (None, {})."""
    if not run.audio_output:
        return None, {}
    folder = run.step_audio_dir()
    paths = [folder / f"{tag}-{i}.wav" for i in range(roll.completion_ids.shape[0])]
    return write_audio(run.proc, roll.completion_ids.cpu(), roll.completion_mask.cpu(), paths)


def score(run: RLRun, roll: Rollout, audio: list[str | None] | None = None) -> tuple[Batch, float]:
    """Weighted reward per completion (NaN where a scorer failed), each reward's raw scores, cache hits.

    The scorers get the columns they declare among the rows' manifest fields, ``input_audio`` and
    ``audio`` (the decoded outputs, when given). An audio output with no decodable frame gets
    :data:`UNDECODABLE_REWARD`, the bottom of every reward's [0, 1] scale: left NaN (a failed score) it
    would take its group's mean (:func:`fill_failed`) and a policy emitting no speech would go unpenalised."""
    stats: dict[str, float] = {}
    columns = roll.columns()
    if audio is not None:
        columns["audio"] = audio
    total, per = combine(run.cfg.rl.rewards, roll.texts, roll.references, stats=stats,
                         **scorer_columns(run.cfg.rl.rewards, columns))
    if audio is not None:
        total = [UNDECODABLE_REWARD if a is None else t for t, a in zip(total, audio)]
    scores = {f"reward/{k}": _floats(v) for k, v in per.items()}
    rewards = _floats(total).float()
    for name, weight in run.algo.state_rewards.items():
        value, m = STATE_REWARDS.get(name)(state_batch(run, roll, rewards, per))
        rewards = rewards + weight * value
        scores[f"reward/{name}"] = value
        scores.update({k: torch.full_like(value, v) for k, v in m.items()})
    return Batch(roll, rewards, roll.completion_mask, scores, run.cfg.rl.group_size), stats.get("reward/cache_hits", 0.0)


def state_batch(run: RLRun, roll: Rollout, base: torch.Tensor, per: dict[str, list[float | None]]) -> StateBatch:
    """What the model-state rewards read about ``roll`` (a modality-split rollout: each question's rows are its
    speech half, then its text half). A text row is correct when its ``mc_accuracy`` is 1; without that scorer
    (free-form answers), the text rows with the question's best positive base reward are its references."""
    g = run.cfg.rl.group_size
    mod = modality(roll)
    question = torch.arange(len(roll.texts)) // g
    if "mc_accuracy" in per:
        correct = _floats(per["mc_accuracy"]).nan_to_num(0.0) == 1.0
    else:
        text_base = torch.where(mod == 1, base.nan_to_num(-math.inf), torch.tensor(-math.inf))
        best = text_base.view(-1, g).max(-1).values.repeat_interleave(g)
        correct = (mod == 1) & (text_base == best) & (best > 0)
    from speechrl.rewards.embedding import encode

    return StateBatch(mod, question, correct, roll.states, roll.texts, [r[0] for r in roll.references],
                      embed=lambda texts: torch.from_numpy(encode(texts)))


def fill_failed(rewards: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """NaN rewards -> the mean of the finite rewards of their group (0 if none), and the NaN mask.

    The filled value leaves the group's mean unchanged, so a failed sample neither pulls the
    baseline nor (after its advantage is zeroed) receives credit."""
    failed = torch.isnan(rewards)
    g = rewards.view(-1, group_size)
    ok = ~failed.view(-1, group_size)
    means = torch.where(ok, g, torch.zeros_like(g)).sum(1, keepdim=True) / ok.sum(1, keepdim=True).clamp(min=1)
    return torch.where(ok, g, means.expand_as(g)).flatten(), failed


def _to(b: Batch, device: Any) -> Batch:
    r = b.rollout
    moved = replace(r, prompt={k: v.to(device) for k, v in r.prompt.items()}, completion_ids=r.completion_ids.to(device),
                    completion_mask=r.completion_mask.to(device), old_logp=r.old_logp.to(device),
                    off_policy=r.off_policy.to(device))
    return replace(b, rollout=moved, mask=b.mask.to(device))


def gather(run: RLRun, b: Batch, counts: dict[str, float]) -> tuple[Batch, dict[str, float]]:
    """Every rank's scored share of one drawn batch -> the whole batch on every rank, in prompt order
    (and the counters (reward-cache hits, decode failures) summed over ranks)."""
    if run.be.world == 1:
        return b, counts
    parts = run.be.all_gather_object((_to(b, "cpu"), counts))
    summed = {k: sum(c.get(k, 0.0) for _, c in parts) for k in counts}
    return _to(concat_batches([p for p, _ in parts], run.proc.tokenizer.pad_token_id), run.be.device), summed


def _fresh_audio_dir(run: RLRun) -> None:
    """Keep only the current step's rollout audio: rank 0 removes the earlier steps' folders (every rank
    finished with them: they were scored before the last gather)."""
    current = run.step_audio_dir()
    if run.be.is_main and current.parent.exists():
        for old in current.parent.glob("step-*"):
            if old != current:
                shutil.rmtree(old, ignore_errors=True)


def shard(n: int, rank: int, world: int) -> tuple[int, int]:
    """[lo, hi) of rank's contiguous share of n items (sizes differ by at most one)."""
    return rank * n // world, (rank + 1) * n // world


def _decode_and_score(run: RLRun, roll: Rollout, tag: str) -> tuple[Batch, dict[str, float], float, float]:
    t0 = time.perf_counter()
    audio, counts = decode_outputs(run, roll, tag)
    t1 = time.perf_counter()
    b, hits = score(run, roll, audio)
    return b, {**counts, "reward/cache_hits": hits}, t1 - t0, time.perf_counter() - t1


def rollout_and_score(run: RLRun, prompts: list[Sample], keys: list[str], tag: str
                      ) -> tuple[Batch, dict[str, float], dict[str, float]]:
    """This rank's groups of one draw, generated in ``run.overlap`` chunks, each decoded and scored in a
    background thread while the next chunk is generated; returns the scored batch (prompt order), the
    summed counters and the times."""
    n = len(prompts)
    chunks = max(1, min(run.overlap, n))
    bounds = [(k * n // chunks, (k + 1) * n // chunks) for k in range(chunks)]
    times = {"time/generate_s": 0.0, "time/decode_s": 0.0, "time/score_s": 0.0, "time/score_wait_s": 0.0}
    pool = ThreadPoolExecutor(1, thread_name_prefix="speechrl-score") if chunks > 1 else None
    futures: list[Future] = []
    try:
        with run.be.gathered() as model:
            for k, (a, b) in enumerate(bounds):
                t0 = time.perf_counter()
                roll = GROUP_BUILDERS.get(run.algo.group)(run, model, prompts[a:b], keys[a:b])
                times["time/generate_s"] += time.perf_counter() - t0
                name = tag if chunks == 1 else f"{tag}-c{k}"
                if pool is None:
                    done: Future = Future()
                    done.set_result(_decode_and_score(run, roll, name))
                    futures.append(done)
                else:
                    futures.append(pool.submit(_decode_and_score, run, roll, name))
        t0 = time.perf_counter()
        results = [f.result() for f in futures]
        if pool is not None:
            times["time/score_wait_s"] = time.perf_counter() - t0
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    counts: dict[str, float] = {}
    for _, c, t_dec, t_score in results:
        times["time/decode_s"] += t_dec
        times["time/score_s"] += t_score
        for key, v in c.items():
            counts[key] = counts.get(key, 0.0) + v
    return concat_batches([r[0] for r in results], run.proc.tokenizer.pad_token_id), counts, times


def collect(run: RLRun) -> tuple[Batch, dict[str, float]]:
    """One rollout batch of ``min(prompts_per_step, #prompts)`` groups, shaped by the preset's batch
    shapers. A shaper that drops groups (dynamic sampling) makes the loop draw more prompts until the
    batch is full or ``rl.max_sample_batches`` batches were drawn (then the update uses what it has)."""
    cfg, algo, be = run.cfg, run.algo, run.be
    target = min(cfg.rl.prompts_per_step, len(run.train))
    parts, kept = [], 0
    metrics = {"time/generate_s": 0.0, "time/decode_s": 0.0, "time/score_s": 0.0, "time/score_wait_s": 0.0}
    if run.audio_output:
        _fresh_audio_dir(run)
    for draw in range(1, cfg.rl.max_sample_batches + 1):
        prompts = run.rng.sample(run.train, target)
        lo, hi = shard(target, be.rank, be.world)
        keys = [f"{cfg.seed}:{run.step}:{draw}:{i}" for i in range(lo, hi)]
        b, counts, times = rollout_and_score(run, prompts[lo:hi], keys, f"d{draw}-r{be.rank}")
        b, counts = gather(run, b, counts)
        for k, v in times.items():
            metrics[k] += v
        metrics["reward/failed"] = metrics.get("reward/failed", 0.0) + float(torch.isnan(b.rewards).sum())
        for k, v in counts.items():
            metrics[k] = metrics.get(k, 0.0) + v
        for name, opts in algo.shapers.items():
            b, m = BATCH_SHAPERS.get(name)(run, b, **opts)
            metrics.update(m)
        parts.append(b.groups(list(range(min(b.n_groups, target - kept)))))
        kept += parts[-1].n_groups
        if kept >= target:
            break
    metrics.update({"batch/groups_kept": float(kept), "batch/sample_batches": float(draw)})
    return concat_batches(parts, run.proc.tokenizer.pad_token_id), metrics


def advantages(run: RLRun, b: Batch) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """Advantages (N,) or (N, C) of the whole batch (failed rows 0), the failed-row mask, metrics."""
    algo, r = run.algo, b.rollout
    filled, failed = fill_failed(b.rewards, b.group_size)
    mod = modality(r)  # None without text-prompted rows: the modality estimator then says it needs them
    adv, m = ADVANTAGES.get(algo.advantage)(filled, b.group_size, mask=b.mask, ids=r.completion_ids, surprisal=-r.old_logp,
                                             modality=mod if bool(mod.any()) else None, **algo.advantage_opts)
    adv = adv.masked_fill(failed.view(-1, *([1] * (adv.dim() - 1))).to(adv.device), 0.0).to(b.mask.device)
    return adv, failed, m


def reference_logp(policy: torch.nn.Module, ref: Model | None, roll: Rollout, temperature: float) -> torch.Tensor:
    """(N, C) log-probs of the reference: ``ref`` if given, else ``policy`` with its LoRA adapter disabled."""
    with torch.no_grad():
        if ref is not None:
            return token_logp(ref, roll, temperature)[0]
        ctx = policy.disable_adapter() if hasattr(policy, "disable_adapter") else contextlib.nullcontext()
        with ctx:
            return token_logp(policy, roll, temperature)[0]


def policy_loss(run: RLRun, sub: Batch, adv: torch.Tensor, ref_logp: torch.Tensor | None, n_tokens: float,
                n_seqs: float) -> tuple[torch.Tensor, dict[str, float], torch.Tensor, torch.Tensor]:
    """This micro-batch's share of the minibatch objective (``n_tokens`` / ``n_seqs``: the minibatch's
    global counts); returns (loss, metrics, kl (n, C), entropy (n, C))."""
    algo, rl, roll, mask = run.algo, run.cfg.rl, sub.rollout, sub.mask
    logp, entropy = token_logp(run.policy, roll, rl.temperature, with_entropy=True)
    metrics: dict[str, float] = {}
    segments = None
    if algo.segmenter:
        segments, m_seg = SEGMENTERS.get(algo.segmenter)(roll.old_logp, roll.completion_ids, mask, **algo.segmenter_opts)
        metrics.update(m_seg)
    log_ratio, _ = RATIOS.get(algo.ratio)(logp, roll.old_logp, mask, segments=segments, **algo.ratio_opts)
    pg, m_pg = POLICY_LOSSES.get(algo.policy_loss)(log_ratio, adv, mask, off_policy=roll.off_policy, **algo.loss_opts)
    metrics.update(m_pg)
    if ref_logp is not None:
        kl, _ = KL_ESTIMATORS.get(algo.kl_estimator)(logp, ref_logp)
        per_token = pg + algo.beta * kl
    else:
        kl, per_token = torch.zeros_like(logp), pg
    loss, _ = AGGREGATIONS.get(algo.loss_agg)(per_token, mask, norm_constant=rl.max_new_tokens, segments=segments,
                                              n_tokens=n_tokens, n_seqs=n_seqs)
    return loss, metrics, kl.detach(), entropy


def _reference(run: RLRun, part: list[int], sub: Batch) -> torch.Tensor | None:
    if run.algo.beta == 0:
        return None
    key = tuple(part)
    if key not in run.ref_cache:  # each micro-batch recurs once per epoch
        run.ref_cache[key] = reference_logp(run.policy, run.ref, sub.rollout, run.cfg.rl.temperature)
    return run.ref_cache[key]


def backward_minibatch(run: RLRun, b: Batch, adv: torch.Tensor, groups: list[int]) -> dict[str, float]:
    """Backward this rank's share of the minibatch ``groups`` (whole groups of ``b``) in micro-batches;
    returns the minibatch's loss, KL and entropy (reduced over ranks) and the last policy-loss metrics."""
    be, rl = run.be, run.cfg.rl
    mine, weight = groups[be.rank::be.world], 1.0
    if not mine:  # fewer groups than ranks: run one with weight 0 (same collectives on every rank)
        mine, weight = groups[:1], 0.0
    n_micro = max(1, min(rl.grad_accum, len(groups) // be.world))
    n_tokens, n_seqs = batch_counts(b.mask[b.rows(groups).to(b.mask.device)])
    sums = torch.zeros(4, dtype=torch.float64)  # loss, kl x tokens, entropy x tokens, tokens
    m_pg: dict[str, float] = {}
    for part in (mine[i::n_micro] for i in range(n_micro)):
        sub, rows = b.groups(part), b.rows(part).to(adv.device)
        loss, m_pg, kl, ent = policy_loss(run, sub, adv[rows], _reference(run, part, sub), n_tokens, n_seqs)
        be.backward(loss * weight)
        m = sub.mask.to(kl.dtype)
        sums += weight * torch.tensor([loss.item(), float((kl * m).sum()), float((ent.detach() * m).sum()), float(m.sum())],
                                      dtype=torch.float64)
    loss, kl, ent, tokens = be.all_reduce(sums).tolist()
    if m_pg and be.world > 1:  # the policy loss's own metrics (clip fractions, ...): last micro-batch, mean over ranks
        names = sorted(m_pg)
        vals = be.all_reduce(torch.tensor([m_pg[k] for k in names], dtype=torch.float64)) / be.world
        m_pg = dict(zip(names, vals.tolist()))
    return {"loss": loss, "kl": kl / max(tokens, 1), "entropy": ent / max(tokens, 1), **m_pg}


def rl_step(run: RLRun) -> dict[str, float]:
    """Collect one rollout batch and make ``epochs x minibatches`` policy updates; returns the step's metrics."""
    rl, be = run.cfg.rl, run.be
    t0 = time.perf_counter()
    b, metrics = collect(run)
    t1 = time.perf_counter()
    if b.n_groups == 0:  # dynamic sampling found no informative group: skip the update
        metrics.update({"reward/mean": math.nan, "time/rollout_s": t1 - t0, "time/update_s": 0.0})
        return metrics
    adv, failed, m_adv = advantages(run, b)
    n_mb = min(rl.minibatches, b.n_groups)
    order = torch.randperm(b.n_groups, generator=torch.Generator().manual_seed(run.rng.randrange(2**31)))
    run.ref_cache.clear()
    out, gnorms = [], []
    for _epoch in range(rl.epochs):
        for mb in order.tensor_split(n_mb):
            out.append(backward_minibatch(run, b, adv, mb.tolist()))
            gnorms.append(be.step())
    be.schedule_step()
    roll, on = b.rollout, ~b.rollout.off_policy.cpu()
    lengths = roll.completion_mask[on.to(roll.completion_mask.device)].sum(-1).float()
    valid = b.rewards[~failed & on]
    metrics = {**m_adv, **metrics}  # the collection's failure / cache counts win over an estimator's own
    metrics.update({k: v for k, v in out[-1].items() if k not in ("loss", "kl", "entropy")})
    metrics.update({f: float(torch.nanmean(v[on])) for f, v in b.scores.items()})
    metrics.update({
        "reward/mean": float(valid.mean()) if valid.numel() else math.nan,
        "reward/std": float(valid.std()) if valid.numel() > 1 else 0.0,
        "actor/loss": _mean([o["loss"] for o in out]),
        "actor/kl": _mean([o["kl"] for o in out]) if run.algo.beta > 0 else math.nan,  # no reference when beta = 0
        "actor/entropy": _mean([o["entropy"] for o in out]), "actor/grad_norm": _mean(gnorms), "actor/lr": be.lr,
        "actor/updates": float(len(gnorms)),
        "response/length": float(lengths.mean()) if lengths.numel() else 0.0,
        "response/truncated": float((roll.completion_mask[on][:, -1] == 1).float().mean())
        if roll.completion_mask.shape[1] >= rl.max_new_tokens and lengths.numel() else 0.0,
        "time/rollout_s": t1 - t0, "time/update_s": time.perf_counter() - t1,
    })
    mod = modality(roll)
    if bool(mod.any()):  # text-prompted rows (TARS): reward per modality
        for name, m_id in (("speech", 0), ("text", 1)):
            sel = b.rewards[(mod == m_id) & ~failed]
            metrics[f"reward/{name}"] = float(sel.mean()) if sel.numel() else math.nan
    return metrics


def make_run(cfg: Config, algo: Algorithm, policy: Model, proc: Processor, train: list[Sample],
             audio_dir: Path | None = None, overlap: int | None = None) -> RLRun:
    """Reference, backend (policy + AdamW + lr schedule) and seeded sampler of an RL job from the SFT model.

    The reference is a frozen copy of it, or, for a LoRA policy (peft), the policy with its adapter
    disabled; none when the preset's beta is 0."""
    rl = cfg.rl
    torch.manual_seed(cfg.seed)
    lora = hasattr(policy, "disable_adapter")
    ref = None if lora or algo.beta == 0 else copy.deepcopy(policy).eval().requires_grad_(False)
    policy.eval()  # dropout off: sampling and update see the same policy
    schedule = cosine_schedule(rl.warmup_steps, rl.steps) if rl.schedule == "cosine" else constant_schedule(rl.warmup_steps)
    be = make_backend(cfg, policy, OptimSpec(rl.lr, rl.weight_decay, rl.grad_clip, schedule))
    if ref is not None:  # the policy's device and precision (a full copy per rank: not sharded under ZeRO-3)
        ref = ref.to(device=be.device, dtype=be.dtype)
    if min(rl.prompts_per_step, len(train)) < be.world:
        raise ConfigError(f"rl.prompts_per_step={rl.prompts_per_step} ({len(train)} training prompts) is smaller than the "
                          f"{be.world} ranks of this job: every rank samples at least one prompt; use at least {be.world}")
    if overlap is None:  # audio scorers run in a process pool: worth overlapping with generation
        overlap = 2 if getattr(proc, "output", "text") == "audio" else 1
    return RLRun(cfg, algo, be, proc, train, random.Random(cfg.seed), ref, audio_dir=audio_dir, overlap=overlap)


def _resume(run: RLRun, ckpt: Checkpoint | None) -> tuple[int, list[dict[str, Any]], float]:
    """(steps done, history, seconds spent) from the checkpoint, which also restores the weights, optimiser,
    schedule, global RNGs, the prompt sampler and the in-process reward cache; (0, [], 0) without one.
    Completions need no state: each is sampled from its own keyed stream (seed, step, draw, prompt, row)."""
    st = ckpt.resume(run.be) if ckpt else None
    if st is None:
        return 0, [], 0.0
    run.rng.setstate(py_state(st["sampler"]))
    restore_memory(st["reward_cache"])
    return st["step"], [{k: math.nan if v is None else v for k, v in h.items()} for h in st["history"]], st["seconds"]


def train_rl(cfg: Config, algo: Algorithm, policy: Model, proc: Processor, train: list[Sample], out: Path,
             log_metrics: Any = None, desc: str = "rl", ckpt: Checkpoint | None = None) -> dict[str, Any]:
    """Run ``cfg.rl.steps`` rollout batches from ``policy`` (the SFT model); rank 0 logs, all save.
    With ``ckpt`` it resumes from, and saves, checkpoints (:mod:`speechrl.training.checkpoint`)."""
    rl = cfg.rl
    run = make_run(cfg, algo, policy, proc, train, audio_dir=Path(out).parent / "rollout_audio")
    done, history, spent = _resume(run, ckpt)
    start = time.perf_counter() - spent

    def state() -> dict[str, Any]:
        return {"sampler": random_state(run.rng), "reward_cache": memory_items(), "seconds": time.perf_counter() - start,
                "history": [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in h.items()} for h in history]}

    phases: dict[str, list[float]] = {k: [] for k in PHASES}  # the steps this process ran (after a resume: those)
    with Progress(rl.steps, desc, rl.log_every, enabled=run.be.is_main, initial=done) as prog:
        for n in range(done + 1, rl.steps + 1):
            run.step = n
            m = rl_step(run)
            history.append({"step": n, **{k: m.get(k, math.nan) for k in HISTORY_KEYS}})
            for k in PHASES:
                if k in m:
                    phases[k].append(m[k])
            if log_metrics and run.be.is_main:
                log_metrics(m, n)
            prog.update(reward=m["reward/mean"], kl=m.get("actor/kl", math.nan), len=m.get("response/length", math.nan))
            if ckpt:
                ckpt.after_step(n, rl.steps, state)
    run.be.save_model(proc, out)
    tenth = max(1, len(history) // 10)
    first = [h["reward/mean"] for h in history[:tenth] if not math.isnan(h["reward/mean"])]
    last = [h["reward/mean"] for h in history[-tenth:] if not math.isnan(h["reward/mean"])]
    return {"steps": rl.steps, "seconds": time.perf_counter() - start, "ranks": run.be.world,
            "reward_first_10pct": _mean(first), "reward_last_10pct": _mean(last), "history": history,
            "phase_seconds": {k.split("/")[1][:-2]: _mean(v) for k, v in phases.items() if v}}
