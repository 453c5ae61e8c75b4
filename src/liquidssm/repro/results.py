"""Results files: the only code that knows their schema; loading and aggregation.

Chapter ``reproductions/02_how_reproductions_run``. One JSON file per run,
``<results>/<experiment>/<profile>-seed<k>.json`` (``<results>`` = :func:`liquidssm.paths.results_dir`),
written atomically. Schema version :data:`SCHEMA_VERSION`: ``experiment``, ``paper``, ``table``,
``row``, ``column``, ``profile``, ``seed``, ``metric``, ``value`` (the number the paper's table
reports: validation or test, % or RMSE), ``best`` (epoch, step, validation and test metrics at
the best validation evaluation), ``final``, ``history`` (every evaluation), ``training`` (steps,
epochs, wall time, samples/s, peak memory, Newton iterations for LrcSSM), ``data`` (source,
location, file checksums), ``config`` and ``config_hash``, ``provenance`` (commit, dirty tree,
package versions, device, precision, world size).

Only this module builds a record (:func:`make_record`, used by training and by the evaluation-only
zero-shot entries alike) and knows its keys. Aggregation (:func:`summarise`): mean ± standard
deviation over seeds for a cell (population standard deviation, ``ddof=0``, as ``numpy.std``; the
papers do not say which they print), the number of seeds and the commit badge of the runs;
LrcSSM's cross-dataset average is the mean of the per-dataset means ± their standard error
(sample std of the means / √n).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from liquidssm import paths
from liquidssm.repro.checkpoint import atomic_write
from liquidssm.repro.spec import Experiment, RunSpec

__all__ = [
    "SCHEMA_VERSION",
    "ResultsError",
    "result_path",
    "make_record",
    "metric_key",
    "write_result",
    "read_result",
    "validate_record",
    "PROVENANCE_FIELDS",
    "check_writable",
    "load_results",
    "summarise",
    "commit_badge",
    "cross_dataset_average",
    "provenance",
]

SCHEMA_VERSION = 1
_REQUIRED = ("schema", "experiment", "paper", "table", "profile", "seed", "metric", "value",
             "best", "training", "data", "config", "config_hash", "provenance")


class ResultsError(ValueError):
    """A results file or folder that cannot be used; the message names it."""


def result_path(experiment_id: str, profile: str, seed: int,
                results_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<results>/<experiment_id>/<profile>-seed<seed>.json`` (:func:`liquidssm.paths.result_file`)."""
    return paths.result_file(experiment_id, profile, seed, results_dir)


def metric_key(kind: str) -> str:
    """The key of the reported number in a split's metrics: ``"accuracy"`` or ``"rmse"`` (regression)."""
    return "accuracy" if kind == "classification" else "rmse"


