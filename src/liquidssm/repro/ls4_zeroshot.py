"""Zero-shot evaluation at half the sampling rate: the 8 kHz columns of Liquid-S4 Tables 4 and S2.

Chapters ``reproductions/13_ls4_table4_speech`` and ``14_ls4_tableS2_sc10``. Gu et al. (2022a)
test a model trained on 16 kHz Speech Commands on the same clips subsampled to 8 kHz, without any
training: every second sample is kept and every layer's step Δ is doubled, so the
continuous-time system the SSM learned sees the same signal at half the rate (the released
code's ``rate=2``). A continuous-time model keeps its accuracy; a discrete one does not.

The 8 kHz registry entries (``ls4-t4-sc35-8khz``, ``ls4-ts2-sc10-8khz`` and their ``-s4``)
name the 16 kHz entry whose model they evaluate (``task_args["zero_shot_of"]``) and are never
trained (their task refuses). :func:`evaluate_zero_shot` loads the source run's best model
(``best.pt``, the checkpoint its table value was read at), evaluates validation and test at the
new rate under :func:`sampling_rate_scaled`, and writes a results file for the 8 kHz entry whose
provenance names the source run. :func:`ensure_zero_shot` is the chapters' counterpart of
:func:`liquidssm.repro.runner.ensure_results`.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from liquidssm import paths
from liquidssm.layers import S4Layer
from liquidssm.repro import results as res
from liquidssm.repro.experiments import Experiment, get_experiment, resolve
from liquidssm.repro.models import build_model, model_output
from liquidssm.repro.runner import RUN_MODES, ensure_results
from liquidssm.repro.tasks import build_task, loss_fn, metrics_of

__all__ = ["sampling_rate_scaled", "source_of", "evaluate_zero_shot", "ensure_zero_shot",
           "ZeroShotError"]


class ZeroShotError(RuntimeError):
    """The source run of a zero-shot evaluation is missing or does not match; the message says which."""


@contextlib.contextmanager
def sampling_rate_scaled(model: nn.Module, rate: float) -> Iterator[nn.Module]:
    """Within the block, every S4/Liquid-S4 layer of ``model`` uses the step ``rate · Δ``.

    ``log Δ`` of each layer is shifted by ``log rate`` in place and restored on exit (also on an
    error), so a model trained at one sampling rate runs at ``1/rate`` times it. The liquid terms
    of the paper variant use the same Δ; the official variant's frozen initial copy is left
    alone, as the released code's ``rate`` argument reaches only the S4 kernel.
    """
    if not (isinstance(rate, (int, float)) and rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate: expected a positive finite number, got {rate!r}")
    layers = [m for m in model.modules() if isinstance(m, S4Layer)]
    if not layers:
        raise ValueError("model: found no S4Layer whose step Δ could be scaled")
    shift = math.log(rate)
    with torch.no_grad():
        for m in layers:
            m.log_dt.add_(shift)
    try:
        yield model
    finally:
        with torch.no_grad():
            for m in layers:
                m.log_dt.sub_(shift)


def source_of(target: str | Experiment) -> tuple[Experiment, int]:
    """The entry whose model a zero-shot entry evaluates, and the rate (2 for 8 kHz)."""
    exp = target if isinstance(target, Experiment) else get_experiment(target)
    if "zero_shot_of" not in exp.task_args:
        raise ValueError(f"{exp.id}: not a zero-shot entry (its task_args name no 'zero_shot_of')")
    return get_experiment(exp.task_args["zero_shot_of"]), int(exp.task_args["resolution"])


@torch.no_grad()
def _evaluate(model: nn.Module, spec: Any, task: Any, dataset: Any, device: torch.device) -> dict[str, float]:
    bs = spec.train.eval_batch_size or spec.train.batch_size
    loader = torch.utils.data.DataLoader(dataset, batch_size=bs, shuffle=False, collate_fn=task.collate)
    loss_sum, correct, sq, n = 0.0, 0, 0.0, 0
    for x, y, lengths in loader:
        x, y = x.to(device), y.to(device)
        out = model_output(model, spec.model, x, None if lengths is None else lengths.to(device)).float()
        loss_sum += float(loss_fn(task.kind, out, y)) * len(y)
        if task.kind == "classification":
            correct += int((out.argmax(-1) == y).sum())
        else:
            sq += float(((out - y.float().reshape(out.shape)) ** 2).mean(-1).sum())
        n += len(y)
    return metrics_of(task.kind, loss_sum, correct, sq, n)


def evaluate_zero_shot(target: str, profile: str, seed: int | None = None, *, device: str = "cpu",
                       results_dir: str | os.PathLike[str] | None = None,
                       run_dir: str | os.PathLike[str] | None = None,
                       data_root: str | os.PathLike[str] | None = None,
                       cache_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Evaluate the source run's best model at the target's rate; write and return the record.

    The source run (``profile``, ``seed``) must have completed: its results file and its
    ``best.pt`` (under ``run_dir``, default ``<build>/runs/<source>/<profile>-seed<k>``) are
    read, and the checkpoint must hold the configuration the results file names.
    """
    exp = get_experiment(target)
    source, rate = source_of(exp)
    spec = resolve(source, profile)
    seed = spec.seeds[0] if seed is None else int(seed)
    src_file = res.result_path(source.id, profile, seed, results_dir)
    if not src_file.exists():
        raise ZeroShotError(f"{exp.id}: the source run has no results file {src_file}; train it "
                            f"first (`liquidssm train {source.id} --profile {profile} --seed {seed}`)")
    src = res.read_result(src_file)
    best_file = (Path(run_dir) if run_dir is not None else
                 paths.build_dir() / "runs" / source.id / f"{profile}-seed{seed}") / "best.pt"
    if not best_file.exists():
        raise ZeroShotError(f"{exp.id}: the source run's best model {best_file} is missing (the "
                            f"results file {src_file} exists, but its checkpoints were not kept "
                            "here); retrain the source run on this machine")
    saved = torch.load(best_file, map_location="cpu", weights_only=True)
    if saved.get("config_hash") != src["config_hash"] or src["config_hash"] != spec.config_hash():
        raise ZeroShotError(f"{exp.id}: {best_file} (configuration {saved.get('config_hash')}) does "
                            f"not belong to the results in {src_file} ({src['config_hash']}) or to "
                            f"the current registry entry ({spec.config_hash()}); retrain the source")
    start = time.perf_counter()
    dev = torch.device("cuda" if device in ("cuda", "gpu") else device)
    torch.manual_seed(seed)
    model = build_model(spec.model)
    model.load_state_dict(saved["model"])
    model.to(dev).eval()
    task = build_task(spec.task, {**spec.task_args, "resolution": rate}, seed, data_root=data_root,
                      cache_dir=cache_dir)
    with sampling_rate_scaled(model, rate):
        val = _evaluate(model, spec, task, task.val, dev)
        test = _evaluate(model, spec, task, task.test, dev)
    wall = time.perf_counter() - start
    key = src["metric_key"]
    best = {**src["best"], "val": val, "test": test}
    device_name = (torch.cuda.get_device_name(dev) if dev.type == "cuda"
                   else f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)")
    target_spec = resolve(exp, profile)
    record = {
        **src,
        "experiment": exp.id, "table": exp.table, "row": exp.row, "column": exp.column,
        "value": best[spec.train.report][key], "paper_value": exp.paper_value,
        "paper_std": exp.paper_std, "smoke_target": exp.smoke_target, "chance": task.chance,
        "best": best, "final": best, "history": [best],
        "training": {"steps": 0, "epochs": 0, "stopped_early": False, "train_seconds": 0.0,
                     "wall_s": wall, "samples_per_s": (len(task.val) + len(task.test)) / max(wall, 1e-9),
                     "newton_iterations_per_block": None, "evaluation_only": True},
        "data": {"source": task.source, "location": task.location, "sha256": task.files,
                 "n_train": 0, "n_val": len(task.val), "n_test": len(task.test)},
        "config": target_spec.to_dict(), "config_hash": target_spec.config_hash(),
        "zero_shot": {"of": source.id, "rate": rate, "checkpoint": str(best_file),
                      "source_value": src["value"], "source_config_hash": src["config_hash"],
                      "source_commit": src["provenance"].get("commit"),
                      "source_training": src["training"]},
        "provenance": res.provenance(device_name, "32-true", 1),
    }
    res.write_result(record, res.result_path(exp.id, profile, seed, results_dir))
    return record


