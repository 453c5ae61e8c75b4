"""UEA multivariate classification (LrcSSM Table 1) from the ``.ts`` release, LinOSS protocol.

LrcSSM Tables 1, 2, 8-11; chapter reproductions/01_lra_synthetic_data. Release
(``Multivariate2018_ts.zip`` of timeseriesclassification.com) under ``<data root>/uea/``:
:data:`LAYOUT`; registry entry: :data:`SPEC`. Protocol of Log-NCDE / LinOSS (followed by
LrcSSM): merge TRAIN and TEST, label-encode the sorted class names, drop duplicate series (``numpy.unique(axis=0)``, which
also sorts the cases), no normalisation, split 70/15/15 at ``int(0.7 N)`` and ``int(0.85 N)`` of a
random permutation, seeds 2345, 3456, 4567, 5678, 6789.

**Lengths and missing values** (:mod:`liquidssm.data.series`): the six datasets have equal
lengths and no missing values. For other ``.ts`` files, series shorter than the longest are
zero-padded at the end and their lengths kept (``UEA.lengths``; ``return_lengths=True`` returns
``(x, y, length)`` items); a missing value ``?`` raises unless ``missing="ffill"`` or ``"zero"``.

**Exact split reproduction needs JAX's threefry PRNG** (``jax.random.permutation`` with a key
derived from the seed); we do not depend on JAX, so :class:`UEA` draws its permutation with
``numpy.random.default_rng(seed)`` -- deterministic, same sizes, different membership. To use the
very splits of the LrcSSM paper, load the official split pickles with :func:`load_lrcssm_split`
(read with a restricted unpickler, see :mod:`liquidssm.data.safe_pickle`), laid out as in the
LrcSSM repository (:data:`LRCSSM_SPLITS_LAYOUT`; registry entry :data:`LRCSSM_SPLITS_SPEC`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from liquidssm._checks import check_choice, check_int
from liquidssm.data._common import (
    Archive,
    CorruptDataError,
    dataset_dir,
    log,
    require_file,
    require_split,
)
from liquidssm.data.safe_pickle import dumps_like_jax, load_array_pickle
from liquidssm.data.series import fill_missing, merge_ts
from liquidssm.data.spec import DatasetSpec
from liquidssm.data.tsfile import read_ts, write_ts

NAME = "uea"
SUBDIR = "uea/Multivariate_ts"
SEEDS = (2345, 3456, 4567, 5678, 6789)
#: paper abbreviation -> UEA archive name
DATASETS = {"Heart": "Heartbeat", "SCP1": "SelfRegulationSCP1", "SCP2": "SelfRegulationSCP2",
            "Ethanol": "EthanolConcentration", "Motor": "MotorImagery", "Worms": "EigenWorms"}
#: UEA name -> folder name in the LrcSSM repository (MotorImagery is not shipped there)
LRCSSM_FOLDERS = {"Heartbeat": "Heartbeat", "SelfRegulationSCP1": "SelfRegulationSCP1",
                  "SelfRegulationSCP2": "SelfRegulationSCP2",
                  "EthanolConcentration": "EthanolConcentration", "EigenWorms": "Eigenworms",
                  "MotorImagery": "MotorImagery"}
LAYOUT = ("  uea/Multivariate_ts/<Name>/<Name>_{TRAIN,TEST}.ts   for Name in "
          + ", ".join(DATASETS.values()))
ARCHIVE = Archive("https://www.timeseriesclassification.com/aeon-toolkit/Archives/"
                  "Multivariate2018_ts.zip", "Multivariate2018_ts.zip",
                  note="UEA archive; URL unverified")
LRCSSM_SPLITS_SUBDIR = "lrcssm_splits"
LRCSSM_SPLITS_LAYOUT = (
    "  lrcssm_splits/<Dataset>/<seed>/{X,y}_{train,val,test}.pkl   (pickled jax.Array)\n"
    "  copied from experiments/lrc_ssm/ of github.com/MoniFarsang/LrcSSM (no MotorImagery there)")


def _resolve(name: str) -> str:
    name = DATASETS.get(name, name)
    check_choice(name, "name", tuple(DATASETS.values()))
    return name


def load_merged(name: str, root: str | os.PathLike[str] | None = None, missing: str = "raise"
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Merged, de-duplicated ``(X (N, T, C) float64, y (N,) int64, classes)`` (Log-NCDE step 2).

    ``missing``: the missing-value policy of :func:`liquidssm.data.series.fill_missing`; shorter
    series are zero-padded (their lengths: :func:`load_cases`).
    """
    X, y, classes, _ = load_cases(name, root, missing)
    return X, y, classes


