"""Report of the speech-token tasks: the se and segment_gspo tables, per-task settings, audio examples."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechrl.config import parse_config
from speechrl.report import REPORT_TABLES, TaskSpec, build_report, task_specs
from speechrl.report.tables import Block, Table, merge_tables

T975_2 = 4.302653  # t(0.975, 2 d.o.f.)
T975_1 = 12.706205  # t(0.975, 1 d.o.f.)

SE_SPEC = TaskSpec.for_task("se", decoding="sampled", metrics=("dnsmos_ovrl", "pesq", "asr_wer"),
                            system_order=("base", "sft", "sft_more", "gspo"), rl_systems=("gspo",),
                            ablation=("gspo", ("gspo-dnsmos_ovrl", "gspo-pesq")), rewards={"dnsmos_ovrl": 0.5, "asr_wer": 0.5})
SE = {  # system -> per seed 0, 1: (dnsmos_sig, dnsmos_bak, dnsmos_ovrl, pesq, stoi, asr_wer)
    "base": [(2.0, 2.0, 1.5, 1.10, 60.0, 20.0), (2.0, 2.0, 1.7, 1.10, 60.0, 24.0)],
    "sft": [(3.0, 3.5, 2.6, 1.50, 80.0, 70.0), (3.2, 3.5, 2.8, 1.70, 82.0, 74.0)],
    "gspo": [(3.3, 3.9, 3.0, 1.80, 84.0, 80.0), (3.5, 3.9, 3.2, 1.90, 86.0, 84.0)],
    "gspo-dnsmos_ovrl": [(3.6, 4.1, 3.4, 1.20, 70.0, 40.0), (3.6, 4.1, 3.4, 1.20, 70.0, 44.0)],
}


def _metrics(tmp: Path, task: str, system: str, seed: int, values: dict, decodings=("sampled", "greedy")) -> Path:
    p = tmp / "eval" / task / system / f"s{seed}" / "metrics.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"task": task, "system": system, "n": 4, "seed": seed, "config_hash": f"h{system}",
                             "decodings": {d: values for d in decodings}}))
    return p


def _wav(path: Path, freq: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(1600) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000, subtype="PCM_16")
    return path


def _se_files(tmp: Path, audio: bool = True) -> list[Path]:
    files = []
    data = tmp / "data"
    for system, seeds in SE.items():
        for seed, vals in enumerate(seeds):
            m = dict(zip(("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "pesq", "stoi", "asr_wer"), vals))
            p = _metrics(tmp, "se", system, seed, m)
            files.append(p)
            if not audio:
                continue
            rows = []
            for i in range(4):  # 4 test items; the report shows the first 3
                out = f"audio/t{i}.sampled.wav"
                if not (system == "sft" and i == 1):  # one missing output file: skipped with a note
                    _wav(p.parent / out, 200 + 50 * i + seed)
                rows.append({"id": f"t{i}", "prompt": "Enhance the speech.", "references": [f"sentence {i}"],
                             "outputs": {"sampled": out, "greedy": f"audio/t{i}.greedy.wav"},
                             "inputs": {"audio": str(_wav(data / f"noisy{i}.wav", 300 + i)),
                                        "clean_audio": str(data / f"clean{i}.wav")}})
            (p.parent / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for i in (0, 2, 3):  # clean1.wav missing
        _wav(data / f"clean{i}.wav", 400 + i)
    return files


def test_se_table_and_paper_numbers(tmp_path: Path) -> None:
    s = build_report(_se_files(tmp_path, audio=False), tmp_path / "r", title="t", tasks={"se": SE_SPEC})
    se = s["tables"]["se"]["se"]
    assert list(se) == ["base", "sft", "gspo", "gspo-dnsmos_ovrl"]  # ablation rows in the se table
    assert list(se["gspo"]) == ["dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "pesq", "stoi", "wer_pct"]  # si_sdr not measured
    ovrl, wer = se["gspo"]["dnsmos_ovrl"], se["gspo"]["wer_pct"]
    assert ovrl["value"] == pytest.approx(3.1) and ovrl["ci95"] == pytest.approx(T975_1 * 0.1, rel=1e-5)  # sd of 3.0, 3.2: 0.1414
    assert wer["value"] == pytest.approx(18.0) and wer["ci95"] == pytest.approx(T975_1 * (2 * 2 ** 0.5) / 2 ** 0.5, rel=1e-5)
    assert wer["best"] and not se["gspo-dnsmos_ovrl"]["wer_pct"]["best"]  # WER: lowest is best
    assert se["gspo-dnsmos_ovrl"]["dnsmos_ovrl"]["best"]  # the DNSMOS-only reward wins DNSMOS (and hacks the rest)
    assert se["gspo"]["pesq"]["vs_sft_pct"] == pytest.approx(100 * (1.85 - 1.6) / 1.6, abs=1e-4)
    paper = s["tables"]["paper_se_gspo_dns2020"]
    assert paper["se/UniSE, DNS2020 synthetic + reverb"]["gspo"]["dnsmos_ovrl"]["value"] == 3.49
    assert paper["se/GenSE, DNS2020 real recordings"]["gspo"]["dnsmos_ovrl"]["vs_sft_pct"] == pytest.approx(100 * 0.62 / 2.60, abs=1e-4)
    # the main table: this task's own metrics, no ablation rows
    main = s["tables"]["sampled"]["se"]
    assert list(main) == ["base", "sft", "gspo"] and list(main["sft"]) == ["dnsmos_ovrl", "pesq", "asr_wer"]
    md = (tmp_path / "r" / "tables.md").read_text()
    assert md.index("## Speech enhancement") < md.index("Paper: SE-GSPO") < md.index("t: test results, sampled")
    assert "| WER % |" in md and "GSPO (DNSMOS OVRL reward)" in md and "not ours" in md
    assert "100 − the asr_wer" in md and "0.5·DNSMOS OVRL + 0.5·100−WER (ASR)" in md
    assert r"CER \% = 100 $-$ the asr\_wer" in (tmp_path / "r" / "tables.tex").read_text()
    s2 = build_report(_se_files(tmp_path / "b", audio=False), tmp_path / "r2", title="t",
                      tasks={"se": replace(SE_SPEC, paper=False, tables=("se",))})
    assert list(s2["tables"]) == ["se"]


def test_audio_examples(tmp_path: Path) -> None:
    s = build_report(_se_files(tmp_path), tmp_path / "r", title="t", tasks={"se": SE_SPEC})
    out = tmp_path / "r"
    sec = s["audio"]["se"]
    assert sec["labels"] == ["Input", "Base (seed 0)", "SFT (seed 0)", "GSPO (seed 0)", "Clean"]
    assert [e["id"] for e in sec["examples"]] == ["t0", "t1", "t2"]
    t0 = sec["examples"][0]["clips"]
    assert t0 == {"Input": "audio/se/t0.input.wav", "Base (seed 0)": "audio/se/t0.base.wav",
                  "SFT (seed 0)": "audio/se/t0.sft.wav", "GSPO (seed 0)": "audio/se/t0.gspo.wav", "Clean": "audio/se/t0.clean.wav"}
    src = tmp_path / "eval" / "se" / "gspo" / "s0" / "audio" / "t0.sampled.wav"
    assert (out / t0["GSPO (seed 0)"]).read_bytes() == src.read_bytes()
    t1 = sec["examples"][1]["clips"]
    assert t1["SFT (seed 0)"] is None and t1["Clean"] is None and t1["Base (seed 0)"] == "audio/se/t1.base.wav"
    assert any("t1 SFT (seed 0)" in n and "missing" in n for n in sec["notes"])
    assert any("t1 clean" in n and "clean1.wav missing" in n for n in sec["notes"])
    assert not (out / "audio" / "se" / "t3.input.wav").exists()
    assert "audio/se/t2.clean.wav" in s["files"]
    html = (out / "index.html").read_text()
    assert '<audio controls preload="none" src="audio/se/t0.sft.wav"></audio>' in html and "<h2>Audio examples</h2>" in html
    assert "sentence 0" in html and "http" not in html
    assert "[GSPO (seed 0)](audio/se/t0.gspo.wav)" in (out / "tables.md").read_text()


def test_audio_examples_survive_missing_files(tmp_path: Path) -> None:
    files = _se_files(tmp_path, audio=False)  # no samples.jsonl anywhere
    (files[2].parent / "samples.jsonl").write_text('{"id": "t0", "outputs": {"greedy": "audio/x.wav"}}\nnot json\n')
    s = build_report(files, tmp_path / "r", title="t", tasks={"se": SE_SPEC})
    sec = s["audio"]["se"]
    assert [e["id"] for e in sec["examples"]] == ["t0"]
    assert sec["labels"] == ["SFT (seed 0)"]  # no input / clean audio given: no such column
    notes = " | ".join(sec["notes"])
    assert "samples.jsonl: not readable" in notes and "samples.jsonl:2: not JSON" in notes and "no 'sampled' output" in notes


TTS = {  # system -> per seed 0, 1, 2: (dnsmos_ovrl, asr_wer, asr_cer)
    "sft": [(2.0, 50.0, 60.0)] * 3,
    "grpo": [(2.5, 80.0, 90.0), (2.6, 82.0, 91.0), (2.7, 84.0, 92.0)],
    "gspo": [(2.4, 78.0, 88.0), (2.4, 80.0, 88.0), (2.4, 82.0, 88.0)],
    "gspo_segment_window": [(2.8, 83.0, 93.0), (2.8, 84.0, 93.0), (2.9, 88.0, 94.0)],
    "sapo": [(2.5, 81.0, 90.0), (2.5, 81.0, 90.0)],  # two seeds only
}


def _tts_files(tmp: Path) -> tuple[list[Path], list[Path]]:
    files, curves = [], []
    for system, seeds in TTS.items():
        for seed, vals in enumerate(seeds):
            files.append(_metrics(tmp, "tts", system, seed, dict(zip(("dnsmos_ovrl", "asr_wer", "asr_cer"), vals)), ("sampled",)))
            if system != "sft":
                p = tmp / "rl" / system / f"s{seed}.json"
                p.parent.mkdir(parents=True, exist_ok=True)
                hist = [{"step": n, "reward/mean": 0.1 * n, "actor/kl": 0.0, "response/length": 50.0, "actor/entropy": 2.0}
                        for n in range(1, 5)]
                p.write_text(json.dumps({"task": "tts", "system": system, "seed": seed, "history": hist}))
                curves.append(p)
    return files, curves


def test_segment_gspo_tables(tmp_path: Path) -> None:
    files, curves = _tts_files(tmp_path)
    spec = TaskSpec.for_task("tts", decoding="sampled", metrics=("dnsmos_ovrl", "asr_wer", "asr_cer"),
                             system_order=("base", "sft", "grpo", "gspo"), rl_systems=("grpo", "gspo", "gspo_segment_window", "sapo"),
                             rewards={"dnsmos_ovrl": 0.5, "asr_wer": 0.5})
    s = build_report(files, tmp_path / "r", title="t", tasks={"tts": spec}, curves=curves)
    seg = s["tables"]["segment_gspo"]["tts"]
    assert list(seg) == ["grpo", "gspo", "gspo_segment_window", "sapo"]  # RL systems only, research-note order
    assert list(seg["grpo"]) == ["dnsmos_ovrl", "wer_pct", "cer_pct"]
    assert seg["grpo"]["wer_pct"]["value"] == pytest.approx(18.0) and seg["grpo"]["cer_pct"]["value"] == pytest.approx(9.0)
    assert seg["gspo_segment_window"]["wer_pct"]["best"] and seg["gspo_segment_window"]["dnsmos_ovrl"]["best"]
    vs_grpo = s["tables"]["segment_gspo_vs_grpo"]["tts"]
    assert list(vs_grpo) == ["diff:gspo-grpo", "diff:gspo_segment_window-grpo", "diff:sapo-grpo"]
    d = vs_grpo["diff:gspo_segment_window-grpo"]["wer_pct"]  # WER 17/16/12 vs 20/18/16: -3, -2, -4
    assert d["value"] == pytest.approx(-3.0) and d["ci95"] == pytest.approx(T975_2 * 1.0 / 3 ** 0.5, rel=1e-5)
    assert vs_grpo["diff:sapo-grpo"]["wer_pct"]["value"] == pytest.approx(0.0)  # seeds 0, 1 only: 19-20, 19-18
    assert vs_grpo["diff:sapo-grpo"]["wer_pct"]["ci95"] == pytest.approx(T975_1 * 2 ** 0.5 / 2 ** 0.5, rel=1e-5)
    vs_gspo = s["tables"]["segment_gspo_vs_gspo"]["tts"]
    assert "diff:grpo-gspo" in vs_gspo and vs_gspo["diff:grpo-gspo"]["dnsmos_ovrl"]["value"] == pytest.approx(0.2)
    assert s["figures"] == ["curves_tts.png"] and (tmp_path / "r" / "curves_tts.png").read_bytes()[:4] == b"\x89PNG"
    md = (tmp_path / "r" / "tables.md").read_text()
    assert "GSPO-segment (window) − GRPO" in md and "### Text to speech (TTS) — n = 4 test examples, seeds 0/1/2" in md
    audio = s["audio"]["tts"]  # no samples.jsonl written: notes only, the report is still written
    assert audio["examples"] == [] and audio["notes"][0] == "Base: no evaluation; column left out"
    assert "tts/sft/s0/samples.jsonl: not readable" in audio["notes"][1]


def test_mixed_suite_joins_tables_with_the_same_columns(tmp_path: Path) -> None:
    files = _se_files(tmp_path, audio=False)
    text = {"bleu": 40.0, "meteor": 20.0}
    files += [_metrics(tmp_path, t, sys, 0, text) for t in ("sqa", "ast") for sys in ("sft", "grpo")]
    text_spec = dict(decoding="sampled", metrics=("bleu", "meteor"), system_order=("base", "sft", "grpo"))
    specs = {"sqa": TaskSpec.for_task("sqa", **text_spec), "se": SE_SPEC, "ast": TaskSpec.for_task("ast", **text_spec)}
    s = build_report(files, tmp_path / "r", title="t", tasks=specs)
    assert list(s["tasks"]) == ["sqa", "se", "ast"] and s["tasks"]["se"]["tables"] == ["se", "main"]
    assert list(s["tables"]["sampled"]) == ["sqa", "ast"]  # one table, the two text tasks
    assert list(s["tables"]["sampled_se"]) == ["se"] and list(s["tables"]["se"]) == ["se"]
    assert "ablation" not in s["tables"] and "paper_grpo_sallm_main" in s["tables"]
    assert list(s["tables"]["paper_grpo_sallm_main"]) == ["sqa/granite-2b", "sqa/granite-8b", "ast/granite-2b", "ast/granite-8b"]
    with pytest.raises(ValueError, match="task 'se' has no report settings"):
        build_report(files, tmp_path / "r3", title="t", tasks={"sqa": specs["sqa"], "ast": specs["ast"]})
    bad = {**specs, "se": replace(SE_SPEC, decoding="beam")}
    with pytest.raises(ValueError, match="decoding 'beam' is in none of the metrics files of task 'se'"):
        build_report(files, tmp_path / "r4", title="t", tasks=bad)


def test_merge_tables_renames_a_clash() -> None:
    a = Table("sampled", "x", ("bleu",), (Block("sqa", "", ()),))
    b = Table("sampled", "x", ("bleu",), (Block("ast", "", ()),), note="n")
    c = Table("sampled", "x", ("pesq",), (Block("se", "", ()),))
    out = merge_tables([a, b, c])
    assert [t.key for t in out] == ["sampled", "sampled_se"]
    assert [blk.task for blk in out[0].blocks] == ["sqa", "ast"] and out[0].note == "n"


def test_task_specs_from_config() -> None:
    cfg = parse_config({
        "data": {"tasks": ["sqa", "se", "tts"]}, "rl": {"algorithms": ["grpo", "leaf"]},
        "suite": {"ablation_tasks": ["sqa"], "ablation_rewards": ["meteor"]},
        "tasks": {"se": {"suite": {"ablation_tasks": ["se"], "ablation_algorithm": "gspo", "ablation_rewards": ["pesq"]}},
                  "tts": {"rl": {"algorithms": ["grpo", "gspo_segment_window"]}}},
    }, registries=False)
    specs = task_specs(cfg)
    assert list(specs) == ["sqa", "se", "tts"]
    sqa, se, tts = specs["sqa"], specs["se"], specs["tts"]
    assert sqa.tables == ("main", "reward_ablation", "leaf") and sqa.ablation == ("grpo", ("grpo-meteor",))
    assert sqa.system_order == ("base", "sft", "sft_more", "grpo", "leaf") and sqa.output == "text"
    assert se.tables == ("se", "main") and se.output == "audio" and se.main_system == "gspo"
    assert se.ablation == ("gspo", ("gspo-pesq",)) and "pesq" in se.metrics and se.rewards == {"dnsmos_ovrl": 0.5, "asr_wer": 0.5}
    assert tts.rl_systems == ("grpo", "gspo_segment_window") and tts.ablation is None and tts.tables[0] == "segment_gspo"
    assert all(name in REPORT_TABLES for spec in specs.values() for name in spec.tables)


def test_report_from_config_specs(tmp_path: Path) -> None:
    """What `speechrl report` does: every task with its own metrics, systems and ablation from the config."""
    cfg = parse_config({"data": {"tasks": ["sqa", "se"]}, "evaluate": {"metrics": ["bleu"]},
                        "tasks": {"se": {"suite": {"ablation_tasks": ["se"], "ablation_algorithm": "gspo",
                                                   "ablation_rewards": ["dnsmos_ovrl"]}}}}, registries=False)
    files = _se_files(tmp_path, audio=False) + [_metrics(tmp_path, "sqa", s, 0, {"bleu": b}) for s, b in (("sft", 30.0), ("grpo", 33.0))]
    s = build_report(files, tmp_path / "r", title="t", tasks=task_specs(cfg))
    assert list(s["tables"]["sampled"]) == ["sqa"] and list(s["tables"]["sampled"]["sqa"]["grpo"]) == ["bleu"]
    se_main = s["tables"]["sampled_se"]["se"]  # se: its registry metrics, gspo-dnsmos_ovrl left to the se table
    assert list(se_main) == ["base", "sft", "gspo"] and "si_sdr" in se_main["gspo"]
    assert "gspo-dnsmos_ovrl" in s["tables"]["se"]["se"] and "SE-GSPO" not in s["tasks"]["sqa"]["paper"]
    assert s["tasks"]["se"]["paper"].startswith("Post-Training Speech Enhancement") and s["audio"]["se"]["examples"] == []


def test_every_task_table_is_registered() -> None:
    from speechrl.tasks import TASKS

    assert {"main", "reward_ablation", "leaf", "se", "segment_gspo"} <= set(REPORT_TABLES.names())
    for name in TASKS.names():
        assert all(t in REPORT_TABLES for t in TASKS.get(name).report_tables), name
    with pytest.raises(KeyError, match="unknown report table 'sgspo'; valid: .*segment_gspo"):
        REPORT_TABLES.get("sgspo")
