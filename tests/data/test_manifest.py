"""The one manifest format: round trip, and malformed lines named by file and line."""

from __future__ import annotations

import json

import pytest

from speechrl.data.manifest import Example, ManifestError, read_manifest, scan_manifest, write_manifest


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


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        (_row(id="b", prompt=None), "field 'prompt' must be a string, got null (id=b)"),
        (_row(id="b", prompt=3), "field 'prompt' must be a string, got number 3 (id=b)"),
        (_row(id="b", task=None), "field 'task' must be a string, got null (id=b)"),
        (_row(id="b", task=7), "field 'task' must be a string, got number 7 (id=b)"),
        (_row(id=None), "field 'id' must be a string, got null (id=?)"),
        (_row(id=12), "field 'id' must be a string, got number 12 (id=?)"),
        (_row(id=""), "field 'id' must be a non-empty string, got '' (id=?)"),
        (_row(id="b", audio=""), "field 'audio' must be a non-empty string"),
        (_row(id="b", language=["en"]), "field 'language' must be a string, got list [\"en\"] (id=b)"),
        (_row(id="b", target_language=None), "field 'target_language' must be a string, got null (id=b)"),
        (_row(id="b", references=[""]), "references[0] is empty (''); every reference must be non-blank text (id=b)"),
        (_row(id="b", references=["ok", "  "]), "references[1] is empty ('  '); every reference must be non-blank text (id=b)"),
        (_row(id="b", references=""), "references[0] is empty"),
        (_row(id="b", references=["\u200b"]), "references[0] is empty ('\\u200b')"),
        (_row(id="b", references=["ok", None]), "references[1] must be a string, got null (id=b)"),
        (_row(id="b", extra=[1]), "field 'extra' must be an object, got list [1] (id=b)"),
        (_row(id="b", extra=None), "field 'extra' must be an object, got null (id=b)"),
    ],
)
def test_wrong_types_and_empty_references_are_named(tmp_path, row, needle):
    p = tmp_path / "m.jsonl"
    p.write_text(json.dumps(_row()) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(ManifestError) as e:
        read_manifest(p)
    assert str(e.value).startswith(f"{p}:2: ") and needle in str(e.value)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(tmp_path, constant):
    p = tmp_path / "m.jsonl"
    p.write_text(json.dumps(_row()).replace('"p"', constant) + "\n")  # "prompt": NaN
    with pytest.raises(ManifestError, match=f"m.jsonl:1: not valid JSON \\({constant} is not a JSON value"):
        read_manifest(p)


def test_scan_lists_every_bad_line_and_keeps_the_good(tmp_path):
    p = tmp_path / "m.jsonl"
    lines = [_row(id="a"), _row(id="b", prompt=None), _row(id="a"), _row(id="c"), _row(id="d", references=[" "])]
    p.write_text("\n".join(json.dumps(r) for r in lines) + "\n{oops\n")
    good, bad = scan_manifest(p)
    assert [(n, ex.id) for n, ex in good] == [(1, "a"), (4, "c")]
    assert [(b.file, b.line, b.id) for b in bad] == [(str(p), 2, "b"), (str(p), 3, "a"), (str(p), 5, "d"), (str(p), 6, None)]
    assert bad[1].reason == "duplicate id 'a' (first at line 1)"
    assert bad[0].to_json() == {"file": str(p), "line": 2, "id": "b", "reason": "field 'prompt' must be a string, got null (id=b)"}


def test_missing_and_empty_manifest(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "none.jsonl")
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(ManifestError, match="manifest is empty"):
        read_manifest(tmp_path / "e.jsonl")
