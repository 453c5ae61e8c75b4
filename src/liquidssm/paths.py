"""Where the book's files live: the repository root and the folders under it.

The one module that knows directories (design §3, §6, §7); every other module asks it.

================  =====================================  ===========================
folder            default                                override
================  =====================================  ===========================
repository root   found as below                         ``$LIQUIDSSM_ROOT``
raw datasets      ``<root>/data/raw``                    ``$LIQUIDSSM_DATA``
paper tables      ``<root>/data/paper``                  (via ``$LIQUIDSSM_ROOT``)
our results       ``<root>/data/results``                ``$LIQUIDSSM_RESULTS``
shipped samples   ``<root>/data/samples``                (via ``$LIQUIDSSM_ROOT``)
build outputs     ``<root>/_build``                      (via ``$LIQUIDSSM_ROOT``)
================  =====================================  ===========================

The repository root is the first of

1. ``$LIQUIDSSM_ROOT``, when it names an existing directory (use it for a non-editable
   install: point it at a clone of the repository);
2. the checkout this package was imported from: a parent of this file holding ``_toc.yml``
   and ``src/liquidssm`` (an editable install, ``pip install -e .``);
3. the current directory or one of its parents holding ``_toc.yml`` and ``book/``.

When the package was installed from a wheel and none of these exists,
:class:`RepositoryNotFoundError` says what was tried and how to fix it. Raw datasets and results
do not need a checkout when their own variable (``LIQUIDSSM_DATA``, ``LIQUIDSSM_RESULTS``) is
set. Nothing here creates a directory: :func:`results_dir` and :func:`build_dir` may name
folders that do not exist yet (their writers create them).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ROOT_ENV",
    "DATA_ENV",
    "RESULTS_ENV",
    "OFFICIAL_ENV",
    "RepositoryNotFoundError",
    "repo_root",
    "root_source",
    "raw_data_dir",
    "paper_dir",
    "results_dir",
    "samples_dir",
    "benchmarks_dir",
    "benchmark_file",
    "config_file",
    "official_root",
    "build_dir",
    "book_dir",
    "paper_file",
    "html_dir",
    "scratch_dir",
    "sitecheck_dir",
    "reproductions_dir",
    "run_results_dir",
    "result_file",
    "run_dir",
    "data_cache_dir",
    "reproduce_dir",
    "campaigns_dir",
    "campaign_dir",
    "campaign_file",
    "campaign_logs_dir",
    "describe",
]

#: Environment variable naming the repository root (a checkout of the book).
ROOT_ENV = "LIQUIDSSM_ROOT"
#: Environment variable naming the raw-datasets folder (instead of ``<root>/data/raw``).
DATA_ENV = "LIQUIDSSM_DATA"
#: Environment variable naming the results folder (instead of ``<root>/data/results``).
RESULTS_ENV = "LIQUIDSSM_RESULTS"
#: a folder with checkouts of the official code (``s4/``, ``liquid-s4/``, ``lrcssm/``) for
#: ``liquidssm bench official``; never part of this project, never downloaded by it
OFFICIAL_ENV = "LIQUIDSSM_OFFICIAL_ROOT"

PathLike = str | os.PathLike[str]


class RepositoryNotFoundError(FileNotFoundError):
    """No checkout of the book was found; the message lists what was tried and the fix."""


def _env_path(name: str) -> Path | None:
    """The path in environment variable ``name``, or ``None`` when it is unset or empty."""
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def _is_package_checkout(folder: Path) -> bool:
    """True for the root of a source checkout: ``_toc.yml`` beside ``src/liquidssm``."""
    return (folder / "_toc.yml").is_file() and (folder / "src" / "liquidssm").is_dir()


def _is_book_checkout(folder: Path) -> bool:
    """True for the root of the book: ``_toc.yml`` beside ``book/``."""
    return (folder / "_toc.yml").is_file() and (folder / "book").is_dir()


def _package_checkout() -> Path | None:
    """The checkout this module was imported from (editable install), or ``None`` (a wheel)."""
    for folder in Path(__file__).resolve().parents:
        if _is_package_checkout(folder):
            return folder
    return None


def _cwd_checkout(start: Path) -> Path | None:
    """``start`` or the nearest of its parents that holds the book, or ``None``."""
    for folder in (start, *start.parents):
        if _is_book_checkout(folder):
            return folder
    return None


def _locate(start: PathLike | None = None) -> tuple[Path, str]:
    """``(root, rule that found it)`` in the documented order; raises with what was tried."""
    tried = []
    env = _env_path(ROOT_ENV)
    if env is not None:
        if not env.is_dir():  # a set variable is a request: never fall back silently
            raise RepositoryNotFoundError(
                f"{ROOT_ENV}={env} is not a directory; point it at a clone of the repository "
                "or unset it to use the checkout the package was imported from")
        return env.resolve(), f"${ROOT_ENV}"
    tried.append(f"${ROOT_ENV}: not set")
    found = _package_checkout()
    if found is not None:
        return found, "the checkout the package was imported from"
    tried.append(f"the package's parents above {Path(__file__).resolve().parent}: "
                 "none holds _toc.yml and src/liquidssm (not an editable install)")
    here = Path(start if start is not None else Path.cwd()).resolve()
    found = _cwd_checkout(here)
    if found is not None:
        return found, "the current directory or a parent"
    tried.append(f"{here} and its parents: none holds _toc.yml and book/")
    raise RepositoryNotFoundError(
        "cannot find the liquidssm repository (a checkout with _toc.yml, book/ and data/); tried\n  "
        + "\n  ".join(tried)
        + f"\nfix: set {ROOT_ENV}=/path/to/a/clone of the repository; the raw datasets and the "
        f"results alone work without a checkout when {DATA_ENV} or {RESULTS_ENV} is set"
    )


def repo_root(start: PathLike | None = None) -> Path:
    """The repository root, found in the order of the module docstring.

    ``start`` replaces the current directory in the last rule. Raises
    :class:`RepositoryNotFoundError` (a ``FileNotFoundError``) when nothing is found.
    """
    return _locate(start)[0]


def root_source(start: PathLike | None = None) -> str:
    """Which rule found :func:`repo_root` (e.g. ``"$LIQUIDSSM_ROOT"``), for status pages."""
    return _locate(start)[1]


def raw_data_dir(root: PathLike | None = None) -> Path:
    """Folder of the real datasets: ``root`` if given, else ``$LIQUIDSSM_DATA``, else ``<repo>/data/raw``.

    The folder need not exist (``liquidssm data status`` reports what is missing).
    """
    if root is not None:
        return Path(root)
    env = _env_path(DATA_ENV)
    if env is not None:
        return env
    return repo_root() / "data" / "raw"


def paper_dir() -> Path:
    """``<repo>/data/paper``, the transcribed paper tables; raises if the folder is missing."""
    path = repo_root() / "data" / "paper"
    if not path.is_dir():
        raise RepositoryNotFoundError(
            f"cannot find the transcribed paper tables: {path} is not a directory; set "
            f"{ROOT_ENV} to the root of a liquidssm checkout (it holds data/paper/*.csv)"
        )
    return path


def results_dir() -> Path:
    """Folder of our runs: ``$LIQUIDSSM_RESULTS``, else ``<repo>/data/results``; never created here."""
    env = _env_path(RESULTS_ENV)
    if env is not None:
        return env
    return repo_root() / "data" / "results"


def samples_dir() -> Path:
    """``<repo>/data/samples``: tiny fixtures shipped with the repository (may not exist)."""
    return repo_root() / "data" / "samples"


def benchmarks_dir() -> Path:
    """``<repo>/data/benchmarks``: recorded side-by-side measurements (``liquidssm bench official --out``), in git."""
    return repo_root() / "data" / "benchmarks"


def benchmark_file(name: str) -> Path:
    """``<repo>/data/benchmarks/<name>``: one recorded measurement (``make gpu-check``, ``liquidssm plan --json``)."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"name: expected a plain file name, got {name!r}")
    return benchmarks_dir() / name


