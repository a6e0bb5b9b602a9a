"""Named algorithm presets: each a combination of registry names with the papers' defaults.

``resolve(name, rl_config)`` applies the user's overrides on top: ``rl.beta`` and ``rl.loss_agg``
replace the preset's fields, ``rl.eps_low`` / ``rl.eps_high`` go into ``loss_opts`` (for ``gmpo``
they are its log-space clip bounds; ``sapo`` ignores them).

A preset is data only. The trainer turns it into one loss:

    segments  = SEGMENTERS[segmenter](old_logp, ids, mask, **segmenter_opts)   if segmenter
    log_ratio = RATIOS[ratio](logp, old_logp, mask, segments=segments, **ratio_opts)
    adv       = ADVANTAGES[advantage](rewards, G, mask=, ids=, surprisal=, modality=, **advantage_opts)
    loss      = AGGREGATIONS[loss_agg](POLICY_LOSSES[policy_loss](log_ratio, adv, mask, **loss_opts)
                                       + beta * KL_ESTIMATORS[kl_estimator](logp, ref_logp), mask, ...)

``group`` names how a group is formed and ``shapers`` how a collected batch is reshaped, both looked
up by the trainer in ``speechrl.training.groups`` (``GROUP_BUILDERS``: plain; reference = the ground
truth as an off-policy member with ``old_logp = 0``, MP-GRPO; modality = speech and text halves,
TARS. ``BATCH_SHAPERS``: overlong_penalty, overlong_filter, dynamic_sampling, DAPO).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from speechrl.registry import Registry


@dataclass(frozen=True)
class Algorithm:
    """A fully specified RL objective: which registry entries, with which parameters."""

    name: str
    advantage: str = "grpo"
    advantage_opts: dict[str, Any] = field(default_factory=dict)
    ratio: str = "token"
    ratio_opts: dict[str, Any] = field(default_factory=dict)
    segmenter: str | None = None
    segmenter_opts: dict[str, Any] = field(default_factory=dict)
    policy_loss: str = "ppo_clip"
    loss_opts: dict[str, Any] = field(default_factory=lambda: {"eps_low": 0.2, "eps_high": 0.2})
    loss_agg: str = "token-mean"
    kl_estimator: str = "k3"
    beta: float = 0.02
    group: str = "plain"
    shapers: dict[str, dict[str, Any]] = field(default_factory=dict)
    state_rewards: dict[str, float] = field(default_factory=dict)
    description: str = ""

    # ``group`` names a group builder and ``shapers`` the batch shapers with their options
    # (``speechrl.training.groups``): the trainer looks them up, it does not branch on a preset.
    # ``state_rewards``: model-state rewards (``speechrl.rewards.state.STATE_REWARDS``) added with these weights
    # to the weighted ``rl.rewards`` of each completion (TARS: R_rep and R_beh).
    @property
    def mixed_policy(self) -> bool:
        """The reference answer is an off-policy group member (MP-GRPO)."""
        return self.group == "reference"

    @property
    def modality_split(self) -> bool:
        """Each group has a speech-prompted and a text-prompted half (TARS)."""
        return self.group == "modality"

    @property
    def dynamic_sampling(self) -> bool:
        return "dynamic_sampling" in self.shapers

    @property
    def overlong(self) -> dict[str, Any] | None:
        """DAPO's overlong options (soft penalty; ``filter`` = mask truncated rows), or None."""
        if "overlong_penalty" not in self.shapers and "overlong_filter" not in self.shapers:
            return None
        return {**self.shapers.get("overlong_penalty", {}), "filter": "overlong_filter" in self.shapers}

    @property
    def eps_low(self) -> float | None:
        return self.loss_opts.get("eps_low")

    @property
    def eps_high(self) -> float | None:
        return self.loss_opts.get("eps_high")


PRESETS: Registry[Algorithm] = Registry("algorithm preset")


def _preset(a: Algorithm) -> None:
    PRESETS.register(a.name)(a)


def _eps(low: float, high: float) -> dict[str, float]:
    return {"eps_low": low, "eps_high": high}


def _gspo_eps() -> dict[str, float]:
    return _eps(3e-4, 4e-4)

_preset(Algorithm(
    "grpo", description="GRPO as in GRPO-SALLM (Elmakies et al. 2025, arXiv 2509.16990): group-normalised "
    "advantages (unbiased std, eps 1e-6), "
    "PPO clip eps 0.2, DAPO token-mean aggregation, k3 KL with beta 0.02 (beta 0 diverged there)."))
