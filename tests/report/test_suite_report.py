"""The suite report: means and t-intervals over seeds, per-seed table, reward ablation, LEAF vs GRPO, curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechrl.report import build_report
from speechrl.report.results import mean_ci

BLEU = {  # system -> BLEU per seed 0, 1, 2
    "base": [1.0, 1.0, 1.0], "sft": [50.0, 52.0, 51.0], "sft_more": [50.0, 51.0, 52.0],
    "grpo": [52.0, 54.0, 56.0], "leaf": [53.0, 56.0, 56.0], "grpo-meteor": [49.0, 50.0, 51.0],
}


def _files(tmp: Path) -> list[Path]:
    out = []
    for system, values in BLEU.items():
        for seed, v in enumerate(values):
            p = tmp / system / f"s{seed}" / "metrics.json"
            p.parent.mkdir(parents=True)
            p.write_text(json.dumps({"task": "sqa", "system": system, "n": 100, "seed": seed, "config_hash": "h",
                                     "decodings": {"sampled": {"bleu": v, "meteor": v / 2}}}))
            out.append(p)
    return out


def _curves(tmp: Path) -> list[Path]:
    out = []
    for system in ("grpo", "leaf"):
        for seed in (0, 1):
            p = tmp / "curves" / system / f"s{seed}.json"
            p.parent.mkdir(parents=True, exist_ok=True)
            hist = [{"step": n, "reward/mean": 0.1 * n + seed, "actor/kl": 0.01 * n, "response/length": 9.0,
                     "actor/entropy": 1.0 if n % 2 else float("nan")} for n in range(1, 11)]
            p.write_text(json.dumps({"task": "sqa", "system": system, "seed": seed, "history": hist}))
            out.append(p)
    return out


def test_mean_ci_is_the_t_interval() -> None:
    m, h = mean_ci([52.0, 54.0, 56.0])  # sd 2, n 3: t(0.975, 2) = 4.302653
    assert m == 54.0 and h == pytest.approx(4.302653 * 2 / 3 ** 0.5, rel=1e-6)
    assert mean_ci([7.0]) == (7.0, None)


def test_suite_tables(tmp_path: Path) -> None:
    s = build_report(_files(tmp_path), tmp_path / "r", title="t", decoding="sampled", metrics=["bleu", "meteor"],
                     system_order=["base", "sft", "sft_more", "grpo", "leaf"], curves=_curves(tmp_path),
                     ablation=("grpo", ["grpo-meteor"]))
    main = s["tables"]["sampled"]["sqa"]
    assert "grpo-meteor" not in main  # ablation rows only in their own table
    assert main["grpo"]["bleu"]["value"] == 54.0 and main["grpo"]["bleu"]["ci95"] == pytest.approx(4.9683, abs=1e-3)
    assert main["grpo"]["bleu"]["vs_sft_pct"] == pytest.approx(100 * (54 - 51) / 51, abs=1e-4)
    assert main["leaf"]["bleu"]["best"] and not main["grpo"]["bleu"]["best"]
    assert s["tables"]["seeds_sampled"]["sqa"]["leaf"]["seed 1"]["value"] == 56.0
    abl = s["tables"]["ablation"]["sqa"]
    assert list(abl) == ["sft", "grpo", "grpo-meteor"] and abl["grpo-meteor"]["bleu"]["value"] == 50.0
    diff = s["tables"]["leaf_vs_grpo"]["sqa"]["diff:leaf-grpo"]["bleu"]  # per-seed differences 1, 2, 0
    assert diff["value"] == pytest.approx(1.0) and diff["ci95"] == pytest.approx(4.302653 * 1 / 3 ** 0.5, rel=1e-5)
    assert not diff["best"]
    md = (tmp_path / "r" / "tables.md").read_text()
    assert "54.00 ± 4.97" in md and "GRPO (METEOR reward)" in md and "LEAF − GRPO" in md and "SFT + same extra compute" in md
    assert s["figures"] == ["curves_sqa.png"] and (tmp_path / "r" / "curves_sqa.png").read_bytes()[:4] == b"\x89PNG"
    assert '<img src="curves_sqa.png"' in (tmp_path / "r" / "index.html").read_text()
    assert "\\pm" in (tmp_path / "r" / "tables.tex").read_text()


def test_duplicate_seed_files_are_an_error(tmp_path: Path) -> None:
    files = _files(tmp_path)
    with pytest.raises(ValueError, match="system 'base', seed 0"):
        build_report([*files, files[0]], tmp_path / "r", title="t", decoding="sampled", metrics=["bleu"], system_order=["base"])
