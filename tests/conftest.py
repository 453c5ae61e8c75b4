"""Shared pytest set-up: quiet pykeops, headless matplotlib, deterministic seeds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("KEOPS_VERBOSE", "0")
os.environ.setdefault("PYKEOPS_VERBOSE", "0")
os.environ.setdefault("KEOPS_CACHE_FOLDER", str(ROOT / ".cache" / "keops"))
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same torch seed, so failures reproduce."""
    import torch

    torch.manual_seed(0)
    yield


@pytest.fixture
def broken_compile(monkeypatch):
    """``torch.compile`` that fails at the first call of what it returns (as without a C++ compiler),
    with :mod:`liquidssm.compiled`'s caches emptied so every name is compiled (and fails) afresh."""
    import torch

    from liquidssm import compiled

    def broken(fn, **kw):
        def fail(*a):
            raise RuntimeError("no C++ compiler found")
        return fail

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(compiled, "_COMPILED", {})
    monkeypatch.setattr(compiled, "_FAILED", {})
    return monkeypatch
