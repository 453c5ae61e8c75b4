"""BIDMC32 HR / RR / SpO2 regression from the Monash TSER ``.ts`` files, split as S4.

Liquid-S4 Table 2 (RMSE); chapter reproductions/01_lra_synthetic_data. Release (Monash/UEA
Time Series Extrinsic Regression archive, Zenodo records 4001456 HR, 4001463 RR, 4001464 SpO2)
under ``<data root>/bidmc/``: :data:`LAYOUT`; registry entry: :data:`SPEC`.

S4's ``prepare/bidmc/process_data.py`` concatenates TRAIN and TEST and splits 70/15/15 with
scikit-learn ``train_test_split`` (``random_state=0`` for 70/30, then ``random_state=1`` for
the 50/50 split of the rest). :func:`sklearn_like_split` reproduces scikit-learn's
``ShuffleSplit`` draw (``RandomState(seed).permutation(n)``; the first ``ceil(test_size n)``
indices are the test part) without needing scikit-learn. Input ``X (n, 4000, 2)`` float32,
target ``y (n,)`` float32; no normalisation. A missing input value raises unless
``missing="ffill"`` or ``"zero"``, and a missing target always raises
(:mod:`liquidssm.data.series`); ``BIDMC.lengths`` holds every series' length (all 4000 in the
release).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from liquidssm._checks import check_choice, check_int
from liquidssm.data._common import Archive, dataset_dir, require_file, require_split
from liquidssm.data.series import fill_missing, merge_ts
from liquidssm.data.spec import DatasetSpec
from liquidssm.data.tsfile import read_ts, write_ts

NAME = "bidmc"
SUBDIR = "bidmc"
TARGETS = ("HR", "RR", "SpO2")
LAYOUT = ("  bidmc/BIDMC32{HR,RR,SpO2}_{TRAIN,TEST}.ts   (Monash TSER .ts text files; "
          "2 dimensions PPG, ECG; length 4000; @targetLabel true)")
#: Zenodo record of each target's archive
ZENODO_RECORDS = {"HR": 4001456, "RR": 4001463, "SpO2": 4001464}


def sklearn_like_split(n: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, test_idx)`` exactly as ``sklearn.model_selection.train_test_split`` draws them."""
    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    perm = np.random.RandomState(seed).permutation(n)
    return perm[n_test:n_test + n_train], perm[:n_test]


def s4_bidmc_split(n: int) -> dict[str, np.ndarray]:
    """S4's 70/15/15 split of ``n`` merged cases: indices per ``train``/``val``/``test``."""
    tr, rest = sklearn_like_split(n, 0.3, 0)
    va, te = sklearn_like_split(len(rest), 0.5, 1)
    return {"train": tr, "val": rest[va], "test": rest[te]}


class BIDMC(Dataset):
    """BIDMC32 ``target`` in HR/RR/SpO2: item ``(x (4000, 2) float32, y float32 scalar)``.

    ``lengths`` ``(n,)`` int64: each series' length (shorter ones zero-padded);
    ``return_lengths=True`` makes items ``(x, y, length)``. ``missing``: ``"raise"`` (default),
    ``"ffill"`` or ``"zero"`` for missing input values (:mod:`liquidssm.data.series`).
    """

    def __init__(self, split: str = "train", target: str = "RR",
                 root: str | os.PathLike[str] | None = None, missing: str = "raise",
                 return_lengths: bool = False) -> None:
        check_choice(split, "split", ("train", "val", "test"))
        check_choice(target, "target", TARGETS)
        if not isinstance(return_lengths, bool):
            raise TypeError(f"return_lengths: expected True or False, got {return_lengths!r}")
        d = dataset_dir(SPEC, root)
        parts = [read_ts(require_file(d / f"BIDMC32{target}_{s}.ts", NAME)) for s in ("TRAIN", "TEST")]
        merged = fill_missing(merge_ts(parts), missing, f"bidmc {target}")
        X = merged.X.astype(np.float32)
        y = np.asarray(merged.labels, dtype=np.float64).astype(np.float32)
        idx = s4_bidmc_split(len(y))[split]
        require_split(len(idx), split, len(y), f"bidmc {target}")
        self.x = torch.from_numpy(X[idx])
        self.y = torch.from_numpy(y[idx])
        self.lengths = torch.from_numpy(merged.lengths[idx])
        self.return_lengths = return_lengths

    @property
    def equal_length(self) -> bool:
        """True when every series of the split has the full length (no padding)."""
        return bool((self.lengths == self.x.shape[1]).all())

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, int]:
        if self.return_lengths:
            return self.x[i], self.y[i], int(self.lengths[i])
        return self.x[i], self.y[i]