def ensure_zero_shot(targets: list[str] | tuple[str, ...], profile: str, *,
                     seeds: list[int] | tuple[int, ...] | None = None, run: str = "missing",
                     device: str = "cpu", max_minutes: float | None = None,
                     results_dir: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Evaluate what ``run`` asks for (after training missing source runs); return the target rows.

    ``run``: ``"missing"`` evaluates the (target, seed) pairs without a results file, ``"all"``
    every pair again, ``"none"`` nothing. A missing source run is trained first with
    :func:`~liquidssm.repro.runner.ensure_results` (``run="missing"``).
    """
    if run not in RUN_MODES:
        raise ValueError(f"run: expected one of {RUN_MODES}, got {run!r}")
    for target in targets:
        source, _ = source_of(target)
        for seed in (seeds if seeds is not None else resolve(source, profile).seeds):
            done = res.result_path(target, profile, seed, results_dir).exists()
            if run == "none" or (run == "missing" and done):
                continue
            ensure_results([source.id], profile, seeds=[seed], run="missing", device=device,
                           max_minutes=max_minutes, results_dir=results_dir)
            if res.result_path(source.id, profile, seed, results_dir).exists():
                evaluate_zero_shot(target, profile, seed, device=device, results_dir=results_dir)
    df = res.load_results(results_dir, profile=profile)
    if df.empty:
        return df
    return df[df["experiment"].isin(list(targets))].reset_index(drop=True)
