"""Parsing and validation of a config: YAML files -> merged mapping -> typed :class:`Config`.

Unknown keys, wrong types, out-of-range values and unknown registry names stop with a
:class:`ConfigError` naming the key path and the valid choices; then :meth:`Config.check` runs the
cross-field checks. Also: deep merge of several files, YAML dump, hash (:meth:`Config.hash`).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml

from speechrl.config.errors import ConfigError
from speechrl.config.fields import Config
from speechrl.config.slices import merge, rl_system_parts, select, task_config

__all__ = ["ConfigError", "deep_merge", "dump_config", "from_dict", "load_config", "parse_config", "slice_config", "task_cfg"]


def _registry_choices(kind: str) -> list[str]:
    """Valid names of a registry, imported lazily (the registries import torch)."""
    if kind == "preset":
        from speechrl.algos import PRESETS

        return PRESETS.names()
    if kind in ("reward", "metric"):  # one scorer library serves rewards and metrics
        from speechrl.rewards import REWARDS

        return REWARDS.names()
    if kind == "model":
        from speechrl.models.adapters import MODELS

        return MODELS.names()
    if kind == "codec":
        from speechrl.audio.codecs import CODECS

        return CODECS.names()
    raise KeyError(kind)


# Registries that import nothing heavy: checked even with registries=False (the Snakefile's parse).
_LIGHT = {"task"}


def _light_choices(kind: str) -> list[str]:
    from speechrl.tasks import TASKS

    return TASKS.names()


def _origin(tp: Any) -> Any:
    return typing.get_origin(tp)


def _is_optional(tp: Any) -> tuple[bool, Any]:
    if _origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def _choices(meta: dict[str, Any]) -> list[Any] | None:
    c = meta.get("choices")
    if isinstance(c, str) and c.startswith("registry:"):
        if c.split(":", 1)[1] in _LIGHT:
            return _light_choices(c.split(":", 1)[1])
        if not meta.get("registries", True):  # parse_config(..., registries=False)
            return None
        return _registry_choices(c.split(":", 1)[1])
    return c


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str, meta: dict[str, Any]) -> Any:
    optional, tp = _is_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key}: a value is required ({_type_name(tp)}), got null")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping (section), got {type(value).__name__}")
        return from_dict(tp, value, prefix=key, registries=meta.get("registries", True))
    origin = _origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list of {_type_name(item_tp)}, got {type(value).__name__} {value!r}")
        return [_scalar(v, item_tp, f"{key}[{i}]", meta) for i, v in enumerate(value)]
    if origin is dict:
        _, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of name -> {_type_name(val_tp)}, got {type(value).__name__}")
        out = {}
        for k, v in value.items():
            _check_choice(k, f"{key}.{k}", meta)
            out[str(k)] = _scalar(v, val_tp, f"{key}.{k}", {**meta, "choices": None})
        return out
    return _scalar(value, tp, key, meta)


def _check_choice(value: Any, key: str, meta: dict[str, Any]) -> None:
    choices = _choices(meta)
    if choices is not None and value not in choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"{key}: unknown value {value!r}; valid choices: {', '.join(map(str, choices))}{hint}")


# A number that PyYAML (YAML 1.1) reads as a string: "1e-3", "5E-4" (YAML 1.1 wants a dot and a signed
# exponent). Accepted for float fields; "inf", "nan", "abc" are not. Also a JSON-schema pattern.
FLOAT_PATTERN = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"


def _scalar(value: Any, tp: Any, key: str, meta: dict[str, Any]) -> Any:
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if tp is float and isinstance(value, str) and re.fullmatch(FLOAT_PATTERN, value):
        value = float(value)
    ok = isinstance(value, tp) and not (tp in (int, float) and isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    _check_choice(value, key, meta)
    for bound, test, word in (("ge", lambda v, b: v >= b, ">="), ("gt", lambda v, b: v > b, ">"), ("le", lambda v, b: v <= b, "<=")):
        b = meta.get(bound)
        if b is not None and not test(value, b):
            raise ConfigError(f"{key}: {value!r} must be {word} {b}")
    return value


def from_dict(cls: type, data: dict[str, Any], prefix: str = "", *, registries: bool = True) -> Any:
    """Build dataclass ``cls`` from a (partial) mapping; missing keys take their defaults.
    ``registries=False`` skips the registry-name checks (which import torch)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown config key '{path}'{hint}; valid keys here: {', '.join(fields)}")
        kwargs[key] = _coerce(value, hints[key], path, {**fields[key].metadata, "registries": registries})
    return cls(**kwargs)


