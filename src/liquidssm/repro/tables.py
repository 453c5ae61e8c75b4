"""Paper tables as data: every numeric table of Liquid-S4 and LrcSSM, plus the paper-vs-ours frame.

Liquid-S4 Tables 1-4, S1, S2 and LrcSSM Tables 1-11 (all but the Figure-2 bar chart); chapter
reproductions/* render them: :func:`reproduction_table` puts our results (from
:func:`liquidssm.repro.results.load_results`) beside the paper's numbers and :func:`render` shows
the frame (pandas Styler, or Markdown without jinja2). This module trains nothing.

The tables live as tidy CSV files in ``data/paper/`` at the repository root (one row per
model x task; columns ``mean``, ``std``, ``note`` -- ``x`` = not run / infeasible, ``OOM``, ``-`` =
not reported -- and ``p``, the liquid order, where the paper gives it). ``data/`` is not inside
the Python package; :func:`liquidssm.paths.paper_dir` finds it (``$LIQUIDSSM_ROOT``, else the
checkout this package was imported from, else the current directory or a parent).
"""

from __future__ import annotations

import difflib
import math

import numpy as np
import pandas as pd

from liquidssm import paths

__all__ = [
    "list_paper_tables",
    "paper_table",
    "paper_table_info",
    "compare",
    "recompute_averages",
    "known_discrepancies",
    "average_discrepancies",
    "table_key",
    "reproduction_table",
    "fill_averages",
    "render",
    "to_markdown",
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
    index = pd.read_csv(paths.paper_dir() / _INDEX_FILE, dtype=str, keep_default_na=False)
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
    df = pd.read_csv(paths.paper_dir() / f"{name}.csv", dtype=str, keep_default_na=False)
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


def _unmatched(paper_df: pd.DataFrame, ours_df: pd.DataFrame) -> list[str]:
    """Our rows whose (model, task) is not a cell of the paper's table, with the nearest names."""
    cells = set(zip(paper_df["model"], paper_df["task"], strict=True))
    models, tasks = sorted(set(paper_df["model"])), sorted(set(paper_df["task"]))
    out = []
    for model, task in zip(ours_df["model"], ours_df["task"], strict=True):
        if (model, task) in cells:
            continue
        hints = []
        for name, known in ((model, models), (task, tasks)):
            if name not in known:
                near = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
                hints.append(f"did you mean {near[0]!r}" if near else f"{name!r} is unknown")
        out.append(f"({model!r}, {task!r})" + (f": {'; '.join(hints)}" if hints else ""))
    return out


def compare(paper_df: pd.DataFrame, ours_df: pd.DataFrame, *, allow_extra: bool = False) -> pd.DataFrame:
    """Side-by-side frame rendered by reproduction chapters: paper value, ours, difference.

    ``paper_df`` is a result table from :func:`paper_table` (columns ``model``, ``task``,
    ``mean``, ``std``). ``ours_df`` has ``model``, ``task``, ``mean`` and, optionally, ``std``,
    ``profile`` (``"smoke"``/``"full"``) and ``n_seeds``. Every paper row is kept (our columns
    are NaN where we have no run); a row of ours that is not a cell of the paper's table raises
    ``ValueError`` naming it and the nearest paper names, unless ``allow_extra=True`` appends it
    with a NaN paper value (a row added on purpose). Returns columns ``model, task, paper, paper_std, ours, ours_std,
    difference, profile, n_seeds`` where ``difference = ours - paper``.
    """
    for arg, df, need in (("paper_df", paper_df, ("model", "task", "mean")),
                          ("ours_df", ours_df, ("model", "task", "mean"))):
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"{arg} must be a pandas DataFrame, got {type(df).__name__}")
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise ValueError(f"{arg} must have columns {list(need)}; missing {missing}")
    if ours_df.duplicated(["model", "task"]).any():
        dup = ours_df[ours_df.duplicated(["model", "task"], keep=False)][["model", "task"]]
        raise ValueError(f"ours_df has duplicate (model, task) rows: {dup.values.tolist()}")
    extra = _unmatched(paper_df, ours_df)
    if extra and not allow_extra:
        raise ValueError(f"ours_df: {len(extra)} row(s) not in the paper's table: {'; '.join(extra)} "
                         "(pass allow_extra=True to append rows on purpose)")
    p = paper_df[["model", "task", "mean"]].copy()
    p["paper_std"] = paper_df["std"] if "std" in paper_df.columns else np.nan
    p = p.rename(columns={"mean": "paper"})
    o = pd.DataFrame({"model": ours_df["model"], "task": ours_df["task"],
                      "ours": pd.to_numeric(ours_df["mean"])})
    o["ours_std"] = pd.to_numeric(ours_df["std"]) if "std" in ours_df.columns else np.nan
    o["profile"] = ours_df["profile"] if "profile" in ours_df.columns else None
    o["n_seeds"] = ours_df["n_seeds"] if "n_seeds" in ours_df.columns else pd.NA
    out = p.merge(o, on=["model", "task"], how="outer", sort=False, indicator=True)
    order = {k: i for i, k in enumerate(zip(paper_df["model"], paper_df["task"], strict=True))}
    keys = zip(out["model"], out["task"], strict=True)
    out["_ord"] = [order.get(k, len(order) + i) for i, k in enumerate(keys)]
    out = out.sort_values("_ord", kind="stable").drop(columns=["_ord", "_merge"])
    out["difference"] = out["ours"] - out["paper"]
    out["n_seeds"] = out["n_seeds"].astype("Int64")
    cols = ["model", "task", "paper", "paper_std", "ours", "ours_std", "difference", "profile", "n_seeds"]
    return out[cols].reset_index(drop=True)


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
    raw = pd.read_csv(paths.paper_dir() / f"{name}.csv", dtype=str, keep_default_na=False)
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
        raw = pd.read_csv(paths.paper_dir() / f"{name}.csv", dtype=str, keep_default_na=False)
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
    return pd.read_csv(paths.paper_dir() / _DISCREPANCY_FILE, keep_default_na=False)


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


def _commit_badge(commits: pd.Series, dirty: pd.Series) -> str:
    shas = sorted({str(c)[:7] for c in commits.dropna()})
    if not shas:
        return "unknown"
    mark = " (dirty)" if bool(dirty.fillna(False).astype(bool).any()) else ""
    return ", ".join(shas) + mark


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
    from liquidssm.repro.experiments import list_experiments

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
    rows = []
    for r in paper.itertuples():
        key = (r.model, r.task)
        ours = df[(df["row"] == r.model) & (df["column"] == r.task)] if not df.empty else df
        row = {"model": r.model, "task": r.task, "paper": r.mean, "paper_std": r.std,
               "ours": math.nan, "ours_std": math.nan, "profile": None, "n_seeds": 0,
               "commit": "", "status": "not re-run" if key not in entries else "not run yet"}
        if len(ours):
            values = ours["value"].astype(float)
            row.update(ours=float(values.mean()), ours_std=float(values.std(ddof=0)),
                       profile="+".join(sorted(set(ours["profile"]))), n_seeds=int(len(values)),
                       commit=_commit_badge(ours["commit"], ours["dirty"]), status="re-run")
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
    from liquidssm.repro.results import cross_dataset_average

    out = table.copy()
    for _, g in out.groupby("model", sort=False):
        cells = g[g["task"] != "Average"]
        avg = g.index[g["task"] == "Average"]
        if len(avg) == 0 or (cells["status"] == "not re-run").all():
            continue
        if not (cells["status"] == "re-run").all():
            out.loc[avg, "status"] = "not run yet"
            continue
        mu, se = cross_dataset_average(cells["ours"])
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

