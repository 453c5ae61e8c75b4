"""Benchmarks behind ``liquidssm bench <name>`` and the performance chapter.

Each benchmark lives in its own module (``bench/kernels.py``, ``bench/liquid.py``,
``bench/lrcssm.py``) and exposes ``main(argv: list[str] | None) -> int`` plus a function that
returns its measurements as a :class:`pandas.DataFrame`, so a chapter can call the same code the
command line runs. Shared measurement helpers are in :mod:`liquidssm.bench._util`.
"""

from __future__ import annotations

import importlib

BENCHMARKS = {
    "kernels": "liquidssm.bench.kernels",
    "liquid": "liquidssm.bench.liquid",
    "lrcssm": "liquidssm.bench.lrcssm",
    "engine": "liquidssm.bench.engine",
}


def run(name: str, argv: list[str] | None = None) -> int:
    """Run benchmark ``name`` with command-line arguments ``argv``; return its exit status."""
    if name not in BENCHMARKS:
        raise SystemExit(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    module = importlib.import_module(BENCHMARKS[name])
    return int(module.main(argv) or 0)
