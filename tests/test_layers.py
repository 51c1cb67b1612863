"""The layers import one way — core ← analyses ← torch bridge ← rendering ← application — and no module takes
part in an import cycle. Every import counts: at module level, inside a function, and under
``if TYPE_CHECKING:`` (a type hint of an upper layer's object is a protocol or ``Any``).
docs/architecture.md draws the same map."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "costlab"

#: The folder of each layer; a module may import only its own layer or lower ones (RANK).
FOLDERS = {"costlab.core": "core", "costlab.analyses": "analyses", "costlab.torch_bridge": "torch bridge",
           "costlab.render": "rendering", "costlab.app": "application"}
#: The package's own files sit on top: costlab/__init__ (the Python facade) and __main__.
TOP = {"costlab", "costlab.__main__"}
RANK = {"core": 0, "analyses": 1, "torch bridge": 2, "rendering": 3, "application": 4}


def layer_of(module: str) -> str:
    """The layer a module is in: the folder it lives in."""
    if module in TOP:
        return "application"
    for folder, layer in FOLDERS.items():
        if module == folder or module.startswith(folder + "."):
            return layer
    raise AssertionError(f"{module} lies in no layer's folder (costlab/core, analyses, torch_bridge, render, app)")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports() -> dict[str, set[str]]:
    """costlab module → the costlab modules it imports (resolved; a package's attribute import is the
    submodule when one exists)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("costlab"):
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in modules else target)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("costlab"))
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_every_import_points_down_or_sideways() -> None:
    back_edges = [f"{a} ({layer_of(a)}) imports {b} ({layer_of(b)})"
                  for a, targets in sorted(imports().items()) for b in sorted(targets)
                  if RANK[layer_of(b)] > RANK[layer_of(a)]]
    assert back_edges == []


def test_no_import_cycles() -> None:
    graph = imports()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    # the package itself (costlab/__init__) wires the layers together: every submodule is below it
    assert [c for c in cycles if c != ["costlab"]] == []


def test_the_core_and_the_analyses_never_import_torch() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        if layer_of(name) not in ("core", "analyses"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{name}: {n}" for n in names if n.split(".")[0] == "torch"]
    assert offenders == []


def test_the_map_is_complete() -> None:
    """Every module lies in a layer's folder, and the map in the docs names each of them."""
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        layer_of(name)
        if name not in TOP and path.name != "__init__.py":
            assert name.rpartition(".")[2] in text, name
