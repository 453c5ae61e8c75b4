"""Benchmark: the Fabric training step of the engine against a bare torch loop, side by side.

``liquidssm bench engine [--experiment ls4-t1-listops] [--steps 20] [--rounds 5] [--threads 1]``

Both loops train the same model (same initial parameters, same optimiser groups and schedule) on
the same batches, in one process, in alternating rounds: the bare loop is ``forward, loss,
zero_grad, backward, step``; the engine's is :func:`liquidssm.repro.train.train_step` plus its
per-step ``metrics.jsonl`` record (Fabric's wrappers, device placement, the NaN guard, the
learning-rate schedule). Reported: median milliseconds per step of each and their ratio (the
engine's overhead). Chapter ``reproductions/02_how_reproductions_run``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import pandas as pd
import torch

from liquidssm.bench._util import machine_summary
from liquidssm.cliutil import int_at_least

__all__ = ["benchmark", "main"]


def benchmark(experiment: str = "ls4-t1-listops", profile: str = "smoke", *, steps: int = 20,
              rounds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Median ms/step of the engine's step and of a bare torch step; one row each plus the ratio."""
    from liquidssm.repro import train
    from liquidssm.repro.models import build_model, model_output
    from liquidssm.repro.optim import build_optimizer, lr_factor, set_lr
    from liquidssm.repro.spec import Launch
    from liquidssm.repro.taskbase import loss_fn

    with tempfile.TemporaryDirectory() as tmp:
        run = train.setup(experiment, profile, seed,
                          Launch(device="cpu", precision="32-true", restart=True,
                                 results_dir=f"{tmp}/results", run_dir=f"{tmp}/run"))
        spec, task = run.spec, run.task
        batches = train.epoch_batches(len(task.train), spec.train.batch_size, seed, 0, 0, 1, True)
        data = [task.collate([task.train[i] for i in b]) for b in batches[:steps]]
        bare = build_model(spec.model)
        bare.load_state_dict(run.model.state_dict())
        opt = build_optimizer(bare, spec.optim)

        def bare_round() -> float:
            t0 = time.perf_counter()
            for k, (x, y, lengths) in enumerate(data):
                set_lr(opt, lr_factor(spec.optim, k, 0))
                bare.train()
                loss = loss_fn(task.kind, model_output(bare, spec.model, x, lengths), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                float(loss.item())
            return (time.perf_counter() - t0) * 1e3 / len(data)

        def engine_round() -> float:
            t0 = time.perf_counter()
            for batch in data:
                loss = train.train_step(run, batch)
                train._log(run, {"step": run.state.step, "loss": loss})
                run.state.step += 1
            return (time.perf_counter() - t0) * 1e3 / len(data)

        bare_round(), engine_round()  # warm both paths
        times: dict[str, list[float]] = {"bare torch": [], "engine (Fabric)": []}
        for r in range(rounds):
            order = [("bare torch", bare_round), ("engine (Fabric)", engine_round)]
            for name, fn in order if r % 2 == 0 else order[::-1]:
                times[name].append(fn())
    rows = [{"loop": k, "ms_per_step": statistics.median(v), "rounds": len(v), "steps": len(data)}
            for k, v in times.items()]
    df = pd.DataFrame(rows)
    df["ratio_to_bare"] = df["ms_per_step"] / df.loc[df["loop"] == "bare torch", "ms_per_step"].iloc[0]
    df.attrs["machine"] = machine_summary("cpu")
    df.attrs["experiment"] = f"{experiment} ({profile})"
    return df


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(prog="liquidssm bench engine", description=__doc__.splitlines()[0])
    p.add_argument("--experiment", default="ls4-t1-listops")
    p.add_argument("--profile", default="smoke", choices=("smoke", "full"))
    p.add_argument("--steps", type=int_at_least(1), default=20)
    p.add_argument("--rounds", type=int_at_least(1), default=5)
    p.add_argument("--threads", type=int_at_least(1), default=None,
                   help="torch threads (1 = steadiest on a shared CPU)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    df = benchmark(args.experiment, args.profile, steps=args.steps, rounds=args.rounds)
    print(f"# {df.attrs['machine']}; {df.attrs['experiment']}", file=sys.stderr)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0
