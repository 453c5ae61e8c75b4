"""Run the reproduction chapters with papermill: ``liquidssm reproduce --profile full``.

A reproduction chapter is a Jupytext MyST notebook under ``book/reproductions/`` with a cell
tagged ``parameters`` that defines ``profile``. Each is read with jupytext, executed by
papermill with ``profile`` (and any ``-p NAME VALUE``) injected after the parameters cell, and
saved as an executed notebook under ``_build/reproduce/<profile>/`` (:func:`output_dir`). The
profile is a parameter, never an edit: ``smoke`` runs on a CPU in minutes, ``full`` is the
paper's setting for a GPU box. The chapters are found under the repository root of
:func:`liquidssm.paths.repo_root`.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import sys
import time
from pathlib import Path

from liquidssm import paths
from liquidssm.repro.spec import PROFILES


def output_dir(profile: str) -> Path:
    """Default folder of the executed notebooks: ``<repo>/_build/reproduce/<profile>``."""
    return paths.reproduce_dir(profile)


def has_parameters_cell(path: Path) -> bool:
    """True when the MyST notebook at ``path`` has a code cell tagged ``parameters``."""
    text = path.read_text(encoding="utf-8")
    return ":tags: [parameters]" in text or "tags: [parameters]" in text


def reproduction_chapters(root: Path, pattern: str = "*") -> list[Path]:
    """Reproduction chapters under ``root/book/reproductions`` whose stem matches ``pattern``."""
    folder = paths.reproductions_dir(root)
    found = sorted(folder.glob("*.md")) if folder.is_dir() else []
    return [p for p in found if fnmatch.fnmatch(p.stem, pattern) and has_parameters_cell(p)]


def _parse_value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def run_chapter(path: Path, out_dir: Path, parameters: dict[str, object], kernel: str | None = None,
                progress: bool = True) -> Path:
    """Execute one chapter with papermill and return the path of the executed notebook."""
    import jupytext
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / (path.stem + ".ipynb")
    notebook = jupytext.read(path)
    papermill.execute_notebook(notebook, str(output), parameters=parameters, kernel_name=kernel,
                               cwd=str(path.parent), progress_bar=progress, log_output=False)
    return output


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``liquidssm reproduce`` / ``make reproduce PROFILE=...``)."""
    parser = argparse.ArgumentParser(prog="liquidssm reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke", choices=PROFILES)
    parser.add_argument("--chapters", "--only", dest="chapters", default="*",
                        help="glob on chapter names, e.g. '*lra*' (--only is the same option)")
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="extra papermill parameter")
    parser.add_argument("--output-dir", default=None, help="default: _build/reproduce/<profile>")
    parser.add_argument("--kernel", default=None, help="Jupyter kernel name (default: the notebook's)")
    parser.add_argument("--list", action="store_true", help="only list the chapters that would run")
    args = parser.parse_args(argv)

    try:
        root = paths.repo_root()
    except paths.RepositoryNotFoundError as exc:
        print(f"liquidssm reproduce: {exc}", file=sys.stderr)
        return 2
    chapters = reproduction_chapters(root, args.chapters)
    if not chapters:
        print(f"no reproduction chapters match {args.chapters!r} under {paths.reproductions_dir(root)} "
              "(a chapter needs a cell tagged 'parameters')")
        return 0 if args.list else 1
    if args.list:
        for path in chapters:
            print(path.relative_to(root))
        return 0
    params: dict[str, object] = {"profile": args.profile}
    params.update({k: _parse_value(v) for k, v in args.param})
    out_dir = Path(args.output_dir) if args.output_dir else output_dir(args.profile)
    failures = 0
    for path in chapters:
        start = time.perf_counter()
        print(f"[reproduce] {path.relative_to(root)} profile={args.profile}", flush=True)
        try:
            out = run_chapter(path, out_dir, params, args.kernel, progress=sys.stderr.isatty())
        except Exception as exc:  # noqa: BLE001 - report and continue with the next chapter
            failures += 1
            print(f"[reproduce] FAILED {path.name}: {type(exc).__name__}: {exc}", flush=True)
            continue
        print(f"[reproduce] wrote {out} in {time.perf_counter() - start:.1f} s", flush=True)
    print(f"[reproduce] {len(chapters) - failures} succeeded, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
