"""Parser and writer for the sktime/aeon ``.ts`` text format (UEA archive, Monash TSER).

Used by the BIDMC (Liquid-S4 Table 2) and UEA (LrcSSM Table 1) loaders; chapter
reproductions/01_lra_synthetic_data. Format: ``#`` comment lines, ``@key value`` header lines
(``@problemName``, ``@timeStamps``, ``@missing``, ``@univariate``, ``@dimensions``,
``@equalLength``, ``@seriesLength``, ``@classLabel true <labels...>`` or
``@targetLabel true``), then ``@data`` and one case per line: the dimensions as comma-separated
values separated by ``:``, followed by ``:<label>`` (class) or ``:<target>`` (regression).
``?`` is a missing value (NaN); a file whose header says ``@missing false`` may not hold one,
and a regression target may never be missing. Unequal-length series (``@equalLength false``)
are padded with NaN after their end; :attr:`TSData.lengths` says where each one ends, and
:mod:`liquidssm.data.series` turns both kinds of NaN into the loaders' documented policy.
Timestamped series (``@timeStamps true``) are not supported.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from liquidssm.data._common import CorruptDataError, read_text_lines


@dataclass
class TSData:
    """Parsed file: ``X (n, T, C)`` float64 (NaN = missing or after the end), labels, header.

    ``lengths (n,)``: the number of time steps of each case (the longest of its dimensions);
    ``lines``: the line of each case in ``path``, so later checks can name it.
    """

    X: np.ndarray
    y: list[str] | np.ndarray
    header: dict[str, str] = field(default_factory=dict)
    class_labels: list[str] | None = None
    lengths: np.ndarray | None = None
    lines: list[int] = field(default_factory=list)
    path: Path | None = None


def _to_float(tok: str, path: Path, lineno: int) -> float:
    tok = tok.strip()
    if tok == "?":
        return math.nan
    try:
        value = float(tok)
    except ValueError:
        raise CorruptDataError(f"{path}:{lineno}: value {tok!r} is not a number") from None
    if not math.isfinite(value):
        raise CorruptDataError(f"{path}:{lineno}: value {tok!r} is not a finite number (a missing value is "
                               "written '?')")
    return value


def _header_int(header: dict[str, str], key: str, path: Path, lines: dict[str, int]) -> int | None:
    """The integer value of ``@key`` (``None`` if absent); anything else names the header line."""
    if key not in header:
        return None
    try:
        value = int(header[key])
    except ValueError:
        value = -1
    if value < 1:
        raise CorruptDataError(f"{path}:{lines[key]}: @{key} expects a positive integer, got {header[key]!r}")
    return value


def _header_bool(header: dict[str, str], key: str, default: bool, path: Path, lines: dict[str, int]) -> bool:
    """``true``/``false`` of ``@key`` (``default`` if absent)."""
    value = header.get(key, str(default)).lower()
    if value not in ("true", "false"):
        raise CorruptDataError(f"{path}:{lines[key]}: @{key} expects true or false, got {header[key]!r}")
    return value == "true"


def read_ts(path: str | os.PathLike[str]) -> TSData:
    """Parse a ``.ts`` file strictly; every error names the file and the line."""
    path = Path(path)
    header: dict[str, str] = {}
    header_lines: dict[str, int] = {}
    class_labels: list[str] | None = None
    regression = False
    cases: list[list[list[float]]] = []
    labels: list[str] = []
    case_lines: list[int] = []
    in_data = False
    for lineno, line in read_text_lines(path):
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
            header[key], header_lines[key] = value.strip(), lineno
            if key == "classlabel":
                toks = value.split()
                if toks and toks[0].lower() == "true":
                    class_labels = toks[1:]
            elif key == "targetlabel" and value.strip().lower() == "true":
                regression = True
            elif key == "timestamps" and value.strip().lower() == "true":
                raise CorruptDataError(f"{path}:{lineno}: timestamped series are not supported")
            continue
        series, lab = _parse_case(line, path, lineno, header, header_lines, cases)
        if class_labels is not None and lab not in class_labels:
            raise CorruptDataError(f"{path}:{lineno}: class {lab!r} not in @classLabel {class_labels}")
        if regression and math.isnan(_to_float(lab, path, lineno)):
            raise CorruptDataError(f"{path}:{lineno}: the regression target is missing ('?'); every case needs a "
                                   "numeric target")
        cases.append(series)
        labels.append(lab)
        case_lines.append(lineno)
    if not in_data:
        raise CorruptDataError(f"{path}: no @data section")
    if not cases:
        raise CorruptDataError(f"{path}: @data section is empty")
    lengths = np.array([max(len(s) for s in c) for c in cases], dtype=np.int64)
    X = np.full((len(cases), int(lengths.max()), len(cases[0])), np.nan)
    for i, c in enumerate(cases):
        for j, s in enumerate(c):
            X[i, : len(s), j] = s
    y: list[str] | np.ndarray = np.array([float(v) for v in labels]) if regression else labels
    return TSData(X=X, y=y, header=header, class_labels=class_labels, lengths=lengths, lines=case_lines,
                  path=path)


def _parse_case(line: str, path: Path, lineno: int, header: dict[str, str], header_lines: dict[str, int],
                cases: list[list[list[float]]]) -> tuple[list[list[float]], str]:
    """One ``@data`` line -> its dimensions and its label, checked against the header and the first case."""
    parts = line.split(":")
    if len(parts) < 2:
        raise CorruptDataError(f"{path}:{lineno}: expected '<dim1>:...:<label>', found no ':'")
    *dims, lab = parts
    series = [[_to_float(t, path, lineno) for t in d.split(",")] for d in dims]
    nd = _header_int(header, "dimensions", path, header_lines)
    if nd is not None and len(series) != nd:
        raise CorruptDataError(f"{path}:{lineno}: {len(series)} dimensions, header says {nd}")
    if cases and len(series) != len(cases[0]):
        raise CorruptDataError(f"{path}:{lineno}: {len(series)} dimensions, first case has {len(cases[0])}")
    lens = {len(s) for s in series}
    sl = _header_int(header, "serieslength", path, header_lines)
    if _header_bool(header, "equallength", True, path, header_lines):
        if len(lens) != 1 or (sl is not None and lens != {sl}):
            raise CorruptDataError(f"{path}:{lineno}: series lengths {sorted(lens)} differ from @seriesLength {sl}")
    if not _header_bool(header, "missing", True, path, header_lines) and any(math.isnan(v) for s in series for v in s):
        raise CorruptDataError(f"{path}:{lineno}: a missing value '?' although the header says @missing false")
    return series, lab.strip()


def write_ts(path: str | os.PathLike[str], X: np.ndarray, y: list | np.ndarray, problem: str,
             class_labels: list[str] | None = None, lengths: np.ndarray | None = None) -> None:
    """Write ``X (n, T, C)`` and labels/targets ``y`` as a ``.ts`` file.

    NaN values are written as missing (``?``, with ``@missing true``); ``lengths (n,)`` writes
    case ``i`` with its first ``lengths[i]`` steps only (``@equalLength false``).
    """
    n, T, C = X.shape
    equal = lengths is None or bool((np.asarray(lengths) == T).all())
    steps = [T] * n if lengths is None else [int(v) for v in lengths]
    lines = ["# written by liquidssm.data.tsfile", f"@problemName {problem}", "@timeStamps false",
             f"@missing {'true' if np.isnan(X).any() else 'false'}", f"@univariate {'true' if C == 1 else 'false'}",
             f"@dimensions {C}", f"@equalLength {'true' if equal else 'false'}"]
    if equal:
        lines.append(f"@seriesLength {T}")
    lines.append(f"@classLabel true {' '.join(class_labels)}" if class_labels is not None
                 else "@targetLabel true")
    lines.append("@data")
    for i in range(n):
        dims = [",".join("?" if math.isnan(v) else repr(float(v)) for v in X[i, : steps[i], j]) for j in range(C)]
        lines.append(":".join(dims) + f":{y[i]}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
