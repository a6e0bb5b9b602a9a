"""Tasks: one registry entry per task, the only place that lists them.

    TASKS.get("se").output        # "audio"
    TASKS.get("sqa").builder("synthetic")   # "speechrl.data.synthetic:build_synthetic"
    TASKS.names()                 # ['ast', 'se', 'sqa', 'tts']

A :class:`Task` says how its data is built (per ``data.source``), whether its audio is tokenized
(the ``tokenize`` stage) and what the model outputs (text, or audio-codec tokens decoded to a
waveform), the columns its scorers may read, the settings it brings (model family, rewards,
metrics: see :func:`speechrl.config.slices.task_config`) and the report tables it gets. The
pipeline (Snakefile, CLI, report) reads these entries; no other module keeps a list of task names.

Standard library only: the Snakefile imports it when it builds the DAG. Builders are named as
``"module:function"`` and imported when a data job runs.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from speechrl.registry import Registry

OUTPUTS = ("text", "audio")

# Columns every task's scorers may read: the manifest's extra fields arrive too (speechrl.training.rl).
BASE_COLUMNS = ("input_audio",)


@dataclass(frozen=True)
class Task:
    """One task of the suite (a registry entry, not a subclass)."""

    name: str
    title: str
    """Long name in the report, e.g. "Speech enhancement (SE)"."""
    family: str
    """Task family of DESIGN.md: "speech->text", "speech->speech tokens" or "spoken reasoning"."""
    output: str
    """What the model emits: "text", or "audio" (codec tokens decoded to a 16 kHz waveform)."""
    builders: dict[str, str]
    """``data.source`` -> ``"module:function"`` building the task's manifests: ``fn(task, cfg, out_dir) -> stats``."""
    token_fields: dict[str, str] = field(default_factory=dict)
    """Tokenize stage: output key -> manifest field whose audio is encoded (``input``: the prompt's audio,
    ``target``: the SFT target). Empty: the task has no tokenize stage (its audio goes through the model's encoder)."""
    columns: tuple[str, ...] = ()
    """Columns a scorer may ask for besides the manifest's ``extra`` fields (e.g. ``audio``: the decoded output)."""
    defaults: dict[str, Any] = field(default_factory=dict)
    """Settings the task brings, applied over the top-level config and under ``tasks.<name>`` (a nested mapping,
    e.g. ``{"model": {"arch": "codec_lm"}, "rl": {"rewards": {...}}}``)."""
    report_tables: tuple[str, ...] = ("main",)
    """Report tables of this task, by name (speechrl.report): main, reward_ablation, leaf, se, segment_gspo."""
    paper: str = ""
    """Citation of the paper setting this task mirrors."""

    def builder(self, source: str) -> Callable[..., dict[str, Any]]:
        """The data builder for ``data.source == source`` (imported now)."""
        if source not in self.builders:
            raise ValueError(f"task '{self.name}' has no '{source}' data source; valid: {', '.join(sorted(self.builders))}")
        module, _, fn = self.builders[source].partition(":")
        return getattr(importlib.import_module(module), fn)

    def build(self, cfg: Any, out_dir: Any) -> dict[str, Any]:
        """Build the task's dataset for ``cfg.data.source`` into ``out_dir``: ``builder(cfg=, out_dir=)``, plus
        ``task=`` for a builder serving several tasks (it names the parameter)."""
        fn = self.builder(cfg.data.source)
        extra = {"task": self.name} if "task" in inspect.signature(fn).parameters else {}
        return fn(cfg=cfg, out_dir=out_dir, **extra)

    @property
    def tokenized(self) -> bool:
        return bool(self.token_fields)


TASKS: Registry[Task] = Registry("task")


def register(task: Task) -> Task:
    if task.output not in OUTPUTS:
        raise ValueError(f"task '{task.name}': output must be one of {', '.join(OUTPUTS)}, got {task.output!r}")
    return TASKS.register(task.name)(task)


GRPO_SALLM = "GRPO-SALLM (Elmakies et al. 2025, arXiv 2509.16990)"
SE_GSPO = "Post-Training Speech Enhancement LMs with Perceptual Rewards (2026)"
SEGMENT_GSPO = "segment-level GSPO for speech tokens (research note, Llasa-1B trial, 2026)"

register(Task(
    "sqa", "Spoken QA (SQA)", "speech->text", "text",
    {"synthetic": "speechrl.data.synthetic:build_synthetic", "hub": "speechrl.data.hub:build_hub"},
    report_tables=("main", "reward_ablation", "leaf"), paper=f"{GRPO_SALLM}: LibriSQA part I",
))
register(Task(
    "ast", "Speech translation En→De (AST)", "speech->text", "text",
    {"synthetic": "speechrl.data.synthetic:build_synthetic", "hub": "speechrl.data.hub:build_hub"},
    report_tables=("main", "reward_ablation", "leaf"), paper=f"{GRPO_SALLM}: CoVoST2 En->De",
))
_AUDIO_OUT = ("audio", "clean_audio")
register(Task(
    "se", "Speech enhancement (SE)", "speech->speech tokens", "audio",
    {"synthetic": "speechrl.data.enhancement:build_se_synthetic", "hub": "speechrl.data.enhancement:build_dns2020"},
    token_fields={"input": "audio", "target": "clean_audio"}, columns=_AUDIO_OUT,
    defaults={"model": {"arch": "codec_lm"},
              "rl": {"rewards": {"dnsmos_ovrl": 0.5, "asr_wer": 0.5}, "algorithms": ["gspo"]},
              "evaluate": {"metrics": ["dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "pesq", "stoi", "si_sdr", "asr_wer"]}},
    report_tables=("se", "main"), paper=f"{SE_GSPO}: DNS Challenge 2020",
))
TARS = "TARS (ACL 2026, arXiv 2601.05543)"
register(Task(
    "mcq", "Spoken multiple choice (reasoning)", "spoken reasoning", "text",
    {"synthetic": "speechrl.data.reasoning:build_mcq_synthetic"},
    columns=("choices",),
    defaults={"rl": {"rewards": {"mc_accuracy": 1.0, "format": 0.5}, "algorithms": ["tars"]},
              "evaluate": {"metrics": ["mc_accuracy", "format"]}},
    report_tables=("main",), paper=f"{TARS}: VoiceBench MMSU, OpenBookQA",
))
register(Task(
    "tts", "Text to speech (TTS)", "speech->speech tokens", "audio",
    {"synthetic": "speechrl.data.tts:build_tts_synthetic", "hub": "speechrl.data.tts:build_libritts"},
    token_fields={"target": "audio"}, columns=("audio",),
    defaults={"model": {"arch": "codec_lm"},
              "rl": {"rewards": {"dnsmos_ovrl": 0.5, "asr_wer": 0.5}, "algorithms": ["grpo", "gspo"]},
              "evaluate": {"metrics": ["dnsmos_ovrl", "asr_wer", "asr_cer"]}},
    report_tables=("segment_gspo", "main"), paper=f"{SEGMENT_GSPO}: Llasa-1B",
))
