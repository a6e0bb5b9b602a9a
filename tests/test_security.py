"""Security rules of the code base, kept by reading it: no pickle, no eval / exec, no unsafe YAML, no
``torch.load`` without ``weights_only=True``, no shell (``shell=True``, ``os.system``); and every
``mlflow server`` / ``mlflow ui`` command binds 127.0.0.1 (mlflow's default when no host is named).

Python files are read as syntax trees (a method named ``eval``, like ``model.eval()``, is no builtin);
Snakemake rules, shell scripts and the Makefile line by line. A finding names ``file:line``. A use that
must stay goes in :data:`ALLOWED` with the reason.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE = ("src/speechrl", "workflow", "scripts", "bench", "Snakefile")  # the code rules
COMMANDS = ("src", "tests", "scripts", "workflow", "slurm", "Makefile", "Snakefile")  # the mlflow-host rule
TEXT = {".sh", ".smk", ".bash", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".txt"}
SKIP = {"__pycache__", ".pytest_cache", ".venv"}
# "relative/path:what" -> why it stays (none today)
ALLOWED: dict[str, str] = {}

UNPICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "joblib"}
SAFE_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}
LOCAL_HOST = "127.0.0.1"


def _files(roots: tuple[str, ...], base: Path = ROOT) -> Iterator[Path]:
    for r in roots:
        p = base / r
        if p.is_file():
            yield p
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                parts = f.relative_to(p).parts
                if f.is_file() and not any(x in SKIP or x.endswith(".egg-info") or x.startswith(".") for x in parts):
                    yield f


def _is_python(f: Path) -> bool:
    return f.suffix == ".py"


def _is_text(f: Path) -> bool:
    return f.suffix in TEXT or f.name in {"Makefile", "Snakefile"} or (f.suffix == "" and f.parent.name == "scripts")


# ------------------------------------------------------------------------------------ code rules
def _dotted(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every expression node
        return ""


def _kw(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def python_findings(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` for every breach of the code rules in Python ``source``."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] in UNPICKLERS]
        elif isinstance(node, ast.ImportFrom):
            mod = (node.module or "").split(".")[0]
            if mod in UNPICKLERS:
                out.append((node.lineno, f"from {node.module} import"))
            if mod == "os" and any(a.name in ("system", "popen") for a in node.names):
                out.append((node.lineno, "from os import system / popen"))
        elif isinstance(node, ast.Call):
            func = _dotted(node.func)
            if isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec", "__import__"):
                out.append((node.lineno, f"{node.func.id}()"))
            elif func in ("yaml.load", "yaml.load_all"):
                loader = _kw(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
                if loader is None or _dotted(loader).split(".")[-1] not in SAFE_LOADERS:
                    out.append((node.lineno, f"{func}() without a safe Loader (use yaml.safe_load)"))
            elif func in ("yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load", "yaml.full_load_all"):
                out.append((node.lineno, f"{func}()"))
            elif func == "torch.load" and not _true(_kw(node, "weights_only")):
                out.append((node.lineno, "torch.load() without weights_only=True"))
            elif func.endswith(("np.load", "numpy.load")) and _true(_kw(node, "allow_pickle")):
                out.append((node.lineno, f"{func}(allow_pickle=True)"))
            elif func in ("os.system", "os.popen"):
                out.append((node.lineno, f"{func}()"))
            if _true(_kw(node, "shell")):
                out.append((node.lineno, f"{func}(shell=True)"))
        elif isinstance(node, ast.Attribute) and _dotted(node.value) in UNPICKLERS:
            out.append((node.lineno, f"{_dotted(node)}"))
    return sorted(set(out))


_TEXT_RULES = [
    (re.compile(r"\b(?:import\s+(?:c?pickle|dill|cloudpickle|shelve|marshal)\b|from\s+(?:c?pickle|dill|shelve|marshal)\s+import)"),
     "pickle import"),
    (re.compile(r"\bpickle\.loads?\("), "pickle.load"),
    (re.compile(r"(?<![\w.])(?:eval|exec)\("), "eval() / exec()"),
    (re.compile(r"\byaml\.load(?:_all)?\((?![^)]*Loader=(?:yaml\.)?C?(?:Safe|Base)Loader)"), "yaml.load without a safe Loader"),
    (re.compile(r"\byaml\.(?:unsafe|full)_load"), "yaml.unsafe_load / full_load"),
    (re.compile(r"\btorch\.load\((?![^)]*weights_only=True)"), "torch.load without weights_only=True"),
    (re.compile(r"\bshell\s*=\s*True\b"), "shell=True"),
    (re.compile(r"\bos\.(?:system|popen)\("), "os.system / os.popen"),
]


def text_findings(source: str) -> list[tuple[int, str]]:
    """The code rules line by line, for Snakemake rules and shell scripts (Python inside, not parseable)."""
    return [(i, what) for i, line in enumerate(source.splitlines(), 1) for rx, what in _TEXT_RULES
            if not line.lstrip().startswith("#") and rx.search(line)]


def code_findings(base: Path = ROOT, roots: tuple[str, ...] = CODE) -> list[str]:
    out = []
    for f in _files(roots, base):
        if _is_python(f):
            found = python_findings(f.read_text())
        elif _is_text(f) or f.suffix == ".smk":
            found = text_findings(f.read_text(errors="replace"))
        else:
            continue
        rel = f.relative_to(base)
        out += [f"{rel}:{line}: {what}" for line, what in found if f"{rel}:{what}" not in ALLOWED]
    return out


# ------------------------------------------------------------------------------------ mlflow host
_MLFLOW_CMD = re.compile(r"\bmlflow\s+(server|ui)\b(.*)")
_HOST = re.compile(r"(?<!\S)(?:--host|-h)(?:=|\s+)(\S+)")


def _host_problem(args: str) -> str | None:
    """What is wrong with the rest of an ``mlflow server|ui`` command line (None: 127.0.0.1 or no host)."""
    m = _HOST.search(args)
    if m is None:
        return None
    host = m.group(1).strip("'\"")
    return None if host == LOCAL_HOST else f"binds {host} (not {LOCAL_HOST})"


def _line_commands(text: str, first_line: int = 1) -> Iterator[tuple[int, str]]:
    """``(line, problem)`` for the ``mlflow server|ui`` commands of a text (backslash continuations joined)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start, line = i, lines[i]
        while line.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line.rstrip()[:-1] + " " + lines[i]
        for m in _MLFLOW_CMD.finditer(line):
            if problem := _host_problem(m.group(2)):
                yield first_line + start, f"mlflow {m.group(1)} {problem}"
        i += 1


