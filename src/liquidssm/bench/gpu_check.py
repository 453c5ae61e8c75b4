"""``make gpu-check``: what the full profile costs and whether its GPU paths are right, in 8 minutes.

Chapter ``reproductions/26_cost``. On one CUDA GPU, within ``--budget-min`` minutes (default 8):

1. ``liquidssm plan --device cuda --precision bf16-mixed`` for every table at ``--plan-steps``
   steps (:func:`liquidssm.repro.plan.plan`; entries left when the plan's share of the budget is
   spent are listed as not measured);
2. one Liquid-S4 and one LrcSSM ``full`` entry trained for ``--train-min`` minutes each on one
   fixed synthetic batch of the real shapes (samples/s, peak memory, and the loss going down:
   a model that can fit one batch must);
3. the compiled LrcSSM solver on CUDA against the eager CPU oracle (float64), and both Cauchy
   backends on CUDA against the CPU float64 oracle;
4. a 2-process DDP step (``liquidssm train --devices 2``) when the machine has two GPUs.

It writes one JSON (:data:`SCHEMA`) under ``data/benchmarks/`` (``gpu-check-<date>.json``), which
the cost page reads. Without CUDA it prints why and exits 0 having written nothing (the GPU parts
skip cleanly; the argument handling and the JSON layout are tested on the CPU).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from liquidssm.cliutil import UsageError, int_at_least, positive_float

__all__ = ["SCHEMA", "main", "validate", "train_for", "solver_check", "cauchy_check", "ddp_check",
           "default_out"]

#: the JSON layout this script writes (``plan`` inside is a ``liquidssm-plan/1`` document)
SCHEMA = "liquidssm-gpu-check/1"
#: the entries trained for ``--train-min`` minutes each
TRAINED = ("ls4-t1-listops", "lrcssm-t1-scp1")


def default_out(now: datetime | None = None) -> Path:
    """``data/benchmarks/gpu-check-<UTC date>.json`` (:func:`liquidssm.paths.benchmarks_dir`)."""
    from liquidssm import paths

    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d")
    return paths.benchmark_file(f"gpu-check-{stamp}.json")


def validate(data: Any, where: str = "gpu-check") -> dict[str, Any]:
    """Refuse a document that is not a gpu-check JSON: schema, keys and the plan inside."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{where}: expected schema {SCHEMA!r}, got "
                         f"{data.get('schema') if isinstance(data, dict) else type(data).__name__!r}")
    for key in ("created", "device_name", "precision", "plan", "train", "checks", "ddp"):
        if key not in data:
            raise ValueError(f"{where}: missing key {key!r}")
    from liquidssm.repro.plan import SCHEMA as PLAN_SCHEMA

    if not isinstance(data["plan"], dict) or data["plan"].get("schema") != PLAN_SCHEMA:
        raise ValueError(f"{where}: plan: expected schema {PLAN_SCHEMA!r}")
    for i, t in enumerate(data["train"]):
        for key in ("experiment", "samples_per_s", "peak_memory_mb", "loss_first", "loss_last",
                    "loss_down", "steps"):
            if key not in t:
                raise ValueError(f"{where}: train[{i}] lacks {key!r}")
    return data


def train_for(experiment_id: str, minutes: float, device: str = "cuda",
              precision: str = "bf16-mixed") -> dict[str, Any]:
    """Train ``experiment_id``'s full model on one fixed synthetic batch for ``minutes``.

    Returns steps, samples/s, peak memory (CUDA ``max_memory_allocated``), the mean loss of the
    first and the last tenth of the steps and whether it went down.
    """
    from liquidssm.repro.experiments import get_experiment
    from liquidssm.repro.models import build_model, model_output
    from liquidssm.repro.optim import build_optimizer
    from liquidssm.repro.plan import _full_spec, synthetic_batch
    from liquidssm.repro.taskbase import loss_fn

    spec, shape = _full_spec(get_experiment(experiment_id))
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    torch.manual_seed(0)
    model = build_model(spec.model).to(dev)
    opt = build_optimizer(model, spec.optim)
    x, y = synthetic_batch(shape, spec.train.batch_size)
    x, y = x.to(dev), y.to(dev)
    use_amp = dev.type == "cuda" and precision != "32-true"
    amp_dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
    losses, t_end, t0 = [], time.monotonic() + 60 * minutes, time.perf_counter()
    model.train()
    while time.monotonic() < t_end:
        with torch.autocast(device_type=dev.type, dtype=amp_dtype, enabled=use_amp):
            out = model_output(model, spec.model, x, None)
        loss = loss_fn(shape.kind, out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    seconds = time.perf_counter() - t0
    k = max(1, len(losses) // 10)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    return {"experiment": experiment_id, "steps": len(losses), "seconds": seconds,
            "batch_size": spec.train.batch_size,
            "samples_per_s": len(losses) * spec.train.batch_size / max(seconds, 1e-9),
            "peak_memory_mb": (torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda"
                               else math.nan),
            "loss_first": first, "loss_last": last,
            "loss_down": bool(math.isfinite(last) and last < first)}


def solver_check(device: str = "cuda") -> dict[str, Any]:
    """The compiled LrcSSM solver on ``device`` (float32) against the eager CPU oracle (float64)."""
    from liquidssm.configs import LrcSSMConfig
    from liquidssm.lrcssm import LrcSSMModel

    torch.manual_seed(0)
    cfg = LrcSSMConfig(d_input=3, d_output=2, d_model=16, d_state=16, n_blocks=2)
    oracle = LrcSSMModel(cfg.replace(dtype="float64"))
    fast = LrcSSMModel(cfg.replace(compile=True)).to(device)
    fast.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in oracle.state_dict().items()})
    x = torch.randn(4, 256, 3, dtype=torch.float64)
    with torch.no_grad():
        want = oracle(x)
        got = fast(x.float().to(device)).double().cpu()
    err = float((got - want).abs().max() / want.abs().max().clamp_min(1e-12))
    return {"check": "LrcSSM compiled solver vs CPU float64", "device": device,
            "max_rel_error": err, "ok": err < 1e-3}


