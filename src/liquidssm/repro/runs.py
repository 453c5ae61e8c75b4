"""The one runner: which (experiment, seed) runs a chapter needs, and making them exist.

Chapter ``reproductions/02_how_reproductions_run``; used by every table chapter, the command line
and the cluster launcher. A chapter's ``parameters`` cell sets ``run``:

* ``"missing"`` (default): run only the (experiment, seed) pairs whose results file is absent
  or was made with other settings (its configuration hash differs from the entry's today);
* ``"all"``: run every pair again (``restart``: old checkpoints of those runs are discarded;
  each results file is replaced atomically only when its new run completes);
* ``"none"``: run nothing, show whatever results exist.

and ``variant``: ``"paper"`` (the registry's settings) or ``"released"`` (the entry's
``released`` values applied, :func:`liquidssm.repro.spec.released_overrides`; results and
checkpoints in their own folders, :func:`liquidssm.paths.run_results_dir` and
:func:`liquidssm.paths.run_dir`).

A trainable entry is trained by :func:`liquidssm.repro.train.fit` (one device in this process;
several devices as a ``liquidssm train`` subprocess, because Fabric refuses to spawn DDP
processes from inside a notebook). An evaluation-only entry (Liquid-S4's 8 kHz zero-shot cells)
is evaluated by :func:`liquidssm.repro.zeroshot.evaluate_zero_shot` once its source run exists.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from liquidssm import paths
from liquidssm.repro import results as res
from liquidssm.repro.experiments import get_experiment
from liquidssm.repro.spec import RUN_VARIANTS, Launch, released_overrides, resolve

__all__ = ["RUN_MODES", "planned_runs", "ensure_results", "variant_overrides", "current_result", "merge_overrides"]

RUN_MODES = ("missing", "all", "none")


def _check_variant(variant: str) -> str:
    if variant not in RUN_VARIANTS:
        raise ValueError(f"variant: expected one of {RUN_VARIANTS}, got {variant!r}")
    return variant


def variant_overrides(experiment_id: str, profile: str, variant: str) -> dict[str, dict[str, Any]]:
    """The overrides a ``variant`` applies to an entry: none for ``"paper"``; its released values."""
    if _check_variant(variant) == "paper":
        return {}
    return released_overrides(get_experiment(experiment_id), profile)


def merge_overrides(*layers: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Section-wise merge of override dicts; a later layer wins field by field (``--set`` last)."""
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for section, fields in (layer or {}).items():
            out[section] = {**out.get(section, {}), **fields}
    return out


def planned_runs(experiment_ids: list[str] | tuple[str, ...], profile: str, *,
                 seeds: list[int] | tuple[int, ...] | None = None, run: str = "missing",
                 variant: str = "paper",
                 results_dir: str | os.PathLike[str] | None = None,
                 overrides: dict[str, dict[str, Any]] | None = None) -> list[tuple[str, int]]:
    """The (experiment, seed) pairs ``run`` asks for (seeds default to each profile's).

    ``results_dir`` is the folder of the ``"paper"`` variant (default
    :func:`liquidssm.paths.results_dir`); ``"released"`` looks in its ``released`` sub-folder.
    ``overrides`` (``{"train": {"max_steps": 5}}``, applied after the variant's, as ``--set``)
    change the settings a valid results file must have been made with.
    """
    if run not in RUN_MODES:
        raise ValueError(f"run: expected one of {RUN_MODES}, got {run!r}")
    folder = paths.run_results_dir(_check_variant(variant), results_dir)
    pairs, hashes = [], {}
    for exp_id in experiment_ids:
        spec = resolve(get_experiment(exp_id), profile,
                       merge_overrides(variant_overrides(exp_id, profile, variant), overrides))
        hashes[exp_id] = spec.config_hash()
        for seed in (seeds if seeds is not None else spec.seeds):
            pairs.append((exp_id, int(seed)))
    if run == "none":
        return []
    if run == "all":
        return pairs
    return [(e, s) for e, s in pairs
            if not current_result(res.result_path(e, profile, s, folder), hashes[e])]


def current_result(path: Path, config_hash: str) -> bool:
    """A results file exists and was made with today's settings (a changed entry makes it stale)."""
    if not path.exists():
        return False
    try:
        return res.read_result(path)["config_hash"] == config_hash
    except res.ResultsError:
        return False