def make_record(exp: Experiment, spec: RunSpec, seed: int, *, task: Any, best: dict[str, Any],
                history: list[dict[str, Any]], training: dict[str, Any], device: str,
                precision: str, world_size: int, param_digest: str | None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The results record of one run (schema :data:`SCHEMA_VERSION`; see the module docstring).

    ``task`` is the run's :class:`~liquidssm.repro.taskbase.TaskData`; ``best`` the evaluation
    (``{"epoch", "step", "val": {...}, "test": {...}}``) the table value is read at;
    ``history`` every evaluation; ``training`` the counters of the run; ``extra`` further
    top-level keys (e.g. ``"zero_shot"`` for an evaluation-only entry). The value is
    ``best[spec.train.report][key]`` with ``key`` = :func:`metric_key` of the task's kind.
    """
    key = metric_key(task.kind)
    record = {
        "schema": SCHEMA_VERSION, "status": "complete", "experiment": exp.id,
        "paper": exp.paper, "table": exp.table, "row": exp.row, "column": exp.column,
        "profile": spec.profile, "seed": int(seed), "metric": exp.metric, "metric_key": key,
        "report": spec.train.report, "value": best.get(spec.train.report, {}).get(key, math.nan),
        "paper_value": exp.paper_value, "paper_std": exp.paper_std,
        "smoke_target": exp.smoke_target, "chance": task.chance, "best": best,
        "final": history[-1] if history else None, "history": history, "training": training,
        "data": {"source": task.source, "location": task.location, "sha256": task.files,
                 "n_train": len(task.train), "n_val": len(task.val), "n_test": len(task.test)},
        "config": spec.to_dict(), "config_hash": spec.config_hash(), "param_digest": param_digest,
        "provenance": provenance(device, precision, world_size),
    }
    for name, value in (extra or {}).items():
        if name in record:
            raise ResultsError(f"extra: {name!r} is a key of the record itself")
        record[name] = value
    return record


def check_writable(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` if needed and prove it writable with a probe file, before any training."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ResultsError(f"results folder {folder} is not writable ({exc.strerror}); choose "
                           "another with --results-dir or LIQUIDSSM_RESULTS") from exc
    return folder


def write_result(record: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Validate ``record`` against the schema and write it atomically as indented JSON."""
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        raise ResultsError(f"{path}: record lacks {missing} (schema version {SCHEMA_VERSION})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1, sort_keys=True, allow_nan=True) + "\n"
    return atomic_write(path, text.encode())


#: the type of each required top-level key (``value`` may also be null when a run never evaluated)
_TYPES: dict[str, tuple[type, ...]] = {
    "schema": (int,), "experiment": (str,), "paper": (str,), "table": (str,), "profile": (str,),
    "seed": (int,), "metric": (str,), "value": (int, float), "best": (dict,), "training": (dict,),
    "data": (dict,), "config": (dict,), "config_hash": (str,), "provenance": (dict,),
}
#: provenance fields a record must carry to say where it was made
PROVENANCE_FIELDS = ("commit", "dirty", "device", "precision", "world_size", "torch",
                     "finished_at")


def validate_record(record: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check a parsed results file field by field; return it, or raise :class:`ResultsError`.

    The one validator every reader uses (:func:`read_result`, hence :func:`load_results`, the
    tables, the status page and ``liquidssm results import``): the schema version, every required
    key with its type (``seed`` an integer, never a bool), a finite ``value``, the profile, the
    provenance fields of :data:`PROVENANCE_FIELDS`. The message names the file and the field.
    """
    if not isinstance(record, dict):
        raise ResultsError(f"{path}: expected a JSON object (a results record), got "
                           f"{type(record).__name__}")
    if record.get("schema") != SCHEMA_VERSION:
        raise ResultsError(f"{path}: field 'schema': expected results schema {SCHEMA_VERSION}, "
                           f"got {record.get('schema')!r}")
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        raise ResultsError(f"{path}: missing keys {missing}")
    for key, types in _TYPES.items():
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, types):
            want = " or ".join(t.__name__ for t in types)
            raise ResultsError(f"{path}: field {key!r}: expected {want}, got {value!r}")
    if not math.isfinite(record["value"]):
        raise ResultsError(f"{path}: field 'value': expected a finite number, got {record['value']!r}")
    if record["profile"] not in ("smoke", "full"):
        raise ResultsError(f"{path}: field 'profile': expected 'smoke' or 'full', got "
                           f"{record['profile']!r}")
    absent = [k for k in PROVENANCE_FIELDS if k not in record["provenance"]]
    if absent:
        raise ResultsError(f"{path}: field 'provenance': lacks {absent}")
    return record


def read_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One results file, parsed and checked by :func:`validate_record` (errors name the file)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: not UTF-8 text (byte {exc.start}); a results file is JSON") from exc
    except OSError as exc:
        raise ResultsError(f"{path}: cannot be read ({exc.strerror})") from exc
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    return validate_record(record, path)


def _row(record: dict[str, Any], path: Path) -> dict[str, Any]:
    best, tr, prov = record["best"], record["training"], record["provenance"]
    return {
        "experiment": record["experiment"], "paper": record["paper"], "table": record["table"],
        "row": record.get("row"), "column": record.get("column"), "profile": record["profile"],
        "seed": record["seed"], "metric": record["metric"], "value": record["value"],
        "paper_value": record.get("paper_value"), "best_epoch": best.get("epoch"),
        "val": best.get("val", {}).get(record.get("metric_key", "accuracy")),
        "test": best.get("test", {}).get(record.get("metric_key", "accuracy")),
        "steps": tr.get("steps"), "epochs": tr.get("epochs"), "wall_s": tr.get("wall_s"),
        "samples_per_s": tr.get("samples_per_s"), "device": prov.get("device"),
        "precision": prov.get("precision"), "commit": prov.get("commit"), "dirty": prov.get("dirty"),
        "data_source": record["data"].get("source"), "finished_at": prov.get("finished_at"),
        "path": str(path),
    }


def load_results(results_dir: str | os.PathLike[str] | None = None, *, table: str | None = None,
                 experiment: str | None = None, profile: str | None = None) -> pd.DataFrame:
    """A tidy DataFrame, one row per results file (optionally filtered); empty if none exist."""
    base = Path(results_dir) if results_dir is not None else paths.results_dir()
    if not base.is_dir():
        if results_dir is not None:  # an explicit folder that does not exist is a mistake
            raise ResultsError(f"results_dir: {base} is not a folder")
        return pd.DataFrame()
    rows = []
    for path in sorted(base.glob("*/*-seed*.json")):
        try:
            record = read_result(path)
        except ResultsError as exc:  # a damaged file is reported, never a traceback
            warnings.warn(f"skipping a results file: {exc}", RuntimeWarning, stacklevel=2)
            continue
        if table is not None and str(record["table"]) != str(table):
            continue
        if experiment is not None and record["experiment"] != experiment:
            continue
        if profile is not None and record["profile"] != profile:
            continue
        rows.append(_row(record, path))
    return pd.DataFrame(rows)


def commit_badge(commits: pd.Series, dirty: pd.Series) -> str:
    """The short commit(s) of some runs, marked ``(dirty)`` when any ran from a modified tree."""
    shas = sorted({str(c)[:7] for c in commits.dropna()})
    if not shas:
        return "unknown"
    mark = " (dirty)" if bool(dirty.fillna(False).astype(bool).any()) else ""
    return ", ".join(shas) + mark


_SUMMARY = ["experiment", "profile", "mean", "std", "n_seeds", "commit", "devices", "finished",
            "wall_s"]


def summarise(df: pd.DataFrame, by: tuple[str, ...] = ("experiment", "profile")) -> pd.DataFrame:
    """The seed aggregate of results rows: one row per ``by`` group.

    Columns: ``by``, ``mean`` and ``std`` of ``value`` (population std, ``ddof=0``), ``n_seeds``,
    ``commit`` (:func:`commit_badge`), ``devices``, ``finished`` (the latest) and ``wall_s`` (the
    sum). The one aggregate used by the tables, the run-status page and ``liquidssm results``.
    """
    cols = [*by, *_SUMMARY[2:]]
    if df.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for key, g in df.groupby(list(by), sort=True):
        values = g["value"].astype(float)
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))),
                     "mean": float(values.mean()), "std": float(values.std(ddof=0)),
                     "n_seeds": int(len(values)), "commit": commit_badge(g["commit"], g["dirty"]),
                     "devices": ", ".join(sorted(set(g["device"].dropna()))),
                     "finished": str(max(g["finished_at"].dropna(), default="")),
                     "wall_s": float(g["wall_s"].astype(float).sum())})
    return pd.DataFrame(rows, columns=cols)


def cross_dataset_average(means: list[float] | pd.Series) -> tuple[float, float]:
    """LrcSSM's "Average" column: mean of per-dataset means ± standard error (std ddof=1 / √n)."""
    values = [float(v) for v in means]
    n = len(values)
    if n < 2:
        raise ValueError(f"means: need at least two datasets for a standard error, got {n}")
    mu = sum(values) / n
    sd = math.sqrt(sum((v - mu) ** 2 for v in values) / (n - 1))
    return mu, sd / math.sqrt(n)


def _git(*args: str) -> str | None:
    try:
        root = paths.repo_root()
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except Exception:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(device: str, precision: str, world_size: int) -> dict[str, Any]:
    """Where and with what a run was made: commit (+ dirty flag), versions, device, precision,
    the allocator setting."""
    import numpy
    import torch

    from liquidssm.allocator import malloc_setting

    try:
        import lightning_fabric
        fabric_version = lightning_fabric.__version__
    except ImportError:  # pragma: no cover - a hard dependency
        fabric_version = None
    from liquidssm import __version__

    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status),
        "liquidssm": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
        "lightning_fabric": fabric_version, "numpy": numpy.__version__,
        "platform": platform.platform(), "device": device, "precision": precision,
        "world_size": world_size, "allocator": malloc_setting().description,
    }