_preset(Algorithm(
    "dapo", loss_opts=_eps(0.2, 0.28), beta=0.0,
    shapers={"overlong_penalty": {"cache_frac": 0.2, "factor": 1.0}, "dynamic_sampling": {}},
    description="DAPO (Yu et al. 2025): clip-higher eps 0.2/0.28, token-mean, no KL, dynamic sampling "
    "(drop zero-variance groups, refill), soft overlong punishment with L_cache = 20% of L_max "
    "(paper: 4096 of 20480) and factor 1; overlong filtering off (the paper's alternative)."))
_preset(Algorithm(
    "dr_grpo", advantage="dr_grpo", loss_agg="seq-mean-token-sum-norm",
    description="Dr.GRPO (Liu et al. 2025): no std normalisation, constant length normalisation "
    "(sum / (G * max_new_tokens)); clip 0.2; KL as GRPO-SALLM (beta 0.02; set rl.beta=0 to drop it)."))
_preset(Algorithm(
    "mp_grpo", group="reference",
    description="Mixed-policy GRPO (GRPO-SALLM, arXiv 2509.16990; LUFFY style): G-1 samples + the ground-truth "
    "reference as an "
    "off-policy member (old_logp := 0, no clipping, reward scored like the others); plain grpo "
    "advantages over all G; otherwise as grpo."))
_preset(Algorithm(
    "gspo", ratio="sequence", loss_opts=_gspo_eps(), loss_agg="seq-mean-token-mean", beta=0.0,
    description="GSPO (Qwen, Zheng et al. 2025, arXiv 2507.18071): sequence ratio exp(mean_t l), "
    "clip eps 3e-4/4e-4, "
    "beta 0, aggregated per sequence (seq-mean-token-mean; TRL issue 3823: token-level aggregation of a "
    "sequence ratio re-weights sequences by length). SE-GSPO (Post-Training Speech Enhancement LMs with "
    "Perceptual Rewards, 2026) used eps 0.2 plus a KL term: override rl.*."))
_preset(Algorithm(
    "gspo_token", ratio="gspo_token", loss_opts=_gspo_eps(), loss_agg="seq-mean-token-mean", beta=0.0,
    description="GSPO-token: value sg[s_i] per token, per-token gradient pi/sg[pi] (verl's 'gspo' loss); "
    "otherwise as gspo. Equals gspo with sequence-level advantages; differs with token-level ones."))

def _seg() -> dict[str, Any]:
    return dict(ratio="segment", loss_opts=_eps(0.2, 0.2), loss_agg="seq-mean-segment-mean", beta=0.0)


_SEG_DOC = ("Segment-level GSPO (segment-level GSPO research note, 2026): ratio exp(mean l) per segment, "
            "clipped per segment, averaged "
            "within a segment then over segments (seq-mean-segment-mean). The note gives no clip range: "
            "eps 0.2 (short segments average few tokens; GSPO's 3e-4 would clip almost every segment); beta 0 as GSPO. ")
_preset(Algorithm("gspo_segment_window", segmenter="fixed", segmenter_opts={"window": 4}, **_seg(),
                  description=_SEG_DOC + "Fixed windows of W = 4 tokens."))
_preset(Algorithm("gspo_segment_logprob", segmenter="logprob_jump", segmenter_opts={"tau": 1.0}, **_seg(),
                  description=_SEG_DOC + "Boundary where |logp_t - logp_{t-1}| > tau = 1.0 nat (sampling log-probs)."))
_preset(Algorithm("gspo_segment_tokenid", segmenter="tokenid_jump", segmenter_opts={"delta": 1024}, **_seg(),
                  description=_SEG_DOC + "Boundary where |id_t - id_{t-1}| > delta = 1024 (codec tokens)."))
_preset(Algorithm(
    "gmpo", policy_loss="gmpo", loss_opts={"eps_low": 0.4, "eps_high": 0.4}, loss_agg="seq-mean-token-mean", beta=0.0,
    description="GMPO (Zhao et al. 2025, arXiv 2507.20673; surveyed in the segment-level GSPO research note, "
    "2026): geometric mean of token ratios, clipped in log space to "
    "(-0.4, 0.4) per token before the mean (one-sided, as verl geo_mean / GMPO code); per-sequence aggregation; beta 0."))