def load_cases(name: str, root: str | os.PathLike[str] | None = None, missing: str = "raise"
               ) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """:func:`load_merged` plus the length ``(N,)`` int64 of every series (equal-length: all ``T``)."""
    name = _resolve(name)
    d = dataset_dir(SPEC, root) / name
    parts = [read_ts(require_file(d / f"{name}_{s}.ts", NAME)) for s in ("TRAIN", "TEST")]
    merged = fill_missing(merge_ts(parts), missing, f"uea {name}")
    X, lengths, labels = merged.X, merged.lengths, merged.labels
    classes = sorted(set(labels))
    y = np.array([classes.index(lab) for lab in labels])
    key = np.concatenate([X.reshape(len(X), -1), lengths[:, None].astype(X.dtype)], axis=1)
    _, first = np.unique(key, axis=0, return_index=True)
    if len(first) < len(X):
        log.info("uea %s: dropped %d duplicate series of %d", name, len(X) - len(first), len(X))
    # np.unique returns the unique rows sorted; index of the first occurrence of each
    return X[first], y[first], classes, lengths[first]


def split_indices(n: int, seed: int) -> dict[str, np.ndarray]:
    """Our deterministic 70/15/15 split (``numpy.random.default_rng(seed)``; see module doc)."""
    perm = np.random.default_rng(seed).permutation(n)
    a, b = int(0.7 * n), int(0.85 * n)
    return {"train": perm[:a], "val": perm[a:b], "test": perm[b:]}


class UEA(Dataset):
    """One UEA dataset split: item ``(x (T, C) float32, y int)``; ``C + 1`` with ``include_time``.

    ``include_time`` prepends the channel ``t_k = k / T`` (Log-NCDE, LrcSSM Table 5 uses False).
    ``lengths`` ``(n,)`` int64 holds each series' length (all ``T`` when ``equal_length``; shorter
    ones are zero-padded); ``return_lengths=True`` makes items ``(x, y, length)``. ``missing``:
    ``"raise"`` (default), ``"ffill"`` or ``"zero"`` (:mod:`liquidssm.data.series`).
    """

    def __init__(self, name: str, split: str = "train", seed: int = 2345,
                 root: str | os.PathLike[str] | None = None, include_time: bool = False,
                 missing: str = "raise", return_lengths: bool = False) -> None:
        check_choice(split, "split", ("train", "val", "test"))
        check_int(seed, "seed", minimum=0)
        for flag, value in (("include_time", include_time), ("return_lengths", return_lengths)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag}: expected True or False, got {value!r}")
        X, y, self.classes, lengths = load_cases(name, root, missing)
        idx = split_indices(len(y), seed)[split]
        require_split(len(idx), split, len(y), f"uea {name}")
        self.lengths = torch.from_numpy(lengths[idx])
        self.return_lengths = return_lengths
        x = torch.from_numpy(X[idx].astype(np.float32))
        if include_time:
            T = x.shape[1]
            t = (torch.arange(T, dtype=torch.float32) / T).view(1, T, 1).expand(len(idx), T, 1)
            x = torch.cat([t, x], dim=-1)
        self.x, self.y = x, torch.from_numpy(y[idx])

    @property
    def equal_length(self) -> bool:
        """True when every series of the split has the full length ``T`` (no padding)."""
        return bool((self.lengths == self.x.shape[1]).all())

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int] | tuple[torch.Tensor, int, int]:
        if self.return_lengths:
            return self.x[i], int(self.y[i]), int(self.lengths[i])
        return self.x[i], int(self.y[i])


