"""Paper-style result tables: the table model, and its Markdown and LaTeX renderings.

A :class:`Table` has one :class:`Block` per task; rows are systems, columns metrics. Every cell
of a non-base row carries its relative change (in percent of the reference value) vs the base
model and, for rows other than SFT, vs SFT. The best value (2 decimals) per column and task is
marked. Layout after Table 1 of "Advancing Speech Understanding in Speech-Aware Language
Models with GRPO" (Elmakies et al., 2025).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

METRIC_NAMES = {
    "bleu": "BLEU", "chrf": "chrF", "rouge_1": "ROUGE-1", "rouge_2": "ROUGE-2", "rouge_l": "ROUGE-L", "meteor": "METEOR",
    "bertscore": "BERTScore", "exact_match": "EM",
    # audio metrics, on the scale of their corpus value in metrics.json (speechrl.rewards)
    "dnsmos_ovrl": "DNSMOS OVRL", "dnsmos_sig": "DNSMOS SIG", "dnsmos_bak": "DNSMOS BAK", "dnsmos_p808": "DNSMOS P.808",
    "utmos": "UTMOS", "pesq": "PESQ", "stoi": "STOI (%)", "si_sdr": "SI-SDR (dB)",
    "wer": "100−WER", "cer": "100−CER", "asr_wer": "100−WER (ASR)", "asr_cer": "100−CER (ASR)",
    # derived by the report (speechrl.report.results.add_error_rates)
    "wer_pct": "WER %", "cer_pct": "CER %", "decoded": "Decoded %",
}
LOWER_IS_BETTER = frozenset({"wer_pct", "cer_pct"})
"""Columns whose best value is the smallest one."""
SYSTEM_NAMES = {
    "base": "Base", "sft": "SFT", "sft_more": "SFT + same extra compute", "mp_grpo": "MP-GRPO", "gspo_token": "GSPO-token",
    "gspo_segment_window": "GSPO-segment (window)", "gspo_segment_logprob": "GSPO-segment (log-prob)",
    "gspo_segment_tokenid": "GSPO-segment (token id)", "p_gspo": "P-GSPO",
}
MISSING = "—"
LEGEND = ("Cells: value, or mean ± 95% CI half-width over seeds (t distribution), with the relative change of the mean "
          "vs base / vs SFT (the SFT row: vs base only; n/a where that value is below 1). Best mean per column and task in bold "
          "(the lowest for WER % / CER %).")
PLAIN_LEGEND = ("Cells: value, or mean ± 95% CI half-width over seeds (t distribution). Best per column and task in bold "
                "(the lowest for WER % / CER %).")


def metric_name(m: str) -> str:
    return METRIC_NAMES.get(m, m)


def task_name(t: str) -> str:
    """``sqa`` -> its title in the task registry (:data:`speechrl.tasks.TASKS`); a paper setting
    ``sqa/granite-2b`` -> title, model; an unregistered name as is."""
    from speechrl.tasks import TASKS

    task, _, model = t.partition("/")
    title = TASKS.get(task).title if task in TASKS else task
    return f"{title}, {model}" if model else title


OPTION_NAMES = {"window": "W", "tau": "τ", "delta": "δ"}
"""Segmenter options as the segment-level GSPO note writes them."""


def system_name(s: str) -> str:
    """``base`` -> Base, ``sft`` -> SFT, RL algorithms upper-cased (grpo -> GRPO), ``grpo-meteor`` -> GRPO (METEOR reward),
    ``gspo_segment_window@window=16`` -> GSPO-segment (window) [W=16]."""
    if s in SYSTEM_NAMES:
        return SYSTEM_NAMES[s]
    if s.startswith("diff:"):
        a, _, b = s[5:].partition("-")
        return f"{system_name(a)} − {system_name(b)}"
    if "@" in s:  # segmenter sweep: gspo_segment_window@window=16 -> GSPO-segment (window) [W=16]
        base, _, option = s.partition("@")
        key, _, value = option.partition("=")
        return f"{system_name(base)} [{OPTION_NAMES.get(key, key)}={value}]"
    algo, _, reward = s.partition("-")
    return f"{algo.upper()} ({metric_name(reward)} reward)" if reward else s.upper()


@dataclass(frozen=True)
class Cell:
    value: float | None
    changes: tuple[tuple[str, float | None], ...] = ()
    """(reference system, relative change in %); None = n/a (reference 0 or missing)."""
    best: bool = False
    ci: float | None = None
    """Half-width of the 95% confidence interval of ``value`` (over seeds); None = one run."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "best": self.best, "ci95": self.ci}
        out.update({f"vs_{ref}_pct": None if c is None else round(c, 4) for ref, c in self.changes})
        return out


