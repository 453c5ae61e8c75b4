"""Benchmark of the Cauchy backends and the S4 DPLR kernel; chapter s4/03_s4_kernel.

``python -m liquidssm.bench kernels [--N 64 256] [--L 1024 4096 16384 65536] [--quick]`` prints,
for each state size ``N`` (``N2 = N/2`` stored modes) and length ``L``, the forward+backward wall
time and the peak memory of

* the conjugate-pair Cauchy reduction of Algorithm 1 line 2, exactly as
  :func:`liquidssm.kernels.s4_dplr_kernel` calls it (a ``(2, 2, H, N2)`` batch of numerators,
  ``L//2 + 1`` nodes), for each backend: ``naive`` (full broadcast oracle, skipped above
  ``--naive-max`` elements), ``torch`` (chunked), ``keops`` (if pykeops works);
* the full kernel with the ``torch`` and ``keops`` Cauchy backends: ``what="kernel"`` from a
  learned ``C_tilde`` (lines 2-5, the layers' default ``c_param="tilde"``) and
  ``what="kernel (C)"`` from the paper's ``C`` (lines 1-5: ``C_tilde = C(I - A_bar^L)`` by a dense
  solve and repeated squaring in every call); ``--c-param`` picks them (default both);

and the ratio torch/keops. Times are the best of ``--repeats`` runs after one warm-up call; the
first call (which includes keops' one-off compile when the cache is cold) is reported separately.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Sequence

import pandas as pd
import torch

from liquidssm._checks import check_choice, check_int
from liquidssm.allocator import fresh_mappings
from liquidssm.bench._util import machine_summary, peak_memory_mb, time_fn
from liquidssm.cauchy import (
    DEFAULT_CHUNK_ELEMS,
    cauchy_keops,
    cauchy_naive,
    cauchy_torch,
    keops_available,
)
from liquidssm.cliutil import int_at_least
from liquidssm.hippo import nplr_legs
from liquidssm.kernels import roots_of_unity, s4_dplr_kernel

__all__ = ["bench_kernels", "c_tilde_ratio", "main"]

_CAUCHY = {"naive": cauchy_naive, "torch": cauchy_torch, "keops": cauchy_keops}


def _cauchy_case(N: int, L: int, H: int, dtype: torch.dtype, device: str) -> dict[str, torch.Tensor]:
    d = nplr_legs(N, dtype)
    N2 = N // 2
    Lam = d.Lambda.to(device).expand(H, N2)
    dt = torch.logspace(-3, -1, H, dtype=torch.float64).to(Lam.real.dtype).to(device)
    C = torch.randn(H, N2, dtype=dtype, device=device)
    P = d.P.to(device).expand(H, N2)
    B = d.B.to(device).expand(H, N2)
    rows = torch.stack([C, P.conj()])
    cols = torch.stack([B, P])
    v = (rows[:, None] * cols[None, :]).contiguous()  # (2, 2, H, N2)
    omega = roots_of_unity(L, dtype, device)
    z = 2 * (1 - omega) / (1 + omega)
    w = (Lam * dt[:, None]).contiguous()
    return {"v": v, "z": z, "w": w, "Lambda": Lam, "P": P, "B": B, "C": C, "dt": dt}


def _fwd_bwd(fn: Callable[[], torch.Tensor], leaves: Sequence[torch.Tensor]) -> Callable[[], None]:
    def run() -> None:
        for t in leaves:
            t.grad = None
        out = fn()
        loss = out.abs().square().sum() if out.is_complex() else out.square().sum()
        loss.backward()

    return run


def bench_kernels(Ns: Sequence[int] = (64, 256), Ls: Sequence[int] = (1024, 4096, 16384, 65536), *,
                  H: int = 1, backends: Sequence[str] = ("naive", "torch", "keops"),
                  full_kernel: bool = True, dtype: torch.dtype = torch.complex64,
                  device: str = "cpu", repeats: int = 3, naive_max: int = 2**25,
                  chunk_elems: int = DEFAULT_CHUNK_ELEMS, threads: int | None = None,
                  verbose: bool = False, c_params: Sequence[str] = ("tilde", "c")) -> pd.DataFrame:
    """Measure Cauchy backends and the full S4 kernel; one row per (what, backend, N, L).

    ``c_params``: the full-kernel rows to time, ``"tilde"`` (``what="kernel"``: from ``C_tilde``,
    lines 2-5) and/or ``"c"`` (``what="kernel (C)"``: from ``C``, lines 1-5).
    Columns: ``what`` ("cauchy" | "kernel" | "kernel (C)"), ``backend``, ``N``, ``L``, ``H``, ``first_call_ms``
    (includes any keops compile), ``fwd_bwd_ms`` (best of ``repeats``), ``peak_mb`` (extra memory
    of one forward+backward). Backends that cannot run are skipped (keops without pykeops).
    ``chunk_elems`` is passed to the torch Cauchy rows (the full-kernel rows use the default).
    ``threads``: torch intra-op threads during the measurements (restored afterwards); on a
    shared, oversubscribed CPU one thread gives far steadier numbers than several.
    """
    c_params = list(c_params)
    for c in c_params:
        check_choice(c, "c_params", ("tilde", "c"))
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(check_int(threads, "threads", minimum=1))
    try:
        return _bench(Ns, Ls, H, list(backends), full_kernel, dtype, device, repeats, naive_max,
                      chunk_elems, verbose, c_params)
    finally:
        torch.set_num_threads(old_threads)


def _bench(Ns: Sequence[int], Ls: Sequence[int], H: int, backends: list[str], full_kernel: bool,
           dtype: torch.dtype, device: str, repeats: int, naive_max: int, chunk_elems: int,
           verbose: bool, c_params: list[str]) -> pd.DataFrame:
    if "keops" in backends and not keops_available()[0]:
        backends.remove("keops")
    rows = []
    for N in Ns:
        for L in Ls:
            case = _cauchy_case(N, L, H, dtype, device)
            jobs: list[tuple[str, str, Callable[[], None]]] = []
            for be in backends:
                n_elems = case["v"].numel() * case["z"].numel()
                if be == "naive" and n_elems > naive_max:
                    continue
                v = case["v"].clone().requires_grad_()
                w = case["w"].clone().requires_grad_()
                z = case["z"]
                if be == "torch":
                    def call(v=v, w=w, z=z) -> torch.Tensor:
                        return cauchy_torch(v, z, w, chunk_elems=chunk_elems)
                else:
                    def call(v=v, w=w, z=z, f=_CAUCHY[be]) -> torch.Tensor:
                        return f(v, z, w)
                jobs.append(("cauchy", be, _fwd_bwd(call, [v, w])))
            if full_kernel:
                for be in [b for b in backends if b in ("torch", "keops")]:
                    for c_param in c_params:
                        leaves = [case[k].clone().requires_grad_() for k in ("Lambda", "P", "B", "C", "dt")]
                        tilde = c_param == "tilde"
                        jobs.append(("kernel" if tilde else "kernel (C)", be, _fwd_bwd(
                            lambda lv=leaves, be=be, L=L, tilde=tilde: s4_dplr_kernel(*lv, L, backend=be,
                                                                                      c_is_tilde=tilde),
                            leaves)))
            for what, be, fn in jobs:
                t0 = time.perf_counter()
                fn()
                first = (time.perf_counter() - t0) * 1e3
                with fresh_mappings() if device == "cpu" else contextlib.nullcontext():
                    peak = peak_memory_mb(fn, device=device)  # every large tensor a fresh mapping
                timing = time_fn(fn, repeats=repeats, warmup=1, device=device)
                rows.append({"what": what, "backend": be, "N": N, "L": L, "H": H,
                             "first_call_ms": first, "fwd_bwd_ms": timing.best_ms, "peak_mb": peak})
                if verbose:
                    print(f"  {what:10s} {be:6s} N={N:4d} L={L:6d}: {timing.best_ms:9.2f} ms, "
                          f"{peak:8.1f} MiB", flush=True)
    return pd.DataFrame(rows)


def kernel_probe(H: int = 256, N: int = 64, L: int = 4096, repeats: int = 5, threads: int = 1) -> dict[str, float]:
    """Page faults and time of one S4 DPLR kernel forward+backward (HiPPO-LegS modes, learned ``C̃``).

    :func:`liquidssm.allocator.probe` of :func:`liquidssm.kernels.s4_dplr_kernel` at ``H``, ``N``,
    ``L`` on ``threads`` threads; the workload of ``allocator.measure_effect(workload=
    "liquidssm.bench.kernels:kernel_probe", ...)`` in the performance chapter.
    """
    from liquidssm.allocator import probe

    torch.set_num_threads(check_int(threads, "threads", minimum=1))
    case = _cauchy_case(check_int(N, "N", minimum=2), check_int(L, "L", minimum=1), check_int(H, "H", minimum=1),
                        torch.complex64, "cpu")
    leaves = [case[k].clone().requires_grad_() for k in ("Lambda", "P", "B", "C", "dt")]
    return probe(_fwd_bwd(lambda: s4_dplr_kernel(*leaves, L, c_is_tilde=True), leaves),
                 check_int(repeats, "repeats", minimum=1))


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Pivot ``bench_kernels`` output to one row per (what, N, L) with times, memory and ratios."""
    t = df.pivot_table(index=["what", "N", "L"], columns="backend", values="fwd_bwd_ms")
    m = df.pivot_table(index=["what", "N", "L"], columns="backend", values="peak_mb")
    out = pd.concat({"ms": t, "MiB": m}, axis=1)
    out.columns = [f"{b} {q}" for q, b in out.columns]
    if "torch" in t and "keops" in t:
        out["torch/keops time"] = t["torch"] / t["keops"]
    if "naive" in t and "torch" in t:
        out["naive/torch time"] = t["naive"] / t["torch"]
    return out


