"""Benchmark: LrcSSM layer solved by parallel Newton (quasi-DEER) vs the sequential loops.

``python -m liquidssm bench lrcssm [--quick] [--T 1024 4096 17984] [--D 64] [--H 64] [--batch 4] [--compile]``

For each sequence length it times the forward pass and forward+backward (loss = mean of the
states) of one :class:`liquidssm.lrc.LrcSSMCell` layer, solved (a) by :func:`newton_solve`
(parallel scans, implicit gradient), (b) by the oracle loop :func:`sequential_solve_bptt`
(backprop through time) and (c) by the fast sequential solver :func:`sequential_solve` (loop
without autograd + one adjoint scan); with ``--compile`` both fast solvers ``torch.compile``
their cell evaluations and the first (compiling) calls are reported separately. It records the
Newton iterations, the peak memory of forward+backward, the max difference between the
solutions and the ratios parallel/fast and fast/oracle. The variants run round-robin in one
process (:func:`~liquidssm.bench._util.interleaved_times`); times are medians in ms, and only
ratios carry over to other machines.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import pandas as pd
import torch

from liquidssm.bench._util import interleaved_times, machine_summary, peak_memory_mb
from liquidssm.cliutil import int_at_least
from liquidssm.lrc import LrcSSMCell
from liquidssm.newton import newton_solve, sequential_solve, sequential_solve_bptt
from liquidssm.scan import SCAN_METHODS

__all__ = ["benchmark", "main"]

COLUMNS = ["T", "newton_iters", "par_fwd_ms", "fast_fwd_ms", "seq_fwd_ms", "par_fwdbwd_ms", "fast_fwdbwd_ms",
           "seq_fwdbwd_ms", "fwd_speedup", "fwdbwd_speedup", "par_over_fast_fwd", "par_over_fast_fwdbwd",
           "fast_over_oracle_fwd", "fast_over_oracle_fwdbwd", "compile_s", "par_peak_mb", "fast_peak_mb",
           "seq_peak_mb", "max_abs_diff", "fast_max_abs_diff"]


def benchmark(Ts: tuple[int, ...] = (1024, 4096, 17984), *, D: int = 64, H: int = 64, batch: int = 4,
              repeats: int = 3, seq_backward_max_T: int | None = None, device: str = "cpu",
              scan_method: str = "blelloch", compile: bool = False, seed: int = 0,
              progress: bool = False) -> pd.DataFrame:
    """Time Newton vs the oracle and the fast sequential solver; one row per ``T`` (a DataFrame).

    Columns: ``par_*`` Newton, ``seq_*`` the oracle loop (BPTT), ``fast_*`` the fast sequential
    solver (median ms); ``fwd_speedup``/``fwdbwd_speedup`` = oracle / Newton;
    ``par_over_fast_*`` = Newton / fast; ``fast_over_oracle_*`` = fast / oracle; ``compile_s``:
    seconds of the first (compiling) calls of the fast solvers (0 without ``compile``).
    ``seq_backward_max_T``: skip (NaN) the oracle's forward+backward above this length;
    ``progress``: print each row to stderr as soon as it is measured.
    """
    torch.manual_seed(seed)
    cell = LrcSSMCell(H, D).to(device)
    rows = []
    for T in Ts:
        u = torch.randn(batch, T, H, device=device)
        reps = repeats if T <= 4096 else 1
        with_seq_bwd = seq_backward_max_T is None or T <= seq_backward_max_T

        def par_fwd(u: torch.Tensor = u) -> torch.Tensor:
            with torch.no_grad():
                return newton_solve(cell, u, scan_method=scan_method, compile=compile).x

        def fast_fwd(u: torch.Tensor = u) -> torch.Tensor:
            with torch.no_grad():
                return sequential_solve(cell, u, compile=compile)

        def seq_fwd(u: torch.Tensor = u) -> torch.Tensor:
            with torch.no_grad():
                return sequential_solve_bptt(cell, u)

        def par_fb(u: torch.Tensor = u) -> None:
            cell.zero_grad(set_to_none=True)
            newton_solve(cell, u, scan_method=scan_method, compile=compile).x.mean().backward()

        def fast_fb(u: torch.Tensor = u) -> None:
            cell.zero_grad(set_to_none=True)
            sequential_solve(cell, u, compile=compile).mean().backward()

        def seq_fb(u: torch.Tensor = u) -> None:
            cell.zero_grad(set_to_none=True)
            sequential_solve_bptt(cell, u).mean().backward()

        steps = {"par_fwd": par_fwd, "fast_fwd": fast_fwd, "seq_fwd": seq_fwd,
                 "par_fwdbwd": par_fb, "fast_fwdbwd": fast_fb}
        if with_seq_bwd:
            steps["seq_fwdbwd"] = seq_fb
        first, times = interleaved_times(steps, repeats=reps, warmup=0)
        ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
        res = newton_solve(cell, u, scan_method=scan_method)
        with torch.no_grad():
            ref = sequential_solve_bptt(cell, u)
            diff = float((res.x - ref).abs().max())
            fast_diff = float((sequential_solve(cell, u, compile=compile) - ref).abs().max())
        nan = float("nan")
        row = {"T": T, "newton_iters": float(res.iterations.float().mean()), "max_abs_diff": diff,
               "fast_max_abs_diff": fast_diff,
               **{f"{k}_ms": ms.get(k, nan) for k in ("par_fwd", "fast_fwd", "seq_fwd", "par_fwdbwd",
                                                      "fast_fwdbwd", "seq_fwdbwd")},
               "compile_s": (first["fast_fwd"] + first["par_fwd"]) if compile else 0.0,
               "par_peak_mb": peak_memory_mb(par_fb, device=device),
               "fast_peak_mb": peak_memory_mb(fast_fb, device=device),
               "seq_peak_mb": peak_memory_mb(seq_fb, device=device) if with_seq_bwd else nan}
        row["fwd_speedup"] = row["seq_fwd_ms"] / row["par_fwd_ms"]
        row["fwdbwd_speedup"] = row["seq_fwdbwd_ms"] / row["par_fwdbwd_ms"]
        row["par_over_fast_fwd"] = row["par_fwd_ms"] / row["fast_fwd_ms"]
        row["par_over_fast_fwdbwd"] = row["par_fwdbwd_ms"] / row["fast_fwdbwd_ms"]
        row["fast_over_oracle_fwd"] = row["fast_fwd_ms"] / row["seq_fwd_ms"]
        row["fast_over_oracle_fwdbwd"] = row["fast_fwdbwd_ms"] / row["seq_fwdbwd_ms"]
        rows.append(row)
        if progress:
            print(f"[lrcssm bench] T={T} done: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()),
                  file=sys.stderr, flush=True)
    return pd.DataFrame(rows)[COLUMNS]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the table and returns 0."""
    ap = argparse.ArgumentParser(prog="liquidssm bench lrcssm", description=__doc__.split("\n")[0])
    ap.add_argument("--T", type=int_at_least(1), nargs="+", default=[1024, 4096, 17984])
    ap.add_argument("--D", type=int_at_least(1), default=64)
    ap.add_argument("--H", type=int_at_least(1), default=64)
    ap.add_argument("--batch", type=int_at_least(1), default=4)
    ap.add_argument("--repeats", type=int_at_least(1), default=3)
    ap.add_argument("--seq-backward-max-T", type=int_at_least(1), default=None,
                    help="skip the sequential forward+backward above this T")
    ap.add_argument("--scan", default="blelloch", choices=SCAN_METHODS, help="scan method used by the Newton solver")
    ap.add_argument("--compile", action="store_true",
                    help="let the fast solvers torch.compile their cell evaluations (first call reported as compile_s)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (T = 64, 256; D = H = 16)")
    ap.add_argument("--threads", type=int_at_least(1), default=None,
                    help="torch.set_num_threads (1 avoids oversubscription on a shared CPU)")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.T, args.D, args.H, args.repeats = [64, 256], 16, 16, 2
    df = benchmark(tuple(args.T), D=args.D, H=args.H, batch=args.batch, repeats=args.repeats,
                   seq_backward_max_T=args.seq_backward_max_T, device=args.device, scan_method=args.scan,
                   compile=args.compile, progress=True)
    print(f"LrcSSM layer, D={args.D}, H={args.H}, batch={args.batch}, float32; {machine_summary(args.device)}")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0
