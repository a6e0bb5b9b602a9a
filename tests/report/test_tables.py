"""The paper-style report from hand-written metrics.json files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechrl.report import build_report
from speechrl.report.tables import rel_change

METRICS = ["bleu", "chrf", "rouge_l", "exact_match"]
ORDER = ["base", "sft", "grpo"]


def _write(tmp: Path, task: str, system: str, greedy: dict, sampled: dict, **extra) -> Path:
    data = {"task": task, "system": system, "n": 60, "seed": 0, "config_hash": f"hash_{system}",
            "decodings": {"greedy": greedy, "sampled": sampled}, **extra}
    path = tmp / task / system / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    return [
        _write(tmp_path, "ast", "grpo", {"bleu": 44.90, "chrf": 60.0, "rouge_l": 50.0}, {"bleu": 40.0, "chrf": 58.0, "rouge_l": 49.0}),
        _write(tmp_path, "ast", "base", {"bleu": 27.74, "chrf": 50.0, "rouge_l": 0.0}, {"bleu": 20.0, "chrf": 45.0, "rouge_l": 0.0}),
        _write(tmp_path, "ast", "sft", {"bleu": 40.88, "chrf": 61.5, "rouge_l": 48.0}, {"bleu": 38.0, "chrf": 55.0, "rouge_l": 47.0}),
        _write(tmp_path, "ast", "my_algo", {"bleu": 10.0}, {"bleu": 10.0}),
        _write(tmp_path, "sqa", "base", {"bleu": 5.0, "exact_match": float("nan")}, {"bleu": 4.0, "exact_match": 1.0}),
    ]


def _report(files: list[Path], out: Path, **kw) -> dict:
    args = dict(title="Tiny_suite 100%", decoding="greedy", system_order=ORDER, metrics=METRICS)
    return build_report(files, out, **(args | kw))


def test_relative_changes_by_hand() -> None:
    assert rel_change(44.90, 27.74) == pytest.approx(61.86, abs=0.01)  # (44.90 - 27.74) / 27.74
    assert rel_change(44.90, 40.88) == pytest.approx(9.83, abs=0.01)  # (44.90 - 40.88) / 40.88
    assert rel_change(1.0, 0.0) is None and rel_change(1.0, None) is None
    assert rel_change(47.95, 0.04) is None and rel_change(2.0, 1.0) == pytest.approx(100.0)  # a near-0 base gives n/a


def test_report_files_and_summary(files: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    summary = _report(files, out)
    for name in ["tables.md", "tables.tex", "index.html", "summary.json"]:
        assert (out / name).is_file()
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["decodings"] == ["greedy", "sampled"]
    assert list(summary["tasks"]) == ["ast", "sqa"] and summary["tasks"]["ast"]["n"] == 60
    grpo = summary["tables"]["greedy"]["ast"]["grpo"]
    assert grpo["bleu"]["vs_base_pct"] == pytest.approx(61.86, abs=0.01)
    assert grpo["bleu"]["vs_sft_pct"] == pytest.approx(9.83, abs=0.01)
    assert grpo["bleu"]["best"] and not grpo["chrf"]["best"]
    assert summary["tables"]["greedy"]["ast"]["sft"]["chrf"]["best"]
    assert grpo["rouge_l"]["vs_base_pct"] is None  # base is 0 -> n/a
    assert "vs_sft_pct" not in summary["tables"]["greedy"]["ast"]["sft"]["bleu"]
    assert list(summary["tables"]["greedy"]["ast"]) == ["base", "sft", "grpo", "my_algo"]
    assert summary["tables"]["greedy"]["sqa"]["base"]["exact_match"]["value"] is None  # NaN: not scored


def test_markdown(files: list[Path], tmp_path: Path) -> None:
    _report(files, tmp_path / "r")
    md = (tmp_path / "r" / "tables.md").read_text()
    assert "| GRPO | **44.90** (+61.9% / +9.8%) | 60.00 (+20.0% / -2.4%) | **50.00** (n/a / +4.2%) | — |" in md
    assert "| SFT | 40.88 (+47.4%) |" in md and "| Base | 27.74 | 50.00 | 0.00 | — |" in md
    assert "| BLEU | chrF | ROUGE-L | EM |" in md and "vs base / vs SFT" in md
    assert "n = 60 test examples, seed 0" in md
    assert md.index("greedy decoding") < md.index("sampled decoding")
    assert "hash_grpo" in md


def test_main_decoding_first(files: list[Path], tmp_path: Path) -> None:
    summary = _report(files, tmp_path / "r", decoding="sampled")
    md = (tmp_path / "r" / "tables.md").read_text()
    assert summary["decodings"] == ["sampled", "greedy"] and md.index("sampled decoding") < md.index("greedy decoding")


def test_latex_escapes(files: list[Path], tmp_path: Path) -> None:
    _report(files, tmp_path / "r")
    tex = (tmp_path / "r" / "tables.tex").read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"Tiny\_suite 100\%" in tex and r"MY\_ALGO" in tex
    assert r"\textbf{44.90}\\{\scriptsize +61.9\% / +9.8\%}" in tex
    assert "Tiny_suite" not in tex.replace(r"Tiny\_suite", "")
    assert r"En$\rightarrow$De" in tex and "---" in tex


def test_html_self_contained(files: list[Path], tmp_path: Path) -> None:
    _report(files, tmp_path / "r")
    html = (tmp_path / "r" / "index.html").read_text()
    assert "<style>" in html and "<script" not in html and "http" not in html
    assert "How to read" in html and "hash_sft" in html and str(files[0]) in html
    assert "<b>44.90</b><small>" in html and "+61.9%</span> vs Base" in html and "+9.8%</span> vs SFT" in html
    assert "Paper: " in html


def test_paper_numbers_table(files: list[Path], tmp_path: Path) -> None:
    summary = _report(files, tmp_path / "r")
    paper = summary["tables"]["paper_grpo_sallm_main"]["sqa/granite-2b"]
    assert paper["grpo"]["bleu"]["value"] == 44.90 and paper["grpo"]["bleu"]["vs_base_pct"] == pytest.approx(61.86, abs=0.01)
    md = (tmp_path / "r" / "tables.md").read_text()
    assert md.index("greedy decoding") < md.index("Paper: ") < md.index("sampled decoding")
    assert "paper_grpo_sallm_main" not in _report(files, tmp_path / "r2", paper=False)["tables"]


def test_bad_files(files: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"task": "sqa", "system": "x", "n": 3, "seed": 0, "decodings": {}}))
    with pytest.raises(ValueError, match=rf"{bad}: missing key 'config_hash'"):
        _report([*files, bad], tmp_path / "r")
    bad.write_text(json.dumps({"task": "sqa", "system": "x", "n": 3, "seed": 0, "config_hash": "h", "decodings": {"greedy": {"bleu": "high"}}}))
    with pytest.raises(ValueError, match=r"bad.json: key 'decodings.greedy.bleu' must be a number"):
        _report([bad], tmp_path / "r")
    with pytest.raises(ValueError, match="two metrics files for task 'ast', system 'grpo'"):
        _report([files[0], files[0]], tmp_path / "r")
    with pytest.raises(ValueError, match="decoding 'beam' is in none"):
        _report(files, tmp_path / "r", decoding="beam")
    assert not (tmp_path / "r").exists()


def test_sweep_systems_are_named_by_their_option():
    from speechrl.report.tables import system_name

    assert system_name("gspo_segment_window@window=16") == "GSPO-segment (window) [W=16]"
    assert system_name("diff:gspo_segment_logprob@tau=0.5-grpo") == "GSPO-segment (log-prob) [τ=0.5] − GRPO"
