"""The experiment registry: one :class:`~liquidssm.repro.spec.Experiment` per runnable paper-table cell.

Chapter ``reproductions/02_how_reproductions_run``. Pure data (no torch import). The entries live
per paper in :mod:`liquidssm.repro.papers.liquid_s4.experiments` and
:mod:`liquidssm.repro.papers.lrcssm.experiments`; this module collects them, refuses duplicate ids,
answers look-ups (an unknown id names the nearest ones) and says which entries a chapter runs
(:func:`chapter_experiments`). The schema types of :mod:`liquidssm.repro.spec` are re-exported.
"""

from __future__ import annotations

import difflib

from liquidssm.repro.papers.liquid_s4 import experiments as liquid_s4_experiments
from liquidssm.repro.papers.lrcssm import experiments as lrcssm_experiments
from liquidssm.repro.spec import (
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
    "PAPERS",
    "get_experiment",
    "list_experiments",
    "table_experiments",
    "chapter_experiments",
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


#: paper id -> its registry module (entries, and optionally ``SMOKE_CELLS`` and ``table_entries``)
PAPERS = {"liquid-s4": liquid_s4_experiments, "lrcssm": lrcssm_experiments}


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


def table_experiments(paper: str, table: str) -> list[str]:
    """Ids of every entry of one paper table, in the paper's order.

    A paper module may define ``table_entries(table)`` where a table is more than its own entries
    (Liquid-S4's Figure 1 also draws the S4 re-runs of Table 1); otherwise the entries whose
    ``table`` is ``table``.
    """
    if paper not in PAPERS:
        raise ValueError(f"paper: expected one of {sorted(PAPERS)}, got {paper!r}")
    module = PAPERS[paper]
    if hasattr(module, "table_entries"):
        return list(module.table_entries(str(table)))
    return [e.id for e in list_experiments(table=str(table), paper=paper)]


def chapter_experiments(paper: str, table: str, profile: str,
                        experiments: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The ids a reproduction chapter runs: ``experiments`` if given (each must exist), else the
    paper's smoke cells of the table in the ``smoke`` profile (``SMOKE_CELLS`` of its module, where
    it names some: representative cells that keep a CPU build short), else every entry of the table.
    """
    if experiments is not None:
        for exp_id in experiments:
            get_experiment(exp_id)
        return list(experiments)
    if profile not in PROFILES:
        raise ValueError(f"profile: expected one of {list(PROFILES)}, got {profile!r}")
    smoke_cells = getattr(PAPERS.get(paper), "SMOKE_CELLS", {})
    if profile == "smoke" and str(table) in smoke_cells:
        return list(smoke_cells[str(table)])
    return table_experiments(paper, table)
