"""Side-by-side timing of our layers against the official code (S4, Liquid-S4, LrcSSM); chapter reproductions performance.

``liquidssm bench official [--official-root PATH] [--quick] [--out FILE.json]`` (also spelled
``liquidssm bench --against official ...``) times, for each comparison,

* ``kernel``: the S4 DPLR kernel (Liquid-S4 Alg. 1 lines 1-5), ``H, N, L`` forward+backward:
  official ``SSMKernelDPLR`` with its ``naive`` and ``keops`` (run on the CPU) backends vs
  :func:`liquidssm.kernels.s4_dplr_kernel` (``c_is_tilde=True``, the official parametrization)
  with the ``torch`` and ``keops`` Cauchy backends, on the official module's parameters;
* ``block``: one S4 layer ``B, H, N, L`` forward+backward: official ``S4Block(mode="dplr")`` vs
  :class:`liquidssm.layers.S4Layer` (same sizes; parameters not mapped, so no output check);
* ``liquid``: the overhead of the Liquid-S4 PB kernel of each highest order ``p = 2..P``
  (``--liquid-P``, default 2) over S4 on each side (official fork ``S4(liquid_kernel="polyb",
  liquid_degree=p)`` / ``S4`` vs our ``LiquidS4Layer(kind="pb", order=p)`` / ``S4Layer``; variants
  ``ours_pb``/``official_pb`` for order 2, ``ours_pb{p}``/``official_pb{p}`` above); the ratio
  compared is (PB time / S4 time) ours over official, per order;
* ``lrcssm``: one LrcSSM layer ``B, T, H = D``: forward+backward at ``T`` and forward at
  ``T_fwd``: official JAX quasi-DEER (``elk.algs.deer.seq1d``, ``quasi=True``) and
  ``jax.lax.scan`` of the official ``LRCU`` cell vs :func:`liquidssm.newton.newton_solve` and
  :func:`liquidssm.newton.sequential_solve` with :class:`liquidssm.lrc.LrcSSMCell`
  (``variant="official"``) carrying the official parameters.

All variants of a comparison are built in one process (a fresh one per comparison, so its peak
RSS is its own) and timed round-robin with a rotating order after warm-up
(:func:`liquidssm.bench._util.interleaved_times`); the first call is reported separately. Where
the parameters are shared, the outputs are compared first (maximum relative difference) and a
ratio ours/official is reported only when they agree within ``--rtol``. Without
``--official-root`` only our variants are timed. The official code is imported from the
checkouts under ``--official-root`` (``s4/``, ``liquid-s4/``, ``lrcssm/``); nothing of it is part
of this library. Records (one per variant, ratio or skipped comparison, each with date, commits,
machine, versions and the allocator setting) go to stdout as a table and to ``--out`` as JSON
(:func:`load_measurements` reads it back).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import glob
import importlib
import inspect
import json
import os
import statistics
import subprocess
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from liquidssm import paths
from liquidssm.cliutil import UsageError, int_at_least, positive_float

__all__ = ["COMPARISONS", "DEFAULT_SIZES", "QUICK_SIZES", "OfficialRootError", "bench_official", "pb_variant",
           "check_official_root", "load_measurements", "main"]

COMPARISONS = ("kernel", "block", "liquid", "lrcssm")
#: the issue's table: sizes of each comparison
DEFAULT_SIZES: dict[str, dict[str, int]] = {
    "kernel": {"H": 256, "N": 64, "L": 4096},
    "block": {"B": 8, "H": 128, "N": 64, "L": 1024},
    "liquid": {"B": 8, "H": 128, "N": 64, "L": 4096, "P": 2},
    "lrcssm": {"B": 4, "H": 64, "T": 4096, "T_fwd": 17984},
}
QUICK_SIZES: dict[str, dict[str, int]] = {
    "kernel": {"H": 16, "N": 16, "L": 256},
    "block": {"B": 2, "H": 16, "N": 16, "L": 256},
    "liquid": {"B": 2, "H": 16, "N": 16, "L": 256, "P": 2},
    "lrcssm": {"B": 2, "H": 8, "T": 256, "T_fwd": 512},
}
#: default agreement tolerance (max |ours - official| / max |official|) per comparison: float32
#: kernels agree to ~1e-5 of their peak; Newton stops at an update of 1e-4 (float32 default)
DEFAULT_RTOL = {"kernel": 1e-3, "lrcssm": 1e-2}
#: checkout folder of each comparison under the official root, and its repository
CHECKOUTS = {"kernel": "s4", "block": "s4", "liquid": "liquid-s4", "lrcssm": "lrcssm"}
REPOSITORIES = {"s4": "state-spaces/s4", "liquid-s4": "raminmh/liquid-s4", "lrcssm": "MoniFarsang/LrcSSM"}
_MARK = "@@liquidssm-official "


class OfficialRootError(FileNotFoundError):
    """The official root or one of its checkouts is missing; the message names the path and the layout."""


# ----------------------------------------------------------------------------------------------
# the official root: layout, commits, import paths
# ----------------------------------------------------------------------------------------------
def _layout(root: Path) -> str:
    return "\n".join(["expected layout:"] + [f"  {root / name}/   ({repo} checkout)"
                                              for name, repo in REPOSITORIES.items()])


def check_official_root(root: str | os.PathLike[str], comparisons: Sequence[str] = COMPARISONS) -> Path:
    """Return ``root`` as a Path after checking it holds the checkouts ``comparisons`` need.

    Raises :class:`OfficialRootError` naming the missing folder and the expected layout.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise OfficialRootError(f"official-root: {root} is not a folder\n{_layout(root)}")
    for name in sorted({CHECKOUTS[c] for c in comparisons}):
        if not (root / name).is_dir():
            raise OfficialRootError(f"official-root: checkout {root / name} of {REPOSITORIES[name]} "
                                    f"not found\n{_layout(root)}")
    return root


