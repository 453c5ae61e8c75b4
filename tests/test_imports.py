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

import json
import os
import pkgutil
import subprocess
import sys
from functools import cache
from pathlib import Path

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
                     "liquidssm.repro.reproduce"):
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
