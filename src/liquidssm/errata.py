"""The book's findings about the two papers, read from one file: ``data/paper/errata.csv``.

Page ``appendix/21_errata`` renders every row with a link to the cell that demonstrates it; the
chapters that demonstrate a finding read their row from the same file (:func:`entry`) and assert
it against their computation, so the page and the chapters cannot disagree.

Columns of ``errata.csv`` (all text, no empty cells):

``id``        short stable name, e.g. ``ls4-eq10-u0u2``
``paper``     ``Liquid-S4`` or ``LrcSSM``
``location``  where in the paper (equation, algorithm line, table, section)
``printed``   what the paper prints (MyST: ``$...$`` math allowed)
``correct``   what holds instead (the book's computation)
``finding``   one sentence: why they differ, or what follows
``chapter``   the book page that demonstrates it, relative to ``book/`` without ``.md``
``target``    the MyST label, in that page, of the section or cell that demonstrates it
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from liquidssm import paths

__all__ = ["COLUMNS", "PAPERS", "errata_file", "load", "entry", "link", "markdown_table", "note"]

#: the columns of ``data/paper/errata.csv``, in order
COLUMNS = ("id", "paper", "location", "printed", "correct", "finding", "chapter", "target")
#: the two papers a finding may belong to
PAPERS = ("Liquid-S4", "LrcSSM")

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_CHAPTER = re.compile(r"^[a-z0-9_]+/[0-9]{2}_[a-z0-9_]+$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def errata_file() -> Path:
    """Where the findings live: ``errata.csv`` in :func:`liquidssm.paths.paper_dir`."""
    return paths.paper_file("errata.csv")


def load(path: Path | None = None) -> pd.DataFrame:
    """Read and validate ``errata.csv``; chapter ``appendix/21_errata``.

    Raises ``ValueError`` naming the row and column when a column is missing, a cell is empty,
    an id is repeated or malformed, the paper is unknown, or ``chapter``/``target`` are not a
    book page and a MyST label.

    Returns:
        one row per finding, indexed by ``id``, every column a string.
    """
    path = errata_file() if path is None else Path(path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path.name}: missing columns {missing}; expected {list(COLUMNS)}")
    df = df[list(COLUMNS)]
    for i, row in df.iterrows():
        where = f"{path.name} row {i + 2} ({row['id'] or 'no id'})"
        empty = [c for c in COLUMNS if not row[c].strip()]
        if empty:
            raise ValueError(f"{where}: empty cells in {empty}")
        if not _ID.match(row["id"]):
            raise ValueError(f"{where}: id must be lowercase words joined by '-', got {row['id']!r}")
        if row["paper"] not in PAPERS:
            raise ValueError(f"{where}: paper must be one of {PAPERS}, got {row['paper']!r}")
        if not _CHAPTER.match(row["chapter"]):
            raise ValueError(f"{where}: chapter must look like 'part/NN_name' (no .md), got {row['chapter']!r}")
        if not _LABEL.match(row["target"]):
            raise ValueError(f"{where}: target must be a MyST label, got {row['target']!r}")
        piped = [c for c in COLUMNS if "|" in row[c]]
        if piped:
            raise ValueError(f"{where}: '|' in {piped} would split a table cell; write \\lvert ... \\rvert "
                             "or \\lVert ... \\rVert in math")
    dup = df["id"][df["id"].duplicated()].tolist()
    if dup:
        raise ValueError(f"{path.name}: repeated ids {dup}")
    return df.set_index("id")


def entry(finding_id: str, table: pd.DataFrame | None = None) -> pd.Series:
    """One finding of :func:`load` by id; ``KeyError`` lists the known ids when it is absent."""
    table = load() if table is None else table
    if finding_id not in table.index:
        raise KeyError(f"no finding {finding_id!r} in errata.csv; known: {sorted(table.index)}")
    return table.loc[finding_id]


def link(row: pd.Series, text: str = "shown here") -> str:
    """A MyST cross-reference to the cell or section that demonstrates ``row`` (role titles are plain text)."""
    return f"{{ref}}`{_escape(text)} <{row['target']}>`"


def _escape(text: str) -> str:
    """Text for the title of a MyST role: backticks and angle brackets would end it."""
    return text.replace("`", "'").replace("<", "&lt;").replace(">", "&gt;")


def markdown_table(table: pd.DataFrame | None = None, paper: str | None = None) -> str:
    """The findings as a MyST table (location with a link to its demonstration, printed, correct, finding)."""
    table = load() if table is None else table
    if paper is not None:
        table = table[table["paper"] == paper]
    lines = ["| # | where (link to the demonstration) | the paper | the book | why it matters |",
             "|---|---|---|---|---|"]
    for number, (fid, row) in enumerate(table.iterrows(), start=1):
        cells = [f"{number} `{fid}`", f"{row['location']} ({link(row)})", row["printed"], row["correct"], row["finding"]]
        lines.append("| " + " | ".join(c.replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def note(finding_id: str, table: pd.DataFrame | None = None) -> str:
    """A one-paragraph MyST note for the chapter that demonstrates a finding, linking to the errata page."""
    row = entry(finding_id, table)
    return (f"**Paper erratum `{finding_id}`** ({row['paper']}, {row['location']}). "
            f"The paper: {row['printed']}. The book: {row['correct']}. "
            f"All findings: {{doc}}`/book/appendix/21_errata`.")