def default_extra_paths(root: Path) -> list[Path]:
    """The official code's extra packages in the peers layout: ``s4deps``, ``s4deps_pl``, ``ls4deps``, JAX venv."""
    found = [root / name for name in ("s4deps", "s4deps_pl", "ls4deps") if (root / name).is_dir()]
    found += [Path(p) for p in sorted(glob.glob(str(root / "jaxvenv" / "lib" / "python3*" / "site-packages")))]
    return found


def official_commits(root: Path | None) -> dict[str, str]:
    """Commit of each official checkout: ``<root>/<name>.commit`` if present, else ``git rev-parse``."""
    if root is None:
        return {}
    out = {}
    for name in REPOSITORIES:
        stamp = root / f"{name}.commit"
        if stamp.is_file():
            out[name] = stamp.read_text().strip()
        elif (root / name).is_dir():
            try:
                out[name] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root / name, capture_output=True,
                                           text=True, timeout=5).stdout.strip() or "unknown"
            except (OSError, subprocess.SubprocessError):
                out[name] = "unknown"
    return out


@contextlib.contextmanager
def _first_on_path(folder: Path) -> Iterator[None]:
    """Import from ``folder`` first (two official checkouts both have a top-level ``src``)."""
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(folder))


def _keops_on_cpu() -> bool:
    """Make pykeops reductions run on the CPU when the official code asks for ``backend='GPU'``."""
    try:
        from pykeops.torch import Genred
    except Exception:  # noqa: BLE001 - pykeops absent or broken: the official code falls back itself
        return False
    if not getattr(Genred, "_liquidssm_cpu", False):
        call = Genred.__call__

        def on_cpu(self, *args, backend="auto", **kwargs):  # noqa: ANN001, ANN202
            return call(self, *args, backend="CPU", **kwargs)

        Genred.__call__ = on_cpu
        Genred._liquidssm_cpu = True
    return True


def _flax_activation_stub() -> str:
    """The official ``deer.py`` imports ``flax.linen`` for helpers unused here; provide its two activations."""
    try:
        import flax.linen  # noqa: F401
        return "flax installed"
    except ImportError:
        pass
    import jax

    act = types.ModuleType("flax.linen.activation")
    act.sigmoid, act.tanh = jax.nn.sigmoid, jax.numpy.tanh
    linen = types.ModuleType("flax.linen")
    linen.activation = act
    flax = types.ModuleType("flax")
    flax.linen = linen
    sys.modules.update({"flax": flax, "flax.linen": linen, "flax.linen.activation": act})
    return "flax.linen.activation stub (sigmoid, tanh)"


def _jnp_clip_keywords() -> str | None:
    """Newer JAX renamed ``jnp.clip(a_min=, a_max=)`` to ``min=, max=``; accept the old names."""
    import jax.numpy as jnp

    if "a_min" in inspect.signature(jnp.clip).parameters:
        return None
    new_clip = jnp.clip

    def clip(x, min=None, max=None, *, a_min=None, a_max=None):  # noqa: A002, ANN001, ANN202
        return new_clip(x, a_min if min is None else min, a_max if max is None else max)

    jnp.clip = clip
    return "jnp.clip: a_min/a_max mapped to min/max"


# ----------------------------------------------------------------------------------------------
# measuring one comparison (runs inside a worker process)
# ----------------------------------------------------------------------------------------------
def _rel(ours: Any, ref: Any) -> float:
    """max |ours - ref| / max |ref| on numpy copies."""
    import numpy as np

    a, b = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _np(t: Any) -> Any:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else t


def _fwd_bwd(fn: Callable[[], Any], G: Any, leaves: Sequence[Any]) -> Callable[[], None]:
    def step() -> None:
        for p in leaves:
            p.grad = None
        (fn() * G).sum().backward()

    return step


