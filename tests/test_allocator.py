"""The allocator setting (:mod:`liquidssm.allocator`): idempotent, opt-out, described, mallopt succeeds on glibc.

Each check that applies a setting runs in a fresh interpreter: a malloc threshold cannot be
un-set, so the test process itself is never changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from liquidssm import allocator

_PROBE = """
import json, sys
from liquidssm import allocator
first = allocator.apply_malloc_setting({mode})
second = allocator.apply_malloc_setting({mode})
print(json.dumps({{"first": first.to_dict(), "same": first is second,
                   "active": allocator.malloc_setting().to_dict()}}))
"""


def _probe(mode: str | None, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if k not in ("LIQUIDSSM_MALLOC", "GLIBC_TUNABLES")}
    environ.update(env)
    code = _PROBE.format(mode=repr(mode))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=environ)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


glibc = pytest.mark.skipif(allocator.glibc_version() is None, reason="needs glibc on Linux")


@glibc
def test_retain_sets_both_thresholds_once_and_says_so():
    got = _probe(None)
    first = got["first"]
    assert first["applied"] and first["mode"] == "retain" and got["same"]
    assert first["mmap_threshold"] >= 32 * 2**20 and first["trim_threshold"] == 2**31 - 1
    assert "M_MMAP_THRESHOLD" in first["description"] and "LIQUIDSSM_MALLOC=system" in first["description"]
    assert got["active"] == first


def test_opt_out_by_environment_variable_changes_nothing():
    got = _probe(None, LIQUIDSSM_MALLOC="system")
    assert not got["first"]["applied"] and got["first"]["mode"] == "system" and got["same"]
    assert "LIQUIDSSM_MALLOC=system" in got["first"]["description"]


@glibc
def test_glibc_tunables_are_left_alone():
    got = _probe(None, GLIBC_TUNABLES="glibc.malloc.trim_threshold=1000000")
    assert not got["first"]["applied"] and "GLIBC_TUNABLES" in got["first"]["description"]


@glibc
def test_mallopt_calls_succeed_on_glibc():
    # the raw calls this module makes, each with a value glibc accepts (returns 1), in a child
    code = ("import ctypes; m = ctypes.CDLL(None).mallopt; "
            "print(m(-3, 32 * 2**20), m(-3, 2**31 - 1), m(-1, 2**31 - 1))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["1", "1", "1"]


def test_bad_mode_names_the_variable(monkeypatch):
    monkeypatch.setenv("LIQUIDSSM_MALLOC", "jemalloc")
    with pytest.raises(ValueError, match="LIQUIDSSM_MALLOC: expected one of retain, system, got 'jemalloc'"):
        allocator.apply_malloc_setting()
    with pytest.raises(ValueError, match="mode: expected one of"):
        allocator.apply_malloc_setting("fast")


def test_a_second_mode_after_retain_is_refused():
    code = ("from liquidssm import allocator as a\n"
            "s = a.apply_malloc_setting('retain')\n"
            "try:\n    a.apply_malloc_setting('system')\nexcept ValueError as e:\n    print('refused' if s.applied else 'x', e)\n"
            "else:\n    print('accepted', s.applied)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "LIQUIDSSM_MALLOC"})
    expected = "refused" if allocator.glibc_version() else "accepted"
    assert out.stdout.startswith(expected), out.stdout + out.stderr


def test_describes_what_is_active_without_applying():
    state = allocator.malloc_setting()
    assert isinstance(state.description, str) and state.description
    assert isinstance(allocator.available_allocators(), dict)
    assert allocator.preloaded_allocator() in (None, "jemalloc", "tcmalloc", "mimalloc")


def test_measure_effect_runs_a_named_workload_in_both_modes():
    out = allocator.measure_effect(workload="liquidssm.bench.kernels:kernel_probe", H=2, N=4, L=16, repeats=2)
    assert set(out) == {"system", "retain"}
    for mode, rec in out.items():
        assert rec["ms_per_call"] > 0 and rec["faults_per_call"] >= 0
        assert ("left unchanged" in rec["setting"]) == (mode == "system")
    with pytest.raises(ValueError, match="workload: expected 'module:function', got 'nonsense'"):
        allocator.measure_effect(workload="nonsense")


def test_fresh_mappings_lowers_the_thresholds_and_restores_the_active_setting(monkeypatch):
    """Inside: 128 KiB thresholds (large tensors mapped afresh, for RSS readings); after: the
    thresholds of the applied setting again, or fixed 32 MiB ones where none was applied."""
    if allocator.glibc_version() is None:
        pytest.skip("no glibc malloc here")
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(allocator, "_mallopt", lambda p, v: calls.append((p, v)) or True)
    retain = allocator.MallocSetting("retain", True, "kept", "2.36", 2**31 - 1, 2**31 - 1)
    for state, restored in ((retain, 2**31 - 1), (None, 32 * 2**20)):
        monkeypatch.setattr(allocator, "_STATE", state)
        calls.clear()
        with allocator.fresh_mappings():
            assert calls == [(allocator.M_MMAP_THRESHOLD, 128 * 1024), (allocator.M_TRIM_THRESHOLD, 256 * 1024)]
        assert calls[2][0] == allocator.M_MMAP_THRESHOLD and calls[2][1] == restored
        assert calls[3][0] == allocator.M_TRIM_THRESHOLD and calls[3][1] >= restored