_preset(Algorithm(
    "sapo", policy_loss="sapo", loss_opts={"tau_pos": 1.0, "tau_neg": 1.05}, loss_agg="seq-mean-token-mean", beta=0.0,
    description="SAPO (Qwen 2025; surveyed in the segment-level GSPO research note, 2026): soft gate "
    "sigmoid(tau (r - 1)) 4/tau with tau_pos 1.0, tau_neg 1.05 "
    "on token ratios, seq-mean-token-mean (as verl), beta 0."))
_preset(Algorithm(
    "p_gspo", ratio="p_gspo", ratio_opts={"p": 0.5}, loss_opts=_gspo_eps(), loss_agg="seq-mean-token-mean", beta=0.0,
    description="P-GSPO (OpenReview OeYb0K8gEu; surveyed in the segment-level GSPO research note, 2026): "
    "sequence ratio exp(sum_t l / |y|^p). The paper gives "
    "no default and no code; p = 0.5 is the midpoint of its GSPO (p=1) .. unnormalised (p=0) axis. "
    "Clip and KL as gspo (eps 3e-4/4e-4, beta 0): retune eps for other p."))
_preset(Algorithm(
    "leaf", advantage="leaf", advantage_opts={"B": 2, "zscore": "batch"},
    description="LEAF (Gerogiannis et al. 2026; code github Grimoid/LEAF): K = group_size (8) rollouts, "
    "B = 2 high-surprisal "
    "boundaries, span advantages (GA + LA)/sqrt(n) z-scored over the batch; PPO clip 0.2, token-mean, "
    "k3 KL beta 0.02. Surprisal = -old_logp from the rollout."))
_TARS = ("TARS (ACL 2026, arXiv 2601.05543): speech and text halves of each group, DAPO loss (clip 0.2/0.28, "
         "token-mean), beta 0; ")
_ALIGN = {"rep_alignment": 1.0, "beh_alignment": 1.0}  # R = R_base + alpha R_rep + beta R_beh, alpha = beta = 1


def _tars(name: str, state_rewards: dict[str, float], what: str, advantage: str = "modality") -> None:
    _preset(Algorithm(name, advantage=advantage, group="modality", loss_opts=_eps(0.2, 0.28), beta=0.0,
                      state_rewards=state_rewards, description=_TARS + what))


_tars("tars", _ALIGN, "advantages R - mean of the same modality in the group (no std); the speech rows also get "
      "R_rep (hidden-state alignment) + R_beh (embedding alignment) with the text rows (speechrl.rewards.state).")
_tars("tars_base", {}, "the ablation's 'standard GRPO': modality-specific advantages, no alignment reward.")
_tars("tars_rep", {"rep_alignment": 1.0}, "the ablation's '+ Rep. alignment': R_rep only.")
_tars("tars_beh", {"beh_alignment": 1.0}, "the ablation's '+ Beh. alignment': R_beh only.")
_tars("tars_naive", _ALIGN, "both alignment rewards, advantages R - mean over the whole group (naive normalisation, "
      "the paper's ablation of modality-specific normalisation).", advantage="dr_grpo")


def resolve(name: str, rl: Any) -> Algorithm:
    """The preset ``name`` with non-empty overrides from the RL config section applied.

    ``rl.segmenter_opts`` reaches a preset whose segmenter takes the option (``window`` the fixed windows,
    ``tau`` the log-prob jumps, ``delta`` the token-id jumps); other presets ignore it."""
    from speechrl.algos.segmenters import segmenter_options

    algo = PRESETS.get(name)
    overrides: dict[str, Any] = {k: getattr(rl, k) for k in ("beta", "loss_agg") if getattr(rl, k, None) is not None}
    eps = {k: getattr(rl, k) for k in ("eps_low", "eps_high") if getattr(rl, k, None) is not None}
    if eps:
        overrides["loss_opts"] = {**algo.loss_opts, **eps}
    if algo.segmenter and getattr(rl, "segmenter_opts", None):
        takes = segmenter_options(algo.segmenter)
        opts = {k: takes[k](v) for k, v in rl.segmenter_opts.items() if k in takes}
        if opts:
            overrides["segmenter_opts"] = {**algo.segmenter_opts, **opts}
    return replace(algo, **overrides)
