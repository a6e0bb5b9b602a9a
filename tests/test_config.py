"""Config parsing: defaults, unknown keys, types, bounds, registry names, cross-field checks, schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from speechrl.config import Config, ConfigError, load_config, parse_config, schema_yaml

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_and_embedded_config_parse():
    cfg = load_config(ROOT / "config" / "config.yaml")
    assert isinstance(cfg, Config)
    assert cfg.rl.group_size == 8 and cfg.rl.rewards == {"bleu": 1.0}
    assert parse_config({}).sft.batch_size == 16


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"sft": {"lrate": 1.0}}, "unknown config key 'sft.lrate'; valid keys here: max_steps"),
        ({"sft": {"lr": "fast"}}, "sft.lr: expected float, got str 'fast'"),
        ({"sft": {"batch_size": 1.5}}, "sft.batch_size: expected int"),
        ({"sft": {"batch_size": True}}, "sft.batch_size: expected int, got bool"),
        ({"rl": {"group_size": 1}}, "rl.group_size: 1 must be >= 2"),
        ({"rl": {"algorithms": ["gpro"]}}, "rl.algorithms[0]: unknown value 'gpro'; valid choices: dapo, dr_grpo, gmpo, grpo, gspo"),
        ({"rl": {"rewards": {"blue": 1.0}}}, "rl.rewards.blue: unknown value 'blue'; valid choices: "),
        ({"evaluate": {"metrics": ["bleu", "wer2"]}}, "evaluate.metrics[1]: unknown value 'wer2'"),
        ({"data": {"tasks": ["asr"]}}, "data.tasks[0]: unknown value 'asr'; valid choices: ast, mcq, se, sqa, tts"),
        ({"data": "x"}, "data: expected a mapping"),
        ({"model": {"tiny": {"hidden_size": 30, "num_heads": 4}}}, "not divisible by model.tiny.num_heads=4"),
        ({"report": {"decoding": "greedy"}, "evaluate": {"decodings": ["sampled"]}}, "add it there or change report.decoding"),
        ({"rl": {"rewards": {}}}, "rl.rewards is empty"),
        ({"train": {"precision": "bf16"}}, "train.precision='bf16' needs train.backend='deepspeed'"),
        ({"train": {"backend": "ray"}}, "train.backend: unknown value 'ray'; valid choices: local, deepspeed"),
    ],
)
def test_bad_values_name_the_key_and_choices(data, needle):
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    assert needle in str(e.value)


def test_load_config_merges_files_and_names_the_file(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(yaml.safe_dump({"sft": {"lr": 0.1, "batch_size": 2}}))
    b.write_text(yaml.safe_dump({"sft": {"lr": 0.2}}))
    cfg = load_config(a, b)
    assert (cfg.sft.lr, cfg.sft.batch_size) == (0.2, 2)
    bad = tmp_path / "bad.yaml"
    bad.write_text("sft: {lr: [1}\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_hash_is_stable_and_sensitive():
    assert parse_config({}).hash() == parse_config({}).hash()
    assert parse_config({}).hash() != parse_config({"seed": 1}).hash()


def test_committed_schema_is_current():
    committed = (ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text()
    assert committed == schema_yaml(), "run `make schema` (speechrl schema --out workflow/schemas/config.schema.yaml)"


def test_schema_documents_every_key_and_validates_defaults():
    import jsonschema

    schema = yaml.safe_load(schema_yaml())

    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            assert sub.get("description"), f"{path}{key} has no description"
            assert "default" in sub, f"{path}{key} has no default"
            walk(sub, f"{path}{key}.")

    walk(schema, "")
    jsonschema.validate(parse_config({}).to_dict(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"sft": {"lrate": 1}}, schema)


def test_train_section_defaults_and_deepspeed_precision():
    cfg = parse_config({})
    assert (cfg.train.backend, cfg.train.deepspeed_config, cfg.train.precision) == ("local", "config/deepspeed/zero2.json", "fp32")
    cfg = parse_config({"train": {"backend": "deepspeed", "precision": "bf16"}})
    assert cfg.train.precision == "bf16"


def test_config_package_keeps_its_public_names():
    import speechrl.config as c
    from speechrl.config import fields, parser, schema

    for name in ("Config", "ConfigError", "LoraConfig", "TinyModelConfig", "dump_config", "load_config", "parse_config", "schema_yaml", "deep_merge", "from_dict"):
        assert hasattr(c, name), name
    assert c.Config is fields.Config and c.load_config is parser.load_config and c.schema_yaml is schema.schema_yaml
    assert "seed 00" not in schema_yaml(), "cite papers by author, year and arXiv id"


def test_yaml_exponent_floats_are_numbers(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("sft: {lr: 1e-3, weight_decay: 5E-4}\nrl: {lr: 2e-6}\n")  # PyYAML (YAML 1.1) reads these as strings
    assert yaml.safe_load(p.read_text())["sft"]["lr"] == "1e-3"
    cfg = load_config(p)
    assert (cfg.sft.lr, cfg.sft.weight_decay, cfg.rl.lr) == (0.001, 0.0005, 2e-6)
    assert cfg.hash() == load_config(p, overrides={"sft": {"lr": 0.001, "weight_decay": 0.0005}, "rl": {"lr": 2e-6}}).hash()
    for text in ("abc", "nan", "inf", "1e-3x", ""):
        p.write_text(f"sft: {{lr: '{text}'}}\n")
        with pytest.raises(ConfigError, match=f"sft.lr: expected float, got str '{text}'"):
            load_config(p)
    p.write_text("sft: {lr: -1e-3}\n")
    with pytest.raises(ConfigError, match="sft.lr: -0.001 must be > 0"):
        load_config(p)


def test_on_bad_sample_choices():
    assert parse_config({}).data.on_bad_sample == "error"
    assert parse_config({"data": {"on_bad_sample": "skip"}}).data.on_bad_sample == "skip"
    with pytest.raises(ConfigError, match="data.on_bad_sample: unknown value 'drop'; valid choices: error, skip"):
        parse_config({"data": {"on_bad_sample": "drop"}})