def cauchy_check(device: str = "cuda") -> list[dict[str, Any]]:
    """Both Cauchy backends on ``device`` (complex64) against the CPU complex128 oracle."""
    from liquidssm import cauchy

    g = torch.Generator().manual_seed(0)
    N2, L = 32, 1024
    w = torch.complex(-0.5 * torch.ones(8, N2), -torch.rand(8, N2, generator=g) * 50).to(torch.complex128)
    v = torch.randn(8, N2, dtype=torch.complex128, generator=g)
    z = 1j * torch.linspace(-100, 100, L, dtype=torch.float64).to(torch.complex128)
    want = cauchy.cauchy_naive(v, z, w)
    out = []
    for backend in ("torch", "keops"):
        try:
            got = cauchy.cauchy(v.to(torch.complex64).to(device), z.to(torch.complex64).to(device),
                                w.to(torch.complex64).to(device), backend=backend).cpu().to(torch.complex128)
            err = float((got - want).abs().max() / want.abs().max())
            out.append({"check": f"Cauchy {backend} vs CPU complex128", "device": device,
                        "max_rel_error": err, "ok": err < 1e-4})
        except Exception as exc:  # noqa: BLE001 - a backend that cannot run is a result, not a crash
            out.append({"check": f"Cauchy {backend} vs CPU complex128", "device": device,
                        "max_rel_error": None, "ok": False,
                        "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"})
    return out


def ddp_check() -> dict[str, Any]:
    """A 2-process DDP run of a tiny ListOps smoke entry when two GPUs are present."""
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n < 2:
        return {"ran": False, "why": f"{n} GPU(s): a 2-process DDP step needs two"}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "liquidssm.cli", "train", "ls4-t1-listops", "--profile", "smoke",
               "--device", "cuda", "--devices", "2", "--results-dir", f"{tmp}/r", "--run-dir",
               f"{tmp}/run", "--cache-dir", f"{tmp}/c", "--set", "train.max_steps=4", "--no-progress"]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True)
        return {"ran": True, "ok": res.returncode == 0, "seconds": time.perf_counter() - t0,
                "stderr_tail": res.stderr[-1000:]}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="liquidssm-gpu-check", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="JSON to write (default data/benchmarks/gpu-check-<date>.json)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out")
    p.add_argument("--precision", default="bf16-mixed", choices=("bf16-mixed", "16-mixed", "32-true"))
    p.add_argument("--plan-steps", type=int_at_least(1), default=2)
    p.add_argument("--train-min", type=positive_float, default=2.0)
    p.add_argument("--budget-min", type=positive_float, default=8.0,
                   help="the whole check's time budget; the plan gets what training leaves")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the check (see the module docstring); 0 also when no GPU is present (nothing written)."""
    args = _parser().parse_args(argv)
    from liquidssm.repro import plan as planner
    from liquidssm.repro.checkpoint import atomic_write

    out = Path(args.out) if args.out else default_out()
    if out.exists() and not args.force:
        raise UsageError(f"--out: {out} exists; pass --force to overwrite it")
    if not out.parent.is_dir():
        raise UsageError(f"--out: the folder {out.parent} does not exist")
    if args.train_min * len(TRAINED) >= args.budget_min:
        raise UsageError(f"--train-min: {len(TRAINED)} x {args.train_min} min leaves nothing of "
                         f"--budget-min {args.budget_min} for the plan")
    if not torch.cuda.is_available():
        print("gpu-check: skipped: torch sees no CUDA device here (nothing written); run it on a "
              "GPU machine: make gpu-check")
        return 0
    start = time.monotonic()
    plan_deadline = start + 60 * (args.budget_min - args.train_min * len(TRAINED) - 1.0)
    rows: list[Any] = []
    for exp_id in planner.select(None, None):
        if time.monotonic() > plan_deadline:
            rows.append(planner.unmeasured_row(exp_id, "not measured (gpu-check time budget)"))
            continue
        rows += planner.plan(experiment_ids=[exp_id], device="cuda", precision=args.precision,
                             steps=args.plan_steps, progress=False, compare_compile=False)
    plan_json = planner.to_json(rows, device="cuda", precision=args.precision, steps=args.plan_steps,
                                max_tokens=None)
    trained = [train_for(i, args.train_min, "cuda", args.precision) for i in TRAINED]
    checks = [solver_check("cuda"), *cauchy_check("cuda")]
    data = {"schema": SCHEMA, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "device_name": torch.cuda.get_device_name(0), "precision": args.precision,
            "gpus": torch.cuda.device_count(), "plan": plan_json, "train": trained,
            "checks": checks, "ddp": ddp_check(), "seconds": time.monotonic() - start}
    validate(data, str(out))
    atomic_write(out, (json.dumps(data, indent=1, default=str) + "\n").encode())
    bad = [c["check"] for c in checks if not c["ok"]] + [t["experiment"] for t in trained if not t["loss_down"]]
    print(f"gpu-check: wrote {out} in {data['seconds'] / 60:.1f} min; "
          + ("all checks passed" if not bad else f"FAILED: {', '.join(bad)}"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
