"""Zero-shot evaluation at half the sampling rate: the 8 kHz columns of Liquid-S4 Tables 4 and S2.

Chapters ``reproductions/13_ls4_table4_speech`` and ``14_ls4_tableS2_sc10``. The one
evaluation-only stage of the wing: the scaling of Δ is a fact about every continuous-time S4
layer, not about one paper, and the evaluation is the engine's own :func:`~liquidssm.repro.train.evaluate`. Gu et al. (2022a)
test a model trained on 16 kHz Speech Commands on the same clips subsampled to 8 kHz, without any
training: every second sample is kept and every layer's step Δ is doubled, so the
continuous-time system the SSM learned sees the same signal at half the rate (the released
code's ``rate=2``). A continuous-time model keeps its accuracy; a discrete one does not.

The 8 kHz registry entries (``ls4-t4-sc35-8khz``, ``ls4-ts2-sc10-8khz`` and their ``-s4``)
name the 16 kHz entry whose model they evaluate (``task_args["zero_shot_of"]``) and are never
trained (their task refuses). :func:`evaluate_zero_shot` loads the source run's best model
(``best.pt``, the checkpoint its table value was read at), evaluates validation and test at the
new rate under :func:`sampling_rate_scaled`, and writes a results file for the 8 kHz entry whose
provenance names the source run. :func:`liquidssm.repro.runs.ensure_results` evaluates these
entries (after training their source runs) like it trains the others.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from liquidssm import paths
from liquidssm.layers import S4Layer
from liquidssm.repro import checkpoint as ckpt
from liquidssm.repro import results as res
from liquidssm.repro.experiments import get_experiment
from liquidssm.repro.models import build_model
from liquidssm.repro.spec import Experiment, resolve
from liquidssm.repro.tasks import build_task
from liquidssm.repro.train import evaluate

__all__ = ["sampling_rate_scaled", "source_of", "evaluate_zero_shot", "ZeroShotError"]


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
    if exp.zero_shot_of is None:
        raise ValueError(f"{exp.id}: not a zero-shot entry (its task_args name no 'zero_shot_of')")
    return get_experiment(exp.zero_shot_of), int(exp.task_args["resolution"])


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
    folder = Path(run_dir) if run_dir is not None else paths.run_dir(source.id, profile, seed)
    best_file = folder / ckpt.BEST
    saved = ckpt.load_best(folder)
    if saved is None:
        raise ZeroShotError(f"{exp.id}: the source run's best model {best_file} is missing (the "
                            f"results file {src_file} exists, but its checkpoints were not kept "
                            "here); retrain the source run on this machine")
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
    batch_size = spec.train.eval_batch_size or spec.train.batch_size

    def to_device(batch: Any) -> Any:
        return tuple(None if t is None else t.to(dev) for t in batch)

    with sampling_rate_scaled(model, rate):
        val, test = (evaluate(model, spec.model, task, split, batch_size, to_device=to_device)
                     for split in (task.val, task.test))
    wall = time.perf_counter() - start
    best = {**src["best"], "val": val, "test": test}
    device_name = (torch.cuda.get_device_name(dev) if dev.type == "cuda"
                   else f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)")
    training = {"steps": 0, "epochs": 0, "stopped_early": False, "train_seconds": 0.0,
                "wall_s": wall, "samples_per_s": (len(task.val) + len(task.test)) / max(wall, 1e-9),
                "newton_iterations_per_block": None, "evaluation_only": True}
    zero_shot = {"of": source.id, "rate": rate, "checkpoint": str(best_file),
                 "source_value": src["value"], "source_config_hash": src["config_hash"],
                 "source_commit": src["provenance"].get("commit"), "source_training": src["training"]}
    record = res.make_record(exp, resolve(exp, profile), seed, task=task, best=best, history=[best],
                             training=training, device=device_name, precision="32-true",
                             world_size=1, param_digest=src.get("param_digest"),
                             extra={"zero_shot": zero_shot})
    res.write_result(record, res.result_path(exp.id, profile, seed, results_dir))
    return record
