"""The run-status page: every registry entry with what ran, where, when and from which commit.

Chapter ``reproductions/99_run_status`` (like QuantEcon's status page for its lectures). One
row per experiment and profile: seeds with results out of seeds planned, device(s), the latest
finish date, commit(s) (marked when a tree was dirty), total wall time and the reported value
(mean over seeds). Entries that never ran appear with zero seeds, so nothing is hidden.
"""

from __future__ import annotations

import os

import pandas as pd

from liquidssm.repro import results as res
from liquidssm.repro.experiments import PROFILES, list_experiments, resolve

__all__ = ["run_status"]


def run_status(results_dir: str | os.PathLike[str] | None = None,
               profiles: tuple[str, ...] = PROFILES) -> pd.DataFrame:
    """One row per (registry entry, profile); see the module docstring for the columns."""
    df = res.load_results(results_dir)
    rows = []
    for exp in list_experiments():
        for profile in profiles:
            planned = len(resolve(exp, profile).seeds)
            ran = df[(df["experiment"] == exp.id) & (df["profile"] == profile)] if not df.empty else df
            row = {"experiment": exp.id, "paper": exp.paper, "table": exp.table,
                   "cell": f"{exp.row} / {exp.column}", "profile": profile,
                   "seeds": f"{len(ran)}/{planned}", "value": float("nan"), "device": "",
                   "finished": "", "commit": "", "wall_min": float("nan")}
            if len(ran):
                shas = sorted({str(c)[:7] for c in ran["commit"].dropna()})
                dirty = " (dirty)" if bool(ran["dirty"].fillna(False).astype(bool).any()) else ""
                row.update(value=float(ran["value"].astype(float).mean()),
                           device=", ".join(sorted(set(ran["device"].dropna()))),
                           finished=str(max(ran["finished_at"].dropna(), default="")),
                           commit=", ".join(shas) + dirty,
                           wall_min=float(ran["wall_s"].astype(float).sum()) / 60)
            rows.append(row)
    return pd.DataFrame(rows)
