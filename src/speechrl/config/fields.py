"""The experiment configuration as typed dataclasses: one section per class, one documented field each.

This is the file to read to learn what a config can say. Every field is declared with :func:`opt`,
which records its docstring, allowed values, bounds and (``paper=``) where the default comes from.
Parsing and validation live in :mod:`speechrl.config.parser`, the JSON schema generator in
:mod:`speechrl.config.schema`; both are driven by these declarations, so they cannot drift apart.
Cross-field checks are :meth:`Config.check`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from speechrl.config.errors import ConfigError
from speechrl.config.slices import SWEEP_SYSTEM

# Papers cited by ``paper=`` (author, year, arXiv id).
GRPO_SALLM = "GRPO-SALLM (Elmakies et al. 2025, arXiv 2509.16990)"
SE_GSPO = "SE-GSPO (Post-Training Speech Enhancement LMs with Perceptual Rewards, 2026)"
SEGMENT_GSPO = "segment-level GSPO research note (2026)"
TARS = "TARS (2026, arXiv 2601.05543)"
LEAF = "LEAF (Gerogiannis et al. 2026)"
DEEPSEEKMATH = "GRPO (DeepSeekMath, Shao et al. 2024, arXiv 2402.03300)"
DAPO = "DAPO (Yu et al. 2025, arXiv 2503.14476)"


def opt(
    default: Any,
    doc: str,
    *,
    choices: list[Any] | str | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    paper: str | None = None,
) -> Any:
    """Declare a config field: default, docstring, allowed values (a list, or ``"registry:KIND"``)
    and numeric bounds. ``paper`` cites where the default comes from."""
    meta = {"doc": doc, "choices": choices, "ge": ge, "gt": gt, "le": le, "paper": paper}
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        value = default
        return field(default_factory=lambda: _copy(value), metadata=meta)
    return field(default=default, metadata=meta)


def _copy(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value)
    return json.loads(json.dumps(value))


def section(cls: type, doc: str) -> Any:
    """A nested section field."""
    return field(default_factory=cls, metadata={"doc": doc})


# --------------------------------------------------------------------------------------- sections
@dataclass
class EnhancementDataConfig:
    """Synthetic speech enhancement data (task ``se``, DNS2020-like): short espeak-ng sentences mixed
    with white / pink / babble noise at a random SNR, some reverberated (speechrl.data.enhancement)."""

    n_train: int = opt(240, "Training examples (noisy / clean pairs).", ge=1)
    n_valid: int = opt(24, "Validation examples.", ge=1)
    n_test: int = opt(24, "Test examples.", ge=1)
    min_words: int = opt(3, "Fewest words per sentence (the mini-AST English grammar; its shortest sentences have 4).", ge=1)
    max_words: int = opt(6, "Most words per sentence: 6 keeps utterances at about 1-2 s.", ge=1)
    noises: list[str] = opt(["white", "pink", "babble"], "Noise types drawn uniformly per utterance; babble sums data.synthetic.se.babble_talkers other clean utterances of the same split.", choices=["white", "pink", "babble"])
    snr_db: list[float] = opt([0.0, 20.0], "SNR range [low, high] in dB (whole-clip clean / noise energy), drawn uniformly per utterance.", paper="DNS Challenge 2020 (Reddy et al. 2020, arXiv 2005.13981): synthetic test clips at 0-19 dB SNR")
    level_dbfs: list[float] = opt([-35.0, -15.0], "RMS level range [low, high] of the noisy mixture in dB re full scale, drawn per utterance (the clean target gets the same gain; both are scaled down together if either would clip).", le=0, paper="DNS Challenge 2020 (Reddy et al. 2020, arXiv 2005.13981): target levels -35 to -15 dBFS")
    babble_talkers: int = opt(3, "Talkers summed into one babble noise; every split needs more utterances than this when 'babble' is in noises.", ge=1, le=10)
    reverb_prob: float = opt(0.2, "Share of utterances reverberated (before the noise is added) with a synthetic exponentially decaying impulse response; the clean target is then the reverberant speech, as in DNS2020's with_reverb set (denoising, not dereverberation).", ge=0, le=1)
    rt60: list[float] = opt([0.3, 1.3], "Reverberation time range [low, high] in seconds, drawn uniformly per reverberated utterance.", gt=0, le=5, paper="DNS Challenge 2020 (Reddy et al. 2020, arXiv 2005.13981): T60 0.3-1.3 s")


@dataclass
class TtsDataConfig:
    """Synthetic text-to-speech data (task ``tts``): short sentences and their espeak-ng rendering in
    one fixed voice (the target speech; the text alone must determine it) (speechrl.data.tts)."""

    n_train: int = opt(240, "Training examples (sentence, speech).", ge=1)
    n_valid: int = opt(24, "Validation examples.", ge=1)
    n_test: int = opt(24, "Test examples.", ge=1)
    min_words: int = opt(3, "Fewest words per sentence (the mini-AST English grammar; its shortest sentences have 4).", ge=1)
    max_words: int = opt(6, "Most words per sentence: 6 keeps utterances at about 1-2 s.", ge=1)
    voice: str = opt("en-us", "espeak-ng voice of every utterance (one speaker: the prompt is the text alone).")
    speed: int = opt(160, "espeak-ng speaking rate (words per minute).", ge=80, le=450)
    pitch: int = opt(50, "espeak-ng pitch (0-99).", ge=0, le=99)


@dataclass
class SyntheticConfig:
    """Embedded synthetic spoken data (espeak-ng), used when ``data.source`` is ``synthetic``."""

    n_train: int = opt(600, "Training examples per task.", ge=1)
    n_valid: int = opt(60, "Validation examples per task (early stopping, model selection).", ge=1)
    n_test: int = opt(60, "Test examples per task (reported metrics).", ge=1)
    voices: list[str] = opt(
        ["en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-us+m7", "en-gb+f2"],
        "espeak-ng voices (language[+variant]) sampled per utterance to vary the speaker.",
    )
    speeds: list[int] = opt([150, 170, 190], "espeak-ng speaking rates (words per minute) sampled per utterance.")
    pitches: list[int] = opt([35, 50, 65], "espeak-ng pitches (0-99) sampled per utterance.")
    sqa_facts: int = opt(2, "Facts (sentences) per mini-SQA passage; the question asks about one of them.", ge=1, le=4)
    ast_words_per_kind: int = opt(0, "mini-AST vocabulary: keep the first N nouns of each semantic kind, N adjectives per kind, N names and N adverbials of each type (0 = the whole lexicon). Smaller makes the task learnable by a tiny model in fewer steps.", ge=0)
    workers: int = opt(2, "Parallel espeak-ng processes.", ge=1)
    se: EnhancementDataConfig = section(EnhancementDataConfig, "Synthetic speech enhancement data (task se).")
    tts: TtsDataConfig = section(TtsDataConfig, "Synthetic text-to-speech data (task tts).")


@dataclass
class HubConfig:
    """Real datasets (``data.source: hub``), read through ``datasets`` from a hub id or a local path.

    Task ``sqa`` is LibriSQA, task ``ast`` is CoVoST2 En->De. Nothing is downloaded when
    ``HF_HUB_OFFLINE=1``; a missing dataset or audio folder stops the data job with what to fetch
    and where to put it."""

    librisqa: str = opt("ZihanZhao/LibriSQA", "LibriSQA: hub id, or a local folder / JSON file of the release.", paper=f"{GRPO_SALLM}: LibriSQA part I")
    librisqa_part: str = opt("I", "LibriSQA part: 'I' (free-form answers) or 'II' (multiple choice).", choices=["I", "II"], paper=f"{GRPO_SALLM}: part I")
    librisqa_audio_root: Optional[str] = opt(None, "LibriSpeech folder holding the audio LibriSQA points to (the 'speech_path' of each item is resolved under it).")
    covost2: str = opt("facebook/covost2", "CoVoST2: hub id, or a local folder with covost_v2.en_de.tsv (or train/dev/test TSVs).", paper=f"{GRPO_SALLM}: CoVoST2 En->De")
    covost2_audio_root: Optional[str] = opt(None, "Common Voice English clips folder (CoVoST2's audio; the 'path' of each row is resolved under it).")
    valid_fraction: float = opt(0.2, "Share of the train split held out as validation when the source has none.", gt=0, le=0.9, paper=f"{GRPO_SALLM}: 20% of LibriSQA train held out")
    max_train: Optional[int] = opt(None, "Keep at most this many training examples (first N after a seeded shuffle); empty = all.", ge=1)
    max_eval: Optional[int] = opt(None, "Keep at most this many valid and test examples each; empty = all.", ge=1)
    dns2020: Optional[str] = opt(None, "Task se: folder of the DNS Challenge 2020 (Interspeech) test set, datasets/test_set of github.com/microsoft/DNS-Challenge (branch interspeech2020/master): synthetic/{no_reverb,with_reverb}/{noisy,clean}/*.wav (pairs by the fileid_N suffix), real_recordings/*.wav (no clean reference). It is the test split.", paper="DNS Challenge 2020 (Reddy et al. 2020, arXiv 2005.13981)")
    dns2020_subsets: list[str] = opt(["no_reverb", "with_reverb"], "Task se: parts of the DNS2020 test set in the test split. real_recordings have no clean reference (no PESQ / STOI / SI-SDR, no clean_audio to tokenize): DNSMOS only.", choices=["no_reverb", "with_reverb", "real_recordings"])
    dns2020_train: Optional[str] = opt(None, "Task se: folder of noisy / clean training pairs, noisy/*_fileid_N.wav and clean/clean_fileid_N.wav (what the DNS Challenge noisyspeech_synthesizer.py writes); data.hub.valid_fraction of it is held out as validation. Required with data.hub.dns2020.")
    dns2020_transcripts: Optional[str] = opt(None, "Task se: folder of Kaldi-style transcripts ('fileid_N words ...' per line) per part: <dir>/tt_synthetic_<part>/text or <dir>/<part>/text, and <dir>/train/text (the layout of github.com/Emrys365/DNS_text, DNS1). Utterances without one get a reference that scores as 'does not apply' for WER / CER.")
    libritts: Optional[str] = opt(None, "Task tts: LibriTTS folder (<root>/<subset>/<speaker>/<chapter>/<utt>.wav + <utt>.normalized.txt, or <root>/LibriTTS/<subset>/...), resampled to data.sample_rate (LibriTTS ships 24 kHz). Valid = dev-clean, test = test-clean.", paper="LibriTTS (Zen et al. 2019, arXiv 1904.02882)")
    libritts_train: list[str] = opt(["train-clean-100"], "Task tts: LibriTTS subsets of the training split.", choices=["train-clean-100", "train-clean-360", "train-other-500"])


@dataclass
class DataConfig:
    """Where the spoken data comes from and how it is shaped."""

    source: str = opt("synthetic", "Data source: 'synthetic' generates mini-SQA / mini-AST with espeak-ng; 'hub' reads LibriSQA / CoVoST2 (data.hub).", choices=["synthetic", "hub"])
    tasks: list[str] = opt(["sqa", "ast"], "Tasks to build and train (speechrl.tasks): 'sqa' (spoken QA, LibriSQA-like), 'ast' (En->De speech translation, CoVoST2-like), 'se' (speech enhancement, DNS2020-like: noisy speech in, codec tokens of clean speech out), 'tts' (text to speech, LibriTTS / Llasa-like: codec tokens out). Each task's settings: the top-level config, then the task's own defaults, then tasks.<name>.", choices="registry:task")
    sample_rate: int = opt(16000, "Audio sample rate in Hz; every clip must have it (the feature extractor assumes it).", choices=[16000])
    max_audio_seconds: float = opt(12.0, "Longest clip accepted; longer audio is an input error naming the file.", gt=0)
    on_bad_sample: str = opt("error", "What a job does with a bad sample (malformed manifest line, wrong field type, empty reference, duplicate id, an id or identical example in two splits, missing / corrupt / wrongly sampled / too long / NaN / out-of-range audio), all found before the first training step: 'error' stops at the first with one line naming file, line and id (exit 2); 'skip' leaves every bad sample out (a cross-split copy is dropped from train, or from valid when the other copy is in test), logs their count and lists them in the job's skipped.jsonl. A split with no usable sample left is an error either way.", choices=["error", "skip"])
    synthetic: SyntheticConfig = section(SyntheticConfig, "Synthetic data options.")
    hub: HubConfig = section(HubConfig, "Real datasets (data.source: hub).")


@dataclass
class TinyModelConfig:
    """Sizes of the tiny random-init model built when ``model.pretrained`` is empty (CPU default)."""

    vocab_size: int = opt(1024, "BPE vocabulary size of the locally trained tokenizer.", ge=300)
    hidden_size: int = opt(192, "Language-model hidden size.", ge=8)
    num_layers: int = opt(4, "Language-model decoder layers.", ge=1)
    num_heads: int = opt(4, "Language-model attention heads (must divide hidden_size).", ge=1)
    intermediate_size: int = opt(512, "Language-model MLP width.", ge=8)
    encoder_hidden_size: int = opt(96, "Speech (conformer) encoder hidden size.", ge=8)
    encoder_layers: int = opt(2, "Speech encoder conformer layers.", ge=1)
    encoder_context: int = opt(64, "Conformer block-attention context (frames of 20 ms); the real model uses 200.", ge=4)
    encoder_heads: int = opt(4, "Speech encoder attention heads.", ge=1)
    projector_window: int = opt(8, "Q-Former projector window (stacked frames per block).", ge=1)
    projector_downsample: int = opt(4, "Projector downsample rate: tokens per block = window / downsample.", ge=1)


@dataclass
class LoraConfig:
    """LoRA adapters (peft) on the language model; the encoder and projector stay frozen with LoRA on."""

    enabled: bool = opt(False, "Train LoRA adapters instead of all weights.")
    r: int = opt(8, "LoRA rank.", ge=1, paper=f"{TARS}: r8/alpha32; {LEAF}: r64/alpha128")
    alpha: int = opt(16, "LoRA alpha (scale = alpha / r).", ge=1)
    dropout: float = opt(0.0, "LoRA dropout.", ge=0, le=1)
    target_modules: str = opt(r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)", "Regex of module names that get adapters (peft target_modules).")


@dataclass
class ModelConfig:
    """The speech-aware LM: a real checkpoint by name/path, or a tiny random-init one of the same class."""

    arch: str = opt("granite_speech", "Model family (speechrl.models MODELS): granite_speech (Granite Speech: conformer encoder, Q-Former projector, Granite LM), qwen2_audio (Qwen2-Audio: Whisper encoder, Qwen2 LM), codec_lm (a decoder-only Llama LM over text + audio-codec tokens, Llasa / UniSE style; the tasks whose output is audio). It must output what the task outputs (speechrl.tasks).", choices="registry:model", paper="LEAF (Gerogiannis et al. 2026): Granite Speech and Qwen2-Audio; Llasa (Ye et al. 2025, arXiv 2502.04128): a Llama LM over XCodec2 tokens")
    pretrained: Optional[str] = opt(None, "Checkpoint path or hub id; empty builds a tiny random-init model from model.tiny (no download).")
    tiny: TinyModelConfig = section(TinyModelConfig, "Tiny model sizes.")
    lora: LoraConfig = section(LoraConfig, "LoRA options.")


@dataclass
class SFTConfig:
    """Supervised fine-tuning on (audio, prompt) -> reference, with early stopping on the valid split."""

    max_steps: int = opt(3000, "Upper bound on optimizer steps.", ge=1)
    batch_size: int = opt(16, "Examples per optimizer step.", ge=1)
    grad_accum: int = opt(1, "Micro-batches per optimizer step (batch_size is split into this many; same update, less memory).", ge=1)
    lr: float = opt(1e-3, "Peak AdamW learning rate (linear warmup then cosine decay).", gt=0)
    weight_decay: float = opt(0.01, "AdamW weight decay.", ge=0)
    warmup_steps: int = opt(50, "Linear warmup steps.", ge=0)
    grad_clip: float = opt(1.0, "Gradient-norm clip (0 disables).", ge=0)
    eval_every: int = opt(100, "Validate (loss) every N steps; the best checkpoint is kept.", ge=1)
    patience: int = opt(4, "Early stopping: stop after this many validations without improvement.", ge=1)
    max_seconds: float = opt(0.0, "Wall-clock budget in seconds (0 = none); stops at the next validation past it. Makes results depend on machine speed and load (not reproducible); prefer max_steps.", ge=0)
    log_every: int = opt(25, "One summary line every N steps.", ge=1)


@dataclass
class RLConfig:
    """RL post-training from the SFT model; one job per algorithm preset."""

    algorithms: list[str] = opt(["grpo"], "Algorithm presets to train, one job each (see speechrl.algos.presets).", choices="registry:preset")
    rewards: dict[str, float] = opt({"bleu": 1.0}, "Reward name -> weight; the weighted sum is the scalar reward.", choices="registry:reward", paper=f"{GRPO_SALLM}: sentence BLEU in [0,1]")
    steps: int = opt(150, "RL optimizer steps (one rollout batch each).", ge=1)
    prompts_per_step: int = opt(8, "Prompts per rollout batch (each gets group_size completions).", ge=1)
    group_size: int = opt(8, "Completions per prompt (G).", ge=2, paper=f"{GRPO_SALLM}: G=8")
    lr: float = opt(5e-5, "Peak AdamW learning rate.", gt=0)
    weight_decay: float = opt(0.0, "AdamW weight decay of the RL updates.", ge=0, paper=f"{SE_GSPO}: 0.01")
    warmup_steps: int = opt(10, "Linear warmup steps.", ge=0)
    schedule: str = opt("constant", "Learning-rate schedule after warmup: constant, or cosine decay to 10% of lr at rl.steps.", choices=["constant", "cosine"])
    epochs: int = opt(1, "Passes (mu) over each rollout batch; old log-probs are kept from sampling, so ratios move away from 1 after the first minibatch.", ge=1, paper=f"{DEEPSEEKMATH}: mu; {GRPO_SALLM}: 1")
    minibatches: int = opt(1, "Optimizer steps per epoch: the rollout batch is split into this many minibatches of whole groups.", ge=1)
    grad_accum: int = opt(1, "Micro-batches per minibatch (gradient accumulation; same update, less memory).", ge=1)
    grad_clip: float = opt(1.0, "Gradient-norm clip (0 disables).", ge=0)
    beta: Optional[float] = opt(None, "KL coefficient to the reference (SFT) policy; empty = the preset's.", ge=0, paper=f"{GRPO_SALLM}: 0.02 (beta 0 diverged)")
    eps_low: Optional[float] = opt(None, "Lower clip range of the ratio; empty = the preset's.", ge=0)
    eps_high: Optional[float] = opt(None, "Upper clip range of the ratio; empty = the preset's.", ge=0)
    loss_agg: Optional[str] = opt(None, "Loss aggregation; empty = the preset's.", choices=["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm", "seq-mean-segment-mean"])
    segmenter_opts: dict[str, float] = opt({}, "Segmenter options of segment-level GSPO, merged over the preset's: window (tokens per fixed window W, gspo_segment_window), tau (log-prob jump in nats, gspo_segment_logprob), delta (token-id jump, gspo_segment_tokenid); a preset whose segmenter takes no such option ignores it (the RL slice still holds it, so its jobs rerun when it changes); empty = the presets' W 4, tau 1.0, delta 1024.", paper="segment-level GSPO research note (2026): no values given")
    max_sample_batches: int = opt(4, "Dynamic sampling (dapo): most rollout batches drawn per update while refilling dropped zero-variance groups.", ge=1, paper=f"{DAPO}; verl max_num_gen_batches")
    temperature: float = opt(1.0, "Sampling temperature of training rollouts.", gt=0, paper=f"{GRPO_SALLM}: T=1 in training")
    top_p: float = opt(1.0, "Nucleus sampling of training rollouts.", gt=0, le=1)
    max_new_tokens: int = opt(40, "Completion length limit (tokens).", ge=1, paper=f"{GRPO_SALLM}: 200 (real models)")
    log_every: int = opt(10, "One summary line every N steps.", ge=1)


@dataclass
class SuiteConfig:
    """The experiment grid: seeds, the 'SFT + same extra compute' control and the reward ablation."""

    seeds: list[int] = opt([0], "RL seeds: every RL job, control and evaluation runs once per seed (data, init and SFT use the global seed). Tables show mean +- 95% CI over seeds.")
    control: bool = opt(True, "Add the 'sft_more' row: SFT continued from the SFT model for rl.steps optimizer steps of prompts_per_step x group_size examples (the sequences an RL update trains on).")
    control_lr: Optional[float] = opt(None, "Learning rate of the control; empty = the final learning rate of the SFT schedule (sft.lr x 0.1).", gt=0)
    ablation_rewards: list[str] = opt([], "Reward ablation: one extra RL system '<ablation_algorithm>-<reward>' per reward here, trained on that reward alone.", choices="registry:reward", paper=f"{GRPO_SALLM}: BLEU / ROUGE / METEOR / BERTScore rewards")
    ablation_algorithm: str = opt("grpo", "Algorithm preset of the reward ablation.", choices="registry:preset")
    ablation_tasks: list[str] = opt(["sqa"], "Tasks the reward ablation runs on.", choices="registry:task")
    segmenter_sweep: list[str] = opt([], "Extra RL systems '<preset>@<option>=<value>': a segment-level GSPO preset with one segmenter option changed (window, tau or delta, see rl.segmenter_opts; the value a plain decimal), trained with rl.rewards on every seed and shown beside its preset in the segment_gspo table; e.g. [gspo_segment_window@window=16, gspo_segment_logprob@tau=2].", paper="segment-level GSPO research note (2026): W-windows tried on Llasa-1B")


@dataclass
class TrainConfig:
    """Execution backend of the training jobs (SFT, RL, the SFT control)."""

    backend: str = opt("local", "local: one process, torch optimiser; deepspeed: deepspeed.initialize with the ZeRO config below, as many ranks as the job is launched with (torchrun / srun).", choices=["local", "deepspeed"])
    deepspeed_config: str = opt("config/deepspeed/zero2.json", "DeepSpeed JSON config (ZeRO stage, CPU offload); relative paths resolve against the repository root / current directory; batch sizes, lr, clipping and precision are filled in from this config.")
    precision: str = opt("fp32", "Parameter/compute precision under DeepSpeed; local runs in fp32.", choices=["fp32", "bf16", "fp16"])
    checkpoint_every: int = opt(0, "Save a resumable checkpoint (weights, optimiser, schedule, RNGs, data position, running metrics) every N optimiser steps of SFT, RL and the control; 0 = by time only (checkpoint_minutes). A killed or pre-empted job rerun with the same config and inputs resumes from its last checkpoint (README 'Resume after a kill'). Does not change results.", ge=0)
    checkpoint_minutes: float = opt(10.0, "Also save a checkpoint when this many minutes passed since the last one (0 = never by time). SIGTERM / SIGUSR1 (SLURM pre-emption, --signal) always save one before the job stops. Does not change results.", ge=0)


@dataclass
class TokenizeConfig:
    """The audio tokenization stage of the tasks whose audio is modelled as codec tokens (se, tts)."""

    codec: str = opt("codec2", "Audio codec (speechrl.audio.codecs CODECS): codec2 (a classical speech codec, no weights: the embedded default), or a neural codec loaded from tokenize.path: xcodec2 (Llasa), encodec, dac, snac.", choices="registry:codec", paper="Llasa (Ye et al. 2025, arXiv 2502.04128): XCodec2")
    mode: int = opt(700, "codec2 bit rate mode: 700 (700C: 28 bits per 40 ms frame), 1300, 1600, 2400 or 3200 bit/s.", choices=[700, 1300, 1600, 2400, 3200])
    tokens_per_frame: int = opt(4, "codec2: tokens per codec frame (the frame's bits split into this many groups, each with its own id range; 4 x 7 bits for 700C = 100 tokens/s).", ge=1, le=8)
    path: Optional[str] = opt(None, "Neural codecs: local folder or hub id of the codec weights (nothing is downloaded offline; a missing checkpoint stops with the command that fetches it).")
    roundtrip_utterances: int = opt(8, "Utterances whose decode(encode(x)) quality (DNSMOS, PESQ, STOI, ASR-WER vs x) the tokenize job measures and reports (0 = none).", ge=0)


@dataclass
class EvaluateConfig:
    """Decoding of the test split and the metrics computed on it."""

    decodings: list[str] = opt(["greedy", "sampled"], "Decoding modes: greedy, and sampled with temperature/top_p.", choices=["greedy", "sampled"])
    temperature: float = opt(0.9, "Temperature of sampled decoding.", gt=0, paper=f"{GRPO_SALLM}: eval T=0.9")
    top_p: float = opt(0.9, "Top-p of sampled decoding.", gt=0, le=1, paper=f"{GRPO_SALLM}: top-p 0.9")
    max_new_tokens: int = opt(48, "Output length limit (tokens).", ge=1)
    batch_size: int = opt(32, "Test examples decoded per batch.", ge=1)
    metrics: list[str] = opt(["bleu", "chrf", "rouge_l", "meteor", "bertscore", "exact_match"], "Metrics computed on every decoding (corpus level where defined).", choices="registry:metric")


@dataclass
class ReportConfig:
    """The paper-style report."""

    decoding: str = opt("sampled", "Decoding whose metrics fill the main tables (the other is shown below them).", choices=["greedy", "sampled"])
    systems: list[str] = opt(["base", "sft"], "Rows before the RL algorithms: 'base' (initial model) and 'sft'.", choices=["base", "sft"])
    paper_numbers: bool = opt(True, "Print the papers' published numbers (speechrl.report.paper) after the main table.")


@dataclass
class TrackingConfig:
    """MLflow tracking: one run per job, nested under one pipeline run."""

    enabled: bool = opt(True, "Log runs to MLflow.")
    uri: Optional[str] = opt(None, "Tracking URI; empty = sqlite:///<results_dir>/mlflow.db. The MLFLOW_TRACKING_URI environment variable overrides both.")
    experiment: str = opt("speechrl", "MLflow experiment name.")


@dataclass
class Config:
    """A speechrl experiment suite: data -> model -> SFT -> RL (per algorithm) -> evaluation -> report."""

    name: str = opt("embedded", "Suite name (MLflow pipeline run name, report title).")
    seed: int = opt(0, "Global seed (data synthesis, init, sampling, training).", ge=0)
    results_dir: str = opt("results", "Output folder of every stage (git-ignored).")
    device: str = opt("cpu", "Torch device for training/decoding: cpu, cuda, or auto.", choices=["cpu", "cuda", "auto"])
    threads: int = opt(1, "torch threads per job (OMP_NUM_THREADS); 1 is fastest with parallel jobs on 2 cores.", ge=1)
    data: DataConfig = section(DataConfig, "Data.")
    model: ModelConfig = section(ModelConfig, "Model.")
    sft: SFTConfig = section(SFTConfig, "Supervised fine-tuning.")
    rl: RLConfig = section(RLConfig, "RL post-training.")
    suite: SuiteConfig = section(SuiteConfig, "Experiment grid (seeds, control, reward ablation).")
    train: TrainConfig = section(TrainConfig, "Execution backend of the training jobs.")
    tokenize: TokenizeConfig = section(TokenizeConfig, "Audio tokenization (tasks with codec-token audio).")
    evaluate: EvaluateConfig = section(EvaluateConfig, "Evaluation.")
    report: ReportConfig = section(ReportConfig, "Report.")
    tracking: TrackingConfig = section(TrackingConfig, "MLflow tracking.")
    tasks: dict[str, dict] = opt({}, "Per-task settings: task name -> a partial config of the sections model, tokenize, sft, rl, suite, evaluate, report (e.g. {se: {rl: {steps: 10}}}). A task's jobs read the top-level config, overridden by the task's own defaults (speechrl.tasks, e.g. model.arch codec_lm and audio rewards for se / tts), overridden by this mapping.", choices="registry:task")

    def check(self) -> None:
        """Cross-field checks; each error says how to fix it."""
        t = self.model.tiny
        if t.hidden_size % t.num_heads:
            raise ConfigError(f"model.tiny.hidden_size={t.hidden_size} is not divisible by model.tiny.num_heads={t.num_heads}; pick e.g. num_heads=4 with hidden_size=192")
        if t.encoder_hidden_size % t.encoder_heads:
            raise ConfigError(f"model.tiny.encoder_hidden_size={t.encoder_hidden_size} is not divisible by model.tiny.encoder_heads={t.encoder_heads}")
        if t.projector_window % t.projector_downsample:
            raise ConfigError(f"model.tiny.projector_window={t.projector_window} must be a multiple of model.tiny.projector_downsample={t.projector_downsample}")
        if not self.rl.rewards:
            raise ConfigError("rl.rewards is empty; give at least one reward with a weight, e.g. {bleu: 1.0}")
        if len(set(self.rl.algorithms)) != len(self.rl.algorithms):
            raise ConfigError(f"rl.algorithms has duplicates: {self.rl.algorithms}")
        if self.report.decoding not in self.evaluate.decodings:
            raise ConfigError(f"report.decoding='{self.report.decoding}' is not among evaluate.decodings={self.evaluate.decodings}; add it there or change report.decoding")
        if len(set(self.suite.seeds)) != len(self.suite.seeds) or not self.suite.seeds:
            raise ConfigError(f"suite.seeds={self.suite.seeds}: give one or more distinct seeds, e.g. [0, 1, 2]")
        for name in self.suite.segmenter_sweep:
            if not SWEEP_SYSTEM.fullmatch(name):
                raise ConfigError(f"suite.segmenter_sweep: {name!r} is not '<preset>@<option>=<value>' with a plain decimal "
                                  "value, e.g. gspo_segment_window@window=16 or gspo_segment_logprob@tau=0.5")
        if len(set(self.suite.segmenter_sweep)) != len(self.suite.segmenter_sweep):
            raise ConfigError(f"suite.segmenter_sweep has duplicates: {self.suite.segmenter_sweep}")
        groups = self.rl.prompts_per_step
        if groups % self.rl.minibatches:
            raise ConfigError(f"rl.minibatches={self.rl.minibatches} must divide rl.prompts_per_step={groups} (minibatches hold whole groups)")
        # Micro-batches need not be equal (global normalisers make any split exact), only non-empty.
        if self.sft.grad_accum > self.sft.batch_size:
            raise ConfigError(f"sft.grad_accum={self.sft.grad_accum} exceeds sft.batch_size={self.sft.batch_size}: "
                              f"some micro-batches would be empty; use sft.grad_accum <= {self.sft.batch_size}")
        if self.rl.grad_accum > groups // self.rl.minibatches:
            raise ConfigError(f"rl.grad_accum={self.rl.grad_accum} exceeds the groups per minibatch ({groups} // {self.rl.minibatches}): "
                              f"some micro-batches would be empty; use rl.grad_accum <= {groups // self.rl.minibatches}")
        if self.data.source == "synthetic" and self.model.pretrained:
            raise ConfigError("model.pretrained is set but data.source is 'synthetic': the synthetic tasks use a locally trained tokenizer; leave model.pretrained empty")
        if self.train.precision != "fp32" and self.train.backend != "deepspeed":
            raise ConfigError(f"train.precision={self.train.precision!r} needs train.backend='deepspeed' (the local backend runs in fp32); set train.backend: deepspeed or train.precision: fp32")

    # ---------------------------------------------------------------------------- conveniences
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """Stable short hash of the resolved config (manifests, MLflow)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def results(self) -> Path:
        return Path(self.results_dir)
