"""The shape of chalicelib/, read from the source with `ast` (every import statement, at
module level or inside a function, TYPE_CHECKING blocks included):

- no import cycle among chalicelib's modules and app.py;
- shared code (every module outside a feature folder; `cache/` and `web/` are shared
  components) never imports a feature;
- a feature never imports another feature's modules: what two features share lives in
  shared code.

app.py is the one place that knows every feature (it hands each feature's OpenAPI part to
chalicelib.openapi, too); it is checked for cycles only.
"""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

FEATURES = ("leaderboard", "qr", "hotspots", "upstream")
PACKAGE = "chalicelib"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for p in (ROOT / PACKAGE).rglob("*.py")}
    found["app"] = ROOT / "app.py"
    return found


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The known module `name` is, or is inside (chalicelib.x.y -> chalicelib.x)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from pkg import name` imports the submodule pkg.name when there is one
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            target = resolve(name, known) if name.split(".")[0] in (PACKAGE, "app") else None
            if target and target != module:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {module: imports_of(module, path, known) for module, path in known.items()}


def feature_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == PACKAGE and parts[1] in FEATURES \
        else None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component that has one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


GRAPH = import_graph()


def test_the_graph_is_read():
    # the reader sees the imports it must judge: an empty graph would pass everything
    assert "chalicelib.clients" in GRAPH["chalicelib.health"]
    assert "chalicelib.qr.api" in GRAPH["app"]
    assert {feature_of(m) for m in GRAPH} >= set(FEATURES)


def test_the_reader_finds_a_cycle_and_the_edges_the_rules_forbid():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert feature_of("chalicelib.qr.api") == "qr"
    assert feature_of("chalicelib.cache.readthrough") is None
    assert feature_of("chalicelib.http") is None


def test_no_import_cycle():
    assert cycles(GRAPH) == []


def test_shared_code_imports_no_feature():
    wrong = sorted((module, target) for module, targets in GRAPH.items() for target in targets
                   if module != "app" and feature_of(module) is None and feature_of(target))
    assert wrong == []


def test_a_feature_imports_no_other_feature():
    wrong = sorted((module, target) for module, targets in GRAPH.items() for target in targets
                   if feature_of(module) and feature_of(target)
                   and feature_of(target) != feature_of(module))
    assert wrong == []
