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

import html
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
    "SMOKE_AVERAGE",
    "agreement",
    "render",
    "PaperTable",
    "SMOKE_BANNER",
    "AGREEMENT_RULE",
    "to_markdown",
    "coverage_matrix",
    "coverage_html",
    "TABLE_CHAPTERS",
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
    _known_table(name)
    path = paths.paper_file(f"{name}.csv")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in _NUMERIC:
        if col in df.columns:
            df[col] = _numbers(df[col], path, col).astype(float)
    if "p" in df.columns:
        df["p"] = _numbers(df["p"], path, "p").astype("Int64")
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


def _numbers(column: pd.Series, path: object, name: str) -> pd.Series:
    """A CSV column parsed as numbers (empty = NaN); a cell that is not a number names its line."""
    out = pd.to_numeric(column.replace("", np.nan), errors="coerce")
    bad = column[out.isna() & (column != "")]
    if len(bad):
        i = bad.index[0]
        raise ValueError(f"{path}:{int(i) + 2}: column {name!r}: expected a number (no unit, no "
                         f"'%'), got {bad.iloc[0]!r}")
    return out


def _known_table(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str such as 'ls4-table1', got {type(name).__name__}")
    names = list_paper_tables()
    if name not in names:
        raise KeyError(f"unknown paper table {name!r}; valid names: {', '.join(names)}")
    return name


def recompute_averages(name: str) -> pd.DataFrame:
    """Recompute a table's "Avg."/"Average" column from its rows.

    For each model: ``computed`` = mean of the available (non-missing) entries;
    ``computed_missing_as_50`` = mean with missing entries counted as 50 (chance on Path-X, the
    convention of the S4 papers); ``computed_se`` = sample std of the entries / sqrt(count)
    (the LrcSSM papers' "±" on averages). ``mean_ok``/``se_ok``: the paper's printed value equals
    ours rounded to the paper's number of decimals (half a unit of the last digit, plus 1e-9).
    """
    raw = pd.read_csv(paths.paper_file(f"{_known_table(name)}.csv"), dtype=str,
                      keep_default_na=False)
    if "task" not in raw.columns or not raw["task"].isin(_AVERAGE_TASKS).any():
        raise ValueError(f"paper table {name!r} has no 'Avg.'/'Average' column")
    rows = []
    for model, g in raw.groupby("model", sort=False):
        avg = g[g["task"].isin(_AVERAGE_TASKS)].iloc[0]
        vals = _numbers(g.loc[~g["task"].isin(_AVERAGE_TASKS), "mean"], paths.paper_file(f"{name}.csv"),
                        "mean")
        present = vals.dropna()
        comp = float(present.mean())
        alt = float(vals.fillna(50.0).mean())
        se = float(present.std(ddof=1) / math.sqrt(len(present))) if len(present) > 1 else math.nan
        paper = float(_numbers(pd.Series([avg["mean"]], index=[avg.name]),
                               paths.paper_file(f"{name}.csv"), "mean").iloc[0])
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
    """The paper's table ``name`` with our results beside it, one row per paper cell (tidy).

    Columns: ``model, task, paper, paper_std, note, ours, ours_std, difference, profile, n_seeds,
    commit, status``. ``ours`` is the mean over seeds of each run's reported value, ``ours_std``
    the population standard deviation (``ddof=0``); ``commit`` the short commit(s) of the runs,
    marked "(dirty)" when any ran from a modified tree. ``status`` is "re-run" (results exist),
    "not run yet" (a registry entry exists, no results for this profile) or "not re-run" (another
    paper's baseline, kept at its paper value); ``note`` the paper's mark where it prints no number
    (``x``, ``OOM``, ``-``). Registry entries whose cell the paper does not print (the S4 twins,
    :data:`~liquidssm.repro.papers.liquid_s4.experiments.S4_TWIN_ROW`) follow as extra rows with no
    paper value, so no difference. A results row of one of this table's entries is placed in the
    entry's cell as the registry names it today (a renamed row follows its entry). ``profile``
    filters the results; without it, results of more than one profile are refused (smoke and full
    numbers are never averaged together). ``attrs``: ``source``, ``caption`` and ``profile``.
    """
    paper_name, table = table_key(name)
    paper = paper_table(name)
    registry = list_experiments(table=table, paper=paper_name)
    entries = {(e.row, e.column): e.id for e in registry}
    cell_of = {e.id: (e.row, e.column) for e in registry}
    df = results_df if results_df is not None else pd.DataFrame()
    if not df.empty:
        df = df[(df["paper"] == paper_name) & (df["table"].astype(str) == table)].copy()
        if profile is not None:
            df = df[df["profile"] == profile]
        elif df["profile"].nunique() > 1:
            raise ValueError(f"profile: results of {sorted(set(df['profile']))} would be averaged "
                             "together; pass profile='smoke' or 'full'")
        if "experiment" in df.columns and len(df):
            known = df["experiment"].isin(cell_of)
            df.loc[known, "row"] = [cell_of[i][0] for i in df.loc[known, "experiment"]]
            df.loc[known, "column"] = [cell_of[i][1] for i in df.loc[known, "experiment"]]
    summary = res.summarise(df, by=("row", "column", "profile")) if not df.empty else pd.DataFrame()
    note = paper["note"] if "note" in paper.columns else pd.Series([""] * len(paper))
    cells = [(r.model, r.task, r.mean, r.std, n) for r, n in zip(paper.itertuples(), note)]
    printed = {(m, t) for m, t, *_ in cells}
    cells += [(e.row, e.column, math.nan, math.nan, "") for e in registry
              if (e.row, e.column) not in printed]
    rows = []
    for model, task, mean, std, mark in cells:
        key = (model, task)
        row = {"model": model, "task": task, "paper": mean, "paper_std": std, "note": mark,
               "ours": math.nan, "ours_std": math.nan, "profile": None, "n_seeds": 0,
               "commit": "", "status": "not re-run" if key not in entries else "not run yet"}
        ours = (summary[(summary["row"] == model) & (summary["column"] == task)]
                if not summary.empty else summary)
        if len(ours):
            agg = ours.iloc[0]
            row.update(ours=agg["mean"], ours_std=agg["std"], profile=agg["profile"],
                       n_seeds=int(agg["n_seeds"]), commit=agg["commit"], status="re-run")
        rows.append(row)
    out = pd.DataFrame(rows)
    out["difference"] = out["ours"] - out["paper"]
    out["n_seeds"] = out["n_seeds"].astype(int)
    cols = ["model", "task", "paper", "paper_std", "note", "ours", "ours_std", "difference",
            "profile", "n_seeds", "commit", "status"]
    out = out[cols]
    out.attrs.update(paper.attrs)
    out.attrs["profile"] = profile
    return out


#: status of an "Average" cell whose dataset cells are smoke runs: smoke numbers are never averaged
SMOKE_AVERAGE = "smoke: no average"


def fill_averages(table: pd.DataFrame) -> pd.DataFrame:
    """LrcSSM's "Average" column for our rows: mean of the dataset cells ± their standard error.

    For each model of a :func:`reproduction_table` frame whose dataset cells have all run in the
    ``full`` profile, its ``Average`` cell gets :func:`liquidssm.repro.results.cross_dataset_average`
    of our values (as the LrcSSM paper computes it); a model with some cells missing is marked
    "not run yet"; smoke cells are never averaged (the cell is marked :data:`SMOKE_AVERAGE`: a mean
    of checks on fixture data would sit next to the paper's average as if it were one); other
    papers' baselines ("not re-run") are left as they are.
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
        if set(cells["profile"]) != {"full"}:
            out.loc[avg, "status"] = SMOKE_AVERAGE
            continue
        mu, se = res.cross_dataset_average(cells["ours"])
        out.loc[avg, ["ours", "ours_std", "difference"]] = [mu, se, mu - float(out.loc[avg[0], "paper"])]
        commits = sorted({c for text in cells["commit"] for c in str(text).split(", ") if c})
        out.loc[avg, ["profile", "n_seeds", "commit", "status"]] = [
            "full", int(cells["n_seeds"].min()), ", ".join(commits), "re-run (mean ± s.e.)"]
    return out


def agreement(ours: float, ours_std: float, paper: float, paper_std: float, *,
              decimals: int = 2) -> bool | None:
    """Does our mean agree with the paper's? The book's one rule, for ``full`` results only.

    ``|ours - paper| <= sqrt(paper_std**2 + ours_std**2) + 0.5 * 10**-decimals``: the two spreads
    combined in quadrature (a missing spread counts as 0, e.g. a single seed or a paper that prints
    none) plus half a unit of the paper's last printed digit (``decimals``), so that a paper without
    a spread is matched to its printed precision. ``None`` when either number is missing.
    """
    if ours is None or paper is None or math.isnan(float(ours)) or math.isnan(float(paper)):
        return None
    if decimals < 0:
        raise ValueError(f"decimals: expected >= 0, got {decimals}")

    def spread(x: float | None) -> float:
        return 0.0 if x is None or math.isnan(float(x)) else float(x)

    tol = math.hypot(spread(paper_std), spread(ours_std)) + 0.5 * 10.0 ** -decimals
    return abs(float(ours) - float(paper)) <= tol + 1e-12


def _pm(mean: float, std: float, decimals: int) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


_TIDY_COLUMNS = ["model", "task", "paper", "ours", "difference", "profile", "seeds", "commit",
                 "status"]


def _display_frame(df: pd.DataFrame, decimals: int) -> pd.DataFrame:
    """The tidy frame as strings; a smoke cell's difference is left empty (it is not a comparison)."""
    smoke = [p == "smoke" for p in df["profile"]]
    notes = df["note"] if "note" in df.columns else pd.Series([""] * len(df), index=df.index)
    return pd.DataFrame({
        "model": df["model"], "task": df["task"],
        "paper": [_pm(m, s, decimals) or str(n) for m, s, n in zip(df["paper"], df["paper_std"], notes)],
        "ours": [_pm(m, s, decimals) for m, s in zip(df["ours"], df["ours_std"])],
        "difference": ["" if (sm or math.isnan(d)) else f"{d:+.{decimals}f}"
                       for d, sm in zip(df["difference"], smoke)],
        "profile": [p if isinstance(p, str) else "" for p in df["profile"]],
        "seeds": [str(n) if n else "" for n in df["n_seeds"]],
        "commit": df["commit"], "status": df["status"],
    }, columns=_TIDY_COLUMNS)


def to_markdown(df: pd.DataFrame, decimals: int = 2) -> str:
    """A :func:`reproduction_table` frame as a tidy Markdown table, one row per cell."""
    shown = _display_frame(df, decimals)
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
            for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *body])


