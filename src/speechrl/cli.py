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
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from speechrl.audio.io import AudioError
from speechrl.config import Config, ConfigError, dump_config, load_config, parse_config, schema_yaml, slice_config
from speechrl.data.manifest import ManifestError
from speechrl.io import write_json, write_text
from speechrl.jobdir import OutputError
from speechrl.progress import setup_logging
from speechrl.registry import UnknownNameError
from speechrl import signals
from speechrl.signals import Interrupted

log = logging.getLogger("speechrl")
INPUT_ERRORS = (ConfigError, ManifestError, AudioError, UnknownNameError, FileNotFoundError, OutputError)


def _runtime(cfg: Config) -> None:
    """Threads, seeds, offline mode and quiet third-party progress bars."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Audio scorers (DNSMOS, PESQ, ASR): a job of one thread scores in its own process (a pool of 2 spawned workers
    # would cost ~10 CPU-s of start-up per job and oversubscribe the cores Snakemake gave other jobs); a job with
    # more threads gets that many workers. SPEECHRL_AUDIO_WORKERS overrides.
    os.environ.setdefault("SPEECHRL_AUDIO_WORKERS", "0" if cfg.threads == 1 else str(cfg.threads))
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(cfg.threads)
    _reseed(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _reseed(seed: int) -> None:
    """Seed torch, Python's and NumPy's global generators."""
    import random

    import numpy as np
    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


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
def _job(cfg: Config, tracking: str | None, stage: str, name: str, run_id: str | None = None) -> Iterator[Any]:
    """The job's MLflow child run on rank 0 (``run_id``: resume that run); a stand-in elsewhere."""
    from speechrl.tracking import JobRun, job_run

    if not _is_main():
        yield JobRun()
        return
    with job_run(cfg, tracking, stage, name, run_id=run_id) as run:
        yield run


@dataclasses.dataclass
class Outputs:
    """What a stage writes through: ``work`` (the staging folder, swapped in for ``--out`` at the end), the
    MLflow ``run`` and, for a training stage, the ``ckpt`` it resumes from and saves."""

    work: Path
    run: Any
    ckpt: Any = None


def _resume_hash(cfg: Config) -> str:
    """The config hash a checkpoint must match: how often to checkpoint does not change the results."""
    train = dataclasses.replace(cfg.train, checkpoint_every=0, checkpoint_minutes=0.0)
    return dataclasses.replace(cfg, train=train).hash()


@contextlib.contextmanager
def _outputs(a: argparse.Namespace, cfg: Config, stage: str, name: str, inputs: list[Path],
             checkpoint: bool = False) -> Iterator[Outputs]:
    """One job's outputs, replaced as a whole (:mod:`speechrl.jobdir`): the staging folder (checked writable
    before any work), its MLflow run, and with ``checkpoint`` a :class:`~speechrl.training.checkpoint.Checkpoint`.
    A rerun after a kill resumes the checkpoint and the MLflow run it recorded; a killed attempt that left no
    usable checkpoint has its run closed as KILLED and starts afresh. On success rank 0 swaps the folder in."""
    from speechrl.jobdir import JobDir
    from speechrl.training.backend import world_from_env
    from speechrl.training.checkpoint import Checkpoint, fingerprint

    jd, ckpt = JobDir(Path(a.out)), None
    if checkpoint:
        fp = fingerprint(_resume_hash(cfg), inputs, world_from_env()[1])
        ckpt = Checkpoint(jd.checkpoints, fp, cfg.train.checkpoint_every, cfg.train.checkpoint_minutes)
    try:
        resume = ckpt is not None and ckpt.exists()
        previous = jd.previous_run() if _is_main() else None
        if _is_main():
            jd.open(keep=resume, checkpoints=checkpoint)
        with _job(cfg, a.tracking, stage, name, run_id=previous if resume else None) as run:
            if _is_main():
                if previous and a.tracking and previous != run.run_id:  # a killed attempt's run, not resumed
                    from speechrl.tracking import end_stale_run

                    end_stale_run(a.tracking, previous)
                if checkpoint:
                    jd.record_run(run.run_id)
                    ckpt.on_save = run.flush
            yield Outputs(jd.partial, run, ckpt)
            if _is_main():
                jd.commit()
    finally:
        signals.uninstall()


