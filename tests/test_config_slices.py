"""Config slices (speechrl.config.slices): each pipeline job's config holds what the job reads.

A key a job reads but its slice lacks would be the default in the job's config and would never
rerun the job when it changes; the static check below reads the code of every stage and fails with
the key and the slice to add it to.
"""

from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path

import pytest

from speechrl.config import Config, ConfigError, parse_config, slice_config
from speechrl.config.slices import NOT_READ_BY_JOBS, SLICES, select, slice_keys, slice_names

SRC = Path(__file__).resolve().parents[1] / "src" / "speechrl"
TINY = {"name": "t", "seed": 3, "threads": 2, "device": "cpu",
        "data": {"tasks": ["sqa"], "max_audio_seconds": 9.0, "synthetic": {"n_train": 5}},
        "sft": {"lr": 0.01, "batch_size": 4, "grad_accum": 2}, "model": {"lora": {"enabled": True}},
        "rl": {"algorithms": ["grpo", "leaf"], "lr": 1e-4, "rewards": {"bleu": 1.0, "chrf": 0.5}, "prompts_per_step": 6,
               "minibatches": 3, "grad_accum": 2},
        "suite": {"seeds": [0, 1], "control_lr": 1e-4, "ablation_rewards": ["rouge_l"]},
        "evaluate": {"decodings": ["greedy"], "temperature": 0.5}, "report": {"decoding": "greedy"},
        "tracking": {"experiment": "x"}, "train": {"backend": "deepspeed", "precision": "bf16"}}