def _train_subprocess(exp_id: str, profile: str, seed: int, launch: Launch, variant: str) -> None:
    """``liquidssm train`` in a child process (DDP cannot start inside a notebook)."""
    cmd = [sys.executable, "-m", "liquidssm.cli", "train", exp_id, "--profile", profile,
           "--seed", str(seed), "--device", launch.device, "--devices", str(launch.devices),
           "--num-nodes", str(launch.num_nodes), "--precision", launch.precision,
           "--variant", variant]
    if launch.max_minutes is not None:
        cmd += ["--max-minutes", str(launch.max_minutes)]
    if launch.restart:
        cmd.append("--restart")
    for flag, value in (("--results-dir", launch.results_dir), ("--run-dir", launch.run_dir),
                        ("--data-root", launch.data_root), ("--cache-dir", launch.cache_dir)):
        if value is not None:
            cmd += [flag, str(Path(value))]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd[2:])}` failed with status {out.returncode}:\n"
                           f"{out.stderr.strip()[-3000:]}")


def run_one(exp_id: str, profile: str, seed: int, launch: Launch, variant: str = "paper"
            ) -> dict[str, Any] | None:
    """Make one (experiment, seed) result: train it, or evaluate it if it is evaluation-only.

    ``launch.results_dir`` is the variant's own folder here. Returns the record (``None`` when
    the run went to a subprocess).
    """
    from liquidssm.repro.train import fit  # torch and Fabric only when something runs

    exp = get_experiment(exp_id)
    if exp.zero_shot_of is not None:
        from liquidssm.repro.zeroshot import evaluate_zero_shot

        if variant != "paper":
            raise ValueError(f"{exp_id}: an evaluation-only entry has no released variant")
        source_file = res.result_path(exp.zero_shot_of, profile, seed, launch.results_dir)
        if not source_file.exists():
            run_one(exp.zero_shot_of, profile, seed, dataclasses.replace(launch, restart=False))
        return evaluate_zero_shot(exp_id, profile, seed, device=launch.device,
                                  results_dir=launch.results_dir, data_root=launch.data_root,
                                  cache_dir=launch.cache_dir)
    if launch.devices * launch.num_nodes > 1:
        _train_subprocess(exp_id, profile, seed, launch, variant)
        return None
    return fit(exp, profile, seed, launch, overrides=variant_overrides(exp_id, profile, variant))


def ensure_results(experiment_ids: list[str] | tuple[str, ...], profile: str, *,
                   seeds: list[int] | tuple[int, ...] | None = None, run: str = "missing",
                   variant: str = "paper", launch: Launch | None = None,
                   **launch_fields: Any) -> pd.DataFrame:
    """Run what ``run`` asks for, then return the results rows of ``experiment_ids`` and ``profile``.

    ``launch`` (or its fields as keywords: ``device``, ``max_minutes``, ``results_dir``, ...) says
    where; ``variant="released"`` runs the released code's settings into their own folders. A run
    stopped by ``max_minutes`` leaves a checkpoint and no results file; the next call with
    ``run="missing"`` continues it exactly.
    """
    if launch is None:
        launch = Launch(**launch_fields)
    elif launch_fields:
        raise TypeError(f"ensure_results: give a Launch or its fields {sorted(launch_fields)}, "
                        "not both")
    if launch.run_dir is not None:
        raise ValueError("run_dir: one folder cannot hold the checkpoints of several runs; leave it "
                         "unset (each run gets liquidssm.paths.run_dir)")
    folder = paths.run_results_dir(_check_variant(variant), launch.results_dir)
    for exp_id, seed in planned_runs(experiment_ids, profile, seeds=seeds, run=run,
                                     variant=variant, results_dir=launch.results_dir):
        run_launch = dataclasses.replace(launch, restart=run == "all", results_dir=folder,
                                         run_dir=paths.run_dir(exp_id, profile, seed, variant))
        run_one(exp_id, profile, seed, run_launch, variant)
    df = res.load_results(folder, profile=profile)
    if df.empty:
        return df
    return df[df["experiment"].isin(list(experiment_ids))].reset_index(drop=True)
