"""Benchmark: forward+backward time of LiquidS4Layer (PB, KB, orders 2-6) relative to S4Layer, interleaved.

``python -m liquidssm.bench liquid [--device cpu|cuda] [--H 128] [--N 64] [--L 1024 4096]
[--batch 8] [--orders 2 3 4 5 6] [--kinds pb kb] [--impl fused reference] [--c-param tilde|c|both]
[--cauchy-backend auto|torch|keops] [--parts] [--threads T] [--repeats R] [--quick] [--out FILE.json [--force]]``;
chapters ``liquid/05_liquid_s4_layer`` and ``reproductions/30_performance`` call
:func:`run_liquid_benchmark` and read recorded runs with :func:`load_liquid_benchmark`.

The layers use their default, a learned ``C̃`` at ``l_max = L`` (``c_param="tilde"``); ``--c-param
c`` times the paper-literal ``C`` and ``both`` adds an ``S4 (C)`` row. ``--impl`` picks the PB
implementations timed: ``fused`` (the default layer, :func:`liquidssm.liquid.pb_term` and the
coefficients with one Cauchy column per order) and ``reference`` (the previous implementation, the oracle; rows
``PB (reference)``), so one run gives the before/after overhead per order and ``L``. Every
configuration of one ``L`` is timed round-robin in one process after a warm-up, in wall time and
in process CPU time: machine noise falls on all alike, and the ratio of medians to ``S4`` is what
carries over between machines (on a busy machine the CPU-time ratio is the steadier one). ``--out`` writes the table
with the machine, threads, allocator and compile settings and the load average (a shared machine
is a caveat on every timing) as JSON, atomically.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
from pathlib import Path

import pandas as pd
import torch

from liquidssm._checks import check_choice
from liquidssm.bench._util import machine_summary
from liquidssm.cliutil import int_at_least
from liquidssm.layers import LIQUID_IMPLS, LiquidS4Layer, S4Layer
from liquidssm.liquid import pb_term

#: format tag of the files written by ``--out`` (checked by :func:`load_liquid_benchmark`)
FORMAT = "liquidssm-bench-liquid/1"


def _step(layer: torch.nn.Module, u: torch.Tensor) -> None:
    layer.zero_grad(set_to_none=True)
    layer(u).sum().backward()


def _round_robin(steps: dict, repeats: int) -> tuple[dict, dict]:
    """Wall and process-CPU seconds of each step, timed round-robin (one warm-up round, the order rotated
    by one each round, as :func:`liquidssm.bench._util.interleaved_times`). CPU time counts every
    thread of this process and not the time other processes held the cores, so on a busy shared
    machine its ratios stay steadier than wall-time ratios."""
    names = list(steps)
    for name in names:  # first call (allocations, keops compiles) and one warm-up round
        steps[name]()
        steps[name]()
    wall: dict = {name: [] for name in names}
    cpu: dict = {name: [] for name in names}
    for i in range(repeats):
        r = i % len(names)
        for name in names[r:] + names[:r]:
            c0, t0 = time.process_time(), time.perf_counter()
            steps[name]()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return wall, cpu


def _kernel_step(layer: torch.nn.Module, L: int) -> None:
    """Forward+backward of the layer's kernel and (PB) coefficients only: :meth:`S4Layer.conv_kernel`."""
    layer.zero_grad(set_to_none=True)
    K, coef = layer.conv_kernel(L)
    (K.sum() if coef is None else K.sum() + coef.sum()).backward()


def _term_step(x: torch.Tensor, coef: torch.Tensor, grad: torch.Tensor, L: int) -> None:
    """Forward+backward of the fused PB term alone, in the layer's memory layout: ``x (B, L, H)`` enters as the
    ``(B, H, L)`` view :meth:`liquidssm.layers.S4Layer.forward` passes, and the gradient ``grad (B, L, H)``
    arrives as the layer's output gradient does."""
    pb_term(x.transpose(1, 2), coef, L).backward(grad.transpose(1, 2))


