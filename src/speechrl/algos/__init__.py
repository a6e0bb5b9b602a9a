"""RL algorithms as pure tensor functions in registries (verl core_algos style).

A run's algorithm is a combination of names, never a subclass:

* ``ADVANTAGES``  rewards (N,) + group size -> advantages (N,)
* ``POLICY_LOSSES``  per-token log-probs (N, T) -> per-token loss matrix (N, T)
* ``AGGREGATIONS``  loss matrix (N, T) + mask -> scalar (its own choice, never hidden in a loss)
* ``KL_ESTIMATORS``  log-probs vs reference -> per-token KL (N, T)
* ``PRESETS``  named combinations with the papers' defaults (grpo, dr_grpo, ...)

Every entry of one family has one signature and returns ``(value, metrics)``.
"""

from speechrl.algos import advantages, aggregation, kl, policy_loss, presets  # noqa: F401  (registration)
from speechrl.algos.advantages import ADVANTAGES
from speechrl.algos.aggregation import AGGREGATIONS
from speechrl.algos.kl import KL_ESTIMATORS
from speechrl.algos.policy_loss import POLICY_LOSSES
from speechrl.algos.presets import PRESETS, Algorithm, resolve

__all__ = ["ADVANTAGES", "AGGREGATIONS", "KL_ESTIMATORS", "POLICY_LOSSES", "PRESETS", "Algorithm", "resolve"]
