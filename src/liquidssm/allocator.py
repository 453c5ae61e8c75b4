"""The C heap allocator: keep freed large blocks in the process (glibc ``mallopt``); appendix *Reproduction environment*.

PyTorch on a CPU gets every tensor's memory from the C library's ``malloc``. glibc serves a
block larger than its *mmap threshold* with a fresh ``mmap`` and returns it to the system with
``munmap`` on free, and gives free memory at the top of its heap back to the system once it
exceeds the *trim threshold*. A kernel that allocates large temporaries on every call then pays
a page fault for every 4 KiB page of them on every call: the same computation takes several times
longer in one process than in another, depending only on how glibc's dynamic threshold happened
to move. :func:`apply_malloc_setting` raises both thresholds with ``mallopt`` so freed blocks stay
in the process and are reused without faults. It changes *where* memory comes from, never what
is computed; its cost is that the resident set size stays at its peak after large frees.

The setting is applied by the ``liquidssm`` command and at the start of a training run
(:func:`liquidssm.repro.train.fit`); ``LIQUIDSSM_MALLOC=system`` turns it off. It is a no-op
(with a description saying why) off Linux, on a C library other than glibc (musl, macOS,
Windows), when ``GLIBC_TUNABLES`` already sets ``glibc.malloc.*``, and when a replacement
allocator (jemalloc, tcmalloc, mimalloc) is preloaded.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

__all__ = [
    "ENV_VAR",
    "MODES",
    "M_MMAP_THRESHOLD",
    "M_TRIM_THRESHOLD",
    "MallocSetting",
    "apply_malloc_setting",
    "fault_probe",
    "fresh_mappings",
    "measure_effect",
    "probe",
    "available_allocators",
    "glibc_version",
    "malloc_setting",
    "preloaded_allocator",
]

#: environment variable choosing the mode: ``retain`` (default) or ``system`` (leave malloc alone)
ENV_VAR = "LIQUIDSSM_MALLOC"
MODES = ("retain", "system")
#: ``mallopt`` parameter numbers from glibc's ``<malloc.h>``
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: largest value ``mallopt`` accepts (its argument is a C ``int``): 2 GiB - 1
_INT_MAX = 2**31 - 1
#: glibc's ceiling of the *dynamic* mmap threshold on 64-bit (``DEFAULT_MMAP_THRESHOLD_MAX``);
#: the fallback where a C library refuses a larger fixed threshold
_FALLBACK_THRESHOLD = 32 * 2**20
_REPLACEMENTS = ("jemalloc", "tcmalloc", "mimalloc")


@dataclass(frozen=True)
class MallocSetting:
    """What :func:`apply_malloc_setting` did: ``applied``, the ``mode``, thresholds set, and why."""

    mode: str
    applied: bool
    description: str
    libc: str | None = None
    mmap_threshold: int | None = None
    trim_threshold: int | None = None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (for results provenance and benchmark records)."""
        return asdict(self)


_STATE: MallocSetting | None = None


