"""Parser and writer for the sktime/aeon ``.ts`` text format (UEA archive, Monash TSER).

Used by the BIDMC (Liquid-S4 Table 2) and UEA (LrcSSM Table 1) loaders; chapter
reproductions/01_lra_synthetic_data. Format: ``#`` comment lines, ``@key value`` header lines
(``@problemName``, ``@timeStamps``, ``@missing``, ``@univariate``, ``@dimensions``,
``@equalLength``, ``@seriesLength``, ``@classLabel true <labels...>`` or
``@targetLabel true``), then ``@data`` and one case per line: the dimensions as comma-separated
values separated by ``:``, followed by ``:<label>`` (class) or ``:<target>`` (regression).
``?`` is a missing value (NaN). Timestamped series (``@timeStamps true``) are not supported.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from liquidssm.data._common import CorruptDataError


@dataclass
class TSData:
    """Parsed file: ``X (n, T, C)`` float64, ``y`` (class strings or float targets), header."""

    X: np.ndarray
    y: list[str] | np.ndarray
    header: dict[str, str] = field(default_factory=dict)
    class_labels: list[str] | None = None


def _to_float(tok: str, path: Path, lineno: int) -> float:
    tok = tok.strip()
    if tok == "?":
        return math.nan
    try:
        return float(tok)
    except ValueError:
        raise CorruptDataError(f"{path}:{lineno}: value {tok!r} is not a number") from None


def read_ts(path: str | os.PathLike[str]) -> TSData:
    """Parse a ``.ts`` file strictly; every error names the file and the line."""
    path = Path(path)
    header: dict[str, str] = {}
    class_labels: list[str] | None = None
    regression = False
    cases: list[list[list[float]]] = []
    labels: list[str] = []
    in_data = False
    with open(path, encoding="utf-8", errors="strict") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise CorruptDataError(f"{path}:{lineno}: expected an @tag before @data, got {line[:40]!r}")
                key, _, value = line[1:].partition(" ")
                key = key.lower()
                if key == "data":
                    in_data = True
                    if class_labels is None and not regression:
                        raise CorruptDataError(f"{path}:{lineno}: @data before @classLabel/@targetLabel")
                    continue
                header[key] = value.strip()
                if key == "classlabel":
                    toks = value.split()
                    if toks and toks[0].lower() == "true":
                        class_labels = toks[1:]
                elif key == "targetlabel" and value.strip().lower() == "true":
                    regression = True
                elif key == "timestamps" and value.strip().lower() == "true":
                    raise CorruptDataError(f"{path}:{lineno}: timestamped series are not supported")
                continue
            parts = line.split(":")
            if len(parts) < 2:
                raise CorruptDataError(f"{path}:{lineno}: expected '<dim1>:...:<label>', found no ':'")
            *dims, lab = parts
            series = [[_to_float(t, path, lineno) for t in d.split(",")] for d in dims]
            nd = header.get("dimensions")
            if nd is not None and len(series) != int(nd):
                raise CorruptDataError(f"{path}:{lineno}: {len(series)} dimensions, header says {nd}")
            if cases and len(series) != len(cases[0]):
                raise CorruptDataError(f"{path}:{lineno}: {len(series)} dimensions, first case has {len(cases[0])}")
            lens = {len(s) for s in series}
            sl = header.get("serieslength")
            if header.get("equallength", "true").lower() == "true":
                if len(lens) != 1 or (sl is not None and lens != {int(sl)}):
                    raise CorruptDataError(
                        f"{path}:{lineno}: series lengths {sorted(lens)} differ from @seriesLength {sl}")
            lab = lab.strip()
            if class_labels is not None and lab not in class_labels:
                raise CorruptDataError(f"{path}:{lineno}: class {lab!r} not in @classLabel {class_labels}")
            if regression:
                _to_float(lab, path, lineno)
            cases.append(series)
            labels.append(lab)
    if not in_data:
        raise CorruptDataError(f"{path}: no @data section")
    if not cases:
        raise CorruptDataError(f"{path}: @data section is empty")
    T = max(len(s) for c in cases for s in c)
    X = np.full((len(cases), T, len(cases[0])), np.nan)
    for i, c in enumerate(cases):
        for j, s in enumerate(c):
            X[i, : len(s), j] = s
    y: list[str] | np.ndarray = np.array([float(v) for v in labels]) if regression else labels
    return TSData(X=X, y=y, header=header, class_labels=class_labels)


def write_ts(path: str | os.PathLike[str], X: np.ndarray, y: list | np.ndarray, problem: str,
             class_labels: list[str] | None = None) -> None:
    """Write ``X (n, T, C)`` and labels/targets ``y`` as an equal-length ``.ts`` file."""
    n, T, C = X.shape
    lines = ["# written by liquidssm.data.tsfile", f"@problemName {problem}", "@timeStamps false",
             "@missing false", f"@univariate {'true' if C == 1 else 'false'}",
             f"@dimensions {C}", "@equalLength true", f"@seriesLength {T}"]
    lines.append(f"@classLabel true {' '.join(class_labels)}" if class_labels is not None
                 else "@targetLabel true")
    lines.append("@data")
    for i in range(n):
        dims = [",".join(repr(float(v)) for v in X[i, :, j]) for j in range(C)]
        lines.append(":".join(dims) + f":{y[i]}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
