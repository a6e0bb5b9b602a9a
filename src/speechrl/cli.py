"""``speechrl <stage> --config RESOLVED.yaml --out DIR``: one entry point per pipeline stage.

Every Snakemake rule calls one of these; each also runs on its own, without Snakemake. A stage
seeds everything, logs to stderr, opens an MLflow child run, writes its outputs atomically and
finishes with a manifest. Input errors (bad config, manifest, audio, names) print one clear line
and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from speechrl.audio.io import AudioError
from speechrl.config import Config, ConfigError, dump_config, load_config, parse_config, schema_yaml, slice_config
from speechrl.data.manifest import ManifestError
from speechrl.io import write_json, write_text
from speechrl.progress import setup_logging
from speechrl.registry import UnknownNameError

log = logging.getLogger("speechrl")
INPUT_ERRORS = (ConfigError, ManifestError, AudioError, UnknownNameError, FileNotFoundError)


def _runtime(cfg: Config) -> None:
    """Threads, seeds, offline mode and quiet third-party progress bars."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import random

    import numpy as np
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _device(cfg: Config) -> str:
    """The torch device of this process: ``cuda:LOCAL_RANK`` for a rank of a multi-GPU job."""
    import torch

    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if device == "cuda" else device


def _is_main() -> bool:
    """Rank 0 of a multi-rank job (or a plain process): the one that writes outputs, manifests, MLflow."""
    return int(os.environ.get("RANK", 0)) == 0


@contextlib.contextmanager
def _job(cfg: Config, tracking: str | None, stage: str, name: str) -> Iterator[Any]:
    """The job's MLflow child run on rank 0; a stand-in that records nothing on the other ranks."""
    from speechrl.tracking import JobRun, job_run

    if not _is_main():
        yield JobRun()
        return
    with job_run(cfg, tracking, stage, name) as run:
        yield run


# ------------------------------------------------------------------------------------- stages
def cmd_resolve_config(a: argparse.Namespace) -> None:
    if a.json:
        cfg = parse_config(json.loads(a.json))
    else:
        cfg = load_config(*a.config)
    what, header = "resolved config", ""
    if a.slice:  # the part one job reads; every other key reset to its default (speechrl.config.slices)
        cfg, what = slice_config(cfg, a.slice), f"config slice {a.slice}"
        header = (f"# Config slice '{a.slice}': the keys its jobs read; every other key is the default, not the suite's\n"
                  f"# value (speechrl.config.slices). Written by `speechrl resolve-config --slice {a.slice}`.\n")
    write_text(a.out, header + dump_config(cfg))
    log.info(f"{what} {cfg.hash()} -> {a.out}")


def cmd_schema(a: argparse.Namespace) -> None:
    text = schema_yaml()
    if a.out:
        write_text(a.out, text)
    else:
        sys.stdout.write(text)