def _name(kind: str, impl: str) -> str:
    return kind.upper() if impl == "fused" else f"{kind.upper()} (reference)"


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
    impls: tuple[str, ...] = ("fused",),
    cauchy_backend: str = "auto",
    parts: bool = False,
) -> pd.DataFrame:
    """Measure fwd+bwd time of S4Layer and LiquidS4Layer(kind, order, impl), interleaved; returns a DataFrame.

    ``c_param``: ``"tilde"`` (the layers' default, ``C̃`` learned at ``l_max = L``), ``"c"`` (the
    paper's ``C``) or ``"both"`` (the ``"tilde"`` layers plus an ``"S4 (C)"`` row). ``impls``: PB
    implementations (``"fused"``, ``"reference"``; KB has one). Columns: ``L``, ``layer``
    (``"S4"``, ``"S4 (C)"``, ``"PB"``, ``"PB (reference)"``, ``"KB"``), ``order`` (the highest liquid
    order; empty for S4), ``ms`` (median of ``repeats`` interleaved rounds), ``best_ms``,
    ``ratio`` (median over the ``S4`` median at the same L), ``cpu_ms`` and ``cpu_ratio`` (the same
    for the process CPU time, all threads together). ``parts=True`` adds, in the same
    rounds, the parts of the fused PB layer: ``"S4 kernel"`` and ``"PB kernel"`` (the kernel and
    the coefficients, forward and backward, :meth:`liquidssm.layers.S4Layer.conv_kernel`) and
    ``"PB term"`` (:func:`liquidssm.liquid.pb_term` alone), still as ratios to the whole S4 layer.
    """
    check_choice(c_param, "c_param", ("tilde", "c", "both"))
    for impl in impls:
        check_choice(impl, "impls", LIQUID_IMPLS)
    for kind in kinds:
        check_choice(kind, "kinds", ("pb", "kb"))
    rows = []
    for L in lengths:
        torch.manual_seed(seed)
        u = torch.randn(batch, L, H, device=device, requires_grad=True)
        opts = dict(c_param="c") if c_param == "c" else dict(c_param="tilde", l_max=L)
        opts["cauchy_backend"] = cauchy_backend
        configs = {("S4", None): S4Layer(H, N, **opts)}
        if c_param == "both":
            configs[("S4 (C)", None)] = S4Layer(H, N, c_param="c", cauchy_backend=cauchy_backend)
        for kind in kinds:
            for order in orders:
                for impl in (impls if kind == "pb" else ("fused",)):
                    configs[(_name(kind, impl), order)] = LiquidS4Layer(H, N, kind=kind, order=order,
                                                                        liquid_impl=impl, **opts)
        for layer in configs.values():
            layer.to(device)
        steps = {key: (lambda layer=layer, u=u: _step(layer, u)) for key, layer in configs.items()}
        if parts:
            steps[("S4 kernel", None)] = lambda layer=configs[("S4", None)], L=L: _kernel_step(layer, L)
            x = torch.randn(batch, L, H, device=device, requires_grad=True)
            grad = torch.randn(batch, L, H, device=device)
            for order in orders if "pb" in kinds and "fused" in impls else ():
                layer = configs[("PB", order)]
                steps[("PB kernel", order)] = lambda layer=layer, L=L: _kernel_step(layer, L)
                coef = torch.randn(H, order - 1, device=device, requires_grad=True)
                steps[("PB term", order)] = lambda x=x, coef=coef, grad=grad, L=L: _term_step(x, coef, grad, L)
        times, cpu = _round_robin(steps, repeats)
        base, cpu_base = statistics.median(times[("S4", None)]), statistics.median(cpu[("S4", None)])
        for (name, order), ts in times.items():
            med, cpu_med = statistics.median(ts), statistics.median(cpu[(name, order)])
            rows.append({"L": L, "layer": name, "order": order, "ms": round(1e3 * med, 2),
                         "best_ms": round(1e3 * min(ts), 2), "ratio": round(med / base, 3),
                         "cpu_ms": round(1e3 * cpu_med, 2), "cpu_ratio": round(cpu_med / cpu_base, 3)})
    df = pd.DataFrame(rows)
    df["order"] = df["order"].astype("Int64")
    return df


def overhead_table(df: pd.DataFrame, values: str = "ratio") -> pd.DataFrame:
    """PB/S4 (and KB/S4) ratios as a table: one row per (layer, order), one column per ``L``.

    ``values``: ``"ratio"`` (wall time) or ``"cpu_ratio"`` (process CPU time).
    """
    liq = df[df.order.notna()]
    return liq.pivot_table(index=["layer", "order"], columns="L", values=values).rename_axis(columns="L")


