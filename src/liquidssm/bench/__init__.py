"""Benchmarks behind ``liquidssm bench <name>`` and the performance chapter.

Each benchmark lives in its own module (``bench/kernels.py``, ``bench/liquid.py``,
``bench/lrcssm.py``, ``bench/engine.py``, ``bench/official.py``: ours against the official code,
also spelled ``liquidssm bench --against official``) and exposes ``main(argv: list[str] | None) -> int`` plus a function that
returns its measurements as a :class:`pandas.DataFrame`, so a chapter can call the same code the
command line runs. Shared measurement helpers are in :mod:`liquidssm.bench._util`.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

from liquidssm.cliutil import UsageError

BENCHMARKS = {
    "kernels": "liquidssm.bench.kernels",
    "liquid": "liquidssm.bench.liquid",
    "lrcssm": "liquidssm.bench.lrcssm",
    "engine": "liquidssm.bench.engine",
    "official": "liquidssm.bench.official",
}


def describe(name: str) -> str:
    """First line of benchmark ``name``'s module docstring, read without importing it (no torch)."""
    spec = importlib.util.find_spec(BENCHMARKS[name])
    if spec is None or spec.origin is None:
        return ""
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))) or ""
    return doc.splitlines()[0] if doc else ""


def run(name: str, argv: list[str] | None = None) -> int:
    """Run benchmark ``name`` with command-line arguments ``argv``; return its exit status.

    An unknown ``name`` raises :class:`liquidssm.cliutil.UsageError` (exit status 2) listing the
    benchmarks.
    """
    if name not in BENCHMARKS:
        raise UsageError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)} "
                         "(`liquidssm bench --help` describes them)")
    module = importlib.import_module(BENCHMARKS[name])
    return int(module.main(argv) or 0)
