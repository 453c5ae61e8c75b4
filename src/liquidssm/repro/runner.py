"""What a reproduction chapter runs: train the missing (or all, or no) results, then collect them.

Chapter ``reproductions/02_how_reproductions_run``; used by every table chapter. A chapter's
``parameters`` cell sets ``run``:

* ``"missing"`` (default): train only the (experiment, seed) pairs whose results file is absent
  or was made with other settings (its configuration hash differs from the entry's today);
* ``"all"``: train every pair again (``restart``: old checkpoints of those runs are discarded;
  each results file is replaced atomically only when its new run completes);
* ``"none"``: train nothing, show whatever results exist.

One device trains in this process through :func:`liquidssm.repro.train.fit`. Several devices are
launched as a ``liquidssm train`` subprocess, because Fabric refuses to spawn DDP processes from
inside a notebook.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from liquidssm.repro import results as res
from liquidssm.repro.experiments import get_experiment, resolve

__all__ = ["RUN_MODES", "planned_runs", "ensure_results"]

RUN_MODES = ("missing", "all", "none")


def planned_runs(experiment_ids: list[str] | tuple[str, ...], profile: str, *,
                 seeds: list[int] | tuple[int, ...] | None = None, run: str = "missing",
                 results_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, int]]:
    """The (experiment, seed) pairs ``run`` asks to train (seeds default to each profile's)."""
    if run not in RUN_MODES:
        raise ValueError(f"run: expected one of {RUN_MODES}, got {run!r}")
    pairs, hashes = [], {}
    for exp_id in experiment_ids:
        spec = resolve(get_experiment(exp_id), profile)
        hashes[exp_id] = spec.config_hash()
        for seed in (seeds if seeds is not None else spec.seeds):
            pairs.append((exp_id, int(seed)))
    if run == "none":
        return []
    if run == "all":
        return pairs
    return [(e, s) for e, s in pairs
            if not _current(res.result_path(e, profile, s, results_dir), hashes[e])]


def _current(path: Path, config_hash: str) -> bool:
    """A results file exists and was made with today's settings (a changed entry makes it stale)."""
    if not path.exists():
        return False
    try:
        return res.read_result(path)["config_hash"] == config_hash
    except res.ResultsError:
        return False


def _train_subprocess(exp_id: str, profile: str, seed: int, *, device: str, devices: int,
                      max_minutes: float | None, restart: bool,
                      results_dir: str | os.PathLike[str] | None) -> None:
    cmd = [sys.executable, "-m", "liquidssm.cli", "train", exp_id, "--profile", profile,
           "--seed", str(seed), "--device", device, "--devices", str(devices)]
    if max_minutes is not None:
        cmd += ["--max-minutes", str(max_minutes)]
    if restart:
        cmd.append("--restart")
    if results_dir is not None:
        cmd += ["--results-dir", str(Path(results_dir))]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd[2:])}` failed with status {out.returncode}:\n"
                           f"{out.stderr.strip()[-3000:]}")


def ensure_results(experiment_ids: list[str] | tuple[str, ...], profile: str, *,
                   seeds: list[int] | tuple[int, ...] | None = None, run: str = "missing",
                   device: str = "cpu", devices: int = 1, max_minutes: float | None = None,
                   results_dir: str | os.PathLike[str] | None = None,
                   progress: bool | None = None) -> pd.DataFrame:
    """Train what ``run`` asks for, then return the results rows of ``experiment_ids`` and ``profile``.

    A run stopped by ``max_minutes`` leaves a checkpoint and no results file; the next call with
    ``run="missing"`` continues it exactly.
    """
    from liquidssm.repro.train import fit  # torch and Fabric only when something trains

    for exp_id, seed in planned_runs(experiment_ids, profile, seeds=seeds, run=run,
                                     results_dir=results_dir):
        restart = run == "all"
        if devices > 1:
            _train_subprocess(exp_id, profile, seed, device=device, devices=devices,
                              max_minutes=max_minutes, restart=restart, results_dir=results_dir)
        else:
            fit(exp_id, profile, seed, device=device, max_minutes=max_minutes, restart=restart,
                results_dir=results_dir, progress=progress)
    df = res.load_results(results_dir, profile=profile)
    if df.empty:
        return df
    return df[df["experiment"].isin(list(experiment_ids))].reset_index(drop=True)
