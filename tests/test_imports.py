"""Every module of the package imports on its own, with no other ``liquidssm`` module loaded.

This proves there is no import circle: a module that only imports because a sibling happened
to be imported first fails here. Importing torch afresh for each of ~45 modules costs minutes
on a 2-core CI machine, so a fresh interpreter imports the third-party libraries once and then
forks one child per module; each child starts with *no* ``liquidssm`` module loaded (the
parent never imports one), imports its module and reports what the import pulled in. Where
``os.fork`` is missing, each module gets its own ``python -c "import X"`` instead.
:func:`test_data_package_does_not_load_the_registry` also runs the literal
``python -c "import liquidssm.data"``.

The same runs check the layering rules of the design (§6): the math never imports ``data`` or
``repro``, ``data`` never imports ``repro``, and ``import liquidssm.data`` (or any loader) does
not load the registry.
"""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

import liquidssm

SRC = Path(__file__).resolve().parents[1] / "src" / "liquidssm"
MATH = ("ssm", "hippo", "cauchy", "kernels", "liquid", "layers", "scan", "lrc", "newton", "lrcssm")
LOADERS = ("listops", "imdb", "aan", "cifar", "pathfinder", "speech_commands", "bidmc", "uea")
#: third-party libraries the parent may import before forking (never a liquidssm module)
PRELOAD = ("torch", "numpy", "scipy", "pandas", "PIL", "tqdm", "sympy", "matplotlib.pyplot")

_DRIVER = r"""
import importlib, json, os, sys, traceback
names = sys.argv[1:]
for dep in {preload!r}:
    try:
        importlib.import_module(dep)
    except ImportError:
        pass
assert not [m for m in sys.modules if m.startswith("liquidssm")], "parent imported liquidssm"
out = {{}}
for name in names:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            importlib.import_module(name)
            rc, err = 0, ""
        except BaseException:
            rc, err = 1, traceback.format_exc()[-2000:]
        loaded = sorted(m for m in sys.modules if m.startswith("liquidssm"))
        with os.fdopen(w, "w") as f:
            json.dump([rc, err, loaded], f)
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    os.waitpid(pid, 0)
    out[name] = json.loads(text) if text else [1, "the child died without reporting", []]
print(json.dumps(out))
"""
_PROBE = ("import importlib, sys; importlib.import_module({name!r}); "
          "print(' '.join(sorted(m for m in sys.modules if m.startswith('liquidssm'))))")


def package_modules(folder: Path = SRC, prefix: str = "liquidssm") -> list[str]:
    """Dotted names of the package and every module below it, found without importing them."""
    names = [prefix]
    for info in pkgutil.iter_modules([str(folder)]):
        name = f"{prefix}.{info.name}"
        if info.ispkg:
            names += package_modules(folder / info.name, name)
        else:
            names.append(name)
    return names


def _env() -> dict[str, str]:
    return dict(os.environ, MPLBACKEND="Agg", KEOPS_VERBOSE="0", PYKEOPS_VERBOSE="0")


def import_fresh(name: str) -> tuple[int, str, set[str]]:
    """``(exit status, stderr tail, liquidssm modules loaded)`` of ``python -c "import name"``."""
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(name=name)], capture_output=True,
                          text=True, timeout=300, env=_env())
    return proc.returncode, proc.stderr[-2000:], set(proc.stdout.split())


def _import_forked(names: list[str]) -> dict[str, tuple[int, str, set[str]]]:
    """Each of ``names`` imported in a child forked from a fresh interpreter (see module doc)."""
    proc = subprocess.run([sys.executable, "-c", _DRIVER.format(preload=PRELOAD), *names],
                          capture_output=True, text=True, timeout=600, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {n: (rc, err, set(loaded)) for n, (rc, err, loaded) in json.loads(proc.stdout).items()}


@cache
def import_results() -> dict[str, tuple[int, str, set[str]]]:
    """Every module of the package imported in isolation."""
    names = package_modules()
    if hasattr(os, "fork"):
        return _import_forked(names)
    return {name: import_fresh(name) for name in names}


def test_module_discovery_covers_the_subpackages():
    names = package_modules()
    assert len(names) == len(set(names)) and len(names) > 30
    for expected in ("liquidssm.paths", "liquidssm.data.registry", "liquidssm.data.listops",
                     "liquidssm.bench.kernels", "liquidssm.repro.tables",
                     "liquidssm.book.reproduce"):
        assert expected in names


def test_every_module_imports_in_isolation():
    results = import_results()
    assert set(results) == set(package_modules())
    failed = {name: err for name, (rc, err, _) in results.items() if rc != 0}
    assert not failed, "\n\n".join(f"import {n} failed:\n{e}" for n, e in failed.items())
    for name, (_, _, loaded) in results.items():
        assert name in loaded, name


def test_layering_rules():
    results = import_results()
    for name in MATH:
        loaded = results[f"liquidssm.{name}"][2]
        assert not {m for m in loaded if m.startswith(("liquidssm.data", "liquidssm.repro"))}, name
    for name, (_, _, loaded) in results.items():
        if name.startswith("liquidssm.data"):
            assert not {m for m in loaded if m.startswith("liquidssm.repro")}, name
    assert results["liquidssm.repro"][2] == {"liquidssm", "liquidssm.repro"}  # imports nothing


def test_data_package_does_not_load_the_registry():
    rc, err, loaded = import_fresh("liquidssm.data")
    assert rc == 0, err
    assert "liquidssm.data.registry" not in loaded and "liquidssm.data.listops" not in loaded
    results = import_results()
    for loader in LOADERS:
        assert "liquidssm.data.registry" not in results[f"liquidssm.data.{loader}"][2], loader


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _repro_import_graph() -> dict[str, set[str]]:
    """Every import between modules of ``liquidssm.repro`` (module level and inside functions)."""
    src = Path(liquidssm.__file__).resolve().parent.parent
    wing = src / "liquidssm" / "repro"
    names = {_module_name(p, src): p for p in wing.rglob("*.py")}
    graph: dict[str, set[str]] = {n: set() for n in names}
    for name, path in names.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            graph[name].update(t for t in targets if t in names and t != name)
    return graph


def test_no_import_circle_inside_the_reproduction_wing():
    graph = _repro_import_graph()
    assert "liquidssm.repro.tasks" in graph and len(graph) > 15
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_the_engine_imports_no_paper_module():
    graph = _repro_import_graph()
    assert not {m for m in graph["liquidssm.repro.train"] if m.startswith("liquidssm.repro.papers")}
    assert not {m for m in graph["liquidssm.repro.taskbase"] if m.startswith("liquidssm.repro.papers")}


def test_a_planted_circle_is_found(tmp_path, monkeypatch):
    """The circle check can fail: a graph with a circle raises."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    monkeypatch.setattr(sys.modules[__name__], "_repro_import_graph", lambda: graph | {
        "liquidssm.repro.tasks": set(), **{f"x{i}": set() for i in range(15)}})
    with pytest.raises(AssertionError, match="import circle: a -> b -> c -> a"):
        test_no_import_circle_inside_the_reproduction_wing()