# ------------------------------------------------------------------------------------- stages
def cmd_resolve_config(a: argparse.Namespace) -> None:
    # A slice skips the registry-name checks (they import torch: seconds per slice job): the whole config's names
    # are checked by the resolve_config job and the schema, and each job checks its slice again when it loads it.
    registries = not a.slice
    if a.json:
        cfg = parse_config(json.loads(a.json), registries=registries)
    else:
        cfg = load_config(*a.config) if registries else parse_config(_yaml_files(a.config), registries=False)
    what, header = "resolved config", ""
    if a.slice:  # the part one job reads; every other key reset to its default (speechrl.config.slices)
        cfg, what = slice_config(cfg, a.slice, registries=False), f"config slice {a.slice}"
        header = (f"# Config slice '{a.slice}': the keys its jobs read; every other key is the default, not the suite's\n"
                  f"# value (speechrl.config.slices). Written by `speechrl resolve-config --slice {a.slice}`.\n")
    write_text(a.out, header + dump_config(cfg))
    log.info(f"{what} {cfg.hash()} -> {a.out}")


def _yaml_files(paths: list[str]) -> dict[str, Any]:
    import yaml

    from speechrl.config import deep_merge

    merged: dict[str, Any] = {}
    for p in paths:
        if not Path(p).exists():
            raise ConfigError(f"config file not found: {p}")
        merged = deep_merge(merged, yaml.safe_load(Path(p).read_text()) or {})
    return merged


def cmd_schema(a: argparse.Namespace) -> None:
    text = schema_yaml()
    if a.out:
        write_text(a.out, text)
    else:
        sys.stdout.write(text)


