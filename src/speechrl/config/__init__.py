"""Typed experiment configuration (see DESIGN.md).

* :mod:`speechrl.config.fields`: the dataclass sections, one documented field per option, and
  the cross-field checks (:meth:`Config.check`). Read this to learn what a config can say.
* :mod:`speechrl.config.parser`: YAML loading, deep merge, type coercion and validation
  (:func:`load_config`, :func:`parse_config`, :func:`from_dict`, :func:`dump_config`).
* :mod:`speechrl.config.slices`: the part of the config each pipeline job reads (its rerun trigger).
* :mod:`speechrl.config.schema`: the JSON schema at ``workflow/schemas/config.schema.yaml``
  (:func:`schema_yaml`; ``speechrl schema`` regenerates it).
"""

from speechrl.config.errors import ConfigError
from speechrl.config.fields import (
    Config,
    DataConfig,
    EvaluateConfig,
    HubConfig,
    LoraConfig,
    ModelConfig,
    ReportConfig,
    RLConfig,
    SFTConfig,
    SuiteConfig,
    SyntheticConfig,
    TinyModelConfig,
    TrackingConfig,
    TrainConfig,
    opt,
    section,
)
from speechrl.config.parser import deep_merge, dump_config, from_dict, load_config, parse_config, slice_config
from speechrl.config.schema import json_schema, schema_yaml

__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "EvaluateConfig",
    "HubConfig",
    "LoraConfig",
    "ModelConfig",
    "RLConfig",
    "ReportConfig",
    "SFTConfig",
    "SuiteConfig",
    "SyntheticConfig",
    "TinyModelConfig",
    "TrackingConfig",
    "TrainConfig",
    "deep_merge",
    "dump_config",
    "from_dict",
    "json_schema",
    "load_config",
    "opt",
    "parse_config",
    "schema_yaml",
    "section",
    "slice_config",
]
