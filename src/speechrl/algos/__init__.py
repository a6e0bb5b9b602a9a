"""RL algorithms as pure tensor functions in registries (verl core_algos style).

A run's algorithm is a combination of names, never a subclass:

* ``ADVANTAGES``  rewards (N,) + group size (+ mask / ids / surprisal / modality) -> advantages (N,) or (N, T)
* ``SEGMENTERS``  log-probs / ids / mask (N, T) -> segment ids (N, T) (segment-level GSPO)
* ``RATIOS``  logp, old_logp (N, T) (+ segments) -> per-token LOG importance ratio (N, T)
* ``POLICY_LOSSES``  log-ratio (N, T) + advantages -> per-token loss matrix (N, T)
* ``AGGREGATIONS``  loss matrix (N, T) + mask -> scalar (its own choice, never hidden in a loss)
* ``KL_ESTIMATORS``  log-probs vs reference -> per-token KL (N, T)
* ``PRESETS``  named combinations with the papers' defaults (grpo, dapo, gspo, leaf, ...)

Plus ``dapo`` (dynamic sampling, overlong penalty / filter) and ``leaf.leaf_tree``.
Every entry of one family has one signature and returns ``(value, metrics)``.
"""

from speechrl.algos import advantages, aggregation, dapo, kl, leaf, policy_loss, presets, ratios, segmenters  # noqa: F401  (registration)
from speechrl.algos.advantages import ADVANTAGES
from speechrl.algos.aggregation import AGGREGATIONS
from speechrl.algos.kl import KL_ESTIMATORS
from speechrl.algos.leaf import LeafTree, leaf_tree
from speechrl.algos.policy_loss import POLICY_LOSSES
from speechrl.algos.presets import PRESETS, Algorithm, resolve
from speechrl.algos.ratios import RATIOS
from speechrl.algos.segmenters import SEGMENTERS

__all__ = ["ADVANTAGES", "AGGREGATIONS", "KL_ESTIMATORS", "POLICY_LOSSES", "PRESETS", "RATIOS", "SEGMENTERS",
           "Algorithm", "LeafTree", "leaf_tree", "resolve"]