@dataclass(frozen=True)
class Block:
    task: str
    note: str
    rows: tuple[tuple[str, tuple[Cell, ...]], ...]


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    metrics: tuple[str, ...]
    blocks: tuple[Block, ...]
    note: str = ""
    """Printed under the table (what the rows are, caveats)."""
    compare: bool = True
    """Cells carry relative changes vs base / SFT."""

    @property
    def legend(self) -> str:
        return LEGEND if self.compare else PLAIN_LEGEND

    def to_dict(self) -> dict[str, Any]:
        return {
            b.task: {s: {m: c.to_dict() for m, c in zip(self.metrics, cells)} for s, cells in b.rows}
            for b in self.blocks
        }


MIN_REFERENCE = 1.0
"""Relative changes against a reference below this (0-100 scale) are shown as n/a: a random-init base
model's BLEU of 0.04 would turn every gain into +100000%."""


def rel_change(value: float, ref: float | None) -> float | None:
    """``100 * (value - ref) / ref``; None when ``ref`` is missing or below :data:`MIN_REFERENCE`."""
    if ref is None or abs(ref) < MIN_REFERENCE:
        return None
    return 100.0 * (value - ref) / abs(ref)


def fmt_value(v: float | None, ci: float | None = None) -> str:
    if v is None:
        return MISSING
    return f"{v:.2f}" if ci is None else f"{v:.2f} ± {ci:.2f}"


def fmt_change(c: float | None) -> str:
    return "n/a" if c is None else f"{c:+.1f}%"


def order_systems(present: list[str], system_order: list[str]) -> list[str]:
    """``system_order`` first (those present), then the other systems alphabetically."""
    return [s for s in dict.fromkeys(system_order) if s in present] + sorted(s for s in present if s not in system_order)


def build_block(task: str, rows: dict[str, dict[str, float | None]], system_order: list[str], metrics: list[str], note: str,
                cis: dict[str, dict[str, float | None]] | None = None, compare: bool = True) -> Block:
    """One task's rows: values (with 95% CI half-widths from ``cis``), relative changes vs base/SFT
    (unless ``compare`` is False), best per column."""
    systems = order_systems(list(rows), system_order)
    best = {}
    for m in metrics:
        vals = [round(v, 2) for s in systems if not s.startswith("diff:") and (v := rows[s].get(m)) is not None]
        best[m] = (min if m in LOWER_IS_BETTER else max)(vals) if vals else None
    out = []
    for s in systems:
        cells = []
        for m in metrics:
            v = rows[s].get(m)
            if v is None:
                cells.append(Cell(None))
                continue
            refs = [r for r in ("base", "sft") if compare and r in rows and r != s and not (s == "base" and r == "sft")]
            changes = tuple((r, rel_change(v, rows[r].get(m))) for r in refs)
            ci = (cis or {}).get(s, {}).get(m)
            is_best = best[m] is not None and round(v, 2) == best[m] and not s.startswith("diff:")
            cells.append(Cell(v, changes, is_best, ci))
        out.append((s, tuple(cells)))
    return Block(task, note, tuple(out))


def build_table(key: str, title: str, grid: dict[str, dict[str, dict[str, Any]]], system_order: list[str], metrics: list[str],
                notes: dict[str, str], cis: dict[str, dict[str, dict[str, float | None]]] | None = None, compare: bool = True,
                note: str = "") -> Table:
    """A table from ``task -> system -> metric -> value`` (tasks in the grid's order), CIs from ``cis`` (same keys)."""
    blocks = tuple(build_block(t, rows, system_order, metrics, notes.get(t, ""), (cis or {}).get(t), compare) for t, rows in grid.items())
    return Table(key, title, tuple(metrics), blocks, note=note, compare=compare)


