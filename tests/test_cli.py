"""The CLI on bad input: one clear line naming the file / line / key, exit status 2, earlier outputs intact."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import yaml

from speechrl.cli import main
from speechrl.config import dump_config, parse_config

from conftest import tiny_dict


def _run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code, capsys.readouterr().err


@pytest.fixture
def cfg_file(tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text(dump_config(parse_config(tiny_dict(tmp_path / "results"))))
    return p


@pytest.fixture
def broken_data(tmp_path, tiny_data):
    d = tmp_path / "data"
    shutil.copytree(tiny_data["sqa"], d)
    return d


def _sft(cfg_file, data, model, out):
    return ["sft", "--config", str(cfg_file), "--task", "sqa", "--data", str(data), "--model", str(model / "model" if (model / "model").exists() else model), "--out", str(out)]


def test_corrupt_audio_names_file_and_id_and_keeps_previous_output(cfg_file, broken_data, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "sft"
    out.mkdir()
    (out / "previous.txt").write_text("keep me")
    rows = [json.loads(line) for line in (broken_data / "train.jsonl").read_text().splitlines()]
    (broken_data / rows[2]["audio"]).write_bytes(b"not a wav at all")
    code, err = _run(_sft(cfg_file, broken_data, tiny_model_dir, out), capsys)
    assert code == 2
    assert "cannot decode audio" in err and rows[2]["audio"] in err and f"id={rows[2]['id']}" in err
    assert (out / "previous.txt").read_text() == "keep me"


def test_missing_audio_and_wrong_rate(cfg_file, broken_data, tiny_model_dir, tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    rows = [json.loads(line) for line in (broken_data / "train.jsonl").read_text().splitlines()]
    (broken_data / rows[0]["audio"]).unlink()
    code, err = _run(_sft(cfg_file, broken_data, tiny_model_dir, tmp_path / "o1"), capsys)
    assert code == 2 and "audio file not found" in err and rows[0]["audio"] in err
    sf.write(broken_data / rows[0]["audio"], np.zeros(8000), 8000)
    code, err = _run(_sft(cfg_file, broken_data, tiny_model_dir, tmp_path / "o2"), capsys)
    assert code == 2 and "sample rate 8000 Hz, expected 16000 Hz" in err
    sf.write(broken_data / rows[0]["audio"], np.zeros(0), 16000)
    code, err = _run(_sft(cfg_file, broken_data, tiny_model_dir, tmp_path / "o3"), capsys)
    assert code == 2 and "audio is empty" in err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o3").exists()


def test_manifest_missing_field_names_line(cfg_file, broken_data, tiny_model_dir, tmp_path, capsys):
    lines = (broken_data / "valid.jsonl").read_text().splitlines()
    row = json.loads(lines[1])
    del row["references"]
    lines[1] = json.dumps(row)
    (broken_data / "valid.jsonl").write_text("\n".join(lines) + "\n")
    code, err = _run(_sft(cfg_file, broken_data, tiny_model_dir, tmp_path / "o"), capsys)
    assert code == 2 and f"{broken_data / 'valid.jsonl'}:2: missing field(s) references (id={row['id']})" in err


def test_bad_config_and_unknown_algorithm(tmp_path, capsys, tiny_data, tiny_model_dir, cfg_file):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"rl": {"rewards": {"bleu": "high"}}}))
    code, err = _run(["resolve-config", "--config", str(bad), "--out", str(tmp_path / "r.yaml")], capsys)
    assert code == 2 and "bad.yaml: rl.rewards.bleu: expected float, got str 'high'" in err
    assert not (tmp_path / "r.yaml").exists()
    code, err = _run(["rl", "--config", str(cfg_file), "--task", "sqa", "--algo", "gspo2", "--data", str(tiny_data["sqa"]),
                      "--model", str(tiny_model_dir), "--out", str(tmp_path / "rl")], capsys)
    assert code == 2 and "unknown algorithm preset 'gspo2'; valid: " in err


def test_resolve_config_json_matches_file(tmp_path, cfg_file):
    main(["resolve-config", "--json", json.dumps(yaml.safe_load(cfg_file.read_text())), "--out", str(tmp_path / "r.yaml")])
    assert (tmp_path / "r.yaml").read_text() == cfg_file.read_text()


def test_resolve_config_slice_keeps_the_slice_and_defaults_the_rest(tmp_path, cfg_file, capsys):
    from speechrl.config import load_config

    full = load_config(cfg_file)
    out = tmp_path / "rl-leaf.yaml"
    main(["resolve-config", "--config", str(cfg_file), "--slice", "rl-leaf", "--out", str(out)])
    text = out.read_text()
    assert text.startswith("# Config slice 'rl-leaf'")
    part = load_config(out)  # the comment header is plain YAML: every stage reads the file as before
    assert part.rl.algorithms == ["leaf"] and part.rl.group_size == full.rl.group_size and part.rl.steps == full.rl.steps
    assert part.sft == parse_config({}).sft and part.suite == parse_config({}).suite
    code, err = _run(["resolve-config", "--config", str(cfg_file), "--slice", "rl_leaf", "--out", str(out)], capsys)
    assert code == 2 and "unknown config slice 'rl_leaf'; valid: tracking, data" in err


# ---- data.on_bad_sample: error (exit 2, before training) or skip (listed in skipped.jsonl)

def _edit_train(broken_data, fn):
    path = broken_data / "train.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    fn(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def test_empty_reference_stops_sft_before_training(cfg_file, broken_data, tiny_model_dir, tmp_path, capsys):
    rows = _edit_train(broken_data, lambda rows: rows[3].update(references=[""]))
    code, err = _run(_sft(cfg_file, broken_data, tiny_model_dir, tmp_path / "o"), capsys)
    assert code == 2 and f"{broken_data / 'train.jsonl'}:4: references[0] is empty ('')" in err and f"id={rows[3]['id']}" in err
    assert not (tmp_path / "o").exists()


def test_train_test_leak_stops_sft(cfg_file, broken_data, tiny_model_dir, tmp_path, capsys):
    test_id = json.loads((broken_data / "test.jsonl").read_text().splitlines()[0])["id"]
    _edit_train(broken_data, lambda rows: rows[0].update(id=test_id))
    code, err = _run(_sft(cfg_file, broken_data, tiny_model_dir, tmp_path / "o"), capsys)
    assert code == 2 and f"train.jsonl:1: id '{test_id}' is also in {broken_data / 'test.jsonl'}:1" in err


def test_skip_mode_trains_on_the_rest_and_lists_the_bad(cfg_file, broken_data, tiny_model_dir, tmp_path, capsys):
    cfg = yaml.safe_load(cfg_file.read_text())
    cfg["data"]["on_bad_sample"] = "skip"
    cfg_file.write_text(yaml.safe_dump(cfg))
    rows = _edit_train(broken_data, lambda rows: (rows[1].update(prompt=None), rows[5].update(references=[" "])))
    lines: list[str] = []  # the job log (the speechrl logger's handler keeps the stderr of the first test that made it)
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logging.getLogger("speechrl").addHandler(handler)
    try:
        main(_sft(cfg_file, broken_data, tiny_model_dir, tmp_path / "o"))
    finally:
        logging.getLogger("speechrl").removeHandler(handler)
    skipped = [json.loads(line) for line in (tmp_path / "o" / "skipped.jsonl").read_text().splitlines()]
    assert [(s["line"], s["id"]) for s in skipped] == [(2, rows[1]["id"]), (6, rows[5]["id"])]
    assert any("skipped 2 bad sample(s)" in line for line in lines)


def test_evaluate_several_seeds_in_one_process_equals_one_job_per_seed(cfg_file, tiny_data, tiny_model_dir, tmp_path):
    """`--seeds 0 1` with '{seed}' in --out: each seed's folder holds what a job of its own (--seed N) writes."""
    base = ["evaluate", "--config", str(cfg_file), "--task", "sqa", "--system", "base", "--data", str(tiny_data["sqa"]),
            "--model", str(tiny_model_dir)]
    main([*base, "--seeds", "0", "1", "--out", str(tmp_path / "both" / "s{seed}")])
    main([*base, "--seed", "1", "--out", str(tmp_path / "one")])

    def result(d):
        m = json.loads((d / "metrics.json").read_text())
        m.pop("timing")
        return m, (d / "samples.jsonl").read_text(), json.loads((d / "manifest.json").read_text())["seed"]

    assert result(tmp_path / "both" / "s1") == result(tmp_path / "one")
    s0, s1 = result(tmp_path / "both" / "s0"), result(tmp_path / "both" / "s1")
    assert (s0[0]["seed"], s0[2], s1[0]["seed"]) == (0, 0, 1)
    assert s0[1] != s1[1]  # the sampled decoding follows the seed
    command = json.loads((tmp_path / "both" / "s1" / "manifest.json").read_text())["command"]  # what reruns s1 alone
    assert "--seeds" not in command and command[-6:] == ["--seed", "1", "--model", str(tiny_model_dir), "--out",
                                                         str(tmp_path / "both" / "s1")]


def test_evaluate_several_seeds_needs_one_folder_each_and_every_model_first(cfg_file, tiny_data, tiny_model_dir, tmp_path, capsys):
    base = ["evaluate", "--config", str(cfg_file), "--task", "sqa", "--system", "grpo", "--data", str(tiny_data["sqa"])]
    code, err = _run([*base, "--model", str(tiny_model_dir), "--seeds", "0", "1", "--out", str(tmp_path / "e")], capsys)
    assert code == 2 and "'{seed}' in --out" in err
    code, err = _run([*base, "--model", str(tmp_path / "rl" / "s{seed}"), "--seeds", "0", "1", "--out", str(tmp_path / "e{seed}")],
                     capsys)
    assert code == 2 and str(tmp_path / "rl" / "s0") in err and str(tmp_path / "rl" / "s1") in err
    assert not (tmp_path / "e0").exists()
