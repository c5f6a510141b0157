"""The direction of imports between the product's packages, read from the source with ast.

Every import that runs counts, also one inside a function: a cycle hidden in a function
is still a cycle (it only fails later, and depending on what was imported first). Imports
under ``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("procurement", "bot", "dialogs", "cards", "integrations", "manifest")
MODULES = ("app", "settings")
EDGE_PACKAGES = ("bot", "dialogs", "cards", "integrations", "manifest", "app", "settings")


def _module_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue  # Alembic loads these by path, not by import
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files[name] = path
    for module in MODULES:
        files[module] = ROOT / f"{module}.py"
    return files


FILES = _module_files()


def _is_package(module: str) -> bool:
    return FILES[module].name == "__init__.py"


def _runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """`node` and everything below it, except the bodies of ``if TYPE_CHECKING:``."""
    yield node
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and ast.unparse(child.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            for other in child.orelse:
                yield from _runtime_nodes(other)
            continue
        yield from _runtime_nodes(child)


def _imported(module: str, tree: ast.Module) -> Iterator[str]:
    """The names `module` imports when it runs, as absolute dotted names (maybe not ours)."""
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if _is_package(module) else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target
            # `from pkg import sub` imports the module pkg.sub when there is one
            yield from (f"{target}.{alias.name}" for alias in node.names)


def _resolve(name: str) -> str | None:
    """The product module `name` loads: itself, else its nearest enclosing one (or None)."""
    while name:
        if name in FILES:
            return name
        name = name.rpartition(".")[0]
    return None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in FILES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = {_resolve(name) for name in _imported(module, tree)}
        # a module importing its own package's __init__ (`from . import x`) is not a cycle
        graph[module] = {t for t in targets if t and t != module and not module.startswith(f"{t}.")}
    return graph


GRAPH = _graph()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_product() -> None:
    assert {"procurement.contracts.model", "procurement.contracts.importing.rows", "app"} <= set(GRAPH)
    assert "procurement.contracts.model" in GRAPH["procurement.reminders.schedule"]
    assert "procurement.contracts.import_cli" in GRAPH["app"]  # a function-level import counts


def test_imports_in_functions_count_and_type_checking_ones_do_not() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from procurement.store.database import Store\n"
        "def f():\n    from . import model\n    import bot.agent\n"
    )
    names = set(_imported("procurement.contracts.form", tree))
    assert {"procurement.contracts.model", "bot.agent"} <= names
    assert "procurement.store.database" not in names


def test_cycle_detection_finds_a_cycle_through_a_function_level_import() -> None:
    # the shape of the old app.py ↔ import_cli cycle
    graph = {"app": {"cli"}, "cli": {"rows"}, "rows": set(), "x": {"app"}}
    assert _cycles(graph) == []
    graph["cli"].add("app")
    assert _cycles(graph) == [["app", "cli"]]


def test_no_import_cycles_among_the_product_modules() -> None:
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("module", sorted(m for m in FILES if m.startswith("procurement")))
def test_the_domain_imports_nothing_from_the_edges(module: str) -> None:
    edges = {t for t in GRAPH[module] if t.split(".")[0] in EDGE_PACKAGES}
    assert edges == set(), f"{module} imports {sorted(edges)}"


def test_nothing_imports_the_composition_root() -> None:
    importers = sorted(m for m, targets in GRAPH.items() if "app" in targets)
    assert importers == []


@pytest.mark.parametrize("module", sorted(m for m in FILES if m.startswith("procurement") and m.endswith(".model")))
def test_a_workflow_model_imports_only_its_workflow_and_the_shared_values(module: str) -> None:
    workflow = module.rsplit(".", 1)[0]
    outside = {
        t
        for t in GRAPH[module]
        if not (t.startswith(f"{workflow}.") or t == workflow or t.startswith("procurement.shared"))
    }
    assert outside == set(), f"{module} imports {sorted(outside)}"
    tree = ast.parse(FILES[module].read_text(encoding="utf-8"))
    libraries = {name.split(".")[0] for name in _imported(module, tree)}
    assert not libraries & {"sqlalchemy", "aiohttp", "httpx", "msgraph", "microsoft_agents"}
