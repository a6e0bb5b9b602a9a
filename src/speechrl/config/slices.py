"""Config slices: the part of the suite config each pipeline job reads ("only what changed reruns").

Every job of the workflow reads ``results/config/<task>/<slice>.yaml``: its task's settings
(:func:`task_config`: the top level, the task's defaults, ``tasks.<task>``) with every key *outside* its
slice reset to the default (a base model's job: ``results/config/models/<family>.yaml``, the
``init_model`` slice of its tasks, :func:`model_groups`) (one exception: ``report.decoding`` follows
``evaluate.decodings`` in the evaluate slice, as :meth:`Config.check` wants it among them). The
rule ``config_slice`` (``workflow/rules/pipeline.smk``) writes one such file per slice from the
slice's values alone, which it carries in its ``params``: Snakemake rewrites a slice file, and
reruns the jobs that read it, only when a key of that slice changed. Adding an algorithm to
``rl.algorithms`` therefore runs that algorithm's RL and evaluation jobs and the report; changing
``rl.lr`` leaves data, model init, SFT and the control alone.

A job that read a key outside its slice would see the default and never rerun when the key
changes; so every key a stage reads (in ``speechrl.cli`` and the functions its ``cmd_*`` calls)
must be listed here. ``tests/test_config_slices.py`` reads the stages' code and fails naming any
key read outside the slice, and checks that every top-level config entry is claimed by a job's
slice or listed in :data:`NOT_READ_BY_JOBS`.

Slice names: ``tracking``, ``data``, ``tokenize``, ``init_model``, ``sft``, ``sft_more``, ``evaluate``, and
``rl-<system>`` per RL system (``rl-grpo``, ``rl-grpo-rouge_l`` for the reward ablation,
``rl-gspo_segment_window@window=16`` for the segmenter sweep; :func:`rl_system_parts`): the RL
slice holds ``rl.*`` with ``rl.algorithms`` set to that system's preset alone (and, for an ablation
system, ``rl.rewards`` set to its single reward; for a sweep system, its option in
``rl.segmenter_opts``), so each RL job's config names its own algorithm.
The report reads the whole resolved config (``results/config.yaml``).

Standard library only: the Snakefile imports it when it builds the DAG.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

SWEEP_SYSTEM = re.compile(r"[a-z0-9_]+@[a-z_]+=\d+(\.\d+)?")
"""A system of ``suite.segmenter_sweep``: ``<preset>@<option>=<value>`` (a plain decimal: no sign, no exponent,
so the name never holds the ``-`` that separates a reward or the two sides of a paired difference)."""


def rl_system_parts(system: str) -> tuple[str, str | None, dict[str, float]]:
    """``<preset>[-<reward>][@<option>=<value>]`` -> (preset, the ablation's reward or None, {option: value})."""
    base, _, variant = system.partition("@")
    algorithm, _, reward = base.partition("-")
    key, _, value = variant.partition("=")
    return algorithm, reward or None, ({key: float(value)} if variant else {})


# Keys read by the model / training code of every job that loads audio and a checkpoint.
_DATA_IO = ("data.sample_rate", "data.max_audio_seconds", "data.source", "data.on_bad_sample")
_RUNTIME = ("threads", "device")  # torch threads (_runtime), torch device (_device)

# Key paths ("a.b" = that key and everything under it); "-a.b" removes a path again.
# seed is absent from the RL, control and evaluation slices: those jobs get --seed from the DAG.
SLICES: dict[str, tuple[str, ...]] = {
    # tracking-init: MLflow experiment + pipeline run (name, default sqlite store under results_dir)
    "tracking": ("name", "results_dir", "tracking"),
    # data: one task's manifests + audio (data.tasks only shapes the DAG: one job per task)
    "data": ("seed", "threads", "data", "-data.tasks", "-data.on_bad_sample"),
    # init-model: tiny random-init model + tokenizer (or a pretrained checkpoint); data.source is
    # checked against model.pretrained
    "init_model": ("seed", *_RUNTIME, "model.arch", "model.pretrained", "model.tiny", "data.source"),
    # sft: supervised fine-tuning (LoRA, optimiser, backend)
    "sft": ("seed", *_RUNTIME, *_DATA_IO, "model", "sft", "train"),
    # sft-more: the control, SFT continued for the compute of one RL run
    "sft_more": (*_RUNTIME, *_DATA_IO, "model", "train", "sft.lr", "sft.weight_decay", "sft.grad_clip",
                 "suite.control_lr", "rl.steps", "rl.prompts_per_step", "rl.group_size", "rl.grad_accum",
                 "rl.log_every"),
    # tokenize: one task's audio -> codec token ids (tasks with token fields, speechrl.tasks)
    "tokenize": ("seed", *_RUNTIME, "tokenize", "data.sample_rate", "data.max_audio_seconds", "data.on_bad_sample"),
    # evaluate: decoding + metrics
    "evaluate": (*_RUNTIME, *_DATA_IO, "evaluate"),
    # rl-<system>: see module docstring
    "rl": (*_RUNTIME, *_DATA_IO, "model", "train", "rl"),
}

# Top-level entries that no job reads (only the DAG, the report or the launcher does).
NOT_READ_BY_JOBS = {
    "suite": "seeds, control and the ablation grid shape the DAG; the report reads the ablation names",
    "report": "the report job reads the whole config",
    "tasks": "merged into each task's config before slicing (task_config): a job reads its task's values",
}

# Sections a task may override under tasks.<name> (and the ones its registry defaults use).
TASK_SECTIONS = ("model", "tokenize", "sft", "rl", "suite", "evaluate", "report")


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: ``b`` wins; mappings merge key by key, except ``rewards`` (a weight set replaces the other)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "rewards" else copy.deepcopy(v)
    return out


def task_config(config: dict[str, Any], task: str) -> dict[str, Any]:
    """The config the jobs of ``task`` read: the top level (without ``tasks``), overridden by the task's own
    defaults (:data:`speechrl.tasks.TASKS`), overridden by ``tasks.<task>``. Raises ``KeyError`` for an
    unknown task or section (the message lists the valid names)."""
    from speechrl.tasks import TASKS

    over = (config.get("tasks") or {}).get(task) or {}
    bad = sorted(k for k in over if k not in TASK_SECTIONS)
    if bad:
        raise KeyError(f"tasks.{task}: unknown section(s) {', '.join(bad)}; a task may set: {', '.join(TASK_SECTIONS)}")
    out = {k: v for k, v in config.items() if k != "tasks"}
    return merge(merge(out, TASKS.get(task).defaults), over)


def model_groups(config: dict[str, Any], tasks: list[str]) -> dict[str, list[str]]:
    """Tasks that share one base model: those whose ``init_model`` slice (and, for tokenized tasks, tokenize
    settings) are identical. Named by
    ``model.arch`` (``granite_speech``), a second distinct group of the same arch ``granite_speech-2``."""
    from speechrl.tasks import TASKS

    groups: dict[str, list[str]] = {}
    keys: dict[str, str] = {}
    for task in tasks:
        cfg = task_config(config, task)
        part = select(cfg, "init_model")
        if TASKS.get(task).tokenized:  # the codec's ids are the model's audio vocabulary
            part["tokenize"] = {k: v for k, v in (cfg.get("tokenize") or {}).items() if k != "roundtrip_utterances"}
        key = json.dumps(part, sort_keys=True, default=str)
        for name, k in keys.items():
            if k == key:
                groups[name].append(task)
                break
        else:
            arch = (cfg.get("model") or {}).get("arch", "granite_speech")
            name, n = arch, 1
            while name in groups:
                n += 1
                name = f"{arch}-{n}"
            groups[name], keys[name] = [task], key
    return groups


def slice_names(rl_systems: list[str]) -> list[str]:
    """Every slice of a suite whose RL systems are ``rl_systems``."""
    return [n for n in SLICES if n != "rl"] + [f"rl-{s}" for s in rl_systems]


def slice_keys(name: str) -> tuple[str, ...]:
    """The key paths of slice ``name`` (``rl-<system>`` -> the ``rl`` slice)."""
    base = "rl" if name.startswith("rl-") else name
    if base not in SLICES:
        raise KeyError(f"unknown config slice '{name}'; valid: {', '.join(SLICES)} (rl as rl-<system>)")
    return SLICES[base]


def select(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The part of a (resolved or raw) config mapping that slice ``name`` reads, as a nested mapping.

    Keys missing from ``config`` are left out (they take their defaults when parsed)."""
    out: dict[str, Any] = {}
    keys = slice_keys(name)
    for path in (k for k in keys if not k.startswith("-")):
        parts = path.split(".")
        node: Any = config
        for p in parts:
            if not isinstance(node, dict) or p not in node:
                break
            node = node[p]
        else:
            dst = out
            for p in parts[:-1]:
                dst = dst.setdefault(p, {})
            dst[parts[-1]] = copy.deepcopy(node)
    for path in (k[1:] for k in keys if k.startswith("-")):
        *parents, leaf = path.split(".")
        dst = out
        for p in parents:
            dst = dst.get(p, {}) if isinstance(dst, dict) else {}
        if isinstance(dst, dict):
            dst.pop(leaf, None)
    # A default must not contradict a key of the slice (Config.check): report.decoding, outside
    # every job slice, follows evaluate.decodings, so changing it reruns the report alone.
    decodings = out.get("evaluate", {}).get("decodings")
    if decodings and "decoding" not in out.get("report", {}):
        out.setdefault("report", {})["decoding"] = decodings[0]
    if name.startswith("rl-"):
        algorithm, reward, options = rl_system_parts(name[3:])
        rl = out.setdefault("rl", {})
        rl["algorithms"] = [algorithm]
        if reward:  # reward ablation: that preset trained on this reward alone
            rl["rewards"] = {reward: 1.0}
        if options:  # segmenter sweep: that preset with this option
            rl["segmenter_opts"] = {**rl.get("segmenter_opts", {}), **options}
    return out