def cmd_tracking_init(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.tracking import init_pipeline

    init_pipeline(cfg, Path(a.out))


def cmd_data(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.data.hub import build_hub
    from speechrl.data.synthetic import build_synthetic

    out, start = Path(a.out), time.time()
    from speechrl.tracking import job_run

    build = build_hub if cfg.data.source == "hub" else build_synthetic
    with job_run(cfg, a.tracking, "data", f"data:{a.task}") as run:
        stats = build(a.task, cfg, out)
        run.metrics({k: v for k, v in stats.items() if isinstance(v, (int, float))}, 0)
        _finish(out, cfg, "data", [], start, run)


def cmd_init_model(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.data.manifest import read_manifest
    from speechrl.models.build import build_tiny, count_params, load_pretrained, save
    from speechrl.tracking import job_run

    out, start = Path(a.out), time.time()
    texts = []
    for d in a.data:
        for ex in read_manifest(Path(d) / "train.jsonl"):
            texts += [ex.prompt, *ex.references]
    with job_run(cfg, a.tracking, "init_model", "init_model") as run:
        if cfg.model.pretrained:
            model, proc = load_pretrained(cfg.model.pretrained, _device(cfg))
        else:
            model, proc = build_tiny(cfg, texts)
        save(model, proc, out / "model")
        params = count_params(model)
        kind = cfg.model.pretrained or f"tiny {cfg.model.arch}"
        log.info(f"{kind}: {params['total']:,} parameters, vocab {len(proc.tokenizer)}")
        write_json(out / "summary.json", {"params": params, "vocab_size": len(proc.tokenizer)})
        run.metrics({"params": params["total"]}, 0)
        _finish(out, cfg, "init_model", [Path(d) / "train.jsonl" for d in a.data], start, run)


def _load(cfg: Config, model_dir: str) -> Any:
    from speechrl.models.build import load

    return load(Path(model_dir), _device(cfg))


def cmd_sft(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.models.build import apply_lora
    from speechrl.training.data import load_split
    from speechrl.training.sft import train_sft

    out, data, start = Path(a.out), Path(a.data), time.time()
    model, proc = _load(cfg, a.model)
    if cfg.model.lora.enabled:
        model = apply_lora(model, cfg.model.lora)
    train = load_split(data, "train", proc, cfg.data.sample_rate, cfg.data.max_audio_seconds)
    valid = load_split(data, "valid", proc, cfg.data.sample_rate, cfg.data.max_audio_seconds)
    log.info(f"[sft {a.task}] {len(train)} train / {len(valid)} valid examples")
    with _job(cfg, a.tracking, "sft", f"sft:{a.task}") as run:
        summary = train_sft(cfg, model, proc, train, valid, out / "model", run.metrics, desc=f"sft {a.task}")
        _finish(out, cfg, "sft", [data, Path(a.model)], start, run, summary)


def cmd_rl(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.algos import resolve
    from speechrl.models.build import apply_lora
    from speechrl.training.data import load_split
    from speechrl.training.rl import train_rl

    from speechrl.systems import parse_system

    out, data, start = Path(a.out), Path(a.data), time.time()
    system = parse_system(a.algo)
    if system.kind != "rl":
        raise ConfigError(f"--algo {a.algo}: not an RL system; give a preset name or <preset>-<reward>")
    if system.reward:
        cfg = dataclasses.replace(cfg, rl=dataclasses.replace(cfg.rl, rewards={system.reward: 1.0}))
    algo = resolve(system.algorithm, cfg.rl)
    model, proc = _load(cfg, a.model)
    if cfg.model.lora.enabled:
        model = apply_lora(model, cfg.model.lora)
    train = load_split(data, "train", proc, cfg.data.sample_rate, cfg.data.max_audio_seconds)
    log.info(f"[rl {a.task} {a.algo}] {algo}")
    with _job(cfg, a.tracking, "rl", f"rl:{a.task}:{a.algo}:s{cfg.seed}") as run:
        run.tags({"speechrl.algorithm": a.algo, **{f"algo.{k}": v for k, v in algo.__dict__.items()}})
        summary = train_rl(cfg, algo, model, proc, train, out / "model", run.metrics, desc=f"rl {a.task} {a.algo}")
        summary = {"task": a.task, "system": a.algo, "seed": cfg.seed, "algorithm": algo.__dict__, **summary}
        _finish(out, cfg, "rl", [data, Path(a.model)], start, run, summary)


def cmd_sft_more(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.training.data import load_split
    from speechrl.training.optim import COSINE_FLOOR
    from speechrl.training.sft import continue_sft

    out, data, start = Path(a.out), Path(a.data), time.time()
    model, proc = _load(cfg, a.model)
    train = load_split(data, "train", proc, cfg.data.sample_rate, cfg.data.max_audio_seconds)
    rl = cfg.rl
    lr = cfg.suite.control_lr or cfg.sft.lr * COSINE_FLOOR
    with _job(cfg, a.tracking, "sft_more", f"sft_more:{a.task}:s{cfg.seed}") as run:
        summary = continue_sft(cfg, model, proc, train, out / "model", steps=rl.steps, batch_size=rl.prompts_per_step * rl.group_size,
                               lr=lr, log_metrics=run.metrics, desc=f"sft_more {a.task} s{cfg.seed}")
        _finish(out, cfg, "sft_more", [data, Path(a.model)], start, run, summary)


def cmd_evaluate(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.evaluation.evaluate import evaluate
    from speechrl.io import write_jsonl
    from speechrl.tracking import job_run
    from speechrl.training.data import load_split

    out, data, start = Path(a.out), Path(a.data), time.time()
    model, proc = _load(cfg, a.model)
    test = load_split(data, "test", proc, cfg.data.sample_rate, cfg.data.max_audio_seconds)
    with job_run(cfg, a.tracking, "evaluate", f"eval:{a.task}:{a.system}:s{cfg.seed}") as run:
        result, rows = evaluate(cfg, model, proc, test, desc=f"eval {a.task} {a.system}")
        write_jsonl(out / "samples.jsonl", rows)
        metrics = {"task": a.task, "system": a.system, "n": len(test), "seed": cfg.seed, "config_hash": cfg.hash(),
                   "model": a.model, **result}
        write_json(out / "metrics.json", metrics)
        for mode, vals in result["decodings"].items():
            run.metrics({f"{mode}/{k}": v for k, v in vals.items()}, 0)
        _finish(out, cfg, "evaluate", [data / "test.jsonl", Path(a.model)], start, run)


def cmd_report(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.report import build_report
    from speechrl.tracking import finish_pipeline

    from speechrl.systems import CONTROL, ablation_systems

    out, start = Path(a.out), time.time()
    suite = cfg.suite
    ablation = ablation_systems(cfg)
    build_report([Path(m) for m in a.metrics], out, title=f"speechrl: {cfg.name}", decoding=cfg.report.decoding,
                 system_order=[*cfg.report.systems, CONTROL, *cfg.rl.algorithms], metrics=cfg.evaluate.metrics,
                 curves=[Path(c) for c in a.curves], ablation=(suite.ablation_algorithm, ablation) if ablation else None,
                 paper=cfg.report.paper_numbers)
    from speechrl.audit import write_manifest

    write_manifest(out, cfg, "report", [Path(m) for m in a.metrics], start)
    if a.tracking:
        finish_pipeline(cfg, Path(a.tracking), [out])
    log.info(f"report: {out / 'index.html'}")


def cmd_audit(a: argparse.Namespace) -> None:
    from speechrl.audit import audit

    problems = audit(Path(a.results))
    for p in problems:
        print(p)
    n = len(list(Path(a.results).rglob("manifest.json")))
    print(f"audit: {n} manifests, {len(problems)} problems")
    if problems:
        raise SystemExit(1)


def _finish(out: Path, cfg: Config, stage: str, inputs: list[Path], start: float, run: Any,
            summary: dict[str, Any] | None = None) -> None:
    """The job's summary, config and manifest, logged to its MLflow run (rank 0 only)."""
    from speechrl.audit import write_manifest

    if not _is_main():
        return
    if summary is not None:
        write_json(out / "summary.json", summary)

    write_text(out / "config.yaml", dump_config(cfg))
    write_manifest(out, cfg, stage, inputs, start)
    for name in ("config.yaml", "manifest.json", "summary.json", "metrics.json", "samples.jsonl", "stats.json"):
        run.artifact(out / name)


# --------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speechrl", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def stage(name: str, fn: Callable[..., None], help: str, *args: tuple[str, dict[str, Any]]) -> None:
        s = sub.add_parser(name, help=help)
        s.add_argument("--config", required=True, help="resolved config YAML")
        s.add_argument("--out", required=True, help="output folder (or file)")
        s.add_argument("--tracking", help="pipeline run file written by `speechrl tracking-init` (MLflow nesting)")
        s.add_argument("--seed", type=int, help="this job's seed (RL, control, evaluation), replacing the config's global seed")
        for flag, kw in args:
            s.add_argument(flag, **kw)
        s.set_defaults(fn=fn, needs_config=True)

    r = sub.add_parser("resolve-config", help="merge/validate config files (or --json) into one resolved YAML")
    r.add_argument("--config", nargs="*", default=[])
    r.add_argument("--json", help="the whole config as JSON (what Snakemake passes)")
    r.add_argument("--slice", help="write only the config slice one pipeline job reads (data, sft, rl-<system>, ...; "
                   "see speechrl.config.slices): keys outside it take their defaults")
    r.add_argument("--out", required=True)
    r.set_defaults(fn=cmd_resolve_config, needs_config=False)
    s = sub.add_parser("schema", help="print (or --out) the JSON schema generated from the config dataclasses")
    s.add_argument("--out")
    s.set_defaults(fn=cmd_schema, needs_config=False)
    au = sub.add_parser("audit", help="re-hash every manifest's inputs/outputs under a results folder")
    au.add_argument("--results", default="results")
    au.set_defaults(fn=cmd_audit, needs_config=False)

    task = ("--task", {"required": True})
    stage("tracking-init", cmd_tracking_init, "create the MLflow pipeline run")
    stage("data", cmd_data, "build a task's dataset (manifests + audio)", task)
    stage("init-model", cmd_init_model, "build the tiny random-init model + tokenizer", ("--data", {"nargs": "+", "required": True}))
    stage("sft", cmd_sft, "supervised fine-tuning", task, ("--data", {"required": True}), ("--model", {"required": True}))
    stage("rl", cmd_rl, "RL post-training with one algorithm preset", task,
          ("--algo", {"required": True, "help": "a preset (grpo, leaf, ...) or <preset>-<reward> for the reward ablation"}),
          ("--data", {"required": True}), ("--model", {"required": True}))
    stage("sft-more", cmd_sft_more, "the control: SFT continued for the compute of an RL run", task,
          ("--data", {"required": True}), ("--model", {"required": True}))
    stage("evaluate", cmd_evaluate, "decode the test split and score it", task, ("--system", {"required": True}),
          ("--data", {"required": True}), ("--model", {"required": True}))
    stage("report", cmd_report, "paper-style tables and figures from metrics.json and RL summary.json files",
          ("--metrics", {"nargs": "+", "required": True}), ("--curves", {"nargs": "*", "default": [], "help": "RL summary.json files (training curves)"}))
    return p


def main(argv: list[str] | None = None) -> None:
    setup_logging(logging.INFO if _is_main() else logging.WARNING)  # one progress log per job, not per rank
    args = build_parser().parse_args(argv)
    try:
        if args.needs_config:
            cfg = load_config(args.config)
            if args.seed is not None:
                cfg = dataclasses.replace(cfg, seed=args.seed)
            _runtime(cfg)
            args.fn(args, cfg)
        else:
            args.fn(args)
    except INPUT_ERRORS as e:
        print(f"speechrl {args.cmd}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