def c_tilde_ratio(df: pd.DataFrame, backend: str = "torch") -> pd.Series:
    """Time of the kernel from ``C`` over the kernel from ``C_tilde`` per (N, L), for one backend."""
    t = df[df.backend == backend].pivot_table(index=["N", "L"], columns="what", values="fwd_bwd_ms")
    return (t["kernel (C)"] / t["kernel"]).rename("C / C_tilde time")


def main(argv: list[str] | None = None) -> int:
    """Command line: print the benchmark table (see module docstring)."""
    ap = argparse.ArgumentParser(prog="liquidssm bench kernels", description=__doc__.split("\n")[0])
    ap.add_argument("--N", type=int_at_least(2), nargs="+", default=[64, 256], help="state sizes N (even)")
    ap.add_argument("--L", type=int_at_least(1), nargs="+", default=[1024, 4096, 16384, 65536], help="lengths")
    ap.add_argument("--H", type=int_at_least(1), default=1, help="channels")
    ap.add_argument("--backends", nargs="+", choices=sorted(_CAUCHY), default=["naive", "torch", "keops"])
    ap.add_argument("--no-kernel", action="store_true", help="skip the full-kernel rows")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--repeats", type=int_at_least(1), default=3)
    ap.add_argument("--threads", type=int_at_least(1), default=None, help="torch threads (default: torch's)")
    ap.add_argument("--chunk-elems", type=int_at_least(1), default=DEFAULT_CHUNK_ELEMS,
                    help="chunk budget of the torch Cauchy rows")
    ap.add_argument("--c-param", choices=["tilde", "c", "both"], default="both",
                    help="full-kernel rows from a learned C_tilde (default layer path), from C, or both")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (N=16, L=256,1024)")
    args = ap.parse_args(argv)
    if args.quick:
        args.N, args.L = [16], [256, 1024]
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available")
    dtype = torch.complex64 if args.dtype == "float32" else torch.complex128
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"# S4 kernel / Cauchy benchmark on {machine_summary(args.device)}; {args.dtype}, H={args.H}")
    df = bench_kernels(args.N, args.L, H=args.H, backends=args.backends,
                       full_kernel=not args.no_kernel, dtype=dtype, device=args.device,
                       repeats=args.repeats, chunk_elems=args.chunk_elems, threads=args.threads,
                       verbose=True, c_params=("tilde", "c") if args.c_param == "both" else (args.c_param,))
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.float_format", "{:.2f}".format):
        print(summary_table(df))
        if args.c_param == "both" and not args.no_kernel and "torch" in args.backends:
            print("\nfull kernel, time from C over time from C_tilde (torch backend):")
            print(c_tilde_ratio(df).to_string())
        first = df[df.backend == "keops"][["what", "N", "L", "first_call_ms"]]
        if len(first):
            print("\nkeops first-call times (ms; include compiles when the cache is cold):")
            print(first.to_string(index=False))
    return 0
