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

Aggregation follows the papers: mean ± standard deviation over seeds for a cell (population
standard deviation, ``ddof=0``, as ``numpy.std``); LrcSSM's cross-dataset average is the mean of
the per-dataset means ± their standard error (sample std of the means / √n).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from liquidssm import paths
from liquidssm.repro.checkpoint import atomic_write

__all__ = [
    "SCHEMA_VERSION",
    "ResultsError",
    "result_path",
    "write_result",
    "read_result",
    "check_writable",
    "load_results",
    "aggregate",
    "cross_dataset_average",
    "provenance",
]

SCHEMA_VERSION = 1
_REQUIRED = ("schema", "experiment", "paper", "table", "profile", "seed", "metric", "value",
             "best", "training", "data", "config", "config_hash", "provenance")


class ResultsError(ValueError):
    """A results file or folder that cannot be used; the message names it."""


def result_path(experiment: str, profile: str, seed: int,
                results_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<results>/<experiment>/<profile>-seed<seed>.json``."""
    base = Path(results_dir) if results_dir is not None else paths.results_dir()
    return base / experiment / f"{profile}-seed{seed}.json"


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


def read_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One results file, checked for its schema version and required keys."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    if not isinstance(record, dict) or record.get("schema") != SCHEMA_VERSION:
        got = record.get("schema") if isinstance(record, dict) else type(record).__name__
        raise ResultsError(f"{path}: expected results schema {SCHEMA_VERSION}, got {got!r}")
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        raise ResultsError(f"{path}: missing keys {missing}")
    return record


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
    rows = []
    for path in sorted(base.glob("*/*-seed*.json")):
        record = read_result(path)
        if table is not None and str(record["table"]) != str(table):
            continue
        if experiment is not None and record["experiment"] != experiment:
            continue
        if profile is not None and record["profile"] != profile:
            continue
        rows.append(_row(record, path))
    return pd.DataFrame(rows)


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Mean ± population std (``ddof=0``) of ``value`` over seeds per experiment and profile."""
    if df.empty:
        return pd.DataFrame(columns=["experiment", "profile", "mean", "std", "n_seeds"])
    g = df.groupby(["experiment", "profile"], sort=True)["value"]
    out = g.agg(mean="mean", std=lambda v: float(v.std(ddof=0)), n_seeds="count").reset_index()
    return out


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
    """Where and with what a run was made: commit (+ dirty flag), versions, device, precision."""
    import numpy
    import torch

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
        "world_size": world_size,
    }
