"""Frames only the Liquid-S4 chapters show: Table S1 beside the released configs, Table 4's
parameter counts, Figure 1's sweep.

Chapters ``reproductions/10``-``19``. Nothing here trains (that is
:func:`liquidssm.repro.runs.ensure_results`); the smoke check both papers share is in
:mod:`liquidssm.repro.tables` (:func:`~liquidssm.repro.tables.smoke_summary`):

* :func:`hyperparameters` and :func:`hyperparameter_differences` -- Table S1 beside the released
  configuration beside what ``full`` runs (the hyperparameters appendix, generated, not typed);
* :func:`parameter_counts` -- Table 4's parameter column from models built for the ``full``
  configurations;
* :func:`figure1_points` -- Figure 1's sweep (accuracy against the liquid order p).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from liquidssm.repro import results as res
from liquidssm.repro.experiments import get_experiment
from liquidssm.repro.papers.liquid_s4 import experiments as ls4
from liquidssm.repro.spec import Experiment, resolve
from liquidssm.repro.tables import paper_table

__all__ = ["hyperparameters", "hyperparameter_differences", "parameter_counts", "figure1_points",
           "EXTRA_FIELDS"]


# ------------------------------------------------------------------------------------------------
# hyperparameters
# ------------------------------------------------------------------------------------------------

#: settings outside Table S1 that the appendix shows: (label, section, field)
EXTRA_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("SSM lr", "optim", "ssm_lr"),
    ("Δt_min", "model", "dt_min"),
    ("Δt_max", "model", "dt_max"),
    ("bidirectional", "model", "bidirectional"),
    ("liquid order p", "model", "liquid_order"),
    ("L̃ (liquid window)", "model", "liquid_window"),
    ("pooling", "model", "pool"),
    ("schedule", "optim", "schedule"),
    ("warmup steps", "optim", "warmup_steps"),
    ("schedule steps T", "optim", "schedule_steps"),
    ("input length", "task", "l_max"),
)


def _value(exp: Experiment, section: str, field: str) -> Any:
    if section == "task":
        return exp.task_args.get(field)
    return getattr(getattr(exp, section), field)


def _liquid_entries() -> list[Experiment]:
    """One entry per Table S1 use: the Liquid-S4 entries of Tables 1-4/S2 (not zero-shot, not -s4)."""
    return [e for e in ls4.ENTRIES if e.row == "Liquid-S4" and e.table != "F1"
            and e.id not in ls4.ZERO_SHOT]


def hyperparameters() -> pd.DataFrame:
    """Tidy frame: one row per (entry, setting) with Table S1's, the released and the ``full`` value.

    Columns ``experiment, task, s1_row, setting, table_s1, released, full, status``. ``table_s1``
    is the cell of ``data/paper/ls4-tableS1.csv`` read as the entry's field (empty for settings
    Table S1 does not give); ``released`` is the entry's recorded released value where it differs,
    else the value ``full`` took from the released config; ``status`` is ``"paper = released"``,
    ``"paper ≠ released (full follows the paper)"``, ``"not in Table S1 (released config)"`` or
    ``"full ≠ Table S1"`` (never expected; a test checks it).
    """
    s1 = paper_table("ls4-tableS1").set_index("task")
    rows = []
    for exp in _liquid_entries():
        s1_row = ls4.TABLE_S1_ROW[exp.id]
        for column, (section, field, read) in ls4.TABLE_S1_FIELDS.items():
            paper = read(s1.loc[s1_row, column])
            full = _value(exp, section, field)
            released = exp.released.get(f"{section}.{field}", full)
            status = ("full ≠ Table S1" if full != paper else
                      "paper = released" if released == paper else
                      "paper ≠ released (full follows the paper)")
            rows.append({"experiment": exp.id, "task": exp.column, "s1_row": s1_row,
                         "setting": column, "table_s1": paper, "released": released,
                         "full": full, "status": status})
        for label, section, field in EXTRA_FIELDS:
            full = _value(exp, section, field)
            key = f"{section}.{field}"
            released = exp.released.get(key, full)
            status = ("not in Table S1 (released config)" if released == full else
                      "paper ≠ released (full follows the paper)")
            rows.append({"experiment": exp.id, "task": exp.column, "s1_row": s1_row,
                         "setting": label, "table_s1": None, "released": released, "full": full,
                         "status": status})
    return pd.DataFrame(rows)


def hyperparameter_differences() -> pd.DataFrame:
    """The rows of :func:`hyperparameters` where the paper and the released configuration differ."""
    df = hyperparameters()
    return df[df["status"].str.startswith("paper ≠")].reset_index(drop=True)


# ------------------------------------------------------------------------------------------------
# Table 4 parameters, Figure 1
# ------------------------------------------------------------------------------------------------

def _parse_count(text: str) -> float:
    units = {"K": 1e3, "M": 1e6}
    return float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)


def parameter_counts() -> pd.DataFrame:
    """Table 4's parameter column, counted on models built from the configurations (no training).

    Rows: the Liquid-S4 entry's ``full`` model, its S4 re-run (the same settings, liquid off), and
    S4-LegS as Gu et al. configured it for Speech Commands
    (:data:`~liquidssm.repro.papers.liquid_s4.experiments.S4_LEGS_GU_SC`), the model behind the printed
    S4-LegS count. Columns ``model, configuration, parameters, paper, paper_parameters,
    relative_difference``.
    """
    from liquidssm.layers import SequenceModel, count_parameters

    printed = paper_table("ls4-table4")
    printed = printed[printed["task"] == "SC35-16kHz"].set_index("model")["parameters"]
    liquid = resolve(get_experiment("ls4-t4-sc35-16khz"), "full").model
    s4 = resolve(get_experiment("ls4-t4-sc35-16khz-s4"), "full").model
    rows = []
    for name, row, cfg in (("Liquid-S4 (ls4-t4-sc35-16khz, full)", "Liquid-S4", liquid),
                           ("S4 re-run (ls4-t4-sc35-16khz-s4, full)", "S4-LegS", s4),
                           ("S4-LegS as Gu et al. (S4_LEGS_GU_SC)", "S4-LegS", ls4.S4_LEGS_GU_SC)):
        n = count_parameters(SequenceModel(cfg))
        paper = printed[row]
        rows.append({"model": name, "configuration":
                     f"H={cfg.d_model}, N={cfg.d_state}, {cfg.n_blocks} blocks, layer={cfg.layer}, "
                     f"bidirectional={cfg.bidirectional}, n_ssm={cfg.n_ssm or cfg.d_model}",
                     "parameters": n, "paper": f"{row}: {paper}",
                     "paper_parameters": _parse_count(paper),
                     "relative_difference": n / _parse_count(paper) - 1})
    return pd.DataFrame(rows)


def figure1_points(results: pd.DataFrame) -> pd.DataFrame:
    """Figure 1's points from results: one row per (task, p) with mean, std (ddof 0), seeds, id.

    The S4 re-runs of ListOps and IMDB (no liquid term) are included with ``p = 1`` as the
    reference line of the figure.
    """
    rows = []
    ref = {"ListOps": "ls4-t1-listops-s4", "IMDB": "ls4-t1-imdb-s4"}
    summary = res.summarise(results, by=("experiment",))
    for task, points in ls4.FIGURE1.items():
        for p, exp_id in [(1, ref[task]), *sorted(points.items())]:
            mine = summary[summary["experiment"] == exp_id]
            agg = mine.iloc[0] if len(mine) else None
            rows.append({"task": task, "p": p, "experiment": exp_id,
                         "mean": math.nan if agg is None else float(agg["mean"]),
                         "std": math.nan if agg is None else float(agg["std"]),
                         "seeds": 0 if agg is None else int(agg["n_seeds"])})
    return pd.DataFrame(rows)
