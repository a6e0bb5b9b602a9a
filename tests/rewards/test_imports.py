"""The reward modules import each other without a circle (TYPE_CHECKING and function-local imports count too),
and the public API stays where it was."""

from __future__ import annotations

import ast
from pathlib import Path

import speechrl.rewards as pkg

PKG = "speechrl.rewards"
ROOT = Path(pkg.__file__).parent


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of ``speechrl.rewards`` it imports anywhere in its source."""
    modules = {p.stem for p in ROOT.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for stem in modules:
        deps: set[str] = set()
        for node in ast.walk(ast.parse((ROOT / f"{stem}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == PKG:    # ``from speechrl.rewards import x``: a submodule or the package itself
                    deps |= {a.name if a.name in modules else "__init__" for a in node.names}
                elif node.module.startswith(PKG + "."):
                    deps.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[2] if a.name.startswith(PKG + ".") else "__init__"
                         for a in node.names if a.name == PKG or a.name.startswith(PKG + ".")}
        graph[stem] = deps - {stem}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None (depth-first search)."""
    done: set[str] = set()
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        if n in path:
            return path[path.index(n):] + [n]
        if n in done:
            return None
        path.append(n)
        for d in sorted(graph.get(n, ())):
            if cycle := visit(d):
                return cycle
        path.pop()
        done.add(n)
        return None

    for n in sorted(graph):
        if cycle := visit(n):
            return cycle
    return None


def test_reward_modules_import_without_a_circle():
    graph = import_graph()
    assert "scorer" in graph["cache"] and "scorer" in graph["base"] and "cache" in graph["base"]
    assert find_cycle(graph) is None, f"import circle: {' -> '.join(find_cycle(graph))}"
    assert find_cycle({"base": {"cache"}, "cache": {"base"}}) == ["base", "cache", "base"]   # the checker finds one


def test_public_api_unchanged():
    from speechrl.rewards import REWARDS, Scorer, check_inputs, combine, register, score_both, score_corpus, score_samples
    from speechrl.rewards import base, cache, scorer

    assert Scorer is base.Scorer is scorer.Scorer and REWARDS is base.REWARDS
    assert (check_inputs, combine, register, score_both, score_corpus, score_samples) == (
        base.check_inputs, base.combine, base.register, base.score_both, base.score_corpus, base.score_samples)
    assert base.cached_sample is cache.cached_sample and base.Refs is scorer.Refs
