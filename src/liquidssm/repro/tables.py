"""Paper tables as data, ours beside them, the smoke summaries and the run status.

Liquid-S4 Tables 1-4, S1, S2 and LrcSSM Tables 1-11 (all but the Figure-2 bar chart); chapter
reproductions/* render them: :func:`reproduction_table` (the one table builder) puts our results
(from :func:`liquidssm.repro.results.load_results`, aggregated by
:func:`liquidssm.repro.results.summarise`) beside the paper's numbers and :func:`render` shows
the frame (pandas Styler, or Markdown without jinja2). :func:`baselines` and
:func:`smoke_summary` are the smoke check of both papers' chapters (one margin: over the better
of chance and the majority class, or under the mean predictor's RMSE); :func:`run_status` is the
status page. This module trains nothing.

The tables live as tidy CSV files in ``data/paper/`` at the repository root (one row per
model x task; columns ``mean``, ``std``, ``note`` -- ``x`` = not run / infeasible, ``OOM``, ``-`` =
not reported -- and ``p``, the liquid order, where the paper gives it). ``data/`` is not inside
the Python package; :func:`liquidssm.paths.paper_dir` finds it (``$LIQUIDSSM_ROOT``, else the
checkout this package was imported from, else the current directory or a parent).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd

from liquidssm import paths
from liquidssm.repro import results as res
from liquidssm.repro.experiments import get_experiment, list_experiments
from liquidssm.repro.spec import PROFILES, resolve

__all__ = [
    "list_paper_tables",
    "paper_table",
    "paper_table_info",
    "recompute_averages",
    "known_discrepancies",
    "average_discrepancies",
    "table_key",
    "reproduction_table",
    "fill_averages",
    "render",
    "to_markdown",
    "baselines",
    "smoke_summary",
    "run_status",
]

#: Columns that hold numbers in the result tables (parsed to float; empty cells become NaN).
_NUMERIC = ("mean", "std")
_AVERAGE_TASKS = ("Avg.", "Average")
_DISCREPANCY_FILE = "known-discrepancies.csv"
_INDEX_FILE = "index.csv"
_ERRATA_FILE = "errata.csv"


def list_paper_tables() -> list[str]:
    """Names accepted by :func:`paper_table`, e.g. ``"ls4-table1"``, ``"lrcssm-table11"``."""
    return sorted(
        p.stem for p in paths.paper_dir().glob("*.csv")
        if p.name not in (_DISCREPANCY_FILE, _INDEX_FILE, _ERRATA_FILE)
    )


def paper_table_info(name: str) -> dict[str, str]:
    """Provenance of a table: ``{"name", "paper", "table", "caption"}`` from ``data/paper/index.csv``."""
    index = pd.read_csv(paths.paper_file(_INDEX_FILE), dtype=str, keep_default_na=False)
    hit = index[index["name"] == name]
    if hit.empty:
        raise KeyError(f"unknown paper table {name!r}; valid names: {', '.join(index['name'])}")
    return hit.iloc[0].to_dict()


def paper_table(name: str) -> pd.DataFrame:
    """Load one transcribed paper table as a tidy DataFrame.

    Result tables have one row per model x task with float columns ``mean`` and ``std``
    (NaN where the paper prints none), a string ``note`` (``"x"``, ``"OOM"``, ``"-"``, or a
    remark) and, where given, the liquid order ``p`` (nullable int). Hyperparameter and
    complexity tables keep their own columns. Raises ``KeyError`` listing the valid names.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str such as 'ls4-table1', got {type(name).__name__}")
    names = list_paper_tables()
    if name not in names:
        raise KeyError(f"unknown paper table {name!r}; valid names: {', '.join(names)}")
    df = pd.read_csv(paths.paper_file(f"{name}.csv"), dtype=str, keep_default_na=False)
    for col in _NUMERIC:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col].replace("", np.nan)).astype(float)
    if "p" in df.columns:
        df["p"] = pd.to_numeric(df["p"].replace("", np.nan)).astype("Int64")
    df.attrs["source"] = name
    try:
        info = paper_table_info(name)
        df.attrs["caption"] = f"{info['paper']}, {info['table']}: {info['caption']}"
    except (KeyError, FileNotFoundError):
        pass
    return df