def official_root() -> Path | None:
    """``$LIQUIDSSM_OFFICIAL_ROOT`` (checkouts of the official code for ``liquidssm bench official``) or None."""
    return _env_path(OFFICIAL_ENV)


def build_dir() -> Path:
    """``<repo>/_build``: the site, converted notebooks and papermill outputs (may not exist)."""
    return repo_root() / "_build"


def paper_file(name: str) -> Path:
    """``<repo>/data/paper/<name>``: one transcribed table (``"ls4-table1.csv"``) or index file."""
    return paper_dir() / name


def html_dir() -> Path:
    """``<build>/html``: the built site."""
    return build_dir() / "html"


def scratch_dir(name: str) -> Path:
    """``<build>/<name>``: a chapter's or a test's own scratch folder (never the real results)."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"name: expected one plain folder name, got {name!r}")
    return build_dir() / name


def sitecheck_dir() -> Path:
    """``<build>/sitecheck``: screenshots of the headless-browser check of the site."""
    return build_dir() / "sitecheck"


def config_file() -> Path:
    """``<repo>/_config.yml``: the Jupyter Book configuration (``liquidssm.book.publish`` edits it in CI)."""
    return repo_root() / "_config.yml"


def book_dir() -> Path:
    """``<repo>/book``: the chapters (Jupytext MyST notebooks)."""
    return repo_root() / "book"


def reproductions_dir(root: PathLike | None = None) -> Path:
    """``<root>/book/reproductions`` (``root`` default :func:`repo_root`): the papermill chapters."""
    return (Path(root) if root is not None else repo_root()) / "book" / "reproductions"


def _check_variant(variant: str) -> str:
    if variant not in ("paper", "released"):
        raise ValueError(f"variant: expected 'paper' or 'released', got {variant!r}")
    return variant


def run_results_dir(variant: str = "paper", base: PathLike | None = None) -> Path:
    """Results folder of a run variant: ``base`` (default :func:`results_dir`) for ``"paper"``,
    ``<base>/released`` for ``"released"`` (the released code's settings never mix with ours)."""
    folder = Path(base) if base is not None else results_dir()
    return folder if _check_variant(variant) == "paper" else folder / "released"


def result_file(experiment_id: str, profile: str, seed: int, base: PathLike | None = None) -> Path:
    """``<base>/<experiment_id>/<profile>-seed<seed>.json`` (``base`` default :func:`results_dir`)."""
    folder = Path(base) if base is not None else results_dir()
    return folder / experiment_id / f"{profile}-seed{seed}.json"


def run_dir(experiment_id: str, profile: str, seed: int, variant: str = "paper",
            base: PathLike | None = None) -> Path:
    """Checkpoints of one run: ``<base>/runs[-released]/<experiment_id>/<profile>-seed<seed>``
    (``base`` default :func:`build_dir`; a campaign with its own runs folder passes it)."""
    runs = "runs" if _check_variant(variant) == "paper" else "runs-released"
    return (Path(base) if base is not None else build_dir()) / runs / experiment_id / f"{profile}-seed{seed}"


def data_cache_dir() -> Path:
    """``<build>/data``: generated and fixture datasets, written once per argument set."""
    return build_dir() / "data"


def reproduce_dir(profile: str) -> Path:
    """``<build>/reproduce/<profile>``: chapters executed by papermill (``liquidssm reproduce``)."""
    return build_dir() / "reproduce" / profile


def campaigns_dir(base: PathLike | None = None) -> Path:
    """``<base>/campaigns`` (``base`` default :func:`results_dir`): cluster campaigns, next to the
    results their jobs write (a shared filesystem on a cluster); ``liquidssm campaign``."""
    return (Path(base) if base is not None else results_dir()) / "campaigns"


def campaign_dir(name: str, base: PathLike | None = None) -> Path:
    """``<campaigns>/<name>``: one campaign's ``campaign.json`` and its jobs' logs (``logs/``)."""
    if not name or "/" in name or name.startswith(".") or name != name.strip():
        raise ValueError(f"campaign name: expected one plain folder name, got {name!r}")
    return campaigns_dir(base) / name


def campaign_file(name: str, base: PathLike | None = None) -> Path:
    """``<campaigns>/<name>/campaign.json``: the campaign's runs, executor parameters and job ids."""
    return campaign_dir(name, base) / "campaign.json"


def campaign_logs_dir(name: str, base: PathLike | None = None) -> Path:
    """``<campaigns>/<name>/logs``: submitit's folder (one sub-folder per job: pickles and logs)."""
    return campaign_dir(name, base) / "logs"


def describe() -> dict[str, str]:
    """Every location as a flat ``{what: path}`` dictionary (``"not found: ..."`` on failure).

    Used by ``liquidssm env`` and the appendix page *Reproduction environment*.
    """
    rows: dict[str, str] = {}
    for label, fn in (("repository root", repo_root), ("root found by", root_source),
                      (f"raw data (${DATA_ENV})", raw_data_dir), ("paper tables", paper_dir),
                      (f"results (${RESULTS_ENV})", results_dir), ("samples", samples_dir),
                      ("recorded benchmarks", benchmarks_dir), ("build outputs", build_dir)):
        try:
            rows[label] = str(fn())
        except RepositoryNotFoundError as exc:
            rows[label] = "not found: " + str(exc).splitlines()[0]
    return rows
