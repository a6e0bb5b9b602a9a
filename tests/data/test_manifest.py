"""The one manifest format: round trip, and malformed lines named by file and line."""

from __future__ import annotations

import json

import pytest

from speechrl.data.manifest import Example, ManifestError, read_manifest, write_manifest


def _row(**kw):
    row = {"id": "a", "audio": "wavs/a.wav", "prompt": "p", "references": ["r"], "task": "sqa", "language": "en", "split": "train"}
    row.update(kw)
    return row


def test_round_trip_and_extra_fields(tmp_path):
    ex = Example("x1", "wavs/x1.wav", "Q?", ["A."], "sqa", "en", "test", "en", {"voice": "en-us"})
    write_manifest(tmp_path / "m.jsonl", [ex])
    assert read_manifest(tmp_path / "m.jsonl") == [ex]
    (tmp_path / "n.jsonl").write_text(json.dumps(_row(references="single", speaker="s1")) + "\n")
    got = read_manifest(tmp_path / "n.jsonl")[0]
    assert got.references == ["single"] and got.extra == {"speaker": "s1"}


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("{not json", ":2: not valid JSON"),
        (json.dumps({k: v for k, v in _row(id="b").items() if k != "prompt"}), ":2: missing field(s) prompt (id=b)"),
        (json.dumps(_row(id="b", references=[])), ":2: field 'references' must be a non-empty list"),
        (json.dumps(_row(id="b", split="dev")), ":2: field 'split' is 'dev'; valid: train, valid, test"),
        (json.dumps(_row(id="a")), ":2: duplicate id 'a'"),
        ("[1, 2]", ":2: expected a JSON object"),
    ],
)
def test_bad_lines_are_named(tmp_path, line, needle):
    p = tmp_path / "m.jsonl"
    p.write_text(json.dumps(_row()) + "\n" + line + "\n")
    with pytest.raises(ManifestError) as e:
        read_manifest(p)
    assert f"{p}{needle}" in str(e.value)


def test_missing_and_empty_manifest(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "none.jsonl")
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(ManifestError, match="manifest is empty"):
        read_manifest(tmp_path / "e.jsonl")