def _decimals(text: str) -> int:
    text = text.strip()
    return len(text.split(".")[1]) if "." in text else 0


def recompute_averages(name: str) -> pd.DataFrame:
    """Recompute a table's "Avg."/"Average" column from its rows.

    For each model: ``computed`` = mean of the available (non-missing) entries;
    ``computed_missing_as_50`` = mean with missing entries counted as 50 (chance on Path-X, the
    convention of the S4 papers); ``computed_se`` = sample std of the entries / sqrt(count)
    (the LrcSSM papers' "±" on averages). ``mean_ok``/``se_ok``: the paper's printed value equals
    ours rounded to the paper's number of decimals (half a unit of the last digit, plus 1e-9).
    """
    raw = pd.read_csv(paths.paper_file(f"{name}.csv"), dtype=str, keep_default_na=False)
    if "task" not in raw.columns or not raw["task"].isin(_AVERAGE_TASKS).any():
        raise ValueError(f"paper table {name!r} has no 'Avg.'/'Average' column")
    rows = []
    for model, g in raw.groupby("model", sort=False):
        avg = g[g["task"].isin(_AVERAGE_TASKS)].iloc[0]
        vals = pd.to_numeric(g.loc[~g["task"].isin(_AVERAGE_TASKS), "mean"].replace("", np.nan))
        present = vals.dropna()
        comp = float(present.mean())
        alt = float(vals.fillna(50.0).mean())
        se = float(present.std(ddof=1) / math.sqrt(len(present))) if len(present) > 1 else math.nan
        paper = float(avg["mean"])
        tol = 0.5 * 10 ** -_decimals(avg["mean"]) + 1e-9
        paper_se = float(avg["std"]) if avg["std"] else math.nan
        se_tol = 0.5 * 10 ** -_decimals(avg["std"]) + 1e-9 if avg["std"] else math.nan
        rows.append(dict(
            table=name, model=model, paper=paper, computed=comp, computed_missing_as_50=alt,
            n_entries=int(len(present)), paper_se=paper_se, computed_se=se,
            mean_ok=abs(comp - paper) <= tol,
            se_ok=True if math.isnan(paper_se) else abs(se - paper_se) <= se_tol,
        ))
    return pd.DataFrame(rows)


def average_discrepancies() -> pd.DataFrame:
    """Every averaged row, over all tables, whose printed average (or its ±) we cannot reproduce.

    Columns ``table, model, quantity ("mean"|"se"), paper, computed``.
    """
    out = []
    for name in list_paper_tables():
        raw = pd.read_csv(paths.paper_file(f"{name}.csv"), dtype=str, keep_default_na=False)
        if "task" not in raw.columns or not raw["task"].isin(_AVERAGE_TASKS).any():
            continue
        for r in recompute_averages(name).itertuples():
            if not r.mean_ok:
                out.append(dict(table=name, model=r.model, quantity="mean", paper=r.paper,
                                computed=r.computed))
            if not r.se_ok:
                out.append(dict(table=name, model=r.model, quantity="se", paper=r.paper_se,
                                computed=r.computed_se))
    return pd.DataFrame(out, columns=["table", "model", "quantity", "paper", "computed"])


def known_discrepancies() -> pd.DataFrame:
    """The recorded findings: averaged rows that do not match their own entries (with why)."""
    return pd.read_csv(paths.paper_file(_DISCREPANCY_FILE), keep_default_na=False)


# ------------------------------------------------------------------------------------------------
# paper beside ours
# ------------------------------------------------------------------------------------------------

