"""Measurement helpers shared by the benchmarks: wall time (best of repeats, or interleaved), peak memory, JSON output.

Times are measured side by side in one process, so only their *ratios* are meaningful across
machines. Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA and, on CPU, the peak rise
of the process's resident set size sampled by a background thread (an upper-bound style
estimate: it sees every allocation large enough to be mapped from the OS). Under the allocator
setting of :mod:`liquidssm.allocator` (freed blocks kept in the process) a repeated allocation
reuses resident memory, so that rise reads near zero after the first call: take such readings
inside :func:`liquidssm.allocator.fresh_mappings` (as ``bench kernels`` does); the official-code
comparison reports the process's peak RSS (:func:`peak_rss_mb`) instead.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from liquidssm._checks import check_int


@dataclass
class Timing:
    """Best and median wall time of ``repeats`` calls, in milliseconds."""

    best_ms: float
    median_ms: float
    repeats: int


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_fn(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1,
            device: torch.device | str | None = None) -> Timing:
    """Call ``fn`` ``warmup`` times, then ``repeats`` times, and return the best/median wall time.

    ``repeats >= 1`` and ``warmup >= 0`` (a best of zero runs does not exist).
    """
    check_int(repeats, "repeats", minimum=1)
    check_int(warmup, "warmup", minimum=0)
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return Timing(min(times), statistics.median(times), repeats)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_memory_mb(fn: Callable[[], object], device: torch.device | str | None = None,
                   interval_s: float = 0.0005) -> float:
    """Peak extra memory used while ``fn`` runs, in MiB (CUDA allocator peak, or CPU RSS rise)."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    if not os.path.exists("/proc/self/statm"):
        return float("nan")
    base = _rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(interval_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    peak[0] = max(peak[0], _rss_bytes())
    return (peak[0] - base) / 2**20


def machine_summary(device: torch.device | str | None = None) -> str:
    """One line naming the hardware and software a benchmark ran on."""
    dev = torch.device(device or "cpu")
    if dev.type == "cuda":
        hw = torch.cuda.get_device_name(dev)
    else:
        hw = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    return f"{hw}; torch {torch.__version__}; python {platform.python_version()}"


class OperatorCounter(TorchDispatchMode):
    """Counts the tensor operators (ATen calls) launched while active: a proxy for sequential depth.

    ``with OperatorCounter() as ops: fn()`` then ``ops.n``. Chapter lrcssm/06_lrcssm_model uses it
    where wall time on two cores cannot show parallel depth.
    """

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        self.n += 1
        return func(*args, **(kwargs or {}))


def saved_for_backward_mb(fn: Callable[[], object]) -> float:
    """MiB of the tensors autograd keeps for the backward pass of ``fn()`` (the training memory)."""
    total = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total[0] / 2**20



def interleaved_times(steps: dict[str, Callable[[], object]], *, repeats: int = 5,
                      warmup: int = 1) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Time several variants round-robin in one process; returns (first-call s, per-variant s).

    The first call of each variant (compiles, caches, first page faults) is timed on its own;
    then ``warmup`` untimed rounds; then ``repeats`` rounds, each in an order rotated by one, so
    that no variant always runs first or right after the same neighbour (machine noise and cache
    effects fall on every variant alike). Compare the variants by the ratio of their medians.
    """
    check_int(repeats, "repeats", minimum=1)
    check_int(warmup, "warmup", minimum=0)
    names = list(steps)
    first: dict[str, float] = {}
    for name in names:
        t0 = time.perf_counter()
        steps[name]()
        first[name] = time.perf_counter() - t0
    for _ in range(warmup):
        for name in names:
            steps[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeats):
        r = i % len(names)
        for name in names[r:] + names[:r]:
            t0 = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - t0)
    return first, times


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss``; NaN where unknown)."""
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def write_json_atomic(path: str | os.PathLike[str], payload: object, *, force: bool = False) -> Path:
    """Write ``payload`` as JSON to ``path`` atomically (temp file in the same folder, then ``os.replace``).

    An existing ``path`` is refused with :class:`FileExistsError` unless ``force``; a reader never
    sees a partly written file.
    """
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"out: {path} exists; pass --force (force=True) to overwrite it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"out: folder {path.parent} does not exist (expected an existing folder)")
    from liquidssm.repro.checkpoint import atomic_write

    atomic_write(path, (json.dumps(payload, indent=1, default=str) + "\n").encode("utf-8"))
    return path
