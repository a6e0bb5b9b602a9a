"""Report tables of the speech-token tasks (registered in :data:`speechrl.report.builders.REPORT_TABLES`).

* ``se``: speech enhancement after SE-GSPO ("Post-Training Speech Enhancement LMs with Perceptual Rewards",
  2026): base, SFT, the RL algorithm with the composite reward and its single-metric ablation
  (``gspo-<metric>``), on DNSMOS SIG / BAK / OVRL, PESQ, STOI, WER % (and SI-SDR, UTMOS where measured);
  the paper's own DNS2020 numbers follow (:mod:`speechrl.report.paper`, its data and models).
* ``segment_gspo``: TTS with the GSPO family (segment-level GSPO research note, Llasa-1B trial, 2026; GSPO:
  Zheng et al. 2025, arXiv 2507.18071): final test DNSMOS OVRL, WER %, CER % per RL system, then each
  system minus GRPO and minus GSPO, paired by seed.

Scales are those of the ``metrics.json`` corpus values (:mod:`speechrl.rewards`): DNSMOS and UTMOS mean
MOS (1-5), PESQ wideband MOS-LQO (1.04-4.64), STOI in %, SI-SDR in dB. ``asr_wer`` / ``asr_cer`` store
``100 * (1 - error rate)``; these tables show the error rate itself, ``WER % = 100 - asr_wer`` (lower is
better), computed per seed before averaging (:func:`speechrl.report.results.add_error_rates`).
"""

from __future__ import annotations

from speechrl.report.builders import REPORT_TABLES, TableInput, diff_rows, measured, paper_tables, subset
from speechrl.report.tables import Table, build_table, metric_name, order_systems, system_name

SE_COLUMNS = ("decoded", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "pesq", "stoi", "wer_pct", "si_sdr", "utmos")
"""Columns of the ``se`` table, those measured (a value in some row) shown."""

SEGMENT_SYSTEMS = ("grpo", "gspo", "gspo_token", "gspo_segment_window", "gspo_segment_logprob", "gspo_segment_tokenid",
                   "gmpo", "sapo", "p_gspo")
"""Row order of the ``segment_gspo`` table (the RL systems that ran; other RL systems follow)."""

SEGMENT_COLUMNS = ("decoded", "dnsmos_ovrl", "wer_pct", "cer_pct")

SCALES = ("Scales: DNSMOS (SIG, BAK, OVRL) and UTMOS: mean MOS, 1-5; PESQ: wideband MOS-LQO, 1.04-4.64; "
          "STOI in %; SI-SDR in dB. WER % / CER % = 100 − the asr_wer / asr_cer value of metrics.json (which "
          "stores 100·(1 − error rate)), per seed, then averaged; lower is better. ASR: speechrl.rewards.asr. "
          "Decoded %: test outputs with at least one complete codec frame; every other column averages those only.")


def _reward_text(rewards: dict[str, float]) -> str:
    return " + ".join(f"{w:g}·{metric_name(r)}" for r, w in rewards.items()) or "rl.rewards"


@REPORT_TABLES.register("se")
def se_table(inp: TableInput) -> list[Table]:
    """Base, SFT, RL with the composite reward and the single-metric ablation on the SE metrics, mean +- CI
    over seeds, report decoding; then the paper's DNS2020 numbers."""
    spec = inp.spec
    grid, cis = inp.grid()
    if not grid:
        return []
    order = [*spec.system_order, *spec.ablation_systems]
    cols = measured(grid, SE_COLUMNS)
    if not cols:
        return []
    algo = spec.main_system or (spec.ablation[0] if spec.ablation else "")
    rows_note = (f"{system_name(algo)}: RL with the composite reward {_reward_text(spec.rewards)}; "
                 f"{system_name(algo)} (<metric> reward): trained on that metric alone (single-metric ablation)." if algo else "")
    table = build_table("se", f"Speech enhancement: base, SFT, RL with perceptual rewards and single-metric ablation, "
                        f"{inp.decoding} decoding", {inp.task: grid}, order, cols, inp.notes, {inp.task: cis},
                        note=f"{rows_note} {SCALES} Setting mirrored: {inp.setting or 'none'}.".strip())
    return [table, *paper_tables(inp, "se", cols, order_systems(list(grid), order))]


@REPORT_TABLES.register("segment_gspo")
def segment_gspo_tables(inp: TableInput) -> list[Table]:
    """Final test scores of the GSPO-family systems, then their paired differences vs GRPO and vs GSPO."""
    spec = inp.spec
    grid, cis = inp.grid()
    rl = [s for s in grid if s in SEGMENT_SYSTEMS or s in spec.rl_systems or s in spec.sweep]
    cols = measured(subset(grid, rl), SEGMENT_COLUMNS)
    if not rl or not cols:
        return []
    # each sweep system right after its preset
    order = [x for p in dict.fromkeys([*SEGMENT_SYSTEMS, *spec.rl_systems, *spec.sweep])
             for x in (p, *(v for v in spec.sweep if v.partition("@")[0] == p))]
    tables = [build_table("segment_gspo", f"Segment-level GSPO and the GSPO family: final test scores, {inp.decoding} decoding",
                          {inp.task: subset(grid, rl)}, order, cols, inp.notes, {inp.task: subset(cis, rl)}, compare=False,
                          note=(f"RL from SFT with the reward {_reward_text(spec.rewards)}. GSPO-segment: the sequence ratio "
                                "per segment (fixed window W, log-prob jumps over tau nats, or token-id jumps over delta); "
                                "[W=16]: that preset with the segmenter option changed (suite.segmenter_sweep). " + SCALES
                                + f" Setting mirrored: {inp.setting or 'none'}."))]
    for ref in ("grpo", "gspo"):
        others = [s for s in order_systems(rl, order) if s != ref]
        d_grid, d_cis = diff_rows(inp, [(s, ref) for s in others], cols)
        if ref in rl and d_grid:
            tables.append(build_table(
                f"segment_gspo_vs_{ref}", f"Each RL system − {system_name(ref)}, paired by seed, {inp.decoding} decoding",
                {inp.task: d_grid}, [f"diff:{s}-{ref}" for s in others], cols, inp.notes, {inp.task: d_cis}, compare=False,
                note=(f"X − {system_name(ref)}: mean of the per-seed differences over the seeds both ran, 95% CI over those "
                      "seeds (t; paired). WER % / CER %: negative = fewer errors than " + system_name(ref) + ".")))
    return tables
