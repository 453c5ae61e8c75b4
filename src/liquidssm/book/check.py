"""Checks of the book's text that no notebook test sees: numbers in prose, exercise tags, citations.

The book's rule: every number stated in prose about something the book computes is glued from the
computation (myst-nb ``glue``) or pinned by an ``assert`` that holds in every profile. This module
lists what is left -- the numeric literals in the *prose* of each chapter, outside code cells, math,
inline code, roles and labels -- so that a reviewer can check that each remaining one is a constant
(a paper number, a setting, a tolerance an assert uses). It also checks that every exercise carries
a difficulty tag, that no chapter cites material outside the book, the papers and the released code,
that every finding of ``data/paper/errata.csv`` links to a label that exists, that no static
``{solution}`` block holds code (a solution that computes must be a gated ``{solution-start}`` with
executed, asserting code cells), and that every chapter of the four numbered parts has learning
objectives and at least one exercise.

Run ``python -m liquidssm.book.check`` (all checks, a summary per chapter) or
``python -m liquidssm.book.check --check numbers -v book/liquid/*.md`` (every remaining literal with
its line).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from liquidssm import paths

__all__ = [
    "Literal",
    "chapters",
    "prose_lines",
    "numeric_literals",
    "exercises",
    "untagged_exercises",
    "outside_citations",
    "labels",
    "missing_errata_targets",
    "static_solution_code",
    "has_objectives",
    "is_chapter",
    "course_gaps",
    "COURSE_PARTS",
    "NOT_CHAPTERS",
    "summary",
    "main",
]

#: a difficulty tag closes an exercise title: ``[★]``, ``[★★]`` or ``[★★★]``, optionally ``, proof``
TAG = re.compile(r"\[(★{1,3})(?:, ([a-z ]+))?\]\s*$")
#: phrases that point a reader to material outside the book, the papers and the released code
OUTSIDE = re.compile(r"reference\s*§|reference notes|toolchain notes|the reference (?:measured|found|notes)"
                     r"|reference's own", re.IGNORECASE)

#: the numbered parts of the book: each of their pages is a chapter with objectives and exercises
COURSE_PARTS = ("s4", "liquid", "lrcssm", "reproductions")
#: pages of those parts that are not chapters (a generated status page)
NOT_CHAPTERS = frozenset({"reproductions/99_run_status.md"})
#: how a chapter opens its learning objectives
OBJECTIVES = re.compile(r"^\s*(`{3,}|:{3,})\{admonition\}\s*Learning objectives", re.MULTILINE)

_FENCE = re.compile(r"^(`{3,}|~{3,}|:{3,})")
_DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.DOTALL)
_INLINE_MATH_ML = re.compile(r"(?<![\\$])\$(?!\$)[^$]+?(?<!\\)\$")
_ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")
_CODE = re.compile(r"`[^`\n]*`")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_LABEL_LINE = re.compile(r"^\(([^)\s]+)\)=\s*$")
_LIST_MARK = re.compile(r"^\s*(?:\d+\.|[-*+])\s+")
_HEADING = re.compile(r"^#+\s*(?:\d+(?:[-–.]\d+)*\.?\s+)?")
_NUMBER = re.compile(r"(?<![\w.\-/])[-+−]?\d+(?:[,.]\d+)*(?:[eE][-+]?\d+)?\s*%?(?![\w])")
#: words after which a number names a part of a paper or of the book, not a value
_STRUCTURE = re.compile(
    r"(?:Eqs?\.|Equations?|Tables?|Algorithm|[Ll]ines?|Prop(?:osition)?s?\.?|Lemma|Theorem|Corollary|Figures?|"
    r"Fig\.|Sections?|Sec\.|§|App\.|Appendix|[Ii]tems?|Parts?|[Cc]hapters?|[Ee]xercises?|[Ss]teps? of|"
    r"version|commit)\s*\(?\s*(?:\d+(?:[-–,]\s*\d+)*\s*\)?\s*(?:and|,|to|-|–)\s*\(?\s*)*$"
)
#: words after which a number is a setting of an experiment or a parameter, not a measured value
_SETTING = re.compile(r"(?:[Oo]rders?|scales?|lags?|seeds?|length|[Ll]ayers?|blocks?|classes|p\s*=|N\s*=|"
                      r"T\s*=|L\s*=|H\s*=|D\s*=|×|x)\s*(?:up to|from|beyond|between|of)?\s*"
                      r"(?:\d+\s*(?:and|,|to|-|–)\s*(?:order\s*)?)*$")


@dataclass(frozen=True)
class Literal:
    """One numeric literal in prose: its line, its text, and whether it names a paper part (``reference``)."""

    line: int
    text: str
    kind: str  # "value" or "reference"
    context: str


def chapters(root: Path | None = None) -> list[Path]:
    """Every page of the book (``book/**/*.md``), in file-name order."""
    book = (paths.repo_root() if root is None else Path(root)) / "book"
    return sorted(p for p in book.rglob("*.md") if ".ipynb_checkpoints" not in p.parts)


def _front_matter_end(lines: Sequence[str]) -> int:
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                return i + 1
    return 0


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The prose of a MyST page: ``(line number, text)`` outside front matter, fenced blocks and directives.

    Fenced blocks whose directive holds prose (admonitions, exercises, solutions, proofs) keep their
    body; code cells, literal includes and plain code fences are dropped, and so are directive option
    lines (``:label: ...``) and label lines (``(name)=``). Math (display and inline, also across
    lines), inline code, roles and link targets are blanked in place, so line numbers stay right.
    """
    lines = text.splitlines()
    start = _front_matter_end(lines)
    kept = [""] * len(lines)
    stack: list[tuple[str, bool]] = []  # (fence, prose inside?)
    prose_directives = ("admonition", "exercise", "solution", "prf:", "note", "warning", "tip", "important",
                        "hint", "caution", "attention", "danger", "error", "seealso", "figure")
    for i in range(start, len(lines)):
        line = lines[i]
        m = _FENCE.match(line.strip())
        if m:
            fence = m.group(1)
            rest = line.strip()[len(fence):].strip()
            if stack and fence[0] == stack[-1][0][0] and len(fence) >= len(stack[-1][0]) and not rest:
                stack.pop()
                continue
            directive = rest[1:].split("}")[0] if rest.startswith("{") else ""
            if directive in ("solution-start", "solution-end", "exercise-start", "exercise-end"):
                stack.append((fence, False))  # gated: only options until the closing fence
                continue
            title = rest.split("}", 1)[1] if "}" in rest else ""
            prose = any(directive.startswith(d) for d in prose_directives)
            if prose and title.strip():
                kept[i] = title  # a directive's title is prose
            stack.append((fence, prose))
            continue
        if stack and not stack[-1][1]:
            continue
        if stack and re.match(r"^\s*:[\w-]+:", line):
            continue  # a directive option
        if _LABEL_LINE.match(line.strip()):
            continue
        kept[i] = line
    joined = "\n".join(kept)

    def blank(m: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", m.group(0))

    for pattern in (_DISPLAY_MATH, _ROLE, _CODE, _INLINE_MATH_ML, _LINK_TARGET):
        joined = pattern.sub(blank, joined)
    return [(n, t) for n, t in enumerate(joined.split("\n"), start=1) if t.strip()]


def _kind(before: str) -> str:
    """What a number is, from the words just before it: a paper or book part, a setting, or a value."""
    tail = before.rstrip()
    if _STRUCTURE.search(tail) or re.search(r"\(\s*$", tail) and re.search(r"(?:Eq\.|of|and|-|–)\s*\(\s*$", tail):
        return "reference"
    if _SETTING.search(tail):
        return "setting"
    return "value"


def numeric_literals(text: str) -> list[Literal]:
    """The numeric literals left in the prose of a page (see :func:`prose_lines`).

    List markers, section numbers in headings and table row numbers are skipped. A literal right
    after a word that names a part of a paper or of the book (Eq., Table, Algorithm, line, item, an
    equation number in parentheses, ...) is kind ``"reference"``; right after a parameter name
    (order, scale, lag, seed, ...) kind ``"setting"``; every other one is kind ``"value"`` -- the ones
    a reviewer must check are constants (paper numbers, tolerances used by asserts).
    """
    found: list[Literal] = []
    previous = ""
    for n, line in prose_lines(text):
        clean = line
        if _HEADING.match(clean):
            clean = _HEADING.sub("", clean, count=1)
        clean = _LIST_MARK.sub("", clean, count=1)
        clean = re.sub(r"^\|\s*\d+\s*\|", "| |", clean)  # a table's row number
        for m in _NUMBER.finditer(clean):
            before, after = clean[: m.start()], clean[m.end():]
            if re.search(r"\(\s*$", before) and re.match(r"\s*[),]", after):
                kind = "reference"  # an equation number, "(7)", or a pair "(1,1)"
            else:
                kind = _kind(" ".join((previous.strip(), before)) if not before.strip() else before)
            found.append(Literal(n, m.group(0).strip(), kind, " ".join(clean.split())[:120]))
        previous = clean
    return found


def exercises(text: str) -> list[tuple[str, str, str | None]]:
    """``(label, title, tag)`` of every ``{exercise}`` of a page; ``tag`` is e.g. ``"★★"`` or None."""
    out = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^\s*(`{3,}|:{3,})\{exercise(?:-start)?\}\s*(.*)$", line)
        if not m:
            continue
        title = m.group(2).strip()
        label = ""
        for nxt in lines[i + 1:i + 6]:
            lm = re.match(r"^\s*:label:\s*(\S+)", nxt)
            if lm:
                label = lm.group(1)
                break
        tag = TAG.search(title)
        out.append((label, title, tag.group(1) if tag else None))
    return out


def untagged_exercises(text: str) -> list[str]:
    """Labels (or titles) of the exercises of a page that have no difficulty tag."""
    return [label or title for label, title, tag in exercises(text) if tag is None]


def outside_citations(text: str) -> list[tuple[int, str]]:
    """``(line, phrase)`` for every pointer to material outside the book, the papers and the released code."""
    return [(n, m.group(0)) for n, line in enumerate(text.splitlines(), start=1) for m in OUTSIDE.finditer(line)]


def labels(text: str) -> set[str]:
    """Every MyST target of a page: ``(name)=`` lines and ``:label:`` options."""
    found = {m.group(1) for m in map(_LABEL_LINE.match, (s.strip() for s in text.splitlines())) if m}
    found |= set(re.findall(r"^\s*:label:\s*(\S+)", text, flags=re.MULTILINE))
    return found


def missing_errata_targets(table: object | None = None, root: Path | None = None) -> list[str]:
    """Findings of ``errata.csv`` whose page or label does not exist; empty when every link resolves."""
    from liquidssm import errata

    table = errata.load() if table is None else table
    book = (paths.repo_root() if root is None else Path(root)) / "book"
    missing = []
    for fid, row in table.iterrows():  # type: ignore[attr-defined]
        page = book / f"{row['chapter']}.md"
        if not page.is_file():
            missing.append(f"{fid}: no page book/{row['chapter']}.md")
        elif row["target"] not in labels(page.read_text(encoding="utf-8")):
            missing.append(f"{fid}: no label {row['target']!r} in book/{row['chapter']}.md")
    return missing


def static_solution_code(text: str) -> list[tuple[int, str]]:
    """``(line, label)`` of every static ``{solution}`` block that contains a code block.

    A static solution is rendered, never executed: code in it (a fenced block, a ``{code-cell}``, or
    an indented block after a blank line) is code no test runs. A solution that computes must be
    gated -- ``{solution-start}`` / ``{solution-end}`` around executed code cells that assert.
    """
    found = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^\s*(`{3,}|:{3,})\{solution\}\s*(\S*)", lines[i])
        if not m:
            i += 1
            continue
        fence, label = m.group(1), m.group(2)
        j = i + 1
        code_line = 0
        blank_before = False
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence[0] * len(fence)) and stripped.strip(fence[0]) == "":
                break  # the solution's closing fence
            if re.match(r"^(`{3,}|~{3,}|:{3,})", stripped) and not code_line:
                code_line = j + 1  # a fenced block or a directive (code-cell, code-block, ...) inside
            elif blank_before and lines[j].startswith("    ") and stripped and not code_line \
                    and not _LIST_MARK.match(stripped):
                code_line = j + 1  # an indented code block
            blank_before = not stripped
            j += 1
        if code_line:
            found.append((code_line, label))
        i = j + 1
    return found


