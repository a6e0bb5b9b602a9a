"""Reward cache (memory + sqlite), failure isolation, per-reward normalisation and the se_composite weights."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from speechrl.registry import UnknownNameError
from speechrl.rewards import REWARDS, Scorer, combine, register, score_both, score_samples
from speechrl.rewards import cache as C
from speechrl.rewards.base import composite_weights, normalize_scores, se_composite


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(C.CACHE_ENV, raising=False)
    C.clear_cache()
    C.pop_stats()
    yield
    C.clear_cache()


@pytest.fixture
def fake() -> Iterator[dict]:
    """Registers scorers whose calls are counted; removed afterwards."""
    calls: dict = {"n": 0, "samples": 0}
    added: list[str] = []

    def add(name: str, fn, **kw) -> None:
        def sample(hyps, refs, **cols):
            calls["n"] += 1
            calls["samples"] += len(hyps)
            return fn(hyps, refs, **cols)

        register(Scorer(name, sample, **kw))
        added.append(name)

    calls["add"] = add
    yield calls
    for name in added:
        REWARDS._entries.pop(name)


def length_score(hyps, refs, **_):
    return [min(1.0, len(h) / 10) for h in hyps]


def test_second_call_is_a_cache_hit(fake) -> None:
    fake["add"]("t_len", length_score)
    hyps, refs = ["abc", "abcdef"], [["x"], ["y"]]
    assert score_samples("t_len", hyps, refs) == pytest.approx([0.3, 0.6])
    assert fake["n"] == 1
    stats: dict = {}
    assert combine({"t_len": 1.0}, hyps, refs, stats=stats)[1]["t_len"] == pytest.approx([0.3, 0.6])
    assert fake["n"] == 1  # not called again
    assert stats == {C.HITS: 2.0, C.MISSES: 0.0, C.FAILED: 0.0}
    # a partly new batch: only the miss is scored
    assert score_both("t_len", ["abc", "abcdefghij"], [["x"], ["z"]])[1] == pytest.approx([0.3, 1.0])
    assert fake["n"] == 2 and fake["samples"] == 3
    assert C.pop_stats() == {C.HITS: 3.0, C.MISSES: 3.0, C.FAILED: 0.0}
    assert C.pop_stats()[C.HITS] == 0.0


def test_key_includes_refs_and_columns(fake) -> None:
    fake["add"]("t_col", lambda hyps, refs, audio, **c: [float(np.mean(a)) for a in audio], columns=("audio",))
    a1, a2 = np.zeros(4, dtype=np.float32), np.ones(4, dtype=np.float32)
    assert score_samples("t_col", ["h"], [["r"]], audio=[a1]) == [0.0]
    assert score_samples("t_col", ["h"], [["r"]], audio=[a2]) == [1.0]
    assert score_samples("t_col", ["h"], [["r"]], audio=[a1.copy()], other=[object()]) == [0.0]
    assert fake["n"] == 2  # same hyp/refs/audio -> hit; an unused column does not matter
    k = [C.sample_key(REWARDS.get("t_col"), "h", r, {}) for r in (["r"], ["r2"], ["r", "r2"])]
    assert len(set(k)) == 3


def test_uncacheable_values_and_scorers(fake) -> None:
    fake["add"]("t_obj", lambda hyps, refs, thing, **c: [0.5] * len(hyps), columns=("thing",))
    fake["add"]("t_nocache", length_score, cacheable=False)
    for _ in range(2):
        score_samples("t_obj", ["h"], [["r"]], thing=[object()])
        score_samples("t_nocache", ["h"], [["r"]])
    assert fake["n"] == 4


def test_failure_becomes_none_and_is_counted(fake) -> None:
    def flaky(hyps, refs, **_):
        if any("boom" in h for h in hyps):
            raise RuntimeError("cannot score")
        return [0.25 if h == "nan" else 1.0 for h in hyps] if "nan" not in hyps else [math.nan if h == "nan" else 1.0 for h in hyps]

    fake["add"]("t_flaky", flaky)
    stats: dict = {}
    totals, per = combine({"t_flaky": 1.0}, ["ok", "boom", "nan", "fine"], [["r"]] * 4, stats=stats)
    assert per["t_flaky"] == [1.0, None, None, 1.0]  # never a silent 0
    assert totals[0] == 1.0 and math.isnan(totals[1]) and math.isnan(totals[2])
    assert stats[C.FAILED] == 2.0
    assert fake["n"] == 5  # one batch, then one call per sample
    # failures are not cached: scored again next time; successes are hits
    assert score_samples("t_flaky", ["ok", "boom"], [["r"]] * 2) == [1.0, None]
    assert C.pop_stats()[C.FAILED] == 3.0


def test_disk_cache_shared_between_processes(fake, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake["add"]("t_disk", lambda hyps, refs, **c: [None if h == "-" else 0.5 for h in hyps])
    monkeypatch.setenv(C.CACHE_ENV, str(tmp_path / "sub" / "rewards.sqlite"))
    assert score_samples("t_disk", ["a", "-"], [["r"]] * 2) == [0.5, None]
    C.clear_cache()  # memory gone: the sqlite file answers (a "does not apply" None included)
    assert score_samples("t_disk", ["a", "-"], [["r"]] * 2) == [0.5, None]
    assert fake["n"] == 1 and (tmp_path / "sub" / "rewards.sqlite").exists()
    C.clear_cache(disk=True)
    score_samples("t_disk", ["a"], [["r"]])
    assert fake["n"] == 2


def test_memory_lru_bound(fake, monkeypatch: pytest.MonkeyPatch) -> None:
    fake["add"]("t_lru", length_score)
    monkeypatch.setattr(C, "MEMORY_SIZE", 2)
    score_samples("t_lru", ["a", "bb", "ccc"], [["r"]] * 3)
    assert len(C._memory) == 2
    score_samples("t_lru", ["a"], [["r"]])  # evicted -> scored again
    assert fake["n"] == 2


def test_normalize_scores() -> None:
    assert normalize_scores([1.0, 2.0, 3.0, None], "zscore") == pytest.approx([-1.224745, 0.0, 1.224745, None])
    assert normalize_scores([0.2, 0.4, 1.0], "minmax") == pytest.approx([0.0, 0.25, 1.0])
    assert normalize_scores([0.3, 0.3], "zscore") == [0.0, 0.0]
    assert normalize_scores([0.3, 0.3], "minmax") == [0.5, 0.5]
    assert normalize_scores([0.3, None], None) == [0.3, None]
    with pytest.raises(ValueError, match="unknown reward normalisation 'l2'"):
        normalize_scores([1.0], "l2")


def test_combine_with_normalisation(fake) -> None:
    fake["add"]("t_len", length_score)
    hyps, refs = ["a", "abc", "abcde"], [["r"]] * 3
    totals, per = combine({"t_len": 2.0, "exact_match": 1.0}, hyps, refs, normalize={"t_len": "minmax"})
    assert per["t_len"] == pytest.approx([0.1, 0.3, 0.5])  # raw scores kept
    assert totals == pytest.approx([0.0, 1.0, 2.0])
    totals, _ = combine({"t_len": 1.0}, hyps, refs, normalize={"t_len": "zscore"})
    assert totals == pytest.approx([-1.224745, 0.0, 1.224745])
    with pytest.raises(ValueError, match="not among the combined scorers"):
        combine({"t_len": 1.0}, hyps, refs, normalize={"bleu": "zscore"})
    with pytest.raises(ValueError, match="unknown reward normalisation"):
        combine({"t_len": 1.0}, hyps, refs, normalize={"t_len": "rank"})


def test_se_composite_weights(fake) -> None:
    # the real dnsmos_ovrl / asr_wer / utmos scorers are defined elsewhere; fakes stand in under other names
    fake["add"]("t_dnsmos", lambda hyps, refs, mos, **c: [(m - 1) / 4 for m in mos], columns=("mos",))
    fake["add"]("t_wer", lambda hyps, refs, wer, **c: [1 - min(1.0, w) for w in wer], columns=("wer",))
    fake["add"]("t_utmos", lambda hyps, refs, ut, **c: [(u - 1) / 4 for u in ut], columns=("ut",))
    w = se_composite(dnsmos="t_dnsmos", wer="t_wer", utmos="t_utmos")
    assert w == pytest.approx({"t_dnsmos": 1 / 3, "t_wer": 1 / 3, "t_utmos": 1 / 3})
    totals, _ = combine(w, ["x", "y"], [["r"], ["r"]], mos=[5.0, 3.0], wer=[0.0, 0.5], ut=[5.0, 1.0])
    assert totals == pytest.approx([1.0, (0.5 + 0.5 + 0.0) / 3])
    assert se_composite(3.0, dnsmos="t_dnsmos", wer="t_wer", utmos="t_utmos", check=False)["t_wer"] == pytest.approx(1.0)
    assert composite_weights("se_composite", check=False) == pytest.approx({"dnsmos_ovrl": 1 / 3, "asr_wer": 1 / 3, "utmos": 1 / 3})
    with pytest.raises(UnknownNameError, match="unknown reward 'nope'"):
        se_composite(dnsmos="nope", wer="t_wer", utmos="t_utmos")
    with pytest.raises(ValueError, match="unknown reward composite"):
        composite_weights("se")


def test_file_columns_key_on_content_and_settings_on_env(fake, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake["add"]("_t_file", lambda hyps, refs, audio, **_: [float(len(open(a, "rb").read())) / 10 for a in audio],
                columns=("audio",), file_columns=("audio",), settings=("_T_MODEL",))
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    assert score_samples("_t_file", ["h"], [["r"]], audio=[str(f)]) == [0.3]
    assert score_samples("_t_file", ["h"], [["r"]], audio=[str(f)]) == [0.3] and fake["n"] == 1
    f.write_bytes(b"abcde")  # same path, new bytes -> scored again
    assert score_samples("_t_file", ["h"], [["r"]], audio=[str(f)]) == [0.5] and fake["n"] == 2
    copy = tmp_path / "b.bin"
    copy.write_bytes(b"abcde")  # another path, same bytes -> a hit
    assert score_samples("_t_file", ["h"], [["r"]], audio=[str(copy)]) == [0.5] and fake["n"] == 2
    monkeypatch.setenv("_T_MODEL", "other")  # another model setting -> scored again
    assert score_samples("_t_file", ["h"], [["r"]], audio=[str(copy)]) == [0.5] and fake["n"] == 3
    assert C.content_key(str(tmp_path / "missing.wav")) is None
