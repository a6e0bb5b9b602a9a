"""Word / character error rate scorers: ``wer`` and ``cer`` on text, ``asr_wer`` and ``asr_cer`` on audio.

Normaliser (:func:`normalize`, both sides, before any error rate): Unicode NFKC, lowercase,
apostrophes removed (``don't`` -> ``dont``), every other punctuation or symbol character replaced
by a space, whitespace collapsed. Error rates come from jiwer (4.x) on the normalised strings.

* ``wer`` / ``cer`` (text): ``hyps`` against the *best* reference of each sample (lowest error);
  reward ``1 - error`` clipped to [0, 1] (a blank hypothesis scores 0.0; a reference that
  normalises to nothing gives ``None``). Corpus value (``metrics.json``, higher is better):
  ``100 * max(0, 1 - corpus error)`` with the corpus error = total edits / total reference words
  (characters for CER), best reference per sample. So WER 12.5 % is reported as 87.5.
* ``asr_wer`` (audio): transcribes the ``audio=`` column (see :mod:`speechrl.rewards.audio` for
  accepted items) and scores ``1 - WER`` against the best reference, clipped to [0, 1]; NaN or
  empty audio gives ``None``. ``hyps`` are ignored. Corpus value: like ``wer``, pooled:
  ``100 * max(0, 1 - total edits / total reference words)`` over the scorable samples. Transcripts
  are memoised in the process per (back-end, audio content), so the corpus pass after the
  per-sample pass does not transcribe again. A ``None`` audio item (an output that could not be
  decoded) gives ``None``.
* ``asr_cer`` (audio): the same transcripts (no second recognition), ``1 - CER`` (characters of the
  normalised text) against the best reference, clipped to [0, 1]; corpus ``100 * (1 - pooled CER)``.

ASR back-ends, chosen by environment:

* default: pocketsphinx 5 with its bundled US-English acoustic model, run in the audio worker pool
  (``SPEECHRL_AUDIO_WORKERS``). ``SPEECHRL_ASR_LM`` names a folder made by :func:`build_task_lm`
  (``task.lm`` ARPA + ``task.dict``); without it the generic bundled LM and full cmudict are used
  (WER ~0.7 on espeak speech and ~1.4 s per utterance: build a task LM for synthetic data).
* ``SPEECHRL_ASR_MODEL=openai/whisper-...`` (a hub name or local folder): Whisper through the
  ``transformers`` ASR pipeline, a cluster option; it needs the weights in the local HF cache or a
  folder (nothing is downloaded when ``HF_HUB_OFFLINE=1``), and fails with a clear error otherwise.

Task LM (:func:`build_task_lm`): a trigram ARPA model with fixed-discount back-off built by
pocketsphinx's own ``pocketsphinx.lm.ArpaBoLM`` (the ``pocketsphinx_lm`` tool) from the normalised
training texts (sentence markers added), and a dictionary restricted to those words, taken from the
bundled ``cmudict-en-us.dict`` (with pronunciation variants). Words without a cmudict entry are left
out of both (listed in a warning and in ``oov.txt``): they cannot be recognised.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speechrl.rewards.audio import SR, log_notes, prepare_audio, run_pool
from speechrl.rewards.base import Scorer, check_inputs, register
from speechrl.rewards.cache import content_key

log = logging.getLogger("speechrl.rewards.asr")

LM_ENV = "SPEECHRL_ASR_LM"
MODEL_ENV = "SPEECHRL_ASR_MODEL"
LM_FILE, DICT_FILE = "task.lm", "task.dict"

_APOSTROPHES = re.compile(r"['\u2019\u2018`]")


# ------------------------------------------------------------------------------- normaliser + jiwer
def normalize(text: str) -> str:
    """NFKC, lowercase, apostrophes dropped, other punctuation/symbols -> space, whitespace collapsed."""
    text = _APOSTROPHES.sub("", unicodedata.normalize("NFKC", text).lower())
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    return " ".join(text.split())


@functools.lru_cache(maxsize=1 << 16)
def _edits(hyp: str, ref: str, unit: str) -> tuple[int, int]:
    """(edit operations, reference length) of normalised ``hyp`` vs ``ref`` in words or characters.

    Memoised: the bootstrap intervals of the evaluation score each item ~1000 times."""
    import jiwer

    h, r = normalize(hyp), normalize(ref)
    if unit == "word":
        n = len(r.split())
        if not h:
            return n, n
        o = jiwer.process_words(r, h)
    else:
        n = len(r)
        if not h:
            return n, n
        o = jiwer.process_characters(r, h)
    return o.substitutions + o.deletions + o.insertions, n


def _best(hyp: str, refs: Sequence[str], unit: str) -> tuple[int, int] | None:
    """(edits, length) against the reference with the lowest error rate; None if every ref is empty."""
    cands = [e for e in (_edits(hyp, r, unit) for r in refs) if e[1] > 0]
    return min(cands, key=lambda e: e[0] / e[1]) if cands else None


def error_rate(hyp: str, ref: str | Sequence[str], unit: str = "word") -> float:
    """WER (``unit="word"``) or CER (``"char"``) of one hypothesis, best reference, after :func:`normalize`."""
    best = _best(hyp, [ref] if isinstance(ref, str) else ref, unit)
    if best is None:
        raise ValueError(f"reference {ref!r} is empty after normalisation")
    return best[0] / best[1]


def _rate_sample(unit: str):
    def sample(hyps: list[str], refs: Any, **_columns: Any) -> list[float | None]:
        out: list[float | None] = []
        for h, rs in zip(hyps, check_inputs(hyps, refs)):
            best = _best(h, rs, unit)
            out.append(None if best is None else min(1.0, max(0.0, 1.0 - best[0] / best[1])))
        return out

    return sample


def _rate_corpus(unit: str):
    def corpus(hyps: list[str], refs: Any) -> float:
        pairs = [b for b in (_best(h, rs, unit) for h, rs in zip(hyps, check_inputs(hyps, refs))) if b is not None]
        total = sum(n for _, n in pairs)
        return float("nan") if total == 0 else 100.0 * max(0.0, 1.0 - sum(e for e, _ in pairs) / total)

    return corpus


for _name, _unit in (("wer", "word"), ("cer", "char")):
    register(Scorer(
        name=_name, sample=_rate_sample(_unit), corpus=_rate_corpus(_unit),
        description=f"1 - {_unit} error rate (jiwer, normalised text, best reference), clipped to [0, 1]; "
                    f"corpus 100 * (1 - corpus {_name.upper()}), not the {_name.upper()}",
    ))


# ------------------------------------------------------------------------------- task LM
def cmudict_path() -> Path:
    from pocketsphinx import get_model_path

    return Path(get_model_path()) / "en-us" / "cmudict-en-us.dict"


def build_task_lm(texts: Sequence[str], out_dir: str | Path) -> Path:
    """Write a pocketsphinx task LM for ``texts`` into ``out_dir``; returns ``out_dir``.

    Files: ``task.lm`` (trigram ARPA, pocketsphinx's ``ArpaBoLM``, fixed discount 0.5),
    ``task.dict`` (cmudict entries of the words), ``corpus.txt`` (normalised texts) and
    ``oov.txt`` (words without a pronunciation, dropped). Point ``SPEECHRL_ASR_LM`` at ``out_dir``.
    """
    from pocketsphinx.lm import ArpaBoLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = [normalize(t) for t in texts]
    words = {w for line in lines for w in line.split()}
    if not words:
        raise ValueError("build_task_lm: no words in the given texts")
    prons: dict[str, list[str]] = {}
    with open(cmudict_path(), encoding="utf-8") as f:
        for entry in f:
            head = entry.split(" ", 1)[0]
            base = re.sub(r"\(\d+\)$", "", head)
            if base in words:
                prons.setdefault(base, []).append(entry.rstrip("\n"))
    oov = sorted(words - prons.keys())
    if oov:
        log.warning("build_task_lm: %d words have no cmudict pronunciation and are left out: %s", len(oov), ", ".join(oov[:20]))
        lines = [" ".join(w for w in line.split() if w in prons) for line in lines]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"build_task_lm: none of the words has a cmudict pronunciation ({', '.join(oov[:20])})")
    (out / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "oov.txt").write_text("\n".join(oov) + ("\n" if oov else ""), encoding="utf-8")
    lm = ArpaBoLM(text="\n".join(lines) + "\n", add_start=True)
    lm.compute()
    buf = io.StringIO()
    lm.write(buf)
    (out / LM_FILE).write_text(buf.getvalue(), encoding="utf-8")
    (out / DICT_FILE).write_text("\n".join(p for w in sorted(prons) for p in prons[w]) + "\n", encoding="utf-8")
    return out


def _lm_files(folder: str) -> tuple[str, str]:
    d = Path(folder)
    lm, dic = d / LM_FILE, d / DICT_FILE
    missing = [p.name for p in (lm, dic) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{LM_ENV}={folder}: missing {', '.join(missing)} (make the folder with speechrl.rewards.asr.build_task_lm(texts, folder))")
    return str(lm), str(dic)


# ------------------------------------------------------------------------------- pocketsphinx worker
_DECODER: Any = None
_DECODER_LM: str | None = None  # the LM folder _DECODER was made with


def _load_decoder(lm_dir: str) -> None:
    """Create the pocketsphinx decoder once per process and LM (task LM from ``lm_dir`` or the generic LM); a
    process that scores with another LM later (in-process scoring, tests) gets a decoder of that LM."""
    global _DECODER, _DECODER_LM
    if _DECODER is not None and _DECODER_LM == lm_dir:
        return
    from pocketsphinx import Config, Decoder

    # dither: digital silence (exact zeros, common in synthetic audio) otherwise derails the decoder
    # (WER 0.28 vs 0.02 on espeak speech); the seed keeps the dither noise, and the result, repeatable
    kw: dict[str, Any] = {"samprate": SR, "loglevel": "FATAL", "dither": True, "seed": 1}
    if lm_dir:
        kw["lm"], kw["dict"] = _lm_files(lm_dir)
    _DECODER = Decoder(Config(**kw))
    _DECODER_LM = lm_dir


def _recognise_one(item: Any) -> tuple[str | None, list[str]]:
    import numpy as np

    wav, notes = prepare_audio(item)
    if wav is None:
        return None, notes
    pcm = np.clip(np.round(wav * 32768.0), -32768, 32767).astype("<i2").tobytes()  # rounding, as PCM files hold it
    _DECODER.reinit_feat()  # the front end keeps state across utterances: a transcript must not depend on the previous one
    _DECODER.start_utt()
    _DECODER.process_raw(pcm, full_utt=True)
    _DECODER.end_utt()
    hyp = _DECODER.hyp()
    return (hyp.hypstr if hyp is not None else ""), notes


_TRANSCRIPTS: dict[tuple[str, str], str | None] = {}
_TRANSCRIPTS_MAX = 50_000


def transcribe(audio: Sequence[Any]) -> list[str | None]:
    """Transcripts of the ``audio=`` items (``None`` where the audio is not scorable), per the env config.

    Memoised per (back-end, content): repeated items are recognised once per process (so ``asr_wer`` and
    ``asr_cer`` of one batch transcribe once). A ``None`` item (an output that could not be decoded) gives ``None``."""
    model = os.environ.get(MODEL_ENV, "").strip()
    lm_dir = os.environ.get(LM_ENV, "").strip()
    backend = f"whisper:{model}" if model else f"pocketsphinx:{lm_dir}"
    keys = [content_key(a) for a in audio]
    todo = [i for i, k in enumerate(keys) if audio[i] is not None and (k is None or (backend, k) not in _TRANSCRIPTS)]
    if todo:
        items = [audio[i] for i in todo]
        if model:
            texts = _whisper(model, items)
        else:
            if lm_dir:
                _lm_files(lm_dir)  # fail here, with the folder named, rather than inside a worker
                lm_dir = str(Path(lm_dir).resolve())
            else:
                _warn_generic_lm()
            results = run_pool(("pocketsphinx", lm_dir), _load_decoder, _recognise_one, items)
            log_notes("asr_wer", results)
            texts = [t for t, _ in results]
        if len(_TRANSCRIPTS) > _TRANSCRIPTS_MAX:
            _TRANSCRIPTS.clear()
        fresh = dict(zip(todo, texts))
        for i, t in fresh.items():
            if keys[i] is not None:
                _TRANSCRIPTS[(backend, keys[i])] = t
    return [None if audio[i] is None else fresh[i] if i in todo else _TRANSCRIPTS[(backend, keys[i])]  # type: ignore[index]
            for i in range(len(audio))]


@functools.lru_cache(maxsize=1)
def _warn_generic_lm() -> None:
    log.warning("asr_wer: %s not set, using pocketsphinx's generic English LM (slow, WER ~0.7 on synthetic speech); see build_task_lm", LM_ENV)


# ------------------------------------------------------------------------------- Whisper (cluster option)
@functools.lru_cache(maxsize=2)
def _whisper_pipeline(model: str) -> Any:
    try:
        from transformers import pipeline

        return pipeline("automatic-speech-recognition", model=model, device_map="auto")
    except Exception as e:
        raise RuntimeError(
            f"asr_wer: cannot load the Whisper model {MODEL_ENV}={model!r} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
            "Whisper is a cluster option: its weights must be in the local Hugging Face cache or a local folder "
            f"(nothing is downloaded offline). Unset {MODEL_ENV} to use pocketsphinx with a task LM ({LM_ENV})."
        ) from None


def _whisper(model: str, audio: Sequence[Any]) -> list[str | None]:
    asr = _whisper_pipeline(model)
    out: list[str | None] = []
    for i, item in enumerate(audio):
        wav, notes = prepare_audio(item, where=f"sample {i}")
        for n in notes:
            log.info("asr_wer: %s", n)
        out.append(None if wav is None else asr({"raw": wav, "sampling_rate": SR})["text"])
    return out


def _asr_edits(refs: Any, audio: Sequence[Any], unit: str = "word") -> list[tuple[int, int] | None]:
    """(edits, reference words or characters) of each transcript against its best reference; ``None`` if not scorable."""
    checked = check_inputs(["" for _ in audio], refs)
    return [None if text is None else _best(text, rs, unit) for text, rs in zip(transcribe(audio), checked)]


def _asr_wer(hyps: list[str], refs: Any, *, audio: Sequence[Any], **_columns: Any) -> list[float | None]:
    return [None if b is None else min(1.0, max(0.0, 1.0 - b[0] / b[1])) for b in _asr_edits(refs, audio)]


def _asr_wer_corpus(hyps: list[str], refs: Any, *, audio: Sequence[Any]) -> float:
    pairs = [b for b in _asr_edits(refs, audio) if b is not None]
    total = sum(n for _, n in pairs)
    return float("nan") if total == 0 else 100.0 * max(0.0, 1.0 - sum(e for e, _ in pairs) / total)


register(
    Scorer(
        name="asr_wer",
        sample=_asr_wer,
        corpus=_asr_wer_corpus,
        columns=("audio",),
        file_columns=("audio",),
        settings=(MODEL_ENV, LM_ENV),
        description=(
            f"1 - WER of an ASR transcript of the 'audio' column vs the best reference, clipped to [0, 1]; "
            f"pocketsphinx (task LM from {LM_ENV}) or Whisper ({MODEL_ENV}, cluster); corpus 100 * (1 - pooled WER)"
        ),
    )
)


def _asr_cer(hyps: list[str], refs: Any, *, audio: Sequence[Any], **_columns: Any) -> list[float | None]:
    return [None if b is None else min(1.0, max(0.0, 1.0 - b[0] / b[1])) for b in _asr_edits(refs, audio, "char")]


def _asr_cer_corpus(hyps: list[str], refs: Any, *, audio: Sequence[Any]) -> float:
    pairs = [b for b in _asr_edits(refs, audio, "char") if b is not None]
    total = sum(n for _, n in pairs)
    return float("nan") if total == 0 else 100.0 * max(0.0, 1.0 - sum(e for e, _ in pairs) / total)


register(
    Scorer(
        name="asr_cer",
        sample=_asr_cer,
        corpus=_asr_cer_corpus,
        columns=("audio",),
        file_columns=("audio",),
        settings=(MODEL_ENV, LM_ENV),
        description=(
            "1 - CER of the ASR transcript of the 'audio' column vs the best reference (characters of the normalised "
            "text), clipped to [0, 1]; same transcripts as asr_wer (memoised); corpus 100 * (1 - pooled CER)"
        ),
    )
)
