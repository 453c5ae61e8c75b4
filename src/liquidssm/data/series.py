"""Variable-length series and missing values of the ``.ts`` datasets: one policy for UEA and BIDMC.

Chapter reproductions/01_lra_synthetic_data. :func:`liquidssm.data.tsfile.read_ts` marks both a
missing value (``?``) and the steps after the end of a shorter series with NaN, and records each
series' length. Nothing here lets a NaN reach a model without a word:

* **after the end of a series** (unequal-length files): zeros, with the true lengths kept in
  :attr:`MergedSeries.lengths` -- the datasets expose them as ``dataset.lengths`` and, with
  ``return_lengths=True``, return ``(x, y, length)`` items for masking models;
* **missing values inside a series**: ``missing="raise"`` (the default) refuses the data and
  names the file and line of the first case that has one; ``"ffill"`` carries the last observed
  value forward per channel (zero before the first observation); ``"zero"`` writes zeros. The
  count is kept in :attr:`MergedSeries.n_missing`.

The datasets of the papers (BIDMC32, the six UEA sets of LrcSSM Table 1) have equal lengths and
no missing values, so the default never changes them; another ``.ts`` file gets a clear error
instead of NaN batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liquidssm._checks import check_choice
from liquidssm.data._common import CorruptDataError
from liquidssm.data.tsfile import TSData

__all__ = ["MISSING_POLICIES", "MergedSeries", "merge_ts", "fill_missing"]

#: how a missing value (``?``) inside a series is handled
MISSING_POLICIES = ("raise", "ffill", "zero")


@dataclass
class MergedSeries:
    """Cases of several ``.ts`` files: ``X (n, T, C)`` float64 (NaN = missing or past the end).

    ``lengths (n,)`` int64 steps per case; ``origins``: ``(file, line)`` of every case;
    ``labels``: the labels or targets in file order; ``n_missing``: missing values inside series
    (set by :func:`fill_missing`).
    """

    X: np.ndarray
    lengths: np.ndarray
    origins: list[tuple[Path | None, int]]
    labels: list
    n_missing: int = 0

    @property
    def equal_length(self) -> bool:
        """True when every case has the full length ``T``."""
        return bool((self.lengths == self.X.shape[1]).all())


def merge_ts(parts: Sequence[TSData]) -> MergedSeries:
    """Concatenate parsed files (e.g. TRAIN and TEST), padding every case to the longest with NaN.

    All files must have the same number of channels (dimensions); the error names both files.
    """
    if not parts:
        raise ValueError("parts: expected at least one parsed .ts file")
    C = parts[0].X.shape[2]
    for p in parts[1:]:
        if p.X.shape[2] != C:
            raise CorruptDataError(f"{p.path}: {p.X.shape[2]} dimensions, but {parts[0].path} has {C}")
    T = max(p.X.shape[1] for p in parts)
    X = np.concatenate([np.pad(p.X, ((0, 0), (0, T - p.X.shape[1]), (0, 0)), constant_values=np.nan)
                        for p in parts])
    lengths = np.concatenate([_lengths(p) for p in parts])
    origins = [(p.path, line) for p in parts for line in (p.lines or [0] * len(p.X))]
    labels = [lab for p in parts for lab in p.y]
    return MergedSeries(X, lengths, origins, labels)


def _lengths(part: TSData) -> np.ndarray:
    if part.lengths is not None:
        return np.asarray(part.lengths, dtype=np.int64)
    return np.full(len(part.X), part.X.shape[1], dtype=np.int64)


def fill_missing(series: MergedSeries, missing: str = "raise", dataset: str = "") -> MergedSeries:
    """Apply the missing-value ``missing`` policy (module docstring) and zero the steps past each end.

    Returns ``series`` with ``X`` free of NaN and ``n_missing`` set. ``missing="raise"`` raises
    :class:`~liquidssm.data.CorruptDataError` naming the first case (file and line) that has a
    missing value, and how to opt in to a filling policy.
    """
    check_choice(missing, "missing", MISSING_POLICIES)
    X, lengths = series.X.copy(), series.lengths
    T = X.shape[1]
    valid = np.arange(T)[None, :, None] < lengths[:, None, None]
    holes = np.isnan(X) & valid
    n_missing = int(holes.sum())
    if n_missing and missing == "raise":
        first = int(np.flatnonzero(holes.any(axis=(1, 2)))[0])
        path, line = series.origins[first]
        raise CorruptDataError(
            f"{path}:{line}: {int(holes[first].sum())} missing value(s) '?' in this case ({n_missing} in "
            f"{int(holes.any(axis=(1, 2)).sum())} cases of {dataset or 'the data'}); pass missing='ffill' "
            "(carry the last value forward) or missing='zero' to fill them")
    if n_missing and missing == "ffill":
        X = _forward_fill(X)
    X[np.isnan(X)] = 0.0  # "zero", the leading gaps of "ffill", and the steps past each end
    X[~np.broadcast_to(valid, X.shape)] = 0.0
    return MergedSeries(X, lengths, series.origins, series.labels, n_missing)


def _forward_fill(X: np.ndarray) -> np.ndarray:
    """Replace NaN by the last non-NaN value before it along time (axis 1), per case and channel."""
    idx = np.where(np.isnan(X), 0, np.arange(X.shape[1])[None, :, None])
    np.maximum.accumulate(idx, axis=1, out=idx)
    return np.take_along_axis(X, idx, axis=1)