def merge_tables(tables: list[Table]) -> list[Table]:
    """Tables built per task, joined: tables with the same key, title, columns and comparison become one
    table with one block per task (first-seen order), as in the papers' tables; a table whose key is
    taken by a different table is renamed ``<key>_<task of its first block>`` (a task with columns of its
    own). Notes of the joined tables are kept once each."""
    out: dict[str, Table] = {}
    for t in tables:
        key = t.key
        if key in out and not _joinable(out[key], t):
            key = f"{t.key}_{t.blocks[0].task}" if t.blocks else f"{t.key}_{len(out)}"
        if key in out and _joinable(out[key], t):
            old = out[key]
            note = old.note if not t.note or t.note in old.note else f"{old.note} {t.note}".strip()
            out[key] = Table(key, old.title, old.metrics, old.blocks + t.blocks, note=note, compare=old.compare)
        elif key in out:
            raise ValueError(f"report: two different tables named '{key}'")
        else:
            out[key] = Table(key, t.title, t.metrics, t.blocks, note=t.note, compare=t.compare)
    return list(out.values())


def _joinable(a: Table, b: Table) -> bool:
    return (a.title, a.metrics, a.compare) == (b.title, b.metrics, b.compare)


# --------------------------------------------------------------------------------- Markdown
def _md_cell(c: Cell) -> str:
    text = fmt_value(c.value, c.ci)
    if c.best:
        text = f"**{text}**"
    if c.changes:
        text += " (" + " / ".join(fmt_change(x) for _, x in c.changes) + ")"
    return text


def to_markdown(t: Table) -> str:
    lines = [f"## {t.title}", "", t.legend, ""]
    for b in t.blocks:
        lines += [f"### {task_name(b.task)}" + (f" — {b.note}" if b.note else ""), ""]
        lines.append("| System | " + " | ".join(metric_name(m) for m in t.metrics) + " |")
        lines.append("|---|" + "---:|" * len(t.metrics))
        for s, cells in b.rows:
            lines.append(f"| {system_name(s)} | " + " | ".join(_md_cell(c) for c in cells) + " |")
        lines.append("")
    if t.note:
        lines += [t.note, ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------- LaTeX
_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        "→": r"$\rightarrow$", "—": "---", "−": "$-$", "±": r"$\pm$", "·": r"$\cdot$", "<": r"$<$", ">": r"$>$"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def _tex_cell(c: Cell) -> str:
    value = fmt_value(c.value)
    value = rf"\textbf{{{value}}}" if c.best else tex_escape(value)
    if c.ci is not None:
        value += rf"$\pm${c.ci:.2f}"
    if not c.changes:
        return value
    changes = tex_escape(" / ".join(fmt_change(x) for _, x in c.changes))
    return rf"\begin{{tabular}}[t]{{@{{}}r@{{}}}}{value}\\{{\scriptsize {changes}}}\end{{tabular}}"


def to_latex(t: Table) -> str:
    ncol = len(t.metrics) + 1
    lines = [
        f"% {tex_escape(t.title)} (needs \\usepackage{{booktabs}})",
        r"\begin{table}[t]", r"\centering", r"\small",
        rf"\caption{{{tex_escape(t.title)}. {tex_escape(t.legend)}}}",
        rf"\begin{{tabular}}{{l{'r' * len(t.metrics)}}}", r"\toprule",
        "System & " + " & ".join(tex_escape(metric_name(m)) for m in t.metrics) + r" \\",
    ]
    for b in t.blocks:
        head = rf"\textit{{{tex_escape(task_name(b.task))}}}" + (f", {tex_escape(b.note)}" if b.note else "")
        lines += [r"\midrule", rf"\multicolumn{{{ncol}}}{{l}}{{{head}}} \\", r"\midrule"]
        for s, cells in b.rows:
            lines.append(tex_escape(system_name(s)) + " & " + " & ".join(_tex_cell(c) for c in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if t.note:
        lines.append(rf"\par\smallskip{{\footnotesize {tex_escape(t.note)}}}")
    lines += [r"\end{table}", ""]
    return "\n".join(lines)