#: descriptor columns a paper prints once per model (Table 4's parameters, Table 11's R/C marks)
_DESCRIPTORS = ("parameters", "g_max_x", "k_max_x", "a_x", "b_x")
#: the banner of a table whose re-run cells are smoke runs
SMOKE_BANNER = ("SMOKE profile: CPU checks of the machinery on small fixture data, not a "
                "reproduction. No difference, no agreement mark and no average are computed "
                "from smoke cells; the paper's numbers need the full profile.")
AGREEMENT_RULE = ("✓ agrees: |ours − paper| ≤ √(paper std² + our std²) + half a unit of the "
                  "paper's last digit; ✗ otherwise (full results only).")
_RERUN = ("re-run", "re-run (mean ± s.e.)")


def _table_profile(df: pd.DataFrame) -> str | None:
    ran = sorted({p for p in df["profile"] if isinstance(p, str) and p})
    if len(ran) > 1:
        raise ValueError(f"df: cells of profiles {ran} in one table; render one profile at a time")
    return ran[0] if ran else df.attrs.get("profile")


class PaperTable:
    """A reproduction table laid out as the paper prints it (from :func:`render`).

    Rows are models in the paper's order (other papers' baselines greyed, "not re-run"; registry
    rows the paper does not print, such as the S4 twins, last), columns the paper's tasks (its
    average column last). A re-run cell shows the paper's value and ours (mean ± std, n seeds)
    together; for ``full`` results also the difference and the :func:`agreement` mark. A smoke
    table carries :data:`SMOKE_BANNER` instead. ``wide`` is the grid as strings (index = model),
    ``tidy`` the :func:`reproduction_table` frame, shown collapsed under the grid in HTML.
    """

    def __init__(self, df: pd.DataFrame, caption: str | None, decimals: int, baselines: bool,
                 compare: bool = True):
        if df.empty:
            raise ValueError("df: an empty table (no paper cell to show)")
        missing = {"model", "task", "paper", "paper_std", "ours", "ours_std", "status"} - set(df.columns)
        if missing:
            raise ValueError(f"df: expected a reproduction_table frame, missing columns {sorted(missing)}")
        self.tidy = df
        self.decimals = int(decimals)
        self.caption = caption if caption is not None else df.attrs.get("caption")
        self.profile = _table_profile(df)
        self.smoke = self.profile == "smoke"
        self.compare = bool(compare) and self.profile == "full"
        models = list(dict.fromkeys(df["model"]))
        self.tasks = list(dict.fromkeys(df["task"]))
        self.tasks.sort(key=lambda t: t in _AVERAGE_TASKS)  # stable: the average column last
        self.kind = {m: ("rerun" if df.loc[df["model"] == m, "status"].isin(
            (*_RERUN, "not run yet", SMOKE_AVERAGE)).any() else "baseline") for m in models}
        self.models = [m for m in models if baselines or self.kind[m] == "rerun"]
        self.extra = {m for m in self.models if self.kind[m] == "rerun" and self._unprinted(df, m)}
        self.descriptors, self.markers, self.printed = self._paper_columns(df.attrs.get("source"))
        self.cells = {(r.model, r.task): r for r in df.itertuples() if r.model in self.models}
        self.wide = pd.DataFrame(
            [[*(self.descriptors[d].get(m, "") for d in self.descriptors),
              *(self._cell_text(m, t) for t in self.tasks)] for m in self.models],
            index=pd.Index(self.models, name="model"), columns=[*self.descriptors, *self.tasks])

    @staticmethod
    def _unprinted(df: pd.DataFrame, model: str) -> bool:
        """True for a row the paper does not print (no value and no mark in any cell)."""
        rows = df[df["model"] == model]
        marks = rows["note"].astype(str) if "note" in rows.columns else pd.Series([], dtype=str)
        return bool(rows["paper"].isna().all() and not (marks != "").any())

    def _paper_columns(self, source: str | None) -> tuple[dict[str, dict[str, str]], dict[str, str],
                                                          dict[tuple[str, str], tuple[str, str]]]:
        """Per-model descriptor columns, footnote markers (†, *) and each cell's mean and std as
        the paper prints them (its own number of decimals), from the transcribed table."""
        if not source:
            return {}, {}, {}
        paper = paper_table(source)
        raw = pd.read_csv(paths.paper_file(f"{source}.csv"), dtype=str, keep_default_na=False)
        printed = {(r["model"], r["task"]): (r.get("mean", ""), r.get("std", ""))
                   for r in raw.to_dict("records")}
        markers = ({m: str(g["marker"].iloc[0]) for m, g in paper.groupby("model", sort=False)}
                   if "marker" in paper.columns else {})
        out: dict[str, dict[str, str]] = {}
        for col in _DESCRIPTORS:
            if col in paper.columns:
                per = {m: str(g[col].iloc[0]) for m, g in paper.groupby("model", sort=False)
                       if g[col].nunique() == 1}
                if any(per.values()):
                    out[col] = per
        return out, markers, printed

    def _parts(self, model: str, task: str) -> tuple[str, str, str, str]:
        """(paper text, ours text, seeds, mark) of one cell; empty strings where there is nothing.

        Ours is printed to the paper's own number of decimals for that cell (``decimals`` where the
        paper prints no number); the mark is the :func:`agreement` sign and the difference.
        """
        r = self.cells.get((model, task))
        if r is None:
            return "", "", "", ""
        note = str(getattr(r, "note", "") or "")
        mean_txt, std_txt = self.printed.get((model, task), ("", ""))
        if mean_txt and not math.isnan(r.paper):
            paper = mean_txt + (f" ± {std_txt}" if std_txt else "")
        else:
            paper = _pm(r.paper, r.paper_std, self.decimals) or {"-": "–"}.get(note, note)
        if r.status == "not re-run":
            return paper, "", "", ""
        if r.status == SMOKE_AVERAGE:
            return paper, "not averaged", "", ""
        if r.status not in _RERUN:
            return paper, "not run yet", "", ""
        places = _decimals(mean_txt) if mean_txt and not math.isnan(r.paper) else self.decimals
        ours, seeds = _pm(r.ours, r.ours_std, places), f"n={int(r.n_seeds)}"
        if not self.compare:
            return paper, ours, seeds, ""
        ok = agreement(r.ours, r.ours_std, r.paper, r.paper_std, decimals=places)
        if ok is None:
            return paper, ours, seeds, ""
        diff = f"{float(r.ours) - float(r.paper):+.{places}f}"
        return paper, ours, seeds, ("✓ " if ok else "✗ ") + diff

    def _cell_text(self, model: str, task: str) -> str:
        paper, ours, seeds, mark = self._parts(model, task)
        if not ours:
            return paper
        ours_txt = f"ours {ours}" + (f" ({seeds})" if seeds else "")
        return " / ".join(x for x in (f"paper {paper or '–'}", ours_txt, mark) if x)

    # -- output ---------------------------------------------------------------------------------

    def to_markdown(self) -> str:
        """The grid as a Markdown table (one row per model)."""
        header = ["model", *self.wide.columns]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        for m, row in self.wide.iterrows():
            label = m + ("" if self.kind[m] == "rerun" else " (not re-run)")
            lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in [label, *row]) + " |")
        head = [f"**{self.caption}**", ""] if self.caption else []
        banner = [f"> {SMOKE_BANNER}", ""] if self.smoke else []
        return "\n".join([*head, *banner, *lines])

    def __repr__(self) -> str:
        return self.to_markdown()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _html_cell(self, model: str, task: str) -> str:
        paper, ours, seeds, mark = self._parts(model, task)
        e = html.escape
        if self.kind[model] == "baseline" or not ours:
            return f'<td class="lss-paper-only">{e(paper)}</td>'
        parts = [f'<span class="lss-paper"><span class="lss-k">paper</span> {e(paper) or "–"}</span>',
                 f'<span class="lss-ours"><span class="lss-k">ours</span> {e(ours)}</span>']
        last = f'<span class="lss-k">{e(seeds)}</span>' if seeds else ""
        if mark:
            cls = "lss-agree" if mark.startswith("✓") else "lss-differ"
            last += f' <span class="{cls}">{e(mark)}</span>'
        if last:
            parts.append(f"<span>{last}</span>")
        return "<td>" + "".join(parts) + "</td>"

    def _repr_html_(self) -> str:
        e = html.escape
        out = [f'<div class="lss-paper-table{" lss-smoke" if self.smoke else ""}">']
        if self.smoke:
            out.append(f'<p class="lss-banner">{e(SMOKE_BANNER)}</p>')
        out.append('<table class="lss-results">')
        if self.caption:
            out.append(f"<caption>{e(self.caption)}</caption>")
        heads = ["Model", *(d.replace("_", " ") for d in self.descriptors), *self.tasks]
        out.append("<thead><tr>" + "".join(f'<th scope="col">{e(h)}</th>' for h in heads)
                   + "</tr></thead><tbody>")
        for m in self.models:
            baseline = self.kind[m] == "baseline"
            cls = "lss-baseline" if baseline else ("lss-extra" if m in self.extra else "lss-rerun")
            label = e(m) + (f"<sup>{e(self.markers[m])}</sup>" if self.markers.get(m) else "")
            if baseline:
                label += ' <span class="lss-tag">not re-run</span>'
            elif m in self.extra:
                label += ' <span class="lss-tag">ours only, no paper row</span>'
            cells = [f"<td>{e(self.descriptors[d].get(m, ''))}</td>" for d in self.descriptors]
            cells += [self._html_cell(m, t) for t in self.tasks]
            out.append(f'<tr class="{cls}"><th scope="row">{label}</th>{"".join(cells)}</tr>')
        out.append("</tbody></table>")
        legend = [AGREEMENT_RULE] if self.compare else []
        if any(self.kind[m] == "baseline" for m in self.models):
            legend.append("Grey rows: other papers' numbers as printed, not re-run.")
        if legend:
            out.append('<p class="lss-legend">' + " ".join(e(x) for x in legend) + "</p>")
        tidy = _display_frame(self.tidy, self.decimals)
        out.append(f'<details class="lss-tidy"><summary>The same table, one row per cell '
                   f'({len(tidy)} rows: profile, seeds, commit, status)</summary>'
                   + tidy.to_html(index=False, border=0, classes="lss-tidy-table") + "</details>")
        out.append("</div>")
        return "\n".join(out)