def key_paths(cls: type = Config, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        out.append(path)
        if dataclasses.is_dataclass(hints[f.name]):
            out += key_paths(hints[f.name], path + ".")
    return out


def test_every_slice_key_exists_and_every_top_level_entry_is_claimed():
    paths = set(key_paths())
    for name, keys in SLICES.items():
        for k in keys:
            assert k.lstrip("-") in paths, f"slice {name}: no config key {k}"
    claimed = {k.split(".")[0] for keys in SLICES.values() for k in keys if not k.startswith("-")}
    top = {f.name for f in dataclasses.fields(Config)}
    missing = top - claimed - set(NOT_READ_BY_JOBS)
    assert not missing, f"config entries no job slice names (add them to speechrl.config.slices): {missing}"


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "rewards":
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize("name", slice_names(["grpo", "leaf", "grpo-rouge_l"]))
def test_a_slice_keeps_its_keys_resets_the_rest_and_passes_the_checks(name):
    cfg = parse_config(TINY)  # non-default values in every section, cross-field checks satisfied
    part = slice_config(cfg, name)
    got, full, default = flat(part.to_dict()), flat(cfg.to_dict()), flat(parse_config({}).to_dict())
    keys = slice_keys(name)
    for path, value in got.items():
        if name.startswith("rl-") and path in ("rl.algorithms", "rl.rewards"):
            continue
        if path == "report.decoding" and "evaluate" in keys:  # follows evaluate.decodings (Config.check)
            assert value == got["evaluate.decodings"][0]
            continue
        assert value == (full[path] if covered(path, keys) else default[path]), path
    assert any(got[p] != default[p] for p in got if covered(p, keys)), "the test config should set a key of every slice"
    assert slice_config(part, name) == part  # idempotent


def test_rl_slices_name_their_own_algorithm_and_the_ablation_its_reward():
    cfg = parse_config(TINY)
    grpo, leaf, abl = (slice_config(cfg, f"rl-{s}") for s in ("grpo", "leaf", "grpo-rouge_l"))
    assert grpo.rl.algorithms == ["grpo"] and leaf.rl.algorithms == ["leaf"] and abl.rl.algorithms == ["grpo"]
    assert grpo.rl.rewards == {"bleu": 1.0, "chrf": 0.5} and abl.rl.rewards == {"rouge_l": 1.0}
    assert grpo.rl.lr == 1e-4 and grpo.model.lora.enabled and grpo.train.precision == "bf16"
    assert grpo.sft == parse_config({}).sft and grpo.seed == 0  # not read by RL jobs (their seed is --seed)
    # adding an algorithm leaves the other RL slices as they were
    more = parse_config({**TINY, "rl": {**TINY["rl"], "algorithms": ["grpo", "leaf", "gspo"]}})
    assert slice_config(more, "rl-grpo") == grpo


def test_a_sweep_system_slice_sets_its_segmenter_option_over_the_configs():
    from speechrl.config.slices import rl_system_parts

    cfg = parse_config({**TINY, "rl": {**TINY["rl"], "segmenter_opts": {"delta": 64}},
                        "suite": {**TINY["suite"], "segmenter_sweep": ["gspo_segment_window@window=16"]}})
    sweep = slice_config(cfg, "rl-gspo_segment_window@window=16")
    assert sweep.rl.algorithms == ["gspo_segment_window"] and sweep.rl.segmenter_opts == {"delta": 64, "window": 16}
    assert sweep.rl.rewards == {"bleu": 1.0, "chrf": 0.5}
    assert slice_config(cfg, "rl-grpo").rl.segmenter_opts == {"delta": 64}
    assert rl_system_parts("gspo_segment_logprob@tau=0.5") == ("gspo_segment_logprob", None, {"tau": 0.5})
    assert rl_system_parts("grpo-rouge_l") == ("grpo", "rouge_l", {}) and rl_system_parts("grpo") == ("grpo", None, {})


@pytest.mark.parametrize("sweep, match", [
    (["gspo_segment_window@window=-2"], "is not '<preset>@<option>=<value>' with a plain decimal"),
    (["gspo_segment_window@window=1e-3"], "plain decimal"),
    (["gspo_segment_window@window=2", "gspo_segment_window@window=2"], "segmenter_sweep has duplicates"),
    (["gspo_segment_window@tau=2"], r"the segmenter of gspo_segment_window \(fixed\) takes window, not 'tau'"),
    (["grpo@window=2"], "preset 'grpo' has no segmenter; sweep one of: gspo_segment_logprob, gspo_segment_tokenid"),
    (["gspo_segmnt_window@window=2"], "unknown algorithm preset 'gspo_segmnt_window'.*did you mean 'gspo_segment_window'"),
    (["gspo_segment_window@window=2.5"], "window=2.5 must be an integer >= 1"),
])
def test_a_bad_segmenter_sweep_names_the_entry_and_the_fix(sweep, match):
    with pytest.raises(ConfigError, match=match):
        parse_config({"suite": {"segmenter_sweep": sweep}})


def test_unknown_slice_names_the_valid_ones():
    with pytest.raises(KeyError, match="valid: tracking, data"):
        select({}, "rl_grpo")
    with pytest.raises(ConfigError, match="config slice 'rl-nope'"):
        slice_config(parse_config({}), "rl-nope")


def test_registry_free_parsing_checks_everything_else():
    parse_config({"rl": {"algorithms": ["not-a-preset"]}}, registries=False)  # no torch import needed
    with pytest.raises(ConfigError, match="report.decoding"):
        parse_config({"evaluate": {"decodings": ["greedy"]}}, registries=False)


# ---------------------------------------------------------------- what each stage's code reads
COMMON = [("cli.py", "_runtime"), ("cli.py", "_finish"), ("audit.py", "write_manifest"), ("tracking.py", "job_run")]
MODEL = [("cli.py", "_device"), ("cli.py", "_load")]
BACKEND = [("training/backend.py", None)]
STAGES = {
    "tracking": [("cli.py", "cmd_tracking_init"), ("cli.py", "_runtime"), ("tracking.py", "init_pipeline")],
    "data": [*COMMON, ("cli.py", "cmd_data"), ("data/synthetic.py", "build_synthetic"),
             ("data/synthetic.py", "synthesize_all"), ("data/hub.py", "build_hub"), ("data/enhancement.py", None),
             ("data/tts.py", None)],
    "tokenize": [*COMMON, ("cli.py", "cmd_tokenize"), ("cli.py", "_codec_options"), ("audio/tokenize.py", None)],
    "init_model": [*COMMON, *MODEL, ("cli.py", "cmd_init_model"), ("models/build.py", "build_tiny"),
                   ("models/granite.py", None)],
    "sft": [*COMMON, *MODEL, *BACKEND, ("cli.py", "cmd_sft"), ("training/sft.py", "train_sft")],
    "sft_more": [*COMMON, *MODEL, *BACKEND, ("cli.py", "cmd_sft_more"), ("training/sft.py", "continue_sft")],
    "rl-grpo": [*COMMON, *MODEL, *BACKEND, ("cli.py", "cmd_rl"), ("training/rl.py", None)],
    "evaluate": [*COMMON, *MODEL, ("cli.py", "cmd_evaluate"), ("evaluation/evaluate.py", None)],
}
# Reads outside the slice, on purpose.
ALLOWED = {
    "seed": {"rl-grpo", "sft_more", "evaluate", "tracking"},  # those jobs get --seed from the DAG; tracking: _runtime
    "threads": {"tracking"},  # _runtime only
    "device": {"data", "tokenize"},  # recorded in the manifest, not used
    # job_run: the pipeline run file written by tracking-init says whether tracking is on and where
    "tracking": set(STAGES),
    "results_dir": set(STAGES),  # the default MLflow store, used only when the pipeline run file has no URI
}
METHODS = {"hash", "to_dict", "check", "get", "pop", "update"}  # (backend.py's deepspeed dict is also 'cfg')


def _chain(node: ast.AST, roots: dict[str, str]) -> str | None:
    """``cfg.a.b`` / ``run.cfg.a.b`` / ``alias.b`` -> "a.b" (None if not a config read)."""
    parts = []
    while isinstance(node, ast.Attribute) and node.attr != "cfg":
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Attribute):  # self.cfg, run.cfg
        base = ""
    elif isinstance(node, ast.Name) and node.id in roots:
        base = roots[node.id]
    else:
        return None
    return ".".join(filter(None, [base, *reversed(parts)]))


