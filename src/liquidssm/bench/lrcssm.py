"""Benchmark: LrcSSM layer solved by parallel Newton (quasi-DEER) vs the sequential loop.

``python -m liquidssm.bench lrcssm [--quick] [--T 1024 4096 17984] [--D 64] [--H 64] [--batch 4]``

For each sequence length it times the forward pass and forward+backward (loss = mean of the
states) of one :class:`liquidssm.lrc.LrcSSMCell` layer, solved (a) by :func:`newton_solve`
(parallel scans, implicit gradient) and (b) by the sequential loop (backprop through time),
records the Newton iterations used, the peak memory of forward+backward, and the max difference
between the two solutions. Times are best-of-``repeats`` wall-clock; only ratios carry over to
other machines.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd
import torch

from liquidssm.bench._util import machine_summary, peak_memory_mb, time_fn
from liquidssm.cli import int_at_least
from liquidssm.lrc import LrcSSMCell
from liquidssm.newton import newton_solve, sequential_solve
from liquidssm.scan import SCAN_METHODS

__all__ = ["benchmark", "main"]


def benchmark(Ts: tuple[int, ...] = (1024, 4096, 17984), *, D: int = 64, H: int = 64, batch: int = 4,
              repeats: int = 3, seq_backward_max_T: int | None = None, device: str = "cpu",
              scan_method: str = "blelloch", seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """Time parallel vs sequential LrcSSM evaluation; one row per ``T`` (a DataFrame).

    ``seq_backward_max_T``: skip (NaN) the sequential forward+backward above this length;
    ``progress``: print each row to stderr as soon as it is measured.
    """
    torch.manual_seed(seed)
    cell = LrcSSMCell(H, D).to(device)
    rows = []
    for T in Ts:
        u = torch.randn(batch, T, H, device=device)
        reps = repeats if T <= 4096 else 1

        def par_fwd(u: torch.Tensor = u) -> torch.Tensor:
            with torch.no_grad():
                return newton_solve(cell, u, scan_method=scan_method).x

        def seq_fwd(u: torch.Tensor = u) -> torch.Tensor:
            with torch.no_grad():
                return sequential_solve(cell, u)

        def par_fb(u: torch.Tensor = u) -> None:
            cell.zero_grad(set_to_none=True)
            newton_solve(cell, u, scan_method=scan_method).x.mean().backward()

        def seq_fb(u: torch.Tensor = u) -> None:
            cell.zero_grad(set_to_none=True)
            sequential_solve(cell, u).mean().backward()

        res = newton_solve(cell, u, scan_method=scan_method)
        with torch.no_grad():
            diff = float((res.x - sequential_solve(cell, u)).abs().max())
        row = {
            "T": T,
            "newton_iters": float(res.iterations.float().mean()),
            "max_abs_diff": diff,
            "par_fwd_ms": time_fn(par_fwd, repeats=reps, warmup=1, device=device).best_ms,
            "seq_fwd_ms": time_fn(seq_fwd, repeats=reps, warmup=0, device=device).best_ms,
            "par_fwdbwd_ms": time_fn(par_fb, repeats=reps, warmup=1, device=device).best_ms,
            "par_peak_mb": peak_memory_mb(par_fb, device=device),
        }
        if seq_backward_max_T is None or T <= seq_backward_max_T:
            row["seq_fwdbwd_ms"] = time_fn(seq_fb, repeats=reps, warmup=0, device=device).best_ms
            row["seq_peak_mb"] = peak_memory_mb(seq_fb, device=device)
        else:
            row["seq_fwdbwd_ms"] = float("nan")
            row["seq_peak_mb"] = float("nan")
        row["fwd_speedup"] = row["seq_fwd_ms"] / row["par_fwd_ms"]
        row["fwdbwd_speedup"] = row["seq_fwdbwd_ms"] / row["par_fwdbwd_ms"]
        rows.append(row)
        if progress:
            print(f"[lrcssm bench] T={T} done: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()),
                  file=sys.stderr, flush=True)
    cols = ["T", "newton_iters", "par_fwd_ms", "seq_fwd_ms", "fwd_speedup", "par_fwdbwd_ms",
            "seq_fwdbwd_ms", "fwdbwd_speedup", "par_peak_mb", "seq_peak_mb", "max_abs_diff"]
    return pd.DataFrame(rows)[cols]


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
                   progress=True)
    print(f"LrcSSM layer, D={args.D}, H={args.H}, batch={args.batch}, float32; {machine_summary(args.device)}")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0
