"""The import graph of the layer: every ``kauto`` module imports, no cycles, and the floors hold.

The graph is read from the source (``ast``), so an import inside a function counts: it runs when the function does,
and a cycle hidden that way is still a cycle (each side half-initialised when the other needs it). Imports under
``if TYPE_CHECKING:`` never run and do not count. Floors (docs/architecture.md#import-floors): the adapters
(``kauto.aws``, ``kauto.kaltura``) never reach the domain (``kauto.automations``, ``kauto.weekly``,
``kauto.intake``); the layer never reaches the workstation packages (``kauto_local``, ``kauto_ops``); the webhook
function never reaches the Kaltura client or report code.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO_ROOT

LAYER = REPO_ROOT / "shared"
FUNCTIONS = REPO_ROOT / "functions"
WORKSTATION_PACKAGES = ("kauto_local", "kauto_ops")
DOMAIN = ("kauto.automations", "kauto.weekly", "kauto.intake")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(LAYER).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((LAYER / "kauto").rglob("*.py"))}


MODULES = layer_modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, at module level or inside a function, skipping TYPE_CHECKING blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _runtime_imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _runtime_imports(node)


def _resolve_relative(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_names(path: Path, importer: str) -> set[str]:
    """The dotted names ``path`` imports at run time: modules, and ``package.name`` for each ``from package import``."""
    names: set[str] = set()
    for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        source = _resolve_relative(importer, path.name == "__init__.py", node) if node.level else node.module or ""
        names.add(source)
        names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def layer_edges(names: set[str]) -> set[str]:
    """The ``kauto`` modules among ``names`` (``from kauto.x import y`` is an edge to ``kauto.x.y`` when that is a
    module, else to ``kauto.x``)."""
    return {name for name in names if name in MODULES}


def graph() -> dict[str, set[str]]:
    return {name: layer_edges(imported_names(path, name)) - {name} for name, path in MODULES.items()}


def reachable(start: set[str], edges: dict[str, set[str]]) -> dict[str, list[str]]:
    """Every module reachable from ``start``, with one import chain that reaches it."""
    chains = {name: [name] for name in start}
    todo = list(start)
    while todo:
        current = todo.pop()
        for target in sorted(edges.get(current, ())):
            if target not in chains:
                chains[target] = [*chains[current], target]
                todo.append(target)
    return chains


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def under(name: str, *packages: str) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_layer_module_imports(name: str) -> None:
    assert importlib.import_module(name).__name__ == name


def test_the_layer_has_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_a_cycle_through_a_function_level_import_is_found() -> None:
    # The shape the digest and the runs had: a module-level import one way, a lazy import back.
    edges = {"kauto.a": {"kauto.b"}, "kauto.b": {"kauto.c"}, "kauto.c": {"kauto.a"}, "kauto.d": {"kauto.a"}}
    assert cycles(edges) == [["kauto.a", "kauto.b", "kauto.c"]]
    lazy_back = "def later():\n    from kauto.weekly import runs\n"
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import kauto.aws\n" + lazy_back)
    assert [getattr(node, "module", None) for node in _runtime_imports(tree)] == ["typing", "kauto.weekly"]


def test_adapters_never_reach_the_domain() -> None:
    edges = graph()
    for adapter in (name for name in MODULES if under(name, "kauto.aws", "kauto.kaltura")):
        chains = reachable({adapter}, edges)
        domain = [chain for name, chain in chains.items() if under(name, *DOMAIN)]
        assert domain == [], f"{adapter} reaches the domain: {' -> '.join(domain[0])}"


def test_the_layer_never_imports_workstation_packages() -> None:
    offenders = {
        name: sorted(imported for imported in imported_names(path, name) if under(imported, *WORKSTATION_PACKAGES))
        for name, path in MODULES.items()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_webhook_never_reaches_the_kaltura_client() -> None:
    start = layer_edges(imported_names(FUNCTIONS / "webhook" / "app.py", "app"))
    assert start, "the webhook imports nothing from the layer: the test reads the wrong file"
    chains = reachable(start, graph())
    kaltura = [chain for name, chain in chains.items() if under(name, "kauto.kaltura")]
    assert kaltura == [], f"the webhook reaches {' -> '.join(kaltura[0])}"
