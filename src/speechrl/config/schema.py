"""JSON schema (draft 2020-12) of the config, generated from the dataclass declarations.

``speechrl schema --out workflow/schemas/config.schema.yaml`` writes it; Snakemake validates the
config against it and a test checks the committed file is current.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import yaml

from speechrl.config.fields import Config
from speechrl.config.parser import FLOAT_PATTERN, _choices, _is_optional, _origin

def json_schema(cls: type = Config) -> dict[str, Any]:
    """JSON schema (draft 2020-12) of a config dataclass: description + default on every key."""
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        props[f.name] = _field_schema(hints[f.name], f)
    return {
        "type": "object",
        "description": (cls.__doc__ or "").strip(),
        "additionalProperties": False,
        "properties": props,
    }


def _field_schema(tp: Any, f: dataclasses.Field) -> dict[str, Any]:
    meta = dict(f.metadata)
    optional, tp = _is_optional(tp)
    if dataclasses.is_dataclass(tp):
        s = json_schema(tp)
        s["description"] = (tp.__doc__ or meta.get("doc", "")).strip()
        s["default"] = {}
        return s
    s = _type_schema(tp, meta)
    if optional:
        s["type"] = [*s["type"], "null"] if isinstance(s["type"], list) else [s["type"], "null"]
        if "enum" in s:
            s["enum"] = s["enum"] + [None]
    doc = meta.get("doc", "")
    if meta.get("paper"):
        doc += f" Paper: {meta['paper']}."
    s["description"] = doc
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    s["default"] = default
    return s


_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object"}


def _scalar_schema(tp: Any) -> dict[str, Any]:
    """A float also takes a number written as text ("1e-3": PyYAML, YAML 1.1, reads it as a string); the parser converts it."""
    if tp is float:
        return {"type": ["number", "string"], "pattern": FLOAT_PATTERN}
    return {"type": _JSON_TYPES[tp]}


def _type_schema(tp: Any, meta: dict[str, Any]) -> dict[str, Any]:
    origin = _origin(tp)
    choices = _choices(meta)
    if origin is list:
        (item,) = typing.get_args(tp)
        items = _scalar_schema(item)
        if choices is not None:
            items["enum"] = choices
        return {"type": "array", "items": items}
    if origin is dict:
        _, val = typing.get_args(tp)
        s: dict[str, Any] = {"type": "object", "additionalProperties": _scalar_schema(val)}
        if choices is not None:
            s["propertyNames"] = {"enum": choices}
        return s
    s = _scalar_schema(tp)
    if choices is not None:
        s["enum"] = list(choices)
    for bound, key in (("ge", "minimum"), ("gt", "exclusiveMinimum"), ("le", "maximum")):
        if meta.get(bound) is not None:
            s[key] = meta[bound]
    return s


def schema_yaml() -> str:
    header = "# Generated from src/speechrl/config/fields.py by `speechrl schema`; do not edit by hand.\n"
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **json_schema(Config)}
    return header + yaml.safe_dump(schema, sort_keys=False, width=120)
