"""The server's layers point one way (docs/architecture.md): the HTTP layer knows nothing of the
app, and the app, its endpoints and the HTTP layer import each other in no cycle. Every import
counts, including those under ``TYPE_CHECKING`` and inside functions: a cycle of type-only imports
is still two modules that cannot be understood (or moved) one without the other."""

from __future__ import annotations

import ast
from pathlib import Path

import sagemaker_inference.server

ROOT = Path(sagemaker_inference.server.__file__).parent
PACKAGE = "sagemaker_inference.server"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join((PACKAGE, *parts)).removesuffix(".__init__")


def _imports(path: Path, modules: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
            for alias in node.names:  # `from package import module` imports the module
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith(PACKAGE))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: {m for m in _imports(path, set(modules)) if m in modules and m != name}
            for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return components


def test_the_http_layer_imports_nothing_of_the_server_above_it():
    graph = _graph()
    http = f"{PACKAGE}.http"
    outside = {(name, dep) for name, deps in graph.items() if name.startswith(http)
               for dep in deps if not dep.startswith(http)}
    assert outside == {(f"{http}.protocol", f"{PACKAGE}.workers.protocol")}  # type-only: what a worker answers


def test_no_import_cycle_through_the_app_its_endpoints_or_the_http_layer():
    front = {f"{PACKAGE}.{m}" for m in ("app", "endpoints", "management", "routing", "supervisor")}
    cycles = [c for c in _cycles(_graph()) if c & front or any(m.startswith(f"{PACKAGE}.http") for m in c)]
    assert cycles == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycle_among_the_workers_modules():
    """``workers.pool`` <-> ``workers.worker`` was one (issue 16, item 8): a worker tells its group
    through the ``WorkerOwner`` protocol, a channel its worker through ``streams.Worker``."""
    cycles = [c for c in _cycles(_graph()) if any(m.startswith(f"{PACKAGE}.workers") for m in c)]
    assert cycles == []
    assert f"{PACKAGE}.workers.pool" not in _graph()[f"{PACKAGE}.workers.worker"]
