"""Keep the book's execution cache honest about results: re-run chapters whose results changed.

myst-nb caches an executed chapter under a key made of its code cells, kernelspec and metadata
(jupyter-cache), so a new results file would leave a reproduction chapter's table stale. Before
``jupyter-book build`` (``make book`` runs ``python -m liquidssm.book.cache``), this module
computes a digest of every results file, the errata file and the registry itself (every entry's
settings, read from :data:`liquidssm.repro.experiments.EXPERIMENTS`, so renaming or splitting a
registry module changes nothing); when it differs from the digest of the previous build, it
removes the cached execution of every chapter that reads results and touches its source, because
Sphinx re-reads only sources newer than its last build; so exactly those chapters execute again
(their contents are never changed). A chapter reads results when one of its code cells imports a
module under :data:`RESULT_MODULES` (found by parsing its imports, not by matching names).
Chapter ``reproductions/02_how_reproductions_run``.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import sys
from pathlib import Path

from liquidssm import paths

__all__ = ["RESULT_MODULES", "results_digest", "registry_digest", "chapter_imports",
           "reads_results", "invalidate", "main"]

#: a chapter that imports one of these modules (or a module under them) depends on the results,
#: the errata or the registry: the whole reproduction wing and the errata reader
RESULT_MODULES = ("liquidssm.repro", "liquidssm.errata")
_STAMP = ".results-digest"
_CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)


def registry_digest() -> str:
    """SHA-256 over every registry entry's full settings (``repr`` of the frozen dataclasses)."""
    from liquidssm.repro.experiments import EXPERIMENTS

    h = hashlib.sha256()
    for exp_id in sorted(EXPERIMENTS):
        h.update(repr(EXPERIMENTS[exp_id]).encode())
    return h.hexdigest()


def results_digest(results_dir: Path | None = None) -> str:
    """SHA-256 over every results ``*.json``, ``data/paper/errata.csv`` and the registry modules."""
    base = results_dir if results_dir is not None else paths.results_dir()
    h = hashlib.sha256()
    for path in sorted(base.rglob("*.json")) if base.is_dir() else []:
        h.update(str(path.relative_to(base)).encode())
        h.update(path.read_bytes())
    errata = paths.paper_file("errata.csv")
    if errata.is_file():  # the errata page and the chapters' notes read it
        h.update(errata.read_bytes())
    h.update(registry_digest().encode())  # the registry itself
    return h.hexdigest()


def chapter_imports(chapter: Path) -> set[str]:
    """Every module a chapter's code cells import (``import a.b`` → ``a.b``; ``from a import b`` →
    ``a`` and ``a.b``); cells that do not parse (IPython magics) are read line by line."""
    text = chapter.read_text(encoding="utf-8")
    found: set[str] = set()
    for cell in _CODE_CELL.findall(text):
        code = "\n".join(line for line in cell.splitlines()
                         if not line.lstrip().startswith(("%", "!", ":")))
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def reads_results(chapter: Path) -> bool:
    """True when one of the chapter's code cells imports a module of :data:`RESULT_MODULES`."""
    return any(m == root or m.startswith(root + ".")
               for m in chapter_imports(chapter) for root in RESULT_MODULES)


def invalidate(build: Path | None = None, results_dir: Path | None = None,
               chapters: list[Path] | None = None) -> list[str]:
    """If the results changed, make every result-reading chapter execute again; return their paths.

    ``chapters`` defaults to every ``*.md`` under ``book/``. Each reader is touched (so Sphinx
    re-reads it) and its cached execution, if any, is dropped (so myst-nb re-executes it).
    """
    build = build if build is not None else paths.build_dir()
    stamp = build / _STAMP
    digest = results_digest(results_dir)
    previous = stamp.read_text().strip() if stamp.exists() else None
    touched: list[str] = []
    if previous != digest:
        pool = chapters if chapters is not None else sorted(paths.book_dir().rglob("*.md"))
        readers = {c.resolve() for c in pool if c.exists() and reads_results(c)}
        cache_dir = build / ".jupyter_cache"
        if cache_dir.is_dir():
            from jupyter_cache import get_cache

            cache = get_cache(str(cache_dir))
            for record in cache.list_cache_records():
                if Path(record.uri).resolve() in readers:
                    cache.remove_cache(record.pk)
        for chapter in sorted(readers):
            os.utime(chapter)  # Sphinx re-reads (and myst-nb re-executes) only newer sources
            touched.append(str(chapter))
    build.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest + "\n")
    return touched


def main(argv: list[str] | None = None) -> int:
    """``python -m liquidssm.book.cache``: print what was invalidated."""
    removed = invalidate()
    for chapter in removed:
        print(f"bookcache: results changed, will re-execute {chapter}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