def cmd_tracking_init(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.tracking import init_pipeline

    init_pipeline(cfg, Path(a.out))  # an unreachable server: one warning line, the run spooled, exit 0


def cmd_tracking_sync(a: argparse.Namespace) -> None:
    from speechrl.tracking import sync

    replayed, left = sync(Path(a.tracking))
    print(f"tracking-sync: {replayed} operations replayed, {left} left")
    if left:
        raise SystemExit(1)


def cmd_data(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.tasks import TASKS

    start, task = time.time(), TASKS.get(a.task)
    with _outputs(a, cfg, "data", f"data:{a.task}", []) as o:
        stats = task.build(cfg, o.work)
        if task.output == "audio":  # the ASR of the WER / CER rewards gets the task's language model
            _build_asr_lm(o.work)
        o.run.metrics({k: v for k, v in stats.items() if isinstance(v, (int, float))}, 0)
        _finish(o.work, cfg, "data", [], start, o.run)


ASR_LM = "asr_lm"  # <data>/asr_lm: the pocketsphinx task LM of an audio-output task's transcripts


def _build_asr_lm(data: Path) -> None:
    """A trigram LM + dictionary of every split's transcripts (speechrl.rewards.asr.build_task_lm), so the asr_wer /
    asr_cer scorers of the task's jobs recognise its sentences (pocketsphinx's generic LM: WER ~0.7 on espeak-ng
    speech, STACK_NOTES.md). It knows the test sentences too: WER measures intelligibility to a recogniser that
    expects the task's sentences, not open-vocabulary ASR."""
    from speechrl.data.manifest import SPLITS, scan_manifest
    from speechrl.rewards.asr import build_task_lm

    texts = [r for split in SPLITS if (data / f"{split}.jsonl").exists()
             for _, ex in scan_manifest(data / f"{split}.jsonl")[0] for r in ex.references]
    build_task_lm(texts, data / ASR_LM)


def _use_asr_lm(a: argparse.Namespace) -> None:
    """Point the ASR scorers at the job's dataset's task LM (unless SPEECHRL_ASR_LM / SPEECHRL_ASR_MODEL choose one)."""
    from speechrl.rewards.asr import LM_ENV, MODEL_ENV

    lm = Path(a.data) / ASR_LM if isinstance(getattr(a, "data", None), str) else None
    if lm and lm.is_dir() and not os.environ.get(LM_ENV) and not os.environ.get(MODEL_ENV):
        os.environ[LM_ENV] = str(lm.resolve())


def cmd_tokenize(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.audio.codecs import load_codec
    from speechrl.audio.tokenize import roundtrip_inputs, roundtrip_quality, tokenize_dataset
    from speechrl.tasks import TASKS

    data, start, task = Path(a.data), time.time(), TASKS.get(a.task)
    if not task.tokenized:
        raise ConfigError(f"task '{a.task}' has no tokenize stage (its audio goes through the model's encoder); "
                          f"tasks with one: {', '.join(n for n in TASKS.names() if TASKS.get(n).tokenized)}")
    codec = load_codec(cfg.tokenize.codec, **_codec_options(cfg))
    inputs = [data]
    with _outputs(a, cfg, "tokenize", f"tokenize:{a.task}", inputs) as o:
        stats = tokenize_dataset(data, o.work, codec, task.token_fields, cfg.data.on_bad_sample,
                                 sample_rate=cfg.data.sample_rate, max_seconds=cfg.data.max_audio_seconds)
        if cfg.tokenize.roundtrip_utterances:  # decode(encode(x)) vs x on the valid split's targets
            n = cfg.tokenize.roundtrip_utterances
            paths, refs = roundtrip_inputs(data, task.token_fields["target"], "valid", n)
            stats["roundtrip"] = roundtrip_quality(codec, paths, refs, o.work, n, cfg.data.sample_rate)
        o.run.metrics({k: v for k, v in _flat(stats).items() if isinstance(v, (int, float))}, 0)
        _finish(o.work, cfg, "tokenize", inputs, start, o.run, stats)


def _codec_options(cfg: Config) -> dict[str, Any]:
    """The options of ``tokenize.codec``: bit rate mode and tokens per frame for codec2; the weights' path and the
    torch device (a GPU where the site gives the tokenize job one) for a neural codec."""
    t = cfg.tokenize
    if t.codec == "codec2":
        return {"mode": t.mode, "tokens_per_frame": t.tokens_per_frame}
    return {"path": t.path, "device": _device(cfg)}


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}/") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def cmd_init_model(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.data.manifest import scan_manifest
    from speechrl.models import build_tiny, count_params, load_pretrained, save

    start = time.time()
    texts = []
    for d in a.data:  # tokenizer text from the good lines only: the training jobs report / skip the bad ones
        for _, ex in scan_manifest(Path(d) / "train.jsonl")[0]:
            texts += [ex.prompt, *ex.references]
    codec = _codec_info(a.tokens)
    inputs = [Path(d) / "train.jsonl" for d in a.data] + [Path(t) / "codec.json" for t in a.tokens]
    with _outputs(a, cfg, "init_model", "init_model", inputs) as o:
        if cfg.model.pretrained:
            model, proc = load_pretrained(cfg.model.pretrained, _device(cfg), codec)
        else:
            model, proc = build_tiny(cfg, texts, codec)
        save(model, proc, o.work / "model")
        params = count_params(model)
        kind = cfg.model.pretrained or f"tiny {cfg.model.arch}"
        log.info(f"{kind}: {params['total']:,} parameters, vocab {len(proc.tokenizer)}")
        write_json(o.work / "summary.json", {"params": params, "vocab_size": len(proc.tokenizer), "codec": codec})
        o.run.metrics({"params": params["total"]}, 0)
        _finish(o.work, cfg, "init_model", inputs, start, o.run)


def _codec_info(token_dirs: list[str]) -> dict[str, Any] | None:
    """The codec the tokenize jobs of a model's tasks used (codec.json); they must agree."""
    infos = {d: json.loads((Path(d) / "codec.json").read_text()) for d in token_dirs}
    if len({json.dumps(i, sort_keys=True) for i in infos.values()}) > 1:
        raise ConfigError("the tasks of one model were tokenized with different codecs: "
                          + "; ".join(f"{d}: {i}" for d, i in infos.items()) + "; give them the same tokenize settings")
    return next(iter(infos.values()), None)


def _load(cfg: Config, model_dir: str) -> Any:
    from speechrl.models import load

    return load(Path(model_dir), _device(cfg))


def cmd_sft(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.models import apply_lora
    from speechrl.training.data import load_job_data, write_skipped
    from speechrl.training.sft import train_sft

    data, start = Path(a.data), time.time()
    model, proc = _load(cfg, a.model)
    if cfg.model.lora.enabled:
        model = apply_lora(model, cfg.model.lora)
    splits, skipped = load_job_data(data, ("train", "valid"), proc, cfg, tokens_dir=a.tokens)
    train, valid = splits["train"], splits["valid"]
    log.info(f"[sft {a.task}] {len(train)} train / {len(valid)} valid examples")
    inputs = [data, Path(a.model), *([Path(a.tokens)] if a.tokens else [])]
    with _outputs(a, cfg, "sft", f"sft:{a.task}", inputs, checkpoint=True) as o:
        if _is_main():
            write_skipped(o.work, skipped)
        summary = train_sft(cfg, model, proc, train, valid, o.work / "model", o.run.metrics, desc=f"sft {a.task}", ckpt=o.ckpt)
        _finish(o.work, cfg, "sft", inputs, start, o.run, summary)


def cmd_rl(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.algos import resolve
    from speechrl.models import apply_lora
    from speechrl.training.data import load_job_data, write_skipped
    from speechrl.training.rl import train_rl

    from speechrl.rewards import check_references
    from speechrl.systems import parse_system, system_config

    data, start = Path(a.data), time.time()
    system = parse_system(a.algo)
    if system.kind != "rl":
        raise ConfigError(f"--algo {a.algo}: not an RL system; give a preset name, <preset>-<reward> or <preset>@<option>=<value>")
    cfg = system_config(cfg, system)
    algo = resolve(system.algorithm, cfg.rl)
    model, proc = _load(cfg, a.model)
    if cfg.model.lora.enabled:
        model = apply_lora(model, cfg.model.lora)
    splits, skipped = load_job_data(data, ("train",), proc, cfg, tokens_dir=a.tokens)
    train = splits["train"]
    try:
        check_references(list(cfg.rl.rewards), [s.example for s in train], "rl.rewards")
    except ValueError as e:
        raise ConfigError(f"{data / 'train.jsonl'}: {e}") from None
    log.info(f"[rl {a.task} {a.algo}] {algo}")
    inputs = [data, Path(a.model), *([Path(a.tokens)] if a.tokens else [])]
    with _outputs(a, cfg, "rl", f"rl:{a.task}:{a.algo}:s{cfg.seed}", inputs, checkpoint=True) as o:
        if _is_main():
            write_skipped(o.work, skipped)
        o.run.tags({"speechrl.algorithm": a.algo, **{f"algo.{k}": v for k, v in algo.__dict__.items()}})
        summary = train_rl(cfg, algo, model, proc, train, o.work / "model", o.run.metrics, desc=f"rl {a.task} {a.algo}",
                           ckpt=o.ckpt)
        summary = {"task": a.task, "system": a.algo, "seed": cfg.seed, "algorithm": algo.__dict__, **summary}
        _finish(o.work, cfg, "rl", inputs, start, o.run, summary)


def cmd_sft_more(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.training.data import load_job_data, write_skipped
    from speechrl.training.optim import COSINE_FLOOR
    from speechrl.training.sft import continue_sft

    data, start = Path(a.data), time.time()
    model, proc = _load(cfg, a.model)
    splits, skipped = load_job_data(data, ("train",), proc, cfg, tokens_dir=a.tokens)
    train = splits["train"]
    rl = cfg.rl
    lr = cfg.suite.control_lr or cfg.sft.lr * COSINE_FLOOR
    inputs = [data, Path(a.model), *([Path(a.tokens)] if a.tokens else [])]
    with _outputs(a, cfg, "sft_more", f"sft_more:{a.task}:s{cfg.seed}", inputs, checkpoint=True) as o:
        if _is_main():
            write_skipped(o.work, skipped)
        summary = continue_sft(cfg, model, proc, train, o.work / "model", steps=rl.steps,
                               batch_size=rl.prompts_per_step * rl.group_size, lr=lr, log_metrics=o.run.metrics,
                               desc=f"sft_more {a.task} s{cfg.seed}", ckpt=o.ckpt)
        _finish(o.work, cfg, "sft_more", inputs, start, o.run, summary)


def cmd_evaluate(a: argparse.Namespace, cfg: Config) -> None:
    """One system on the test split, for each of ``--seeds`` (default: the job's one seed) in this process:
    a suite evaluates a system's seeds in one job, so the imports and the scorers' models (WordNet, BERTScore,
    DNSMOS, the ASR) load once instead of once per seed. ``{seed}`` in ``--model`` / ``--out`` is replaced by
    each seed; every seed gets its own output folder, MLflow run and manifest, as a job of its own would."""
    from speechrl.training.data import load_job_data

    seeds = a.seeds or [cfg.seed]
    if len(seeds) > 1 and "{seed}" not in a.out:
        raise ConfigError(f"--out {a.out}: several --seeds need '{{seed}}' in --out (one folder per seed)")
    models = {seed: a.model.replace("{seed}", str(seed)) for seed in seeds}
    missing = [m for m in dict.fromkeys(models.values()) if not Path(m).exists()]
    if missing:  # before the first seed's work
        raise FileNotFoundError(f"--model: no model at {', '.join(missing)}")
    loaded: tuple[str, Any, Any, Any, Any] | None = None  # (model folder, model, processor, test split, skipped)
    for seed, model_dir in models.items():
        if loaded is None or loaded[0] != model_dir:  # base / SFT: one model for every seed
            model, proc = _load(cfg, model_dir)
            splits, skipped = load_job_data(Path(a.data), ("test",), proc, cfg, tokens_dir=a.tokens)
            loaded = (model_dir, model, proc, splits["test"], skipped)
        one = argparse.Namespace(**{**vars(a), "out": a.out.replace("{seed}", str(seed)), "model": model_dir})
        _reseed(seed)
        _evaluate_one(one, dataclasses.replace(cfg, seed=seed), *loaded[1:])


def _evaluate_one(a: argparse.Namespace, cfg: Config, model: Any, proc: Any, test: list[Any], skipped: Any) -> None:
    from speechrl.evaluation.evaluate import evaluate
    from speechrl.io import write_jsonl
    from speechrl.training.data import write_skipped

    start = time.time()
    inputs = [Path(a.data) / "test.jsonl", Path(a.model), *([Path(a.tokens)] if a.tokens else [])]
    with _outputs(a, cfg, "evaluate", f"eval:{a.task}:{a.system}:s{cfg.seed}", inputs) as o:
        if _is_main():
            write_skipped(o.work, skipped)
        result, rows = evaluate(cfg, model, proc, test, desc=f"eval {a.task} {a.system} s{cfg.seed}", out_dir=o.work)
        write_jsonl(o.work / "samples.jsonl", rows)
        metrics = {"task": a.task, "system": a.system, "n": len(test), "skipped": len(skipped), "seed": cfg.seed, "config_hash": cfg.hash(),
                   "model": a.model, **result}
        write_json(o.work / "metrics.json", metrics)
        for mode, vals in result["decodings"].items():
            o.run.metrics({f"{mode}/{k}": v for k, v in vals.items()}, 0)
        _finish(o.work, cfg, "evaluate", inputs, start, o.run, command=_one_seed_command(sys.argv, cfg.seed, a.model, a.out))


def _one_seed_command(argv: list[str], seed: int, model: str, out: str) -> list[str]:
    """``argv`` of an evaluation over ``--seeds`` as the command of one seed's output: ``--seed N``, that seed's
    ``--model`` and ``--out`` (what the audit reads, and what reruns that output alone)."""
    kept, dropping = [], False
    for arg in argv:
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            dropping = flag in ("--seeds", "--seed", "--model", "--out") and "=" not in arg
            if flag in ("--seeds", "--seed", "--model", "--out"):
                continue
        elif dropping:  # the value(s) of a dropped flag
            continue
        kept.append(arg)
    return [*kept, "--seed", str(seed), "--model", model, "--out", out]


def cmd_report(a: argparse.Namespace, cfg: Config) -> None:
    from speechrl.audit import write_manifest
    from speechrl.jobdir import JobDir
    from speechrl.report import build_report, task_specs
    from speechrl.tracking import finish_pipeline

    out, start = Path(a.out), time.time()
    jd = JobDir(out)
    work = jd.open()
    # each task's metrics, systems, reward ablation and report settings from its own config (top level < task
    # defaults < tasks.<name>); its tables from the task registry (speechrl.tasks.Task.report_tables)
    build_report([Path(m) for m in a.metrics], work, title=f"speechrl: {cfg.name}", tasks=task_specs(cfg, cfg.data.tasks),
                 curves=[Path(c) for c in a.curves])
    write_manifest(work, cfg, "report", [Path(m) for m in a.metrics], start)
    jd.commit()
    if a.tracking:
        finish_pipeline(cfg, Path(a.tracking), [out])
    log.info(f"report: {out / 'index.html'}")


def cmd_audit(a: argparse.Namespace) -> None:
    from speechrl.audit import AuditError, audit, manifests

    try:
        n, problems = len(manifests(Path(a.results))), audit(Path(a.results))
    except AuditError as e:  # no such folder, or no manifest under it
        print(f"speechrl audit: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    for p in problems:
        print(p)
    print(f"audit: {n} manifests, {len(problems)} problems")
    if problems:
        raise SystemExit(1)


def _finish(out: Path, cfg: Config, stage: str, inputs: list[Path], start: float, run: Any,
            summary: dict[str, Any] | None = None, command: list[str] | None = None) -> None:
    """The job's summary, config and manifest (``command``: the one that reruns this output alone, default
    this process's), logged to its MLflow run (rank 0 only)."""
    from speechrl.audit import write_manifest

    if not _is_main():
        return
    if summary is not None:
        write_json(out / "summary.json", summary)

    write_text(out / "config.yaml", dump_config(cfg))
    write_manifest(out, cfg, stage, inputs, start, command=command)
    for name in ("config.yaml", "manifest.json", "summary.json", "metrics.json", "samples.jsonl", "stats.json"):
        run.artifact(out / name)


# What each stage's config slice holds of a task's settings, checked against the task before any work.
_TASK_PARTS = {"sft": ("model",), "sft_more": ("model",), "rl": ("model", "rewards"), "evaluate": ("metrics",)}


def _check_task(a: argparse.Namespace, cfg: Config) -> None:
    """The job's task is known and its config fits it (model output kind, scorer columns): speechrl.tasks.checks."""
    if not getattr(a, "task", None):
        return
    from speechrl.tasks import TASKS
    from speechrl.tasks.checks import check_task

    TASKS.get(a.task)
    parts = _TASK_PARTS.get(a.cmd.replace("-", "_"), ())
    if a.cmd == "rl":  # the reward ablation trains on <reward> alone
        from speechrl.systems import parse_system, system_config

        cfg = system_config(cfg, parse_system(a.algo))
    if parts:
        check_task(cfg, a.task, parts)


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
    au = sub.add_parser("audit", help="re-hash every job manifest's inputs/outputs under a results folder and check "
                        "each job's config against its config file and the resolved config (speechrl.audit)")
    au.add_argument("--results", default="results", help="the results folder (or a part of it); it may have moved")
    au.set_defaults(fn=cmd_audit, needs_config=False)
    ts = sub.add_parser("tracking-sync", help="replay the MLflow operations buffered while the server was unreachable")
    ts.add_argument("--tracking", required=True, help="pipeline run file written by `speechrl tracking-init`")
    ts.set_defaults(fn=cmd_tracking_sync, needs_config=False)

    task = ("--task", {"required": True, "help": "a task of speechrl.tasks (sqa, ast, se, tts)"})
    tokens = ("--tokens", {"help": "the task's tokenize output (codec token ids): needed by tasks whose audio is codec tokens"})
    stage("tracking-init", cmd_tracking_init, "create the MLflow pipeline run")
    stage("data", cmd_data, "build a task's dataset (manifests + audio)", task)
    stage("tokenize", cmd_tokenize, "encode a task's audio into codec token ids (tasks with codec-token audio)", task,
          ("--data", {"required": True}))
    stage("init-model", cmd_init_model, "build the tiny random-init model + tokenizer", ("--data", {"nargs": "+", "required": True}),
          ("--tokens", {"nargs": "*", "default": [], "help": "tokenize outputs of the model's tasks (the codec vocabulary)"}))
    stage("sft", cmd_sft, "supervised fine-tuning", task, ("--data", {"required": True}), tokens, ("--model", {"required": True}))
    stage("rl", cmd_rl, "RL post-training with one algorithm preset", task,
          ("--algo", {"required": True, "help": "a preset (grpo, leaf, ...) or <preset>-<reward> for the reward ablation"}),
          ("--data", {"required": True}), tokens, ("--model", {"required": True}))
    stage("sft-more", cmd_sft_more, "the control: SFT continued for the compute of an RL run", task,
          ("--data", {"required": True}), tokens, ("--model", {"required": True}))
    stage("evaluate", cmd_evaluate, "decode the test split and score it", task, ("--system", {"required": True}),
          ("--data", {"required": True}), tokens, ("--model", {"required": True}),
          ("--seeds", {"type": int, "nargs": "+", "help": "evaluate each of these seeds in this one process; "
                       "'{seed}' in --model and --out stands for each (default: the one --seed)"}))
    stage("report", cmd_report, "paper-style tables and figures from metrics.json and RL summary.json files",
          ("--metrics", {"nargs": "+", "required": True}), ("--curves", {"nargs": "*", "default": [], "help": "RL summary.json files (training curves)"}))
    return p


def main(argv: list[str] | None = None) -> None:
    setup_logging(logging.INFO if _is_main() else logging.WARNING)  # one progress log per job, not per rank
    args = build_parser().parse_args(argv)
    if args.needs_config:  # a job's log is appended to across attempts: mark where each one starts
        log.info(f"=== speechrl {args.cmd}: pid {os.getpid()} on {socket.gethostname()}, rank {os.environ.get('RANK', 0)}")
    try:
        if args.needs_config:
            cfg = load_config(args.config, tasks=False)  # a job's config: its task's settings (checked by _check_task)
            if args.seed is not None:
                cfg = dataclasses.replace(cfg, seed=args.seed)
            _check_task(args, cfg)
            _use_asr_lm(args)
            _runtime(cfg)
            args.fn(args, cfg)
        else:
            args.fn(args)
    except INPUT_ERRORS as e:
        print(f"speechrl {args.cmd}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except Interrupted as e:  # SIGTERM / SIGUSR1: checkpoint saved; Snakemake retries / SLURM requeues resume it
        print(f"speechrl {args.cmd}: {e}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None


if __name__ == "__main__":
    main()