def load_lrcssm_split(name: str, seed: int, root: str | os.PathLike[str] | None = None,
                      drop_first_channel: bool = True) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The official LrcSSM split ``{split: (X (N, T, C) float32, y (N,) int64)}`` read safely.

    ``drop_first_channel=True`` reproduces the code (``datamodule.py`` removes column 0 of every
    dataset; a time channel for SCP1/SCP2/Heartbeat/EigenWorms, a real channel for Ethanol and
    Motor -- which is why the paper's "input size" row says 2 and 63). One-hot ``y`` becomes
    class indices.
    """
    name = _resolve(name)
    base = dataset_dir(LRCSSM_SPLITS_SPEC, root) / LRCSSM_FOLDERS[name] / str(seed)
    out = {}
    for split in ("train", "val", "test"):
        X = load_array_pickle(require_file(base / f"X_{split}.pkl", LRCSSM_SPLITS_SPEC.name))
        Y = load_array_pickle(require_file(base / f"y_{split}.pkl", LRCSSM_SPLITS_SPEC.name))
        if X.ndim != 3 or Y.ndim != 2 or len(X) != len(Y):
            raise CorruptDataError(f"{base}: X_{split} {X.shape} / y_{split} {Y.shape} are not "
                                   "(N, T, C) and one-hot (N, K) with the same N")
        if len(X) == 0 or not np.isfinite(X).all():
            raise CorruptDataError(f"{base}/X_{split}.pkl: expected a non-empty array of finite values, got shape "
                                   f"{X.shape} with {int(np.size(X) - np.isfinite(X).sum())} NaN/inf entries")
        x = torch.from_numpy(np.array(X, dtype=np.float32))
        if drop_first_channel:
            x = x[..., 1:]
        out[split] = (x.contiguous(), torch.from_numpy(np.argmax(Y, axis=1).astype(np.int64)))
    return out


def write_fixture(root: str | os.PathLike[str], names: tuple[str, ...] = tuple(DATASETS.values()),
                  n_train: int = 16, n_test: int = 12, length: int = 24, seed: int = 0) -> Path:
    """Tiny ``.ts`` files for each dataset (true channel counts, short series, one duplicate)."""
    channels = {"Heartbeat": 61, "SelfRegulationSCP1": 6, "SelfRegulationSCP2": 7,
                "EthanolConcentration": 3, "MotorImagery": 64, "EigenWorms": 6}
    n_classes = {"EthanolConcentration": 4, "EigenWorms": 5}
    rng = np.random.default_rng(seed)
    out = Path(root) / SUBDIR
    for name in names:
        C, K = channels[name], n_classes.get(name, 2)
        classes = [f"c{k}" for k in range(K)] if name != "Heartbeat" else ["abnormal", "normal"]
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        X = np.round(rng.standard_normal((n_train + n_test, length, C)), 4)
        y = rng.integers(0, K, n_train + n_test)
        X += y[:, None, None] * 0.5
        X[n_train] = X[0]  # a duplicate across TRAIN/TEST, removed by the pipeline
        y[n_train] = y[0]
        write_ts(d / f"{name}_TRAIN.ts", X[:n_train], [classes[k] for k in y[:n_train]], name, classes)
        write_ts(d / f"{name}_TEST.ts", X[n_train:], [classes[k] for k in y[n_train:]], name, classes)
    return out


def write_lrcssm_split_fixture(root: str | os.PathLike[str], name: str = "SelfRegulationSCP1",
                               seed: int = 2345, n: int = 20, length: int = 16, channels: int = 6,
                               n_classes: int = 2) -> Path:
    """Tiny split pickles in the LrcSSM layout, pickled like ``jax.Array`` (time channel first)."""
    name = _resolve(name)
    rng = np.random.default_rng(seed)
    base = Path(root) / LRCSSM_SPLITS_SUBDIR / LRCSSM_FOLDERS[name] / str(seed)
    base.mkdir(parents=True, exist_ok=True)
    sizes = {"train": int(0.7 * n), "val": int(0.85 * n) - int(0.7 * n)}
    sizes["test"] = n - sizes["train"] - sizes["val"]
    for split, m in sizes.items():
        t = np.broadcast_to(np.arange(length, dtype=np.float32)[None, :, None] / length, (m, length, 1))
        X = np.concatenate([t, rng.standard_normal((m, length, channels)).astype(np.float32)], -1)
        Y = np.eye(n_classes, dtype=np.float32)[rng.integers(0, n_classes, m)]
        (base / f"X_{split}.pkl").write_bytes(dumps_like_jax(X))
        (base / f"y_{split}.pkl").write_bytes(dumps_like_jax(Y))
    return base


def write_lrcssm_splits_fixture(root: str | os.PathLike[str], **kwargs: int) -> Path:
    """Every split of :data:`LRCSSM_SPLITS_SPEC` (all shipped datasets, all seeds), tiny."""
    for name in DATASETS.values():
        if name != "MotorImagery":  # not shipped in the LrcSSM repository
            for seed in SEEDS:
                write_lrcssm_split_fixture(root, name=name, seed=seed, **kwargs)
    return Path(root) / LRCSSM_SPLITS_SUBDIR


SPEC = DatasetSpec(
    name=NAME, subdir=SUBDIR, layout=LAYOUT, papers="LrcSSM Tables 1, 2, 8-11",
    required=tuple(f"{SUBDIR}/{n}/{n}_{s}.ts" for n in DATASETS.values() for s in ("TRAIN", "TEST")),
    archives=(ARCHIVE,), marker="Multivariate_ts", target=SUBDIR, fixture=write_fixture,
)

LRCSSM_SPLITS_SPEC = DatasetSpec(
    name="lrcssm_splits", subdir=LRCSSM_SPLITS_SUBDIR, layout=LRCSSM_SPLITS_LAYOUT,
    papers="LrcSSM Table 1 (the paper's exact splits)",
    required=tuple(f"{LRCSSM_SPLITS_SUBDIR}/{LRCSSM_FOLDERS[n]}/{s}/X_train.pkl"
                   for n in DATASETS.values() if n != "MotorImagery" for s in SEEDS),
    archives=(), marker="Eigenworms", target=LRCSSM_SPLITS_SUBDIR, move="parent",
    fixture=write_lrcssm_splits_fixture,
)
