"""What every task shares: the batch format, :class:`TaskData`, cached data, loss, metric, length.

Chapter ``reproductions/02_how_reproductions_run``. Every batch the engine sees is a triple
``(x, y, lengths)``: ``x`` ``(B, L)`` tokens or ``(B, T, d_input)`` values, ``y`` ``(B,)`` class
indices (or ``(B, d_output)`` regression targets), ``lengths`` ``(B,)`` valid lengths or ``None``.

Data sources (``task_args["source"]``):

* ``"release"``: the real dataset in its release layout under the raw-data folder
  (:func:`liquidssm.paths.raw_data_dir`; a missing dataset names the path and the
  ``liquidssm data`` command);
* ``"generated"``: made by the task's own procedure (ListOps: the LRA generator), written once to
  a cache folder and reused;
* ``"fixture"``: files in the release layout written by the dataset's fixture writer, with a
  class-dependent signal, so a smoke run can learn.

The builders live with their paper (:mod:`liquidssm.repro.papers.liquid_s4.tasks`,
:mod:`liquidssm.repro.papers.lrcssm.tasks`) and import this module; :mod:`liquidssm.repro.tasks`
collects them in one table, so nothing here imports a paper (no import circle).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from liquidssm import paths
from liquidssm.data import pad_collate
from liquidssm.data._common import sha256_file  # re-exported for the task builders

__all__ = ["TaskData", "loss_fn", "metrics_of", "cached_folder", "sha256_file", "check_task_args",
           "token_collate", "stack_collate", "sequence_length"]

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


@dataclass
class TaskData:
    """Datasets and batch plumbing of one task (see the module docstring for the batch format)."""

    train: Dataset
    val: Dataset
    test: Dataset
    collate: Callable[[list], Batch]
    kind: str  # "classification" | "regression"
    n_classes: int | None
    source: str  # "release" | "generated" | "fixture"
    location: str
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256

    @property
    def chance(self) -> float | None:
        """Accuracy (%) of guessing uniformly at random (classification only)."""
        return 100.0 / self.n_classes if self.n_classes else None


def cached_folder(kind: str, args: dict[str, Any], write: Callable[[Path], None],
                  cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """A folder ``<cache>/<kind>-<digest of args>`` filled once by ``write(folder)``, atomically.

    ``write`` fills a temporary sibling that is renamed into place only when complete, so an
    interrupted generation never leaves a half-written dataset that later runs would trust.
    """
    base = Path(cache_dir) if cache_dir is not None else paths.data_cache_dir()
    digest = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:12]
    final = base / f"{kind}-{digest}"
    if final.is_dir():
        return final
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=base))
    try:
        write(tmp)
        (tmp / "args.json").write_text(json.dumps(args, sort_keys=True, indent=1))
        os.replace(tmp, final)
    except OSError:
        if final.is_dir():  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
            return final
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def check_task_args(args: dict[str, Any], allowed: set[str], task: str) -> None:
    """Refuse task arguments a builder does not know, naming them and the valid ones."""
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ValueError(f"task {task!r}: unknown argument(s) {unknown}; valid: {sorted(allowed)}")


def token_collate(pad: int) -> Callable[[list], Batch]:
    """Token sequences padded with ``pad`` → ``(x (B, L), y (B,), lengths (B,))``."""
    def collate(batch: list) -> Batch:
        return pad_collate(batch, pad=pad)
    return collate


def stack_collate(batch: list) -> Batch:
    """Equal-length series ``(x (T, C), y)`` → ``(x (B, T, C), y (B,), None)``."""
    x = torch.stack([b[0] for b in batch])
    y = torch.as_tensor([int(b[1]) for b in batch])
    return x, y, None


def loss_fn(kind: str, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logits ``(B, K)`` (classification) or mean squared error (regression)."""
    if kind == "classification":
        return F.cross_entropy(output.float(), y)
    return F.mse_loss(output.float(), y.float().reshape(output.shape))


def metrics_of(kind: str, loss_sum: float, correct: int, sq_err: float, n: int) -> dict[str, float]:
    """Split metrics from running sums: ``loss``, and ``accuracy`` (%) or ``rmse``."""
    if n == 0:
        raise ValueError("metrics_of: the evaluation split is empty (n = 0)")
    out = {"loss": loss_sum / n}
    if kind == "classification":
        out["accuracy"] = 100.0 * correct / n
    else:
        out["rmse"] = (sq_err / n) ** 0.5
    return out


def sequence_length(data: TaskData) -> int:
    """The longest input sequence a task's batches can hold: the ``l_max`` a model learns ``C̃`` at.

    Token tasks (ListOps, IMDB, AAN) truncate to their dataset's ``l_max``; the series tasks stack
    equal-length items, so the first training item's length is every item's. Passed by the engine
    to :func:`liquidssm.repro.models.build_model` (``SequenceModelConfig.l_max``).
    """
    if not isinstance(data, TaskData):
        raise TypeError(f"data: expected a liquidssm.repro.taskbase.TaskData, got {type(data).__name__}")
    base = data.train
    while not hasattr(base, "l_max") and hasattr(base, "base"):
        base = base.base
    if hasattr(base, "l_max"):
        return int(base.l_max)
    if len(data.train) == 0:  # type: ignore[arg-type]
        raise ValueError("data: the training set is empty, so it has no sequence length")
    return int(torch.as_tensor(data.train[0][0]).shape[0])