_PAPERS = {"ls4": "liquid-s4", "lrcssm": "lrcssm"}


def table_key(name: str) -> tuple[str, str]:
    """``"ls4-table1"`` → ``("liquid-s4", "1")``, ``"lrcssm-table11"`` → ``("lrcssm", "11")``."""
    prefix, sep, number = name.partition("-table")
    if not sep or prefix not in _PAPERS or not number:
        raise ValueError(f"name: expected 'ls4-table<N>' or 'lrcssm-table<N>', got {name!r}")
    return _PAPERS[prefix], number


def reproduction_table(name: str, results_df: pd.DataFrame | None = None, *,
                       profile: str | None = None) -> pd.DataFrame:
    """The paper's table ``name`` with our results beside it, one row per paper cell.

    Columns: ``model, task, paper, paper_std, ours, ours_std, difference, profile, n_seeds,
    commit, status``. ``ours`` is the mean over seeds of each run's reported value, ``ours_std``
    the population standard deviation (``ddof=0``); ``commit`` the short commit(s) of the runs,
    marked "(dirty)" when any ran from a modified tree. ``status`` is "re-run" (results exist),
    "not run yet" (a registry entry exists, no results for this profile) or "not re-run" (another
    paper's baseline, kept at its paper value). ``profile`` filters the results; without it, results
    of more than one profile are refused (smoke and full numbers are never averaged together).
    """
    paper_name, table = table_key(name)
    paper = paper_table(name)
    entries = {(e.row, e.column): e.id for e in list_experiments(table=table, paper=paper_name)}
    df = results_df if results_df is not None else pd.DataFrame()
    if not df.empty:
        df = df[(df["paper"] == paper_name) & (df["table"].astype(str) == table)]
        if profile is not None:
            df = df[df["profile"] == profile]
        elif df["profile"].nunique() > 1:
            raise ValueError(f"profile: results of {sorted(set(df['profile']))} would be averaged "
                             "together; pass profile='smoke' or 'full'")
    summary = res.summarise(df, by=("row", "column", "profile")) if not df.empty else pd.DataFrame()
    rows = []
    for r in paper.itertuples():
        key = (r.model, r.task)
        row = {"model": r.model, "task": r.task, "paper": r.mean, "paper_std": r.std,
               "ours": math.nan, "ours_std": math.nan, "profile": None, "n_seeds": 0,
               "commit": "", "status": "not re-run" if key not in entries else "not run yet"}
        ours = (summary[(summary["row"] == r.model) & (summary["column"] == r.task)]
                if not summary.empty else summary)
        if len(ours):
            agg = ours.iloc[0]
            row.update(ours=agg["mean"], ours_std=agg["std"], profile=agg["profile"],
                       n_seeds=int(agg["n_seeds"]), commit=agg["commit"], status="re-run")
        rows.append(row)
    out = pd.DataFrame(rows)
    out["difference"] = out["ours"] - out["paper"]
    out["n_seeds"] = out["n_seeds"].astype(int)
    cols = ["model", "task", "paper", "paper_std", "ours", "ours_std", "difference", "profile",
            "n_seeds", "commit", "status"]
    out = out[cols]
    out.attrs.update(paper.attrs)
    return out