def _settings(threads: int | None) -> dict:
    """What the timings depend on besides the code: threads, allocator, compile switch, load."""
    from liquidssm.allocator import malloc_setting
    from liquidssm.compiled import ENV_VAR

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"threads": threads if threads is not None else torch.get_num_threads(),
            "allocator": malloc_setting().description, "allocator_mode": malloc_setting().mode,
            "compile": {"used": False, ENV_VAR: os.environ.get(ENV_VAR, "unset"),
                        "note": "the fused PB term is eager (hand-written backward); nothing is compiled"},
            "loadavg": [round(x, 2) for x in load]}


def record(df: pd.DataFrame, args: dict, threads: int | None, load_before: list[float]) -> dict:
    """The JSON payload of ``--out``: format, date, machine, commit, settings, arguments and rows."""
    from liquidssm.environment import git_commit

    settings = _settings(threads)
    settings["loadavg_before"] = load_before
    return {"format": FORMAT, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_summary(args.get("device", "cpu")), "cpu_count": os.cpu_count(),
            "commit": git_commit(), "torch": torch.__version__, "settings": settings, "args": args,
            "rows": df.to_dict(orient="records")}


def load_liquid_benchmark(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict]:
    """Read a file written by ``liquidssm bench liquid --out``: ``(rows as a DataFrame, metadata)``."""
    path = Path(path)
    payload = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"path: {path} is not a `liquidssm bench liquid --out` file (expected format "
                         f"{FORMAT!r}, got {payload.get('format') if isinstance(payload, dict) else type(payload).__name__!r})")
    rows = pd.DataFrame(payload.pop("rows"))
    rows["order"] = rows["order"].astype("Int64")
    return rows, payload


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the table, the overhead per order and L, and the machine."""
    ap = argparse.ArgumentParser(prog="liquidssm bench liquid", description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--H", type=int_at_least(1), default=128)
    ap.add_argument("--N", type=int_at_least(2), default=64)
    ap.add_argument("--L", type=int_at_least(1), nargs="+", default=[1024, 4096])
    ap.add_argument("--batch", type=int_at_least(1), default=8)
    ap.add_argument("--orders", type=int_at_least(2), nargs="+", default=[2, 3, 4, 5, 6])
    ap.add_argument("--kinds", choices=["pb", "kb"], nargs="+", default=["pb"])
    ap.add_argument("--impl", choices=list(LIQUID_IMPLS), nargs="+", default=["fused", "reference"],
                    help="PB implementations: fused (the default layer) and/or reference (the previous one)")
    ap.add_argument("--repeats", type=int_at_least(1), default=5)
    ap.add_argument("--c-param", choices=["tilde", "c", "both"], default="tilde",
                    help="learned C̃ (the default layer), the paper's C, or both for S4")
    ap.add_argument("--cauchy-backend", choices=["auto", "torch", "keops"], default="auto")
    ap.add_argument("--threads", type=int_at_least(1), default=None, help="torch threads (default: torch's)")
    ap.add_argument("--parts", action="store_true",
                    help="also time the fused PB layer's parts: kernel+coefficients and the term alone")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (H=8, N=8, L=64, batch 2)")
    ap.add_argument("--out", help="write the measurements as JSON to this file (atomically)")
    ap.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = ap.parse_args(argv)
    if args.quick:
        args.H, args.N, args.L, args.batch, args.repeats = 8, 8, [64], 2, 2
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available")
    if args.out and Path(args.out).exists() and not args.force:
        ap.error(f"--out: {args.out} exists; pass --force to overwrite it")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load_before = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []
    df = run_liquid_benchmark(args.H, args.N, tuple(args.L), args.batch, tuple(args.orders), kinds=tuple(args.kinds),
                              device=args.device, repeats=args.repeats, c_param=args.c_param,
                              impls=tuple(args.impl), cauchy_backend=args.cauchy_backend, parts=args.parts)
    print(f"LiquidS4Layer vs S4Layer, forward+backward, H={args.H} N={args.N} batch={args.batch}, "
          f"c_param={args.c_param}, cauchy_backend={args.cauchy_backend}")
    print(machine_summary(args.device))
    print(df.to_string(index=False))
    print("\nratio to S4 (median of interleaved rounds), per order and L: wall time, then CPU time")
    print(pd.concat({"wall": overhead_table(df), "cpu": overhead_table(df, "cpu_ratio")}, axis=1).to_string())
    if args.out:
        from liquidssm.bench._util import write_json_atomic

        payload = record(df, {k: v for k, v in vars(args).items() if k not in ("out", "force")},
                         args.threads, load_before)
        print(f"wrote {write_json_atomic(args.out, payload, force=args.force)}")
    return 0
