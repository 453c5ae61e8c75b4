"""Benchmark: forward+backward time of LiquidS4Layer (PB, KB, several orders) relative to S4Layer.

``python -m liquidssm.bench liquid [--device cpu|cuda] [--H 128] [--N 64] [--L 1024 4096]
[--batch 8] [--orders 2 3 6] [--c-param tilde|c|both] [--threads T] [--quick]``; chapter
``liquid/05_liquid_s4_layer`` calls :func:`run_liquid_benchmark`. The layers use their default,
a learned ``C̃`` at ``l_max = L`` (``c_param="tilde"``); ``--c-param c`` times the paper-literal
``C`` (Algorithm 1 line 1 in every forward) and ``both`` adds an ``S4 (C)`` row, so the table also
gives S4's C̃-vs-C ratio. Times are best-of-``repeats`` wall times of one forward and backward
pass of a single layer (paper variant, causal, ``L̃ = L``), after one untimed pass of every
configuration (so one-off costs such as keops compiles are not charged to the first one); only
the ratios to S4 carry over between machines.
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch

from liquidssm._checks import check_choice
from liquidssm.bench._util import machine_summary, time_fn
from liquidssm.cliutil import int_at_least
from liquidssm.layers import LiquidS4Layer, S4Layer


def _step(layer: torch.nn.Module, u: torch.Tensor) -> None:
    layer.zero_grad(set_to_none=True)
    layer(u).sum().backward()


def run_liquid_benchmark(
    H: int = 128,
    N: int = 64,
    lengths: tuple[int, ...] = (1024, 4096),
    batch: int = 8,
    orders: tuple[int, ...] = (2, 3, 6),
    kinds: tuple[str, ...] = ("pb", "kb"),
    device: str = "cpu",
    repeats: int = 3,
    seed: int = 0,
    c_param: str = "tilde",
) -> pd.DataFrame:
    """Measure fwd+bwd time of S4Layer and LiquidS4Layer(kind, order); returns a DataFrame.

    ``c_param``: ``"tilde"`` (the layers' default, ``C̃`` learned at ``l_max = L``), ``"c"`` (the
    paper's ``C``) or ``"both"`` (the ``"tilde"`` layers plus an ``"S4 (C)"`` row).
    Columns: ``L``, ``layer`` (``"S4"``, ``"S4 (C)"`` or ``"PB"``/``"KB"``), ``order`` (the highest
    liquid order; empty for S4), ``ms`` (best of ``repeats``), ``ratio`` (to ``"S4"`` at the same L).
    """
    check_choice(c_param, "c_param", ("tilde", "c", "both"))
    rows = []
    for L in lengths:
        torch.manual_seed(seed)
        u = torch.randn(batch, L, H, device=device, requires_grad=True)
        opts = dict(c_param="c") if c_param == "c" else dict(c_param="tilde", l_max=L)
        configs = [("S4", 1, S4Layer(H, N, **opts))]
        if c_param == "both":
            configs.append(("S4 (C)", 1, S4Layer(H, N, c_param="c")))
        for kind in kinds:
            for order in orders:
                configs.append((kind.upper(), order, LiquidS4Layer(H, N, kind=kind, order=order, **opts)))
        configs = [(name, order, layer.to(device)) for name, order, layer in configs]
        for _, _, layer in configs:  # warm every path first (allocator, keops compiles), then time
            _step(layer, u)
        base = None
        for name, order, layer in configs:
            t = time_fn(lambda layer=layer, u=u: _step(layer, u), repeats=repeats, warmup=1, device=device)
            base = t.best_ms if name == "S4" else base
            rows.append({"L": L, "layer": name, "order": order if not name.startswith("S4") else None,
                         "ms": round(t.best_ms, 2), "ratio": round(t.best_ms / base, 3)})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the table and the machine it ran on."""
    ap = argparse.ArgumentParser(prog="liquidssm bench liquid", description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--H", type=int_at_least(1), default=128)
    ap.add_argument("--N", type=int_at_least(2), default=64)
    ap.add_argument("--L", type=int_at_least(1), nargs="+", default=[1024, 4096])
    ap.add_argument("--batch", type=int_at_least(1), default=8)
    ap.add_argument("--orders", type=int_at_least(2), nargs="+", default=[2, 3, 6])
    ap.add_argument("--repeats", type=int_at_least(1), default=3)
    ap.add_argument("--c-param", choices=["tilde", "c", "both"], default="both",
                    help="learned C̃ (the default layer), the paper's C, or both for S4")
    ap.add_argument("--threads", type=int_at_least(1), default=None, help="torch threads (default: torch's)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (H=8, N=8, L=64, batch 2)")
    args = ap.parse_args(argv)
    if args.quick:
        args.H, args.N, args.L, args.batch, args.repeats = 8, 8, [64], 2, 2
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    df = run_liquid_benchmark(args.H, args.N, tuple(args.L), args.batch, tuple(args.orders),
                              device=args.device, repeats=args.repeats, c_param=args.c_param)
    print(f"LiquidS4Layer vs S4Layer, forward+backward, H={args.H} N={args.N} batch={args.batch}, "
          f"c_param={args.c_param}")
    print(machine_summary(args.device))
    print(df.to_string(index=False))
    return 0