def has_objectives(text: str) -> bool:
    """Whether a page opens a ``{admonition} Learning objectives``."""
    return bool(OBJECTIVES.search(text))


def is_chapter(page: Path, root: Path | None = None) -> bool:
    """Whether ``page`` is a chapter that must carry objectives and exercises.

    Pages of the four numbered parts (:data:`COURSE_PARTS`) are, except :data:`NOT_CHAPTERS`; the
    introduction and the appendix are not. A page outside the book (named on the command line) is
    checked as a chapter.
    """
    book = ((paths.repo_root() if root is None else Path(root)) / "book").resolve()
    page = Path(page).resolve()
    if not page.is_relative_to(book):
        return True
    rel = page.relative_to(book)
    return rel.parts[0] in COURSE_PARTS and rel.as_posix() not in NOT_CHAPTERS


def course_gaps(text: str) -> list[str]:
    """What a chapter lacks of the course rhythm: ``"objectives"`` and/or ``"exercises"``; empty when none."""
    gaps = []
    if not has_objectives(text):
        gaps.append("objectives")
    if not exercises(text):
        gaps.append("exercises")
    return gaps


def summary(pages: Iterable[Path] | None = None, root: Path | None = None) -> list[dict[str, object]]:
    """One row per page: remaining value literals, reference literals, untagged exercises, outside citations."""
    base = paths.repo_root() if root is None else Path(root)
    rows = []
    for page in chapters(root) if pages is None else pages:
        text = page.read_text(encoding="utf-8")
        lits = numeric_literals(text)
        rows.append({
            "page": str(page.relative_to(base / "book")) if page.is_relative_to(base / "book") else str(page),
            "values": sum(lit.kind == "value" for lit in lits),
            "references": sum(lit.kind == "reference" for lit in lits),
            "exercises": len(exercises(text)),
            "untagged": len(untagged_exercises(text)),
            "outside citations": len(outside_citations(text)),
            "static code": len(static_solution_code(text)),
        })
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m liquidssm.book.check [--check all|numbers|exercises|solutions|course|citations|errata] [-v] [pages...]``.

    Exit status 1 when an exercise is untagged, a static solution holds code, a chapter has no
    objectives or no exercises, a chapter cites outside material or an errata link is broken; the
    numeric literals are a report (a reviewer decides whether each is a constant).
    """
    parser = argparse.ArgumentParser(prog="python -m liquidssm.book.check", description=__doc__.splitlines()[0])
    parser.add_argument("--check", default="all", choices=["all", "numbers", "exercises", "solutions", "course", "citations",
                                                            "errata"])
    parser.add_argument("pages", nargs="*", type=Path, help="pages to check (default: the whole book)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every literal / finding")
    args = parser.parse_args(argv)
    pages = [p.resolve() for p in args.pages] or chapters()
    status = 0
    if args.check in ("all", "numbers"):
        total = 0
        for page in pages:
            lits = [lit for lit in numeric_literals(page.read_text(encoding="utf-8")) if lit.kind == "value"]
            total += len(lits)
            print(f"{len(lits):4d}  {page.name}")
            if args.verbose:
                for lit in lits:
                    print(f"        line {lit.line:4d}: {lit.text:>10s}   | {lit.context}")
        print(f"{total:4d}  numeric literals left in prose (kind 'value')")
    if args.check in ("all", "exercises"):
        for page in pages:
            for name in untagged_exercises(page.read_text(encoding="utf-8")):
                print(f"untagged exercise: {page.name}: {name}")
                status = 1
    if args.check in ("all", "solutions"):
        for page in pages:
            for n, label in static_solution_code(page.read_text(encoding="utf-8")):
                print(f"code in a static solution (gate it with solution-start/-end and code cells): "
                      f"{page.name}:{n}: {label}")
                status = 1
    if args.check in ("all", "course"):
        for page in pages:
            if not is_chapter(page):
                continue
            for gap in course_gaps(page.read_text(encoding="utf-8")):
                print(f"chapter without {gap}: {page.name}")
                status = 1
    if args.check in ("all", "citations"):
        for page in pages:
            for n, phrase in outside_citations(page.read_text(encoding="utf-8")):
                print(f"outside citation: {page.name}:{n}: {phrase!r}")
                status = 1
    if args.check in ("all", "errata"):
        for problem in missing_errata_targets():
            print(f"errata: {problem}")
            status = 1
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