def render(df: pd.DataFrame, caption: str | None = None, decimals: int = 2, *,
           baselines: bool = True, compare: bool = True) -> PaperTable:
    """Show a :func:`reproduction_table` frame in the paper's shape (a :class:`PaperTable`).

    Rows = models in the paper's order, columns = the paper's tasks (and its average column);
    each re-run cell holds the paper's value and ours (mean ± std, n seeds) together, with the
    difference and the :func:`agreement` mark for ``full`` results only; a smoke table gets
    :data:`SMOKE_BANNER` and neither. ``baselines=False`` leaves out other papers' rows;
    ``compare=False`` shows no difference or mark even for ``full`` results (Table 6's run times
    were measured on other machines: a difference would measure the machines). The
    tidy frame stays available (``.tidy``, and collapsed under the grid in HTML). Refuses a frame
    that mixes profiles.
    """
    return PaperTable(df, caption, decimals, baselines, compare)


def coverage_matrix(status: pd.DataFrame) -> pd.DataFrame:
    """The run-status page's first table: one row per paper table, the two profiles side by side.

    From a :func:`run_status` frame: ``paper, table, chapter, entries``, then per profile
    ``<profile> entries`` (with results / entries) and ``<profile> seeds`` (done / planned), and
    over both ``newest commit`` (of the latest finished run), ``devices`` and ``last finished``.
    """
    rows = []
    profiles = list(dict.fromkeys(status["profile"]))
    for (paper, table), g in status.groupby(["paper", "table"], sort=False):
        row: dict[str, Any] = {"paper": paper, "table": _table_label(table),
                               "chapter": TABLE_CHAPTERS.get((paper, str(table)), ""),
                               "entries": int(g["experiment"].nunique())}
        for prof in profiles:
            p = g[g["profile"] == prof]
            done, planned = zip(*(map(int, s.split("/")) for s in p["seeds"])) if len(p) else ((), ())
            row[f"{prof} entries"] = f"{sum(d > 0 for d in done)}/{len(p)}"
            row[f"{prof} seeds"] = f"{sum(done)}/{sum(planned)}"
        ran = g[g["finished"] != ""]
        latest = ran.sort_values("finished").iloc[-1] if len(ran) else None
        row["newest commit"] = "" if latest is None else str(latest["commit"])
        row["devices"] = ", ".join(sorted({d for s in ran["device"] for d in str(s).split(", ") if d}))
        row["last finished"] = "" if latest is None else str(latest["finished"])[:16].replace("T", " ")
        rows.append(row)
    return pd.DataFrame(rows)