def glibc_version() -> str | None:
    """The running glibc's version (``gnu_get_libc_version``), or None for any other C library."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None).gnu_get_libc_version
    except (OSError, AttributeError):  # musl and others do not have it
        return None
    fn.restype = ctypes.c_char_p
    return fn().decode()


def preloaded_allocator() -> str | None:
    """Name of a replacement allocator mapped into this process (jemalloc, tcmalloc, mimalloc), else None."""
    try:
        with open("/proc/self/maps") as fh:
            maps = fh.read()
    except OSError:
        return None
    for name in _REPLACEMENTS:
        if f"lib{name}" in maps:
            return name
    return None


def available_allocators() -> dict[str, str]:
    """Replacement allocators the dynamic linker knows (``ldconfig -p``): name -> library path.

    Informational only (use one with ``LD_PRELOAD=<path>``); empty where ``ldconfig`` is absent.
    """
    exe = shutil.which("ldconfig") or ("/sbin/ldconfig" if os.path.exists("/sbin/ldconfig") else None)
    if exe is None:
        return {}
    try:
        listing = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found: dict[str, str] = {}
    for line in listing.splitlines():
        lib, _, path = line.strip().partition(" => ")
        for name in _REPLACEMENTS:
            if lib.startswith(f"lib{name}") and name not in found:
                found[name] = path.strip()
    return found


def _mode(mode: str | None) -> str:
    if mode is None:
        mode = os.environ.get(ENV_VAR, "retain").strip().lower() or "retain"
        source = f"environment variable {ENV_VAR}"
    else:
        source = "mode"
    if mode not in MODES:
        raise ValueError(f"{source}: expected one of {', '.join(MODES)}, got {mode!r}")
    return mode


def _skip_reason(mode: str, libc: str | None) -> str | None:
    if mode == "system":
        return f"system malloc left unchanged ({ENV_VAR}=system)"
    if libc is None:
        return f"no-op: not glibc on Linux ({sys.platform}); the platform allocator is used"
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc." in tunables:
        return f"no-op: GLIBC_TUNABLES={tunables} already configures glibc malloc"
    other = preloaded_allocator()
    if other is not None:
        return f"no-op: {other} is preloaded and replaces glibc malloc"
    return None


def _mallopt(param: int, value: int) -> bool:
    return bool(ctypes.CDLL(None).mallopt(ctypes.c_int(param), ctypes.c_int(value)))


def _retain(libc: str) -> MallocSetting:
    """Fix the mmap and trim thresholds as high as ``mallopt`` allows (falling back to 32 MiB)."""
    mmap_threshold = _INT_MAX if _mallopt(M_MMAP_THRESHOLD, _INT_MAX) else None
    if mmap_threshold is None and _mallopt(M_MMAP_THRESHOLD, _FALLBACK_THRESHOLD):
        mmap_threshold = _FALLBACK_THRESHOLD
    trim_threshold = _INT_MAX if _mallopt(M_TRIM_THRESHOLD, _INT_MAX) else None
    ok = mmap_threshold is not None and trim_threshold is not None
    text = (f"glibc {libc} malloc: freed blocks kept in the process (mallopt M_MMAP_THRESHOLD="
            f"{mmap_threshold}, M_TRIM_THRESHOLD={trim_threshold}); opt out with {ENV_VAR}=system")
    if not ok:
        text = f"glibc {libc} malloc: mallopt refused (M_MMAP_THRESHOLD={mmap_threshold}, " \
               f"M_TRIM_THRESHOLD={trim_threshold}); default allocator behaviour"
    return MallocSetting("retain", ok, text, libc, mmap_threshold, trim_threshold)


def apply_malloc_setting(mode: str | None = None) -> MallocSetting:
    """Apply the allocator setting once per process and return what was done (idempotent).

    ``mode``: ``"retain"`` (keep freed large blocks: fixed mmap and trim thresholds of 2 GiB - 1
    via glibc ``mallopt``) or ``"system"`` (leave malloc alone); ``None`` reads
    ``$LIQUIDSSM_MALLOC`` (default ``retain``). Later calls return the first call's
    :class:`MallocSetting` unchanged; once thresholds are set they cannot be un-set, so asking
    for another mode then raises ``ValueError`` rather than being silently ignored. Never changes a computed value.
    """
    global _STATE
    mode = _mode(mode)
    if _STATE is not None and _STATE.mode == mode:
        return _STATE
    if _STATE is not None and _STATE.applied:
        raise ValueError(f"mode: the allocator setting {_STATE.mode!r} is already applied in this "
                         f"process and cannot be undone; got {mode!r}")
    libc = glibc_version()
    reason = _skip_reason(mode, libc)
    _STATE = MallocSetting(mode, False, reason, libc) if reason else _retain(libc)  # type: ignore[arg-type]
    return _STATE


@contextlib.contextmanager
def fresh_mappings(threshold: int = 128 * 1024) -> Iterator[None]:
    """Inside: every block above ``threshold`` bytes is a fresh mapping, returned on free (glibc).

    For memory *readings* (``bench kernels``' ``peak_mb``): with freed blocks kept in the process
    a repeated allocation reuses resident memory and an RSS rise reads about zero, so the
    thresholds are lowered and free heap pages handed back (``malloc_trim``) for the reading. On
    exit the active :func:`apply_malloc_setting` thresholds are set again, or, where none was
    applied, fixed 32 MiB thresholds (glibc's ceiling of its dynamic threshold: ``mallopt``
    switches the dynamic adjustment off for good). A no-op where glibc is absent.
    """
    threshold = int(threshold)
    if glibc_version() is None:
        yield
        return
    _mallopt(M_MMAP_THRESHOLD, threshold)
    _mallopt(M_TRIM_THRESHOLD, 2 * threshold)
    ctypes.CDLL(None).malloc_trim(0)
    try:
        yield
    finally:
        active = _STATE if _STATE is not None and _STATE.applied else None
        _mallopt(M_MMAP_THRESHOLD, active.mmap_threshold if active else _FALLBACK_THRESHOLD)  # type: ignore[arg-type]
        _mallopt(M_TRIM_THRESHOLD, active.trim_threshold if active else 2 * _FALLBACK_THRESHOLD)  # type: ignore[arg-type]


def malloc_setting() -> MallocSetting:
    """The allocator setting active in this process (``applied=False`` if never applied)."""
    if _STATE is not None:
        return _STATE
    libc = glibc_version()
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    text = (f"GLIBC_TUNABLES={tunables}" if "glibc.malloc." in tunables
            else f"{preloaded_allocator() or ('glibc ' + libc if libc else sys.platform)} malloc, defaults")
    return MallocSetting("system", False, text, libc)


def probe(call: Callable[[], object], repeats: int = 10) -> dict[str, float]:
    """Page faults and time of ``call()``: ``repeats`` warm-up calls, then ``repeats`` measured ones.

    Returns ``faults_per_call`` (minor page faults, ``ru_minflt``; NaN where unavailable),
    ``ms_per_call`` (median wall time) and ``peak_rss_mb`` (the process's peak RSS, Linux).
    Run it in a fresh process per setting (:func:`measure_effect`): what it sees depends on what
    the allocator did before.
    """
    import statistics
    import time

    try:
        import resource
    except ImportError:  # Windows
        resource = None  # type: ignore[assignment]
    for _ in range(repeats):  # warm-up: freed blocks need a few rounds to coalesce into reusable ones
        call()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(1e3 * (time.perf_counter() - t0))
    f1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if resource else float("nan")
    return {"faults_per_call": (f1 - f0) / repeats, "ms_per_call": statistics.median(times),
            "peak_rss_mb": peak}


def fault_probe(mb: int = 64, repeats: int = 10) -> dict[str, float]:
    """:func:`probe` of allocating, touching and freeing one ``mb`` MiB tensor."""
    import torch

    n = mb * 2**20 // 4

    def call() -> None:
        t = torch.empty(n)
        t.fill_(1.0)
        del t

    return probe(call, repeats)


_FAULT_PROBE = "liquidssm.allocator:fault_probe"


def measure_effect(mb: int = 64, repeats: int = 10, *, workload: str = _FAULT_PROBE,
                   **options: int) -> dict[str, dict[str, object]]:
    """A probe in two fresh interpreters, ``LIQUIDSSM_MALLOC=system`` and ``retain``.

    ``workload`` names a function ``"module:function"`` returning :func:`probe`'s dict, called
    with ``repeats`` and ``options`` (default :func:`fault_probe`, which also gets ``mb``; e.g.
    ``"liquidssm.bench.kernels:kernel_probe"`` with ``H``, ``N``, ``L``). Returns
    ``{mode: {"setting": description, "faults_per_call", "ms_per_call", "peak_rss_mb"}}``.
    """
    import json

    module, _, function = workload.partition(":")
    if not module or not function:
        raise ValueError(f"workload: expected 'module:function', got {workload!r}")
    kwargs = {"repeats": int(repeats), **{k: int(v) for k, v in options.items()}}
    if workload == _FAULT_PROBE:
        kwargs["mb"] = int(mb)
    code = ("import importlib, json; from liquidssm import allocator as a; s = a.apply_malloc_setting(); "
            f"f = getattr(importlib.import_module({module!r}), {function!r}); "
            f"print(json.dumps({{'setting': s.description, **f(**{kwargs!r})}}))")
    out: dict[str, dict[str, object]] = {}
    for mode in MODES[::-1]:
        env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
        env[ENV_VAR] = mode
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"measure_effect: the probe for {ENV_VAR}={mode} failed: {proc.stderr.strip()[-500:]}")
        out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out