def _kernel(size: dict[str, int], official: Path | None) -> tuple[dict, dict, dict]:
    """S4 DPLR kernel, forward+backward; returns (steps, outputs for the check, notes)."""
    import torch

    from liquidssm import hippo
    from liquidssm.cauchy import keops_available
    from liquidssm.kernels import s4_dplr_kernel

    H, N, L = size["H"], size["N"], size["L"]
    g = torch.Generator().manual_seed(0)
    notes: dict[str, Any] = {}
    steps: dict[str, Callable[[], None]] = {}
    outputs: dict[str, Callable[[], Any]] = {}
    if official is not None:
        keops = _keops_on_cpu()
        with _first_on_path(official / "s4"):
            s4 = importlib.import_module("models.s4.s4")
        torch.manual_seed(0)
        mod = s4.SSMKernelDPLR(d_model=H, d_state=N, l_max=L, backend="naive", verbose=False)
        mod._setup_C(L)  # the official one-off C -> C_tilde (its first forward would do it)
        with torch.no_grad():  # the official parameters, in our notation
            Lambda = torch.complex(-torch.exp(mod.A_real), -mod.A_imag)
            P, B = torch.view_as_complex(mod.P.contiguous()), torch.view_as_complex(mod.B.contiguous())[0]
            C, dt = torch.view_as_complex(mod.C.contiguous()), torch.exp(mod.inv_dt)[:, 0]
        notes["official_params"] = sum(p.numel() for p in mod.parameters())

        def official_kernel(backend: str) -> Callable[[], Any]:
            def fn() -> Any:
                mod.backend = backend
                return mod(L=L)[0]
            return fn

        for backend in ("naive", "keops") if keops else ("naive",):
            outputs[f"official_{backend}"] = official_kernel(backend)
        official_leaves = list(mod.parameters())
    else:
        d = hippo.nplr_legs(N, torch.complex64)
        Lambda, P, B = (t.expand(H, N // 2).clone() for t in (d.Lambda, d.P, d.B))
        C = torch.randn(1, H, N // 2, dtype=torch.complex64, generator=g)
        dt = torch.logspace(-3, -1, H)
        official_leaves = []
    leaves = [t.detach().clone().requires_grad_() for t in (Lambda, P, B, C, dt)]

    def our_kernel(backend: str) -> Callable[[], Any]:
        return lambda: s4_dplr_kernel(*leaves, L, backend=backend, c_is_tilde=True)

    outputs["ours_torch"] = our_kernel("torch")
    if keops_available()[0]:
        outputs["ours_keops"] = our_kernel("keops")
    G = torch.randn(outputs["ours_torch"]().shape, generator=g)
    for name, fn in outputs.items():
        steps[name] = _fwd_bwd(fn, G, official_leaves if name.startswith("official") else leaves)
    return steps, outputs, notes


def _sequence_steps(layers: dict[str, Any], size: dict[str, int]) -> dict[str, Callable[[], None]]:
    """forward+backward of each layer on one random batch: official (B, H, L), ours (B, L, H)."""
    import torch

    g = torch.Generator().manual_seed(1)
    Bsz, H, L = size["B"], size["H"], size["L"]
    x = torch.randn(Bsz, H, L, generator=g)
    G = torch.randn(Bsz, H, L, generator=g)
    steps = {}
    for name, layer in layers.items():
        if name.startswith("official"):
            xo = x.clone().requires_grad_()
            steps[name] = _fwd_bwd(lambda m=layer, xo=xo: m(xo)[0], G, [xo, *layer.parameters()])
        else:
            xu = x.transpose(1, 2).contiguous().requires_grad_()
            Gu = G.transpose(1, 2).contiguous()
            steps[name] = _fwd_bwd(lambda m=layer, xu=xu: m(xu), Gu, [xu, *layer.parameters()])
    return steps


def _block(size: dict[str, int], official: Path | None) -> tuple[dict, dict, dict]:
    """One S4 layer, forward+backward (sizes shared; parameters not mapped: no output check)."""
    import torch

    from liquidssm.cauchy import keops_available
    from liquidssm.layers import S4Layer

    H, N, L = size["H"], size["N"], size["L"]
    layers: dict[str, Any] = {}
    if official is not None:
        keops = _keops_on_cpu()
        with _first_on_path(official / "s4"):
            s4 = importlib.import_module("models.s4.s4")
        for backend in ("naive", "keops") if keops else ("naive",):
            torch.manual_seed(0)
            layers[f"official_{backend}"] = s4.S4Block(H, d_state=N, l_max=L, mode="dplr", backend=backend,
                                                        transposed=True, verbose=False)
    for backend in ("torch", "keops") if keops_available()[0] else ("torch",):
        torch.manual_seed(0)
        layers[f"ours_{backend}"] = S4Layer(H, N, cauchy_backend=backend)
    notes = {f"{k}_params": sum(p.numel() for p in m.parameters()) for k, m in layers.items()}
    return _sequence_steps(layers, size), {}, notes


def pb_variant(side: str, order: int) -> str:
    """Variant name of a PB layer of highest order ``order``: ``ours_pb`` / ``official_pb`` for 2, else ``..._pb{order}``."""
    return f"{side}_pb" if order == 2 else f"{side}_pb{order}"


def _liquid(size: dict[str, int], official: Path | None) -> tuple[dict, dict, dict]:
    """S4 and Liquid-S4 PB layers of highest orders 2..P on each side, forward+backward."""
    import logging

    import torch

    from liquidssm.layers import LiquidS4Layer, S4Layer

    H, N, L = size["H"], size["N"], size["L"]
    orders = range(2, size.get("P", 2) + 1)
    layers: dict[str, Any] = {}
    notes: dict[str, Any] = {}
    if official is not None:
        notes["official_keops_on_cpu"] = _keops_on_cpu()
        for name in [m for m in sys.modules if m == "src" or m.startswith("src.")]:
            del sys.modules[name]  # a `src` package of another checkout
        with _first_on_path(official / "liquid-s4"):
            fork = importlib.import_module("src.models.sequence.ss.s4")
        logging.disable(logging.WARNING)  # the fork logs its kernel settings at construction
        variants = [("official_s4", None, 2)] + [(pb_variant("official", p), "polyb", p) for p in orders]
        for name, liquid_kernel, degree in variants:
            torch.manual_seed(0)
            layers[name] = fork.S4(d_model=H, d_state=N, l_max=L, mode="nplr", measure="legs", rank=1,
                                   n_ssm=H, activation="gelu", postact="glu", transposed=True,
                                   liquid_kernel=liquid_kernel, liquid_degree=degree, allcombs=True)
    torch.manual_seed(0)
    layers["ours_s4"] = S4Layer(H, N, cauchy_backend="torch")
    for p in orders:
        torch.manual_seed(0)
        layers[pb_variant("ours", p)] = LiquidS4Layer(H, N, kind="pb", order=p, cauchy_backend="torch")
    return _sequence_steps(layers, size), {}, notes


def _lrcssm(size: dict[str, int], official: Path | None, passes: str,
            compiled: bool = True) -> tuple[dict, dict, dict]:
    """One LrcSSM layer: official JAX quasi-DEER / lax.scan vs our Newton / sequential solve."""
    import numpy as np
    import torch

    from liquidssm.lrc import LrcSSMCell
    from liquidssm.newton import newton_solve, sequential_solve

    Bsz, H = size["B"], size["H"]
    T = size["T"] if passes == "fwdbwd" else size["T_fwd"]
    rng = np.random.default_rng(0)
    xn = rng.standard_normal((Bsz, T, H)).astype(np.float32)
    Gn = rng.standard_normal((Bsz, T, H)).astype(np.float32)
    cell = LrcSSMCell(H, H, variant="official")
    notes: dict[str, Any] = {}
    steps: dict[str, Callable[[], None]] = {}
    outputs: dict[str, Callable[[], Any]] = {}
    if official is not None:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)  # as the official run_train.py (arrays stay float32)
        notes["shims"] = [s for s in (_flax_activation_stub(), _jnp_clip_keywords()) if s]
        notes["jax"] = jax.__version__
        with _first_on_path(official / "lrcssm"), _first_on_path(official / "lrcssm" / "experiments" / "lrc_ssm"):
            eqx = importlib.import_module("equinox")
            LRCU = importlib.import_module("LRC_diagmat").LRCU
            seq1d = importlib.import_module("elk.algs.deer").seq1d
        off = LRCU(input_size=H, hidden_size=H, key=jax.random.PRNGKey(0))
        off = jax.tree_util.tree_map(lambda v: v.astype(jnp.float32) if eqx.is_array(v) else v, off)
        params, static = eqx.partition(off, eqx.is_array)
        ours_of = {"mu_u": "weight_sensory_mu", "sigma_u": "weight_sensory_sigma", "W_f": "weight_sensory_w",
                   "W_z": "weight_sensory_h", "mu_x": "weight_mu", "sigma_x": "weight_sigma",
                   "g_max_x": "weight_w", "k_max_x": "weight_h", "g_leak": "weight_gleak",
                   "e_leak": "weight_vleak", "kappa": "weight_elastance_kernel",
                   "beta": "weight_elastance_bias"}
        with torch.no_grad():
            for ours, theirs in ours_of.items():
                getattr(cell, ours).copy_(torch.from_numpy(np.asarray(getattr(off, theirs))))
        xj, Gj = jnp.asarray(xn), jnp.asarray(Gn)
        h0, guess = jnp.zeros((Bsz, H), jnp.float32), jnp.zeros((Bsz, T, H), jnp.float32)

        def layer(p: Any, x: Any, solver: str) -> Any:
            model = eqx.combine(p, static)

            def one(h0_: Any, x_: Any, g_: Any) -> Any:
                if solver == "scan":
                    return jax.lax.scan(lambda h, xi: (model(xi, h),) * 2, h0_, x_)[1]
                return seq1d(lambda h, xi, m: m(xi, h), h0_, x_, model, g_, quasi=True, qmem_efficient=False)[0]
            return jax.vmap(one)(h0, x, guess)

        for solver in ("deer", "scan"):
            if passes == "fwd":
                compiled = jax.jit(lambda p, x, s=solver: layer(p, x, s))
                outputs[f"official_{solver}"] = lambda c=compiled: c(params, xj).block_until_ready()
            else:
                grad = jax.jit(jax.grad(lambda p, x, s=solver: jnp.sum(layer(p, x, s) * Gj), argnums=1))
                outputs[f"official_{solver}"] = lambda c=grad: c(params, xj).block_until_ready()
    u = torch.from_numpy(xn).requires_grad_(passes == "fwdbwd")
    Gt = torch.from_numpy(Gn)
    solvers = {"ours_newton": lambda: newton_solve(cell, u).x, "ours_seq": lambda: sequential_solve(cell, u)}
    if compiled:  # torch.compile'd cell evaluations (opt-in `compile=True`; the first call compiles)
        solvers["ours_newton_compiled"] = lambda: newton_solve(cell, u, compile=True).x
        solvers["ours_seq_compiled"] = lambda: sequential_solve(cell, u, compile=True)
    for name, solve in solvers.items():
        if passes == "fwd":
            def run(solve: Callable[[], Any] = solve) -> Any:
                with torch.no_grad():
                    return solve()
        else:
            def run(solve: Callable[[], Any] = solve) -> Any:
                u.grad = None
                cell.zero_grad(set_to_none=True)
                (solve() * Gt).sum().backward()
                return u.grad  # the input gradient, compared with the official one
        outputs[name] = run
    for name, fn in outputs.items():
        steps[name] = lambda fn=fn: fn()
    notes["pass"] = passes
    return steps, outputs, notes


#: which of our variants is checked against (and divided by) which official variant
PAIRS = {
    "kernel": [("ours_torch", "official_naive"), ("ours_torch", "official_keops"),
               ("ours_keops", "official_keops"), ("ours_keops", "official_naive")],
    "block": [("ours_torch", "official_naive"), ("ours_torch", "official_keops"),
              ("ours_keops", "official_keops")],
    "lrcssm": [("ours_newton", "official_deer"), ("ours_seq", "official_scan"),
               ("ours_newton_compiled", "official_deer"), ("ours_seq_compiled", "official_scan"),
               ("ours_newton", "official_scan")],
}
CHECKED = {"kernel", "lrcssm"}


def measure(comparison: str, size: dict[str, int], official: str | None, *, repeats: int, warmup: int,
            threads: int, rtol: float | None, passes: str = "fwdbwd",
            compiled: bool = True) -> list[dict[str, Any]]:
    """Build, check and time one comparison in this process; return its records (no metadata)."""
    import torch

    from liquidssm.allocator import apply_malloc_setting
    from liquidssm.bench._util import interleaved_times, peak_rss_mb

    apply_malloc_setting()
    torch.set_num_threads(threads)
    root = None if official is None else Path(official)
    build = {"kernel": _kernel, "block": _block, "liquid": _liquid}.get(comparison)
    steps, outputs, notes = (build(size, root) if build else _lrcssm(size, root, passes, compiled))
    tag = {"comparison": comparison, "pass": passes, **size, "threads": threads}
    records: list[dict[str, Any]] = []
    first, times = interleaved_times(steps, repeats=repeats, warmup=warmup)  # first call = compile
    rss = peak_rss_mb()
    agree: dict[tuple[str, str], float] = {}
    if comparison in CHECKED:  # the outputs (LrcSSM fwd+bwd: the input gradients) on shared parameters
        with torch.no_grad() if passes == "fwd" or comparison == "kernel" else contextlib.nullcontext():
            values = {k: _np(fn()) for k, fn in outputs.items()}
        for ours, theirs in PAIRS[comparison]:
            if ours in values and theirs in values:
                agree[(ours, theirs)] = _rel(values[ours], values[theirs])
    for name, ts in times.items():
        records.append({**tag, "kind": "time", "variant": name, "side": name.split("_")[0],
                        "first_s": first[name], "median_s": statistics.median(ts), "min_s": min(ts),
                        "max_s": max(ts), "times_s": ts, "peak_rss_mb": rss, "notes": notes})
    tol = rtol if rtol is not None else DEFAULT_RTOL.get(comparison)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    pairs = PAIRS.get(comparison, [])
    if comparison == "liquid":  # the PB/S4 overhead of each order, ours over the fork's
        pairs = []
        for p in range(2, size.get("P", 2) + 1):
            ours, theirs = pb_variant("ours", p), pb_variant("official", p)
            pairs.append((f"{ours}/ours_s4", f"{theirs}/official_s4"))
            for a, b in ((ours, "ours_s4"), (theirs, "official_s4")):
                if a in med and b in med:
                    med[f"{a}/{b}"] = med[a] / med[b]
    for ours, theirs in pairs:
        if ours not in med or theirs not in med:
            continue
        rel = agree.get((ours, theirs))
        ok = None if rel is None else bool(rel <= tol)
        records.append({**tag, "kind": "ratio", "variant": f"{ours} / {theirs}", "side": "ratio",
                        "ratio": med[ours] / med[theirs] if ok is not False else None,
                        "max_rel_diff": rel, "rtol": tol if rel is not None else None, "agree": ok,
                        "checked": rel is not None})
    return records


# ----------------------------------------------------------------------------------------------
# driver: one worker process per comparison, metadata, table, JSON
# ----------------------------------------------------------------------------------------------
def _machine() -> dict[str, Any]:
    import platform

    import torch

    from liquidssm.environment import cpu_name

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "cores_available": cores,
            "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__}


def _jax_version(extra: Sequence[Path]) -> str | None:
    for folder in extra:
        found = sorted(glob.glob(str(folder / "jax-*.dist-info")))
        if found:
            return Path(found[-1]).name.removesuffix(".dist-info").split("-")[1]
    try:
        from importlib.metadata import version

        return version("jax")
    except Exception:  # noqa: BLE001 - not installed
        return None


def _has_jax(extra: Sequence[Path]) -> bool:
    import importlib.util

    return importlib.util.find_spec("jax") is not None or any((p / "jax").is_dir() for p in extra)


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("KEOPS_VERBOSE", "0")
    env.setdefault("PYKEOPS_VERBOSE", "0")
    return env


def _run_worker(job: dict[str, Any], extra: Sequence[Path], timeout_s: float) -> list[dict[str, Any]]:
    job = {**job, "extra": [str(p) for p in extra]}  # the worker appends them to its import path
    argv = [sys.executable, "-m", "liquidssm.bench.official", "--worker", json.dumps(job)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=_worker_env())
    except subprocess.TimeoutExpired:
        return [{**job, "kind": "skipped", "reason": f"timed out after {timeout_s:.0f} s"}]
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK):])
    tail = " | ".join((proc.stderr or "").strip().splitlines()[-3:])
    return [{**job, "kind": "skipped", "reason": f"worker exited with status {proc.returncode}: {tail}"}]