def fill_averages(table: pd.DataFrame) -> pd.DataFrame:
    """LrcSSM's "Average" column for our rows: mean of the dataset cells ± their standard error.

    For each model of a :func:`reproduction_table` frame whose dataset cells have all run, its
    ``Average`` cell gets :func:`liquidssm.repro.results.cross_dataset_average` of our values
    (as the LrcSSM paper computes it); a model with some cells missing is marked "not run yet";
    other papers' baselines ("not re-run") are left as they are.
    """
    out = table.copy()
    for _, g in out.groupby("model", sort=False):
        cells = g[g["task"] != "Average"]
        avg = g.index[g["task"] == "Average"]
        if len(avg) == 0 or (cells["status"] == "not re-run").all():
            continue
        if not (cells["status"] == "re-run").all():
            out.loc[avg, "status"] = "not run yet"
            continue
        mu, se = res.cross_dataset_average(cells["ours"])
        out.loc[avg, ["ours", "ours_std", "difference"]] = [mu, se, mu - float(out.loc[avg[0], "paper"])]
        commits = sorted({c for text in cells["commit"] for c in str(text).split(", ") if c})
        out.loc[avg, ["profile", "n_seeds", "commit", "status"]] = [
            "+".join(sorted(set(cells["profile"]))), int(cells["n_seeds"].min()), ", ".join(commits),
            "re-run (mean ± s.e.)"]
    return out


def _pm(mean: float, std: float, decimals: int) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def _display_frame(df: pd.DataFrame, decimals: int) -> pd.DataFrame:
    shown = pd.DataFrame({
        "model": df["model"], "task": df["task"],
        "paper": [_pm(m, s, decimals) for m, s in zip(df["paper"], df["paper_std"])],
        "ours": [_pm(m, s, decimals) for m, s in zip(df["ours"], df["ours_std"])],
        "difference": ["" if math.isnan(d) else f"{d:+.{decimals}f}" for d in df["difference"]],
        "profile": [p if isinstance(p, str) else "" for p in df["profile"]],
        "seeds": [str(n) if n else "" for n in df["n_seeds"]],
        "commit": df["commit"], "status": df["status"],
    })
    return shown


def to_markdown(df: pd.DataFrame, decimals: int = 2) -> str:
    """A :func:`reproduction_table` frame as a Markdown table (the fallback of :func:`render`)."""
    shown = _display_frame(df, decimals)
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
            for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def render(df: pd.DataFrame, caption: str | None = None, decimals: int = 2) -> object:
    """Show a :func:`reproduction_table` frame: a pandas Styler (re-run rows bold, baselines grey).

    Falls back to a Markdown string when pandas cannot style (no jinja2).
    """
    shown = _display_frame(df, decimals)
    try:
        styler = shown.style
    except ImportError:
        return to_markdown(df, decimals)

    def colour(row: pd.Series) -> list[str]:
        if row["status"] == "re-run":
            return ["font-weight: bold"] * len(row)
        if row["status"] == "not re-run":
            return ["color: #777777"] * len(row)
        return [""] * len(row)

    styler = styler.apply(colour, axis=1).hide(axis="index")
    cap = caption if caption is not None else df.attrs.get("caption")
    return styler.set_caption(cap) if cap else styler



# ------------------------------------------------------------------------------------------------
# smoke summaries (both papers) and the run status
# ------------------------------------------------------------------------------------------------

def _data_spec(exp_id: str, profile: str) -> tuple[Any, dict[str, Any]]:
    """The run spec whose data a cell reports on, and its task arguments (zero-shot: at its rate)."""
    exp = get_experiment(exp_id)
    if exp.zero_shot_of is not None:
        spec = resolve(get_experiment(exp.zero_shot_of), profile)
        return spec, {**spec.task_args, "resolution": exp.task_args["resolution"]}
    spec = resolve(exp, profile)
    return spec, dict(spec.task_args)