def _table_label(table: str) -> str:
    return f"Figure {table[1:]}" if str(table).startswith("F") else f"Table {table}"


#: the chapter (under ``book/reproductions/``) that renders each paper table
TABLE_CHAPTERS: dict[tuple[str, str], str] = {
    ("liquid-s4", "1"): "10_ls4_table1_lra", ("liquid-s4", "2"): "11_ls4_table2_bidmc",
    ("liquid-s4", "3"): "12_ls4_table3_scifar", ("liquid-s4", "4"): "13_ls4_table4_speech",
    ("liquid-s4", "S2"): "14_ls4_tableS2_sc10", ("liquid-s4", "F1"): "15_ls4_figure1_order",
    ("lrcssm", "1"): "20_lrcssm_table1", ("lrcssm", "2"): "21_lrcssm_table2",
    ("lrcssm", "8"): "22_lrcssm_ablations", ("lrcssm", "9"): "22_lrcssm_ablations",
    ("lrcssm", "10"): "22_lrcssm_ablations", ("lrcssm", "11"): "22_lrcssm_ablations",
    ("lrcssm", "6"): "23_lrcssm_table6", ("lrcssm", "F2"): "24_lrcssm_figure2",
    ("lrcssm", "7"): "25_lrcssm_table7",
}


def coverage_html(matrix: pd.DataFrame) -> str:
    """:func:`coverage_matrix` as an HTML table whose ``chapter`` cells link to the table's page
    (a relative link: the status page sits beside the chapters)."""
    e = html.escape
    cols = [c for c in matrix.columns if c != "chapter"]
    out = ['<table class="lss-results lss-coverage"><thead><tr>'
           + "".join(f'<th scope="col">{e(c)}</th>' for c in cols) + "</tr></thead><tbody>"]
    for r in matrix.to_dict("records"):
        cells = []
        for c in cols:
            text = e(str(r[c]))
            if c == "table" and r["chapter"]:
                text = f'<a href="{e(r["chapter"])}.html">{text}</a>'
            cells.append(f"<td>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


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
