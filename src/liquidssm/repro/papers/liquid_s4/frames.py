"""Frames only the Liquid-S4 chapters show: Table S1 beside the released configs, Table 4's
parameter counts, Figure 1's sweep.

Chapters ``reproductions/10``-``19``. Nothing here trains (that is
:func:`liquidssm.repro.runs.ensure_results`); the smoke check both papers share is in
:mod:`liquidssm.repro.tables` (:func:`~liquidssm.repro.tables.smoke_summary`):

* :func:`hyperparameters` and :func:`hyperparameter_differences` -- Table S1 beside the released
  configuration beside what ``full`` runs (the hyperparameters appendix, generated, not typed);
* :func:`parameter_counts` -- Table 4's parameter column from models built for the ``full``
  configurations;
* :func:`figure1_points` -- Figure 1's sweep (accuracy against the liquid order p);
* :func:`schedule_choices` and :func:`lr_curves` -- each cosine entry's schedule under the three
  choices (the released run's shape, the released literal ``T``, a single pass) and its passes;
* :func:`dt_min_rule` -- Δt_min beside the appendix's rule (Δt_min ∝ 1/sequence length).
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
           "EXTRA_FIELDS", "schedule_choices", "lr_curves", "dt_min_rule", "reported_split"]


# ------------------------------------------------------------------------------------------------
# hyperparameters
# ------------------------------------------------------------------------------------------------

#: settings outside Table S1 that the appendix shows: (label, section, field)
EXTRA_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("SSM lr", "optim", "ssm_lr"),
    ("Δ learning rate", "optim", "dt_lr"),
    ("kernel variant", "model", "variant"),
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


# ------------------------------------------------------------------------------------------------
# the cosine schedule over a whole run; Δt_min against the appendix's rule
# ------------------------------------------------------------------------------------------------

def _cosine_entries() -> list[Experiment]:
    return [e for e in _liquid_entries() if e.optim.schedule == "cosine_warmup"]


def schedule_choices() -> pd.DataFrame:
    """One row per cosine entry: the released run's passes through ``T`` and ours under each choice.

    Columns ``experiment, task, steps`` (ours per run), ``released_steps``, ``released_T``,
    ``released_passes`` (the released run), ``T`` and ``passes`` (``full``: the released shape),
    ``literal_passes`` (the released ``T`` over our run), ``single_pass_T`` (``T`` = our run),
    ``warmup_fraction``, ``released_warmup_fraction``.
    """
    from liquidssm.repro.spec import released_overrides

    rows = []
    for e in _cosine_entries():
        full = resolve(e, "full")
        rel = resolve(e, "full", released_overrides(e, "full"))
        ours = ls4.schedule_shape(e.task, full.task_args, full.optim, full.train)
        theirs = ls4.schedule_shape(e.task, rel.task_args, rel.optim, rel.train)
        T_rel = int(rel.optim.schedule_steps or 0)
        rows.append({"experiment": e.id, "task": e.column, "steps": ours["steps"],
                     "released_steps": theirs["steps"], "released_T": T_rel,
                     "released_passes": theirs["passes"], "T": full.optim.schedule_steps,
                     "passes": ours["passes"], "literal_passes": ours["steps"] / T_rel,
                     "single_pass_T": ours["steps"], "warmup_fraction": ours["warmup_fraction"],
                     "released_warmup_fraction": theirs["warmup_fraction"]})
    return pd.DataFrame(rows)


def lr_curves(experiment_id: str, points: int = 800) -> pd.DataFrame:
    """The global learning rate of one cosine entry over its whole ``full`` run under each choice.

    Columns ``step, choice, lr``; ``choice`` is ``"released shape (full)"``, ``"released literal T"``
    or ``"single pass (T = run)"``; ``points`` evenly spaced steps (plus the end of warm-up).
    """
    from liquidssm.repro.optim import cosine_warmup_factor
    from liquidssm.repro.spec import released_overrides

    e = get_experiment(experiment_id)
    full = resolve(e, "full")
    rel = resolve(e, "full", released_overrides(e, "full"))
    steps = int(ls4.schedule_shape(e.task, full.task_args, full.optim, full.train)["steps"])
    W_rel, T_rel = rel.optim.warmup_steps, int(rel.optim.schedule_steps or 0)
    choices = {"released shape (full)": (full.optim.warmup_steps, int(full.optim.schedule_steps or 0)),
               "released literal T": (W_rel, T_rel),
               "single pass (T = run)": (round(W_rel * steps / T_rel), steps)}
    grid = sorted({round(i * steps / (points - 1)) for i in range(points)} | {full.optim.warmup_steps})
    return pd.DataFrame([{"step": s, "choice": c, "lr": full.optim.lr * cosine_warmup_factor(s, W, T)}
                         for c, (W, T) in choices.items() for s in grid])


def dt_min_rule() -> pd.DataFrame:
    """Δt_min of every Liquid-S4 task beside the appendix's rule "Δt_min ∝ 1/sequence length".

    Columns ``task, L, dt_min, dt_min_x_L`` (constant if the rule held), ``rule`` (Δt_min the rule
    gives with ListOps' constant, 0.002 · 2048 / L) and ``ratio`` (``dt_min / rule``).
    """
    from liquidssm.repro.shapes import task_shape

    rows = []
    for e in _liquid_entries():
        full = resolve(e, "full")
        L = task_shape(e.task, full.task_args).length
        rows.append({"task": e.column, "L": L, "dt_min": full.model.dt_min,
                     "dt_min_x_L": full.model.dt_min * L})
    df = pd.DataFrame(rows).drop_duplicates("task").reset_index(drop=True)
    c = float(df.loc[df["task"] == "ListOps", "dt_min_x_L"].iloc[0])
    df["rule"] = c / df["L"]
    df["ratio"] = df["dt_min"] / df["rule"]
    return df


def reported_split(experiment_ids: list[str] | tuple[str, ...]) -> str:
    """The split the entries report (``Training.report``), in words: ``"validation"``, ``"test"``
    or ``"test and validation"``. The Liquid-S4 appendix: every result is validation accuracy except
    BIDMC's (test RMSE); a test pins each entry to it."""
    words = {"val": "validation", "test": "test"}
    return " and ".join(sorted({words[get_experiment(i).train.report] for i in experiment_ids}))
