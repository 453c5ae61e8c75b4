"""Keep the book's execution cache honest about results: re-run chapters whose results changed.

myst-nb caches an executed chapter under a key made of its code cells, kernelspec and metadata
(jupyter-cache), so a new results file would leave a reproduction chapter's table stale. Before
``jupyter-book build`` (``make book`` runs ``python -m liquidssm.repro.bookcache``), this module
computes a digest of every results file; when it differs from the digest of the previous build,
it removes the cached execution of every chapter that reads results (its source calls one of
:data:`RESULT_READERS`; the errata file counts as a result) and touches its source, because
Sphinx re-reads only sources newer than its last build; so exactly those chapters execute again
(their contents are never changed). Chapter ``reproductions/02_how_reproductions_run``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from liquidssm import paths

__all__ = ["results_digest", "reads_results", "invalidate", "main"]

#: calls that make a chapter depend on the results files
RESULT_READERS = ("ensure_results", "load_results", "reproduction_table", "run_status",
                  "errata.load", "errata.markdown_table", "errata.note", "ls4_report.",
                  "list_experiments(")
_STAMP = ".results-digest"


def results_digest(results_dir: Path | None = None) -> str:
    """SHA-256 over every results ``*.json``, ``data/paper/errata.csv`` and the registry modules."""
    base = results_dir if results_dir is not None else paths.results_dir()
    h = hashlib.sha256()
    for path in sorted(base.rglob("*.json")) if base.is_dir() else []:
        h.update(str(path.relative_to(base)).encode())
        h.update(path.read_bytes())
    errata = paths.paper_dir() / "errata.csv"
    if errata.is_file():  # the errata page and the chapters' notes read it
        h.update(errata.read_bytes())
    for module in sorted(Path(__file__).parent.glob("*_experiments.py")):  # the registry itself
        h.update(module.read_bytes())
    return h.hexdigest()


def reads_results(chapter: Path) -> bool:
    """True when the chapter's source calls one of :data:`RESULT_READERS`."""
    text = chapter.read_text(encoding="utf-8")
    return any(f"{name}(" in text for name in RESULT_READERS)


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
        pool = chapters if chapters is not None else sorted((paths.repo_root() / "book").rglob("*.md"))
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
    """``python -m liquidssm.repro.bookcache``: print what was invalidated."""
    removed = invalidate()
    for chapter in removed:
        print(f"bookcache: results changed, will re-execute {chapter}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