def baselines(experiment_id: str, profile: str = "smoke", seed: int | None = None, *,
              cache_dir: str | os.PathLike[str] | None = None,
              data_root: str | os.PathLike[str] | None = None) -> dict[str, float]:
    """What guessing scores on the split the cell reports (validation or test), for ``profile``'s data.

    Classification: ``{"chance": 100/K, "majority": % of the most frequent label, "n": items}``;
    regression: ``{"mean_rmse": RMSE of predicting the training mean, "n": items}``.
    """
    from liquidssm.repro.tasks import build_task

    spec, args = _data_spec(experiment_id, profile)
    task = build_task(spec.task, args, spec.seeds[0] if seed is None else seed,
                      data_root=data_root, cache_dir=cache_dir)
    split = task.val if spec.train.report == "val" else task.test
    if task.kind == "classification":
        labels = np.array([int(split[i][-1]) for i in range(len(split))])
        majority = 100.0 * np.bincount(labels).max() / len(labels)
        return {"chance": float(task.chance), "majority": float(majority), "n": len(labels)}
    y_train = np.array([float(task.train[i][-1]) for i in range(len(task.train))])
    y = np.array([float(split[i][-1]) for i in range(len(split))])
    return {"mean_rmse": float(np.sqrt(np.mean((y - y_train.mean()) ** 2))), "n": len(y)}


def smoke_summary(results: pd.DataFrame, experiment_ids: list[str] | tuple[str, ...], *,
                  profile: str = "smoke",
                  cache_dir: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """One row per experiment: value (mean over seeds), target, baselines, margin, reached, wall time.

    The one smoke margin of the book: the value minus the better of chance and the majority class
    (accuracy), or the mean predictor's RMSE minus the value (regression); positive means the run
    learned. ``reached`` compares with the entry's ``smoke_target`` (at least it when the metric is
    maximised, at most it otherwise); an entry without a target (the zero-shot cells) has
    ``reached`` = NA.
    """
    rows = []
    for exp_id in experiment_ids:
        exp = get_experiment(exp_id)
        mine = results[results["experiment"] == exp_id] if not results.empty else results
        base = baselines(exp_id, profile, cache_dir=cache_dir)
        value = float(mine["value"].mean()) if len(mine) else math.nan
        if exp.maximise:
            guess = max(base["chance"], base["majority"])
            margin = value - guess
        else:
            guess, margin = base["mean_rmse"], base["mean_rmse"] - value
        target = exp.smoke_target
        reached: Any = pd.NA if target is None or math.isnan(value) else (
            value >= target if exp.maximise else value <= target)
        rows.append({"experiment": exp_id, "cell": f"{exp.row} / {exp.column}",
                     "metric": "accuracy (%)" if exp.maximise else exp.metric, "value": value,
                     "target": target, "guessing": guess,
                     "guess": "max(chance, majority)" if exp.maximise else "mean predictor",
                     "margin": margin, "reached": reached, "seeds": int(len(mine)),
                     "wall_s": float(mine["wall_s"].sum()) if len(mine) else math.nan})
    return pd.DataFrame(rows)


def run_status(results_dir: str | os.PathLike[str] | None = None,
               profiles: tuple[str, ...] = PROFILES) -> pd.DataFrame:
    """The run-status page: one row per (registry entry, profile), entries that never ran included.

    Columns ``experiment, paper, table, cell, profile, seeds`` (with results / planned),
    ``value`` (mean over seeds), ``device``, ``finished`` (latest), ``commit`` (the badge of
    :func:`liquidssm.repro.results.commit_badge`) and ``wall_min`` (total).
    """
    summary = res.summarise(res.load_results(results_dir))
    rows = []
    for exp in list_experiments():
        for profile in profiles:
            planned = len(resolve(exp, profile).seeds)
            ran = summary[(summary["experiment"] == exp.id) & (summary["profile"] == profile)]
            row = {"experiment": exp.id, "paper": exp.paper, "table": exp.table,
                   "cell": f"{exp.row} / {exp.column}", "profile": profile,
                   "seeds": f"0/{planned}", "value": float("nan"), "device": "",
                   "finished": "", "commit": "", "wall_min": float("nan")}
            if len(ran):
                agg = ran.iloc[0]
                row.update(seeds=f"{int(agg['n_seeds'])}/{planned}", value=float(agg["mean"]),
                           device=agg["devices"], finished=agg["finished"], commit=agg["commit"],
                           wall_min=float(agg["wall_s"]) / 60)
            rows.append(row)
    return pd.DataFrame(rows)
