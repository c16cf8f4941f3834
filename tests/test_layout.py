"""The package's import layering: modules import only down the data flow, and no two modules
import each other (directly or through others). Every ``import`` statement counts, also those
inside functions: a lazy import still ties the two modules together."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rtclass"
#: the data flow, first to last: a module may import its own folder (or top-level module) and
#: anything earlier in this list
FLOW = (
    "cell_types",
    "errors",
    "config",
    "stage",  # the signal stages' base class and ms -> samples (imports nothing; ingest on use it)
    "formats",
    "probe",
    "ingest",
    "dsp",
    "matching",
    "discovery",
    "features",
    "classify",
    "publish",
    "pipeline",
    "evaluation",
    "sim",
    "bench",
    "apps",
    "client",
    "cli",
)
#: the root package (``rtclass/__init__.py``: the version, paths of package data) sits below them all
ROOT = "rtclass"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, name: str, known: set[str]) -> list[tuple[str, int]]:
    """The rtclass modules ``path`` imports: (module, line). ``from rtclass.x import y`` is
    ``rtclass.x.y`` when that is a module, else ``rtclass.x``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join([*pkg, base] if base else pkg)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            if t == ROOT or t.startswith(ROOT + "."):
                while t not in known:  # ``import rtclass.x.y`` of a name, not a module
                    t = t.rsplit(".", 1)[0]
                out.append((t, node.lineno))
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, list[tuple[str, int]]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(path, name, known) for name, path in mods.items()}


def _layer(module: str) -> str:
    """The FLOW entry a module belongs to (its top-level module or folder), or ROOT."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def test_every_module_has_a_place_in_the_flow(graph):
    missing = sorted({_layer(m) for m in graph} - set(FLOW) - {ROOT})
    assert not missing, f"rtclass/{missing[0]} is not in FLOW: add it where its imports put it"


def test_imports_point_down_the_flow(graph):
    rank = {layer: i for i, layer in enumerate(FLOW)}
    rank[ROOT] = -1
    bad = []
    for module, imports in sorted(graph.items()):
        mine = _layer(module)
        for target, line in imports:
            theirs = _layer(target)
            if mine not in rank or theirs not in rank:
                continue  # reported by test_every_module_has_a_place_in_the_flow
            if rank[theirs] > rank[mine] or (mine == ROOT and target != ROOT):
                path = _modules()[module].relative_to(PACKAGE.parent)
                bad.append(f"{path}:{line} imports {target} ({theirs} comes after {mine} in the flow)")
    assert not bad, "imports against the flow:\n" + "\n".join(bad)


def test_no_import_cycles(graph):
    """Depth-first search for a back edge; the failure names the modules of one cycle."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target, _ in graph[module]:
            if target == module:
                continue
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checks_see_what_they_check(graph, tmp_path):
    """The graph is the real one (so the tests above can fail): known edges are in it, and a
    function-level import is found as well as a top-level one."""
    edges = {(m, t) for m, imports in graph.items() for t, _ in imports}
    assert ("rtclass.pipeline.chain", "rtclass.discovery.online") in edges
    assert ("rtclass.publish.wire", "rtclass.cell_types") in edges
    assert len(graph) > 60
    fake = tmp_path / "x.py"
    fake.write_text(
        "import numpy\nfrom rtclass.dsp import filtering\n\n"
        "def f():\n    from rtclass.sim.recording import Simulation\n"
    )
    known = set(graph)
    assert _imports(fake, "rtclass.x", known) == [("rtclass.dsp.filtering", 2), ("rtclass.sim.recording", 5)]