def fixture_series(target: str, y: float, rng: np.random.Generator, length: int) -> np.ndarray:
    """A ``(length, 2)`` two-channel series ("PPG", "ECG") from which ``y`` in [-1, 1] can be read.

    HR: the pulse rate of both channels rises with ``y``; RR: the slow baseline wave of the
    "PPG" channel (the breathing) speeds up with ``y``; SpO2: the pulse amplitude of the "PPG"
    relative to the "ECG" grows with ``y``. Random phases and noise.
    """
    t = np.arange(length) / length
    beat = 8.0 * (1.0 + 0.4 * y) if target == "HR" else 8.0
    breath = 3.0 * (1.0 + 0.5 * y) if target == "RR" else 3.0
    amp = 1.0 + 0.5 * y if target == "SpO2" else 1.0
    p1, p2 = rng.uniform(0, 2 * math.pi, size=2)
    ppg = amp * np.sin(2 * math.pi * beat * t + p1) + 0.8 * np.sin(2 * math.pi * breath * t + p2)
    ecg = np.maximum(np.sin(2 * math.pi * beat * t + p1), 0.0) ** 8
    x = np.stack([ppg, ecg], -1) + 0.05 * rng.standard_normal((length, 2))
    return x.astype(np.float64)


def write_fixture(root: str | os.PathLike[str], n_train: int = 20, n_test: int = 8,
                  length: int = 64, seed: int = 0) -> Path:
    """Monash TSER ``BIDMC32{HR,RR,SpO2}_{TRAIN,TEST}.ts`` with targets readable from the series.

    Targets ``y ~ U[-1, 1]`` (the real HR, RR and SpO2 are in their physical units; a fixture's
    scale only has to make the mean predictor's RMSE, ``1/sqrt(3)``, easy to beat by learning);
    series of :func:`fixture_series` (real length 4000), written with
    :func:`liquidssm.data.tsfile.write_ts`. The loader merges TRAIN and TEST and splits them
    70/15/15 as the released code. The defaults are the tiny stand-in of ``liquidssm data
    fixtures bidmc``; the Liquid-S4 smoke tasks pass their sizes. Returns ``<root>/bidmc``.
    """
    check_int(n_train, "n_train", minimum=1)
    check_int(n_test, "n_test", minimum=1)
    check_int(length, "length", minimum=1)
    rng = np.random.default_rng(seed)
    out = Path(root) / SUBDIR
    out.mkdir(parents=True, exist_ok=True)
    for target in TARGETS:
        for split, n in (("TRAIN", n_train), ("TEST", n_test)):
            y = rng.uniform(-1.0, 1.0, size=n)
            X = np.stack([fixture_series(target, float(v), rng, length) for v in y])
            write_ts(out / f"BIDMC32{target}_{split}.ts", np.round(X, 4), [f"{v:.5f}" for v in y],
                     f"BIDMC32{target}")
    return out


SPEC = DatasetSpec(
    name=NAME, subdir=SUBDIR, layout=LAYOUT, papers="Liquid-S4 Table 2",
    required=tuple(f"{SUBDIR}/BIDMC32{t}_{s}.ts" for t in TARGETS for s in ("TRAIN", "TEST")),
    archives=tuple(Archive(f"https://zenodo.org/records/{rec}/files/BIDMC32{t}.zip",
                           f"BIDMC32{t}.zip", note="Zenodo record; URL pattern unverified")
                   for t, rec in ZENODO_RECORDS.items()),
    marker="BIDMC32HR_TRAIN.ts", target=SUBDIR, move="files", fixture=write_fixture,
)