def _worker_main(job_text: str) -> int:
    job = json.loads(job_text)
    for folder in job.get("extra", []):
        if folder not in sys.path:
            sys.path.append(folder)
    records = measure(job["comparison"], job["size"], job["official"], repeats=job["repeats"],
                      warmup=job["warmup"], threads=job["threads"], rtol=job["rtol"], passes=job["pass"],
                      compiled=job["compiled"])
    print(_MARK + json.dumps(records, default=str), flush=True)
    return 0


def bench_official(official_root: str | os.PathLike[str] | None = None, *,
                   comparisons: Sequence[str] = COMPARISONS, quick: bool = False,
                   sizes: dict[str, dict[str, int]] | None = None, extra_paths: Sequence[str] | None = None,
                   repeats: int = 5, warmup: int = 1, threads: int = 1, rtol: float | None = None,
                   isolate: bool = True, timeout_s: float = 3600.0, compiled: bool = True,
                   progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run the comparisons and return their records (each with the run's metadata).

    ``official_root`` (None: ours alone) is checked first (:func:`check_official_root`);
    ``extra_paths`` (default :func:`default_extra_paths`) are appended to the workers' import path.
    ``sizes`` overrides single entries of :data:`DEFAULT_SIZES` (or :data:`QUICK_SIZES` with
    ``quick``). ``isolate=False`` measures in this process instead of one fresh process per
    comparison (quicker; the peak RSS then accumulates). ``compiled=False`` leaves out our
    ``torch.compile``'d LrcSSM solvers (their first call compiles for seconds). The LrcSSM comparison is skipped, with a
    record saying why, when JAX cannot be imported.
    """
    from liquidssm.allocator import apply_malloc_setting
    from liquidssm.environment import git_commit

    for c in comparisons:
        if c not in COMPARISONS:
            raise ValueError(f"comparisons: expected names from {COMPARISONS}, got {c!r}")
    root = None if official_root is None else check_official_root(official_root, comparisons)
    if extra_paths is None:
        extra = default_extra_paths(root) if root is not None else []
    else:
        extra = [Path(p).expanduser() for p in extra_paths]
        missing = [p for p in extra if not p.is_dir()]
        if missing:
            raise FileNotFoundError(f"extra-path: {missing[0]} is not a folder (expected a folder of Python packages)")
    base = QUICK_SIZES if quick else DEFAULT_SIZES
    table = {c: {**base[c], **(sizes or {}).get(c, {})} for c in COMPARISONS}
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": git_commit(), "official_root": None if root is None else str(root),
            "official_commits": official_commits(root), "allocator": apply_malloc_setting().description,
            "jax": _jax_version(extra) if root is not None else None, "quick": quick, **_machine()}
    jobs = []
    for c in comparisons:
        for passes in (("fwdbwd", "fwd") if c == "lrcssm" else ("fwdbwd",)):
            jobs.append({"comparison": c, "pass": passes, "size": table[c], "repeats": repeats,
                         "warmup": warmup, "threads": threads, "rtol": rtol, "compiled": compiled,
                         "official": None if root is None else str(root)})
    records: list[dict[str, Any]] = []
    for job in jobs:
        if progress:
            progress(f"{job['comparison']} ({job['pass']}) {job['size']}")
        if job["comparison"] == "lrcssm" and root is not None and not _has_jax(extra):
            out = [{"comparison": "lrcssm", "pass": job["pass"], "kind": "skipped",
                    "reason": "JAX not importable (pass --extra-path with a JAX site-packages)"}]
        elif isolate:
            out = _run_worker(job, extra, timeout_s)
        else:
            for folder in extra:
                if str(folder) not in sys.path:
                    sys.path.append(str(folder))
            out = measure(job["comparison"], job["size"], job["official"], repeats=repeats, warmup=warmup,
                          threads=threads, rtol=rtol, passes=job["pass"], compiled=compiled)
        records += [{**meta, **{k: v for k, v in r.items() if k not in ("size", "official")}} for r in out]
    return records


def _ms(x: object) -> str:
    return "-" if not isinstance(x, (int, float)) else f"{1e3 * x:.1f}"


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """The records as a plain-text table (times in ms, ratios ours/official)."""
    lines = [f"{'comparison':10s} {'pass':6s} {'variant':40s} {'median ms':>10s} {'first ms':>10s} "
             f"{'ratio':>7s} {'max rel diff':>12s} {'peak RSS MiB':>12s}"]
    for r in records:
        if r["kind"] == "skipped":
            lines.append(f"{r['comparison']:10s} {r.get('pass', ''):6s} skipped: {r['reason']}")
            continue
        ratio = "-" if r.get("ratio") is None else f"{r['ratio']:.3f}"
        if r["kind"] == "ratio" and r.get("agree") is False:
            ratio = "refused"
        rel = "-" if r.get("max_rel_diff") is None else f"{r['max_rel_diff']:.1e}"
        rss = "" if r.get("peak_rss_mb") is None else f"{r['peak_rss_mb']:.0f}"
        lines.append(f"{r['comparison']:10s} {r['pass']:6s} {r['variant']:40s} {_ms(r.get('median_s')):>10s} "
                     f"{_ms(r.get('first_s')):>10s} {ratio:>7s} {rel:>12s} {rss:>12s}")
    return "\n".join(lines)


def load_measurements(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a ``--out`` file back: one row per record (``kind`` = time | ratio | skipped)."""
    path = Path(path)
    payload = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(payload, dict) or "records" not in payload:
        raise ValueError(f"path: {path} is not a `liquidssm bench official` file (no 'records')")
    return pd.DataFrame(payload["records"])


@dataclass(frozen=True)
class Target:
    """One target of the performance issue: ``ours / official <= bound`` on one comparison and pass.

    ``ours`` and ``official`` are variant names or a prefix ending in ``*`` (the fastest variant
    of that family in the same run: "the best official CPU path"); ``official=None`` with
    ``ours = "a/b"`` is a ratio of two of our variants (the liquid overhead).
    """

    comparison: str
    passes: str
    ours: str
    official: str | None
    bound: float
    what: str


#: the performance issue's targets (issue 13), checked by :func:`target_table`
TARGETS = (
    Target("kernel", "fwdbwd", "ours_*", "official_*", 0.7, "S4 DPLR kernel fwd+bwd, best vs best"),
    Target("block", "fwdbwd", "ours_*", "official_*", 0.8, "S4 block fwd+bwd, best vs best"),
    Target("liquid", "fwdbwd", "ours_pb/ours_s4", None, 1.10, "Liquid-S4 PB order 2 overhead over our S4"),
    Target("lrcssm", "fwdbwd", "ours_newton", "official_deer", 0.5, "LrcSSM Newton fwd+bwd (eager)"),
    Target("lrcssm", "fwdbwd", "ours_newton_compiled", "official_deer", 0.5, "LrcSSM Newton fwd+bwd (compiled)"),
    Target("lrcssm", "fwd", "ours_newton", "official_deer", 0.7, "LrcSSM Newton forward (eager)"),
    Target("lrcssm", "fwd", "ours_newton_compiled", "official_deer", 0.7, "LrcSSM Newton forward (compiled)"),
    Target("lrcssm", "fwdbwd", "ours_seq", "official_scan", 2.0, "sequential fwd+bwd vs lax.scan (eager)"),
    Target("lrcssm", "fwdbwd", "ours_seq_compiled", "official_scan", 2.0, "sequential fwd+bwd vs lax.scan (compiled)"),
)


def _size_label(row: pd.Series) -> str:
    """``"H=256 N=64 L=4096"``-style label of a time record's size (``T`` is ``T_fwd`` for a forward pass)."""
    if row["comparison"] == "lrcssm":
        T = row["T_fwd"] if row["pass"] == "fwd" else row["T"]
        return f"B={int(row['B'])} H=D={int(row['H'])} T={int(T)}"
    keys = ("H", "N", "L") if row["comparison"] == "kernel" else ("B", "H", "N", "L")
    return " ".join(f"{k}={int(row[k])}" for k in keys)


def _pick(medians: dict[str, float], name: str) -> tuple[str, float] | None:
    """``(variant, median)`` for a name or a ``prefix*`` (the fastest of the family); None if absent."""
    if name.endswith("*"):
        found = {k: v for k, v in medians.items() if k.startswith(name[:-1]) and "/" not in k}
        if not found:
            return None
        best = min(found, key=found.__getitem__)
        return best, found[best]
    return (name, medians[name]) if name in medians else None


def _allocator_label(description: object) -> str:
    """``system`` (malloc left alone), ``GLIBC_TUNABLES`` (set by the user) or ``retain`` (ours), from a record."""
    text = str(description)
    if text.startswith("system"):
        return "system"
    return "GLIBC_TUNABLES" if "GLIBC_TUNABLES" in text else "retain"


def target_table(df: pd.DataFrame, targets: Sequence[Target] = TARGETS) -> pd.DataFrame:
    """Every target the records of :func:`load_measurements` can check: one row per run, size and allocator.

    Columns: ``target``, ``size``, ``allocator`` (``retain`` = freed blocks kept by
    :mod:`liquidssm.allocator`, ``system`` = malloc left alone, ``GLIBC_TUNABLES`` = set by the user),
    ``ours``, ``official`` (the variants compared), ``ratio`` (their medians), ``bound``, ``met``,
    ``date``. A target whose variants are missing from a run is left out; an unchecked or refused
    agreement (``kind == "ratio"`` with ``agree`` False) leaves ``ratio`` empty and ``met`` False.
    """
    times = df[df["kind"] == "time"].copy()
    if times.empty:
        return pd.DataFrame(columns=["target", "size", "allocator", "ours", "official", "ratio", "bound", "met",
                                     "date"])
    times["size"] = times.apply(_size_label, axis=1)
    times["alloc"] = times["allocator"].map(_allocator_label)
    refused = set()
    if "agree" in df:
        bad = df[(df["kind"] == "ratio") & (df["agree"] == False)]  # noqa: E712 - a pandas mask
        refused = {(r.comparison, r["pass"], r.variant.split(" / ")[0]) for _, r in bad.iterrows()}
    rows = []
    for (comparison, passes, size, alloc, date), group in times.groupby(["comparison", "pass", "size", "alloc", "date"]):
        medians = dict(zip(group["variant"], group["median_s"]))
        for t in targets:
            if (t.comparison, t.passes) != (comparison, passes):
                continue
            if t.official is None:
                a, b = t.ours.split("/")
                if a not in medians or b not in medians:
                    continue
                ours, theirs, ratio = t.ours, "-", medians[a] / medians[b]
            else:
                o, f = _pick(medians, t.ours), _pick(medians, t.official)
                if o is None or f is None:
                    continue
                (ours, mo), (theirs, mf) = o, f
                ratio = None if (comparison, passes, ours) in refused else mo / mf
            rows.append({"target": t.what, "size": size, "allocator": alloc, "ours": ours, "official": theirs,
                         "ratio": ratio, "bound": t.bound, "met": ratio is not None and ratio <= t.bound,
                         "date": date})
    return pd.DataFrame(rows)


def target_summary(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`target_table` with one row per (target, size): the ratios of every run per allocator.

    Each allocator column lists the ratio of each recorded run (``"0.43 / 0.52"``; ``refused``
    where the outputs disagreed); ``met`` is True only when every run under every allocator met
    the bound.
    """
    if table.empty:
        return pd.DataFrame(columns=["target", "size", "bound", "met"])

    def fmt(values: pd.Series) -> str:
        return " / ".join("refused" if pd.isna(v) else f"{v:.2f}" for v in values)

    cells = table.groupby(["target", "size", "bound", "allocator"], sort=False)["ratio"].agg(fmt).unstack("allocator")
    cells["met"] = table.groupby(["target", "size", "bound"], sort=False)["met"].all()
    return cells.fillna("-").reset_index()


def _sizes_from(args: argparse.Namespace) -> dict[str, dict[str, int]]:
    given = {"kernel": {"H": args.kernel_H, "N": args.kernel_N, "L": args.kernel_L},
             "block": {"B": args.block_B, "H": args.block_H, "N": args.block_N, "L": args.block_L},
             "liquid": {"B": args.liquid_B, "H": args.liquid_H, "N": args.liquid_N, "L": args.liquid_L,
                        "P": args.liquid_P},
             "lrcssm": {"B": args.lrc_B, "H": args.lrc_H, "T": args.lrc_T, "T_fwd": args.lrc_T_fwd}}
    return {c: {k: v for k, v in d.items() if v is not None} for c, d in given.items()}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="liquidssm bench official", description=__doc__.splitlines()[0],
                                epilog="example: liquidssm bench official --official-root /scratch/peers --quick")
    p.add_argument("--official-root", help="folder with the checkouts s4/, liquid-s4/, lrcssm/ "
                   "(default $LIQUIDSSM_OFFICIAL_ROOT; unset: time ours alone)")
    p.add_argument("--extra-path", action="append", default=None,
                   help="a folder of the official code's extra packages (repeatable; default: "
                        "ROOT/s4deps, s4deps_pl, ls4deps, jaxvenv site-packages)")
    p.add_argument("--only", nargs="+", choices=COMPARISONS, default=list(COMPARISONS), help="comparisons to run")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run in about a minute)")
    p.add_argument("--repeats", type=int_at_least(1), default=5, help="timed rounds")
    p.add_argument("--warmup", type=int_at_least(0), default=1, help="untimed rounds after the first call")
    p.add_argument("--threads", type=int_at_least(1), default=1, help="torch intra-op threads")
    p.add_argument("--rtol", type=positive_float, default=None,
                   help="agreement tolerance max|ours-official|/max|official| (default: kernel 1e-3, lrcssm 1e-2)")
    p.add_argument("--timeout", type=positive_float, default=3600.0, help="seconds per comparison")
    p.add_argument("--out", help="write every record to this JSON file (atomically)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    p.add_argument("--in-process", action="store_true", help="measure in this process (no worker per comparison)")
    p.add_argument("--no-compile", action="store_true",
                   help="leave out our torch.compile'd LrcSSM solvers (they compile for seconds on first use)")
    for c, keys in (("kernel", "HNL"), ("block", "BHNL"), ("liquid", "BHNLP")):
        for k in keys:
            p.add_argument(f"--{c}-{k}", type=int_at_least(1), default=None,
                           help=f"{c} size {k} (default {DEFAULT_SIZES[c][k]}, quick {QUICK_SIZES[c][k]})")
    for k, dest in (("B", "lrc_B"), ("H", "lrc_H"), ("T", "lrc_T"), ("T-fwd", "lrc_T_fwd")):
        key = k.replace("-", "_")
        p.add_argument(f"--lrc-{k}", dest=dest, type=int_at_least(1), default=None,
                       help=f"lrcssm size {key} (H = D; default {DEFAULT_SIZES['lrcssm'][key]}, "
                            f"quick {QUICK_SIZES['lrcssm'][key]})")
    return p


def main(argv: list[str] | None = None) -> int:
    """``liquidssm bench official``: measure, print the table, optionally write ``--out``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        if len(argv) != 2:
            raise UsageError("--worker: expected one JSON job")
        return _worker_main(argv[1])
    args = _parser().parse_args(argv)
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not args.force:
        raise FileExistsError(f"out: {out} exists; pass --force to overwrite it")
    root = args.official_root or paths.official_root()
    records = bench_official(root, comparisons=args.only, quick=args.quick, sizes=_sizes_from(args),
                             extra_paths=args.extra_path, repeats=args.repeats, warmup=args.warmup,
                             threads=args.threads, rtol=args.rtol, isolate=not args.in_process,
                             compiled=not args.no_compile,
                             timeout_s=args.timeout, progress=lambda s: print(f"# {s}", file=sys.stderr))
    first = records[0] if records else {}
    print(f"# {first.get('date')} commit {first.get('commit')}; official {first.get('official_commits')}; "
          f"{first.get('cpu')}; torch {first.get('torch')}; jax {first.get('jax')}\n# allocator: {first.get('allocator')}")
    print(format_table(records))
    if out is not None:
        from liquidssm.bench._util import write_json_atomic

        write_json_atomic(out, {"benchmark": "official", "records": records}, force=args.force)
        print(f"# wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