def parse_config(data: dict[str, Any] | None, *, registries: bool = True, tasks: bool = True) -> Config:
    """Typed, checked :class:`Config` from a (partial) mapping. ``registries=False`` skips the
    registry-name checks, so no torch import: the Snakefile validates this way when it builds the
    DAG (the JSON schema it validates against lists the registry names)."""
    cfg = from_dict(Config, data or {}, registries=registries)
    cfg.check()
    if registries:
        check_segmenters(cfg)
    # A suite config (it lists data.tasks) holds every task's settings: each task's own config (top level < task
    # defaults < tasks.<task>) must hold too. A job's config slice names no tasks: it is one task's config already,
    # checked against its task by the job (speechrl.cli).
    listed = tasks and isinstance((data or {}).get("data"), dict) and "tasks" in data["data"]
    for task in cfg.data.tasks if listed else []:
        try:
            tc = from_dict(Config, task_config(data or {}, task), registries=registries)
            tc.check()
            if registries:
                check_segmenters(tc)
                from speechrl.tasks.checks import check_task

                check_task(tc, task)
        except KeyError as e:
            raise ConfigError(str(e.args[0])) from None
        except ConfigError as e:
            raise ConfigError(f"task '{task}' (its settings: the top level, its defaults, tasks.{task}): {e}") from None
    return cfg


def check_segmenters(cfg: Config) -> None:
    """``rl.segmenter_opts`` and ``suite.segmenter_sweep`` name options the segmenters take, with valid values, and
    each sweep system's preset has a segmenter that takes its option (imports the algorithm registries)."""
    from speechrl.algos import PRESETS
    from speechrl.algos.segmenters import check_option, segmenter_options

    try:
        for key, value in cfg.rl.segmenter_opts.items():
            check_option(key, value, f"rl.segmenter_opts.{key}")
        for name in cfg.suite.segmenter_sweep:
            preset, _, options = rl_system_parts(name)
            where = f"suite.segmenter_sweep: {name!r}"
            algo = PRESETS.get(preset)
            if not algo.segmenter:
                segmented = [n for n in PRESETS.names() if PRESETS.get(n).segmenter]
                raise ConfigError(f"{where}: preset {preset!r} has no segmenter; sweep one of: {', '.join(segmented)}")
            for key, value in options.items():
                takes = segmenter_options(algo.segmenter)
                if key not in takes:
                    raise ConfigError(f"{where}: the segmenter of {preset} ({algo.segmenter}) takes {', '.join(takes)}, not {key!r}")
                check_option(key, value, where)
    except KeyError as e:  # an unknown preset: the message lists the valid ones
        raise ConfigError(f"suite.segmenter_sweep: {e}") from None
    except ValueError as e:
        raise ConfigError(str(e)) from None


def task_cfg(cfg: Config, task: str, *, registries: bool = True) -> Config:
    """The typed config of ``task``'s jobs (see :func:`speechrl.config.slices.task_config`). Parsed without
    ``data.tasks``: checked with the task list, each other task would be checked against *this* task's settings."""
    data = task_config(cfg.to_dict(), task)
    data["data"] = {k: v for k, v in data["data"].items() if k != "tasks"}  # one task's config: its jobs name no tasks
    return parse_config(data, registries=registries)


def slice_config(cfg: Config, name: str, *, registries: bool = True) -> Config:
    """``cfg`` with every key outside config slice ``name`` reset to its default
    (:mod:`speechrl.config.slices`); the result passes the same checks as a whole config."""
    try:
        return parse_config(select(cfg.to_dict(), name), registries=registries)
    except KeyError as e:  # unknown slice name
        raise ConfigError(e.args[0]) from None
    except ConfigError as e:
        raise ConfigError(f"config slice '{name}': {e}") from None


def load_config(*paths: str | Path, overrides: dict[str, Any] | None = None, tasks: bool = True) -> Config:
    """Load and merge YAML files (later ones win, deep merge) plus ``overrides``; validate. ``tasks=False`` for a
    job's config (one task's settings already): its task list is not checked task by task."""
    merged: dict[str, Any] = {}
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
        merged = deep_merge(merged, data)
    merged = deep_merge(merged, overrides or {})
    try:
        return parse_config(merged, tasks=tasks)
    except ConfigError as e:
        where = ", ".join(str(p) for p in paths) or "overrides"
        raise ConfigError(f"{where}: {e}") from None


deep_merge = merge  # config files and overrides merge like a task's settings (speechrl.config.slices.merge)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