def reads(path: str, func: str | None) -> set[str]:
    """Config key paths read as ``cfg.a.b`` (or through a local alias ``x = cfg.a``) in ``func``."""
    tree = ast.parse((SRC / path).read_text())
    scopes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and (func is None or n.name == func)]
    assert scopes, f"{path}: no function {func}"
    out = set()
    for scope in scopes:
        roots = {"cfg": ""}
        for n in ast.walk(scope):  # aliases: x = cfg.a / x, y = cfg.a, ...
            if isinstance(n, ast.Assign):
                pairs = [(n.targets[0], n.value)]
                if isinstance(n.targets[0], ast.Tuple) and isinstance(n.value, ast.Tuple):
                    pairs = list(zip(n.targets[0].elts, n.value.elts))
                for t, v in pairs:
                    c = _chain(v, roots)
                    if isinstance(t, ast.Name) and c:
                        roots[t.id] = c
        inner = {id(n.value) for n in ast.walk(scope) if isinstance(n, ast.Attribute)}  # cfg.rl of cfg.rl.lr
        used_as_alias = {n.value.id for n in ast.walk(scope) if isinstance(n, ast.Attribute)
                         and isinstance(n.value, ast.Name) and n.value.id in roots and n.value.id != "cfg"}
        for n in ast.walk(scope):  # an alias definition (rl = cfg.rl) is no read of its own when rl.x are read
            if isinstance(n, ast.Assign):
                targets, values = n.targets[0], n.value
                pairs = zip(targets.elts, values.elts) if isinstance(targets, ast.Tuple) and isinstance(values, ast.Tuple) else [(targets, values)]
                inner |= {id(v) for t, v in pairs if isinstance(t, ast.Name) and t.id in used_as_alias}
        for n in ast.walk(scope):
            if isinstance(n, ast.Attribute) and id(n) not in inner:
                c = _chain(n, roots)
                if c:
                    out.add("results_dir" if c.split(".")[0] == "results" else c)
    return {c for c in out if c.split(".")[-1] not in METHODS}


def covered(chain: str, keys: tuple[str, ...]) -> bool:
    if any(chain == k[1:] or chain.startswith(k[1:] + ".") for k in keys if k.startswith("-")):
        return False
    return any(chain == k or chain.startswith(k + ".") for k in keys if not k.startswith("-"))


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_key_a_stage_reads_is_in_its_slice(stage):
    keys = slice_keys(stage)
    missing = set()
    for path, func in STAGES[stage]:
        if not (SRC / path).exists():
            continue
        for chain in reads(path, func):
            top = chain.split(".")[0]
            if covered(chain, keys) or stage in ALLOWED.get(chain, ()) or stage in ALLOWED.get(top, ()):
                continue
            missing.add(f"{chain} ({path}:{func or '*'})")
    assert not missing, f"stage {stage} reads keys outside its config slice; add them to SLICES['{stage.split('-')[0]}'] in speechrl.config.slices: {sorted(missing)}"


def test_the_code_reader_sees_reads_through_aliases_and_sections():
    assert {"rl.steps", "rl.group_size", "suite.control_lr", "sft.lr"} <= reads("cli.py", "cmd_sft_more")  # rl = cfg.rl
    assert "rl" in reads("cli.py", "cmd_rl")  # the whole section handed on
    assert not covered("rl.lr", slice_keys("sft_more")) and not covered("data.tasks", slice_keys("data"))
