"""The house rules: imports point one way with no cycle, the library needs no Prefect, modules stay small."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pricecast", "flows", "tasks")


def modules() -> dict[str, Path]:
    """Every module of the project's own packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports anywhere in its file (inside functions and TYPE_CHECKING too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def layer(name: str) -> int:
    """3: the command line and deployments; 2: flows; 1: tasks; 0: the library."""
    if name.startswith(("pricecast.cli", "pricecast.deploy")):
        return 3
    return {"flows": 2, "tasks": 1}.get(name.split(".")[0], 0)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_no_module_imports_a_layer_above_it() -> None:
    upward = [(a, b) for a, targets in graph().items() for b in targets if layer(b) > layer(a)]
    assert upward == []


def test_there_is_no_import_cycle() -> None:
    edges = graph()
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_the_graph_check_sees_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    """The two checks above can fail: a made-up pair of modules importing each other is caught."""
    known = {"pricecast.a": tmp_path / "a.py", "pricecast.b": tmp_path / "b.py", "flows.x": tmp_path / "x.py"}
    known["pricecast.a"].write_text("from pricecast.b import thing\n")
    known["pricecast.b"].write_text("def f():\n    from pricecast import a\n    import flows.x\n")
    assert imports("pricecast.a", known["pricecast.a"], known) == {"pricecast.b"}
    assert imports("pricecast.b", known["pricecast.b"], known) == {"pricecast.a", "flows.x"}
    assert layer("flows.x") > layer("pricecast.b")


#: Modules allowed past 300 lines, and why. The registered model's code is one file MLflow copies into every
#: version (models from code): its network, features and ranges arithmetic cannot live in other modules.
ONE_FILE = {"pricecast.forecaster": 500}


def test_no_module_is_over_300_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > ONE_FILE.get(name, 300)} == {}


def test_library_tasks_and_flows_have_no_side_effects_at_import(tmp_path: Path) -> None:
    """Importing every module sets no tracking URI and makes no file in the current directory."""
    names = sorted(m for m in modules() if not m.endswith("__main__"))
    code = (
        "import importlib, os, sys; before = set(os.listdir('.'))\n"
        f"[importlib.import_module(m) for m in {names!r}]\n"
        "assert set(os.listdir('.')) == before, set(os.listdir('.')) - before\n"
        "assert 'MLFLOW_TRACKING_URI' not in os.environ\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # earlier tests may have set it
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]


BLOCK_PREFECT = """
import importlib, importlib.abc, pkgutil, sys
class NoPrefect(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "prefect" or name.startswith("prefect."):
            raise ImportError(f"prefect is blocked: {name}")
sys.meta_path.insert(0, NoPrefect())
import pricecast.prices, pricecast.stages
for package in (pricecast.prices, pricecast.stages):
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
assert not any(m == "prefect" or m.startswith("prefect.") for m in sys.modules)
try:
    import flows.train
except ImportError as exc:
    print("blocked:", exc)
"""


def test_prices_and_stages_import_without_prefect() -> None:
    done = subprocess.run([sys.executable, "-c", BLOCK_PREFECT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "blocked: prefect is blocked" in done.stdout  # the block really works: a flow cannot import