def _arg(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def python_mlflow_findings(source: str) -> list[tuple[int, str]]:
    """``(line, problem)`` for mlflow server / ui commands in Python: argument lists and command strings."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.List, ast.Tuple)):
            elts = node.elts
            for i, e in enumerate(elts):
                if _arg(e) in ("server", "ui") and any("mlflow" in _dotted(x).lower() for x in elts[:i]):
                    rest = elts[i + 1:]
                    args = [_arg(x) for x in rest]
                    hosts = [j for j, a in enumerate(args) if a in ("--host", "-h") or (a or "").startswith("--host=")]
                    if not hosts:
                        if any(isinstance(x, ast.Starred) for x in rest):
                            out.append((node.lineno, f"mlflow {_arg(e)}: its --host is not visible (starred arguments); "
                                        f"name --host {LOCAL_HOST}"))
                        continue
                    j = hosts[0]
                    host = args[j].split("=", 1)[1] if "=" in (args[j] or "") else (args[j + 1] if j + 1 < len(args) else None)
                    if host != LOCAL_HOST:
                        shown = host if host is not None else _dotted(rest[j + 1]) if j + 1 < len(rest) else "nothing"
                        out.append((node.lineno, f"mlflow {_arg(e)} binds {shown} (not {LOCAL_HOST})"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out += list(_line_commands(node.value, node.lineno))
        elif isinstance(node, ast.JoinedStr):
            out += list(_line_commands(_dotted(node), node.lineno))
    return sorted(set(out))


def mlflow_findings(base: Path = ROOT, roots: tuple[str, ...] = COMMANDS) -> list[str]:
    out = []
    for f in _files(roots, base):
        if _is_python(f):
            found = python_mlflow_findings(f.read_text())
        elif _is_text(f) or f.suffix == ".smk" or f.suffix == ".md":
            found = list(_line_commands(f.read_text(errors="replace")))
        else:
            continue
        rel = f.relative_to(base)
        out += [f"{rel}:{line}: {what}" for line, what in found if f"{rel}:{what}" not in ALLOWED]
    return out


# ------------------------------------------------------------------------------------ the rules hold
def test_no_pickle_eval_unsafe_yaml_torch_load_or_shell():
    assert code_findings() == []


def test_every_mlflow_server_binds_localhost():
    assert mlflow_findings() == []


def test_the_repository_is_actually_scanned():
    files = {str(f.relative_to(ROOT)) for f in _files(CODE)}
    assert {"src/speechrl/audit.py", "workflow/rules/rl.smk", "scripts/setup.sh", "bench/rewards.py", "Snakefile"} <= files
    assert "tests/test_tracking.py" in {str(f.relative_to(ROOT)) for f in _files(COMMANDS)}
    # the real server of the tracking tests is seen, and passes
    assert python_mlflow_findings((ROOT / "tests" / "test_tracking.py").read_text()) == []
    src = (ROOT / "tests" / "test_tracking.py").read_text().replace('"--host", "127.0.0.1"', '"--host", "0.0.0.0"')
    assert [p for _, p in python_mlflow_findings(src)] == [f"mlflow server binds 0.0.0.0 (not {LOCAL_HOST})"]


# ------------------------------------------------------------------------------------ the checks catch
BAD_PYTHON = """\
import pickle
from dill import loads
import os, subprocess, yaml, torch, numpy as np
eval("1")
exec("x = 1")
yaml.load(open("c.yaml"))
yaml.load(open("c.yaml"), Loader=yaml.FullLoader)
yaml.unsafe_load("a: 1")
torch.load("m.pt")
torch.load("m.pt", weights_only=False)
np.load("a.npy", allow_pickle=True)
subprocess.run("ls", shell=True)
os.system("ls")
"""
GOOD_PYTHON = """\
import subprocess, yaml, torch, numpy as np
model.eval()
yaml.safe_load(open("c.yaml"))
yaml.load(open("c.yaml"), Loader=yaml.SafeLoader)
torch.load("m.pt", map_location="cpu", weights_only=True)
np.load("a.npy")
subprocess.run(["ls"], check=True)
"""


def test_the_code_rules_catch_each_case():
    assert [line for line, _ in python_findings(BAD_PYTHON)] == list(range(1, 3)) + list(range(4, 14))
    assert python_findings(GOOD_PYTHON) == []
    smk = 'rule x:\n    run:\n        import pickle\n        yaml.load(f)\n        os.system("ls")\n    shell:\n        "speechrl x"\n'
    assert [line for line, _ in text_findings(smk)] == [3, 4, 5]
    assert text_findings('rule x:\n    shell:\n        "yaml.safe_load; torch.load(p, weights_only=True)"\n') == []


def test_a_finding_names_file_and_line(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("import json\nx = eval('1')\n")
    (tmp_path / "pkg" / "run.sh").write_text("#!/bin/bash\n" + "python -c 'import os; os." + "system(\"ls\")'\n")
    assert code_findings(tmp_path, ("pkg",)) == ["pkg/m.py:2: eval()", "pkg/run.sh:2: os.system / os.popen"]


# MLFLOW stands for the command name, so that this file holds no command line of its own
@pytest.mark.parametrize(("command", "ok"), [
    ("MLFLOW server --backend-store-uri sqlite:///m.db", True),
    ("MLFLOW ui --host 127.0.0.1 --port 5000", True),
    ("MLFLOW server --host 0.0.0.0 --port 5000", False),
    ("MLFLOW ui --host=0.0.0.0", False),
    ("MLFLOW server --backend-store-uri sqlite:///m.db \\\n    -h 10.0.0.1", False),
])
def test_the_host_rule_reads_command_lines(tmp_path, command, ok):
    command = command.replace("MLFLOW", "mlflow")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "serve.sh").write_text(command + "\n")
    (tmp_path / "t.py").write_text(f"import subprocess\nsubprocess.run({command!r}.split())\n")
    findings = mlflow_findings(tmp_path, ("scripts", "t.py"))
    assert (findings == []) is ok
    if not ok:
        assert [f.split(":")[0] for f in findings] == ["scripts/serve.sh", "t.py"]


@pytest.mark.parametrize(("args", "ok"), [
    ('[MLFLOW, "server", "--host", "127.0.0.1", "--port", "5000"]', True),
    ('["python", "-m", "mlflow", "ui"]', True),
    ('[str(BIN / "mlflow"), "server", "--host", "0.0.0.0"]', False),
    ('["mlflow", "server", "--host", host]', False),
    ('["mlflow", "server", *extra]', False),
])
def test_the_host_rule_reads_argument_lists(args, ok):
    assert (python_mlflow_findings(f"import subprocess\nsubprocess.Popen({args})\n") == []) is ok
