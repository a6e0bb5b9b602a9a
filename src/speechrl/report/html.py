"""Self-contained HTML rendering of the report (inline CSS; no JavaScript, no external assets)."""

from __future__ import annotations

from html import escape

from speechrl.report.audio import AudioSection
from speechrl.report.results import Result
from speechrl.report.tables import LOWER_IS_BETTER, Cell, Table, fmt_change, fmt_value, metric_name, system_name, task_name

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#222}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0 1.2rem;font-variant-numeric:tabular-nums}
th,td{padding:.3rem .7rem;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}
thead th{border-top:2px solid #222;border-bottom:1px solid #222}
tbody:last-child tr:last-child td{border-bottom:2px solid #222}
tr.task th{text-align:left;font-style:italic;font-weight:600;background:#f3f3f3;border-bottom:1px solid #bbb}
tr.task span{font-style:normal;font-weight:400;color:#555;margin-left:.6rem}
td small{display:block;color:#666;font-size:.72rem;white-space:nowrap}
td small .up{color:#1a7f37}td small .down{color:#b42318}
.note{background:#f8f8f8;border-left:3px solid #999;padding:.5rem 1rem;font-size:.9rem}
code{font-size:.85rem}
table.audio td{text-align:left}table.audio audio{width:14rem}
"""

HOW_TO_READ = (
    "Rows are systems (base model, SFT, then RL algorithms), columns metrics: text metrics on a 0-100 scale "
    "(higher is better); audio metrics on their own scale (DNSMOS / UTMOS / PESQ: MOS, STOI in %, SI-SDR in dB; "
    "WER % / CER %: lower is better), said under each table. Under each value: the relative change in percent of the base model's "
    "value and of the SFT model's value (n/a where that value is below 1). With several seeds a value "
    "is the mean ± the 95% CI half-width over seeds. Bold: best value per column within a task. Each task "
    "gets the tables its registry entry lists (speech tasks their own table first), for the report's decoding; "
    "the papers' own numbers (their data and models, not ours), the other decodings, the per-seed values, "
    "the reward ablation and LEAF vs GRPO follow; tasks with the same columns share a table."
)


def _change(ref: str, c: float | None, lower_better: bool = False) -> str:
    good = None if c is None or c == 0 else (c < 0) == lower_better
    cls = "" if good is None else (' class="up"' if good else ' class="down"')
    return f"<span{cls}>{escape(fmt_change(c))}</span> vs {escape(system_name(ref))}"


def _cell(c: Cell, lower_better: bool = False) -> str:
    value = escape(fmt_value(c.value, c.ci))
    if c.best:
        value = f"<b>{value}</b>"
    if c.changes:
        value += "".join(f"<small>{_change(ref, x, lower_better)}</small>" for ref, x in c.changes)
    return f"<td>{value}</td>"


def table_html(t: Table) -> str:
    head = "".join(f"<th>{escape(metric_name(m))}</th>" for m in t.metrics)
    parts = [f"<h2>{escape(t.title)}</h2>", "<table>", f"<thead><tr><th>System</th>{head}</tr></thead>"]
    for b in t.blocks:
        note = f"<span>{escape(b.note)}</span>" if b.note else ""
        parts.append(f'<tbody><tr class="task"><th colspan="{len(t.metrics) + 1}">{escape(task_name(b.task))}{note}</th></tr>')
        for s, cells in b.rows:
            tds = "".join(_cell(c, m in LOWER_IS_BETTER) for c, m in zip(cells, t.metrics))
            parts.append(f"<tr><td>{escape(system_name(s))}</td>{tds}</tr>")
        parts.append("</tbody>")
    parts.append("</table>")
    return "\n".join(parts)


def audio_html(sections: list[AudioSection]) -> str:
    """One table per audio task: a row per test item, an ``<audio controls>`` player per clip."""
    parts = []
    for sec in sections:
        parts.append(f"<h3>{escape(task_name(sec.task))}</h3>")
        if sec.examples:
            parts.append(f'<p class="note">{escape(sec.decoding)} decoding; the first {len(sec.examples)} test items.</p>')
            head = "".join(f"<th>{escape(label)}</th>" for label in sec.labels)
            parts += ['<table class="audio">', f"<thead><tr><th>Item</th>{head}</tr></thead>", "<tbody>"]
            for e in sec.examples:
                cells = "".join(f'<td><audio controls preload="none" src="{escape(c.file)}"></audio></td>' if c.file
                                else "<td>—</td>" for c in e.clips)
                parts.append(f"<tr><td><code>{escape(e.id)}</code><small>{escape(e.text)}</small></td>{cells}</tr>")
            parts += ["</tbody>", "</table>"]
        if sec.notes:
            parts.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in sec.notes) + "</ul>")
    return "\n<h2>Audio examples</h2>\n" + "\n".join(parts) if parts else ""


def to_html(title: str, tables: list[Table], sources: list[Result], figures: list[tuple[str, str]] = (),
            intro: str = "", audio: list[AudioSection] = ()) -> str:
    """The whole page: title, how-to-read note, tables, figures (``(caption, file)``), audio examples, source
    files with their config hashes."""
    items = "\n".join(
        f"<li><code>{escape(str(r.path))}</code> — {escape(r.task)} / {escape(system_name(r.system))}, "
        f"config <code>{escape(r.config_hash)}</code></li>"
        for r in sources
    )
    body = "\n".join(table_html(t) + (f'<p class="note">{escape(t.note)}</p>' if getattr(t, "note", "") else "") for t in tables)
    if figures:
        body += "\n<h2>Training curves</h2>\n" + "\n".join(
            f'<figure><img src="{escape(f)}" alt="{escape(cap)}" style="max-width:100%"><figcaption>{escape(cap)}</figcaption></figure>'
            for cap, f in figures)
    body += audio_html(list(audio))
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{escape(title)}</title>\n'
        f"<style>{CSS}</style>\n</head>\n<body>\n<h1>{escape(title)}</h1>\n"
        f'<p class="note"><b>How to read.</b> {escape(HOW_TO_READ)}</p>\n'
        + (f'<p class="note">{escape(intro)}</p>\n' if intro else "")
        + f'{body}\n'
        f"<h2>Sources</h2>\n<ul>\n{items}\n</ul>\n</body>\n</html>\n"
    )
