"""Imports run down the layers, and no two modules import each other, however indirectly.

Read from the source (every ``import mixtape...``, lazy ones inside functions included; ``TYPE_CHECKING``
blocks left out), so a new arrow that runs back up fails here before it becomes a cycle at import time.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mixtape"

#: module (or package) -> its layer; a module may import its own layer and those below it. The longest
#: matching prefix decides.
LAYERS = {
    # foundations: no knowledge of specs, datasets or Beam
    "mixtape": 0, "mixtape.errors": 0, "mixtape.untrusted": 0, "mixtape.hashing": 0, "mixtape.storage": 0,
    "mixtape.faults": 0, "mixtape.licences": 0, "mixtape.labels": 0, "mixtape.audio": 0,
    # pure building blocks the spec validates against
    "mixtape.records": 1, "mixtape.dataset.names": 1, "mixtape.dataset.features": 1,
    "mixtape.augment": 1, "mixtape.sources.score.analysis": 1, "mixtape.sources.score.performance": 1,
    # the spec
    "mixtape.spec": 2,
    # what reads inputs and what names outputs
    "mixtape.sources": 3, "mixtape.dataset": 3,
    # pure planning and rendering
    "mixtape.planning": 4, "mixtape.rendering": 4, "mixtape.versions": 5,
    # the jobs: Beam pipelines, training, reports, checks that re-render
    "mixtape.pipelines": 6, "mixtape.train": 6, "mixtape.report": 6, "mixtape.dataset.verify": 6,
    "mixtape.dataset.inspect": 6, "mixtape.dataset.api": 6,
    "mixtape.demo": 7,
    "mixtape.cli": 8, "mixtape.__main__": 9,
}


def layer(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise AssertionError(f"{module} has no layer: add it to LAYERS")


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports() -> dict[str, set[str]]:
    """module -> the mixtape modules it imports."""
    out: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(("mixtape", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        found: set[str] = set()
        todo: list[ast.AST] = [ast.parse(path.read_text())]
        while todo:
            node = todo.pop()
            if isinstance(node, ast.If) and _type_checking(node):
                todo.extend(node.orelse)
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mixtape":
                for alias in node.names:  # ``from mixtape.x import y`` may name a module y
                    candidate = f"{node.module}.{alias.name}"
                    found.add(candidate if _is_module(candidate) else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.split(".")[0] == "mixtape"}
            todo.extend(ast.iter_child_nodes(node))
        out[module] = found - {module}
    return out


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def test_every_import_runs_down_the_layers():
    upward = sorted(f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
                    for m, targets in imports().items() for t in targets if layer(t) > layer(m))
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    graph = imports()
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycles.append(" -> ".join([*path[path.index(t):], t]))
            elif t not in state:
                visit(t, [*path, t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)
