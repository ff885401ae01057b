"""The package's shape: its floors, no import cycles, and only the CLI and the API import the training loop.

Every module under src/facegan is parsed with `ast`; its imports (at module level and inside functions, but not
under `if TYPE_CHECKING:`) become edges of the package import graph. Imports run down the floors, never up
(a module may import its own floor and the floors below it):

    utils (with errors, version) < config < losses < data < run < models < training < generation < metrics
    < report, serve < experiments < cli, api (and the package's __init__ / __main__)

So a model family never imports the training loop, the losses need neither, and the run's state needs no part
of training. `python -m pytest tests/test_architecture.py`.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "facegan"
LOOP = "facegan.training.loop"
MAY_IMPORT_LOOP = ("facegan.cli", "facegan.api")
# The floors, lowest first: a module's floor is that of the longest prefix listed.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("facegan.utils", "facegan.errors", "facegan.version"),
    ("facegan.config",),
    ("facegan.losses",),
    ("facegan.data",),
    ("facegan.run",),
    ("facegan.models",),
    ("facegan.training",),
    ("facegan.generation",),
    ("facegan.metrics",),
    ("facegan.report", "facegan.serve"),
    ("facegan.experiments",),
    ("facegan.cli", "facegan.api", "facegan", "facegan.__main__"),
)


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package is its __init__.py)."""
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Dotted names imported anywhere under `node`, skipping `if TYPE_CHECKING:` bodies."""
    names: list[str] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for sub in child.orelse:
                names += _imports(ast.Module(body=[sub], type_ignores=[]), module, is_package)
            continue
        if isinstance(child, ast.Import):
            names += [alias.name for alias in child.names]
        elif isinstance(child, ast.ImportFrom):
            if child.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (child.level - 1)]
                prefix = ".".join(base + ([child.module] if child.module else []))
            else:
                prefix = child.module or ""
            names += [f"{prefix}.{alias.name}" for alias in child.names]  # a module, else trimmed to prefix
        names += _imports(child, module, is_package)
    return names


def import_graph() -> dict[str, set[str]]:
    """module → the package modules it imports (`from a import b` counts a.b when b is a module, else a)."""
    files = module_files()
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = set()
        for name in _imports(tree, module, path.name == "__init__.py"):
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of `graph` (one per strongly connected component with more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def _in(module: str, roots: tuple[str, ...]) -> bool:
    return any(module == root or module.startswith(root + ".") for root in roots)


def floor_of(module: str) -> int:
    """The floor of `module`: that of the longest listed prefix (the package itself is the top floor)."""
    best, floor = -1, None
    for level, roots in enumerate(FLOORS):
        for root in roots:
            matches = module == root or (root != PACKAGE and module.startswith(root + "."))
            if matches and len(root) > best:
                best, floor = len(root), level
    if floor is None:
        raise AssertionError(f"{module} is on no floor: add it to FLOORS")
    return floor


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a module on a higher floor than its importer's, as "importer -> imported"."""
    return sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets if floor_of(t) > floor_of(m))


def test_the_graph_sees_the_package() -> None:
    graph = import_graph()
    assert LOOP in graph
    assert LOOP in graph["facegan.cli.train"]


def test_no_import_cycles() -> None:
    assert find_cycles(import_graph()) == []


def test_only_the_cli_and_the_api_import_the_training_loop() -> None:
    importers = sorted(m for m, targets in import_graph().items() if LOOP in targets)
    assert importers and all(_in(m, MAY_IMPORT_LOOP) for m in importers), importers


def test_every_module_is_on_a_floor() -> None:
    for module in import_graph():
        floor_of(module)


def test_imports_run_down_the_floors() -> None:
    assert upward_imports(import_graph()) == []


def test_an_upward_import_is_found() -> None:
    graph = {"facegan.models.dcgan": {"facegan.training.step", "facegan.config"},
             "facegan.cli.train": {"facegan.models"}}
    assert upward_imports(graph) == ["facegan.models.dcgan -> facegan.training.step"]
    assert floor_of("facegan.run.state") < floor_of("facegan.models") < floor_of("facegan.training.loop")
    assert floor_of("facegan") == floor_of("facegan.cli.main") == len(FLOORS) - 1


def test_no_model_family_imports_training() -> None:
    assert [m for m, targets in import_graph().items() if m.startswith("facegan.models")
            and any(t.startswith("facegan.training") for t in targets)] == []


def test_a_cycle_is_found() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
