"""The experiment registry: one :class:`~liquidssm.repro.settings.Experiment` per runnable paper-table cell.

Chapter ``reproductions/02_how_reproductions_run``. Pure data (no torch import). The entries live
per paper in :mod:`liquidssm.repro.liquid_s4_experiments` and
:mod:`liquidssm.repro.lrcssm_experiments`; this module collects them, refuses duplicate ids and
answers look-ups (an unknown id names the nearest ones). The settings types are re-exported.
"""

from __future__ import annotations

import difflib

from liquidssm.repro import liquid_s4_experiments, lrcssm_experiments
from liquidssm.repro.settings import (
    PROFILES,
    Experiment,
    Optimisation,
    Profile,
    RunSpec,
    Training,
    resolve,
)

__all__ = [
    "Optimisation",
    "Training",
    "Profile",
    "Experiment",
    "RunSpec",
    "EXPERIMENTS",
    "PROFILES",
    "get_experiment",
    "list_experiments",
    "resolve",
]


def _collect(*groups: tuple[Experiment, ...]) -> dict[str, Experiment]:
    out: dict[str, Experiment] = {}
    for group in groups:
        for e in group:
            if e.id in out:
                raise ValueError(f"experiment id {e.id!r} is registered twice")
            out[e.id] = e
    return out


EXPERIMENTS: dict[str, Experiment] = _collect(liquid_s4_experiments.ENTRIES, lrcssm_experiments.ENTRIES)


def list_experiments(table: str | None = None, paper: str | None = None) -> list[Experiment]:
    """Registry entries, optionally only those of ``table`` (e.g. ``"1"``) and/or ``paper``."""
    out = list(EXPERIMENTS.values())
    if paper is not None:
        out = [e for e in out if e.paper == paper]
    if table is not None:
        out = [e for e in out if e.table == str(table)]
    return out


def get_experiment(experiment_id: str) -> Experiment:
    """The entry ``experiment_id``; an unknown id raises ``KeyError`` naming the nearest ids."""
    if experiment_id in EXPERIMENTS:
        return EXPERIMENTS[experiment_id]
    near = difflib.get_close_matches(experiment_id, list(EXPERIMENTS), n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    raise KeyError(f"unknown experiment {experiment_id!r}{hint} (`liquidssm experiments` lists all "
                   f"{len(EXPERIMENTS)})")
