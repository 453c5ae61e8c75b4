"""LrcSSM tasks for the engine: dataset → :class:`~liquidssm.repro.taskbase.TaskData` (UEA, PPG-DaLiA).

Chapter ``reproductions/02_how_reproductions_run`` and the LrcSSM table chapters. Each builder
takes ``(args, seed, data_root, cache_dir)``; ``args["source"]`` chooses the real release or a
fixture in the release layout with a learnable class-dependent signal.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, TensorDataset

from liquidssm import paths
from liquidssm.data import uea
from liquidssm.repro.taskbase import (
    TaskData,
    cached_folder,
    check_task_args,
    sha256_file,
    stack_collate,
)

__all__ = ["TASKS", "uea_task", "ppg_dalia_task", "NO_TIME_COLUMN"]

#: UEA datasets whose column 0 in the LrcSSM split pickles is a real channel, not the time channel
#: (``datamodule.py`` of MoniFarsang/LrcSSM@5581972: the released datamodule drops column 0 anyway, so Ethanol loses 3 -> 2 and
#: MotorImagery 64 -> 63 channels, the "input size" row of LrcSSM Table 1)
NO_TIME_COLUMN = ("EthanolConcentration", "MotorImagery")


class _DropFirstChannel(Dataset):
    """A dataset of ``(x (T, C), y)`` items seen without channel 0 (the released code's column-0 drop)."""

    def __init__(self, inner: Dataset) -> None:
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        x, y = self.inner[i]
        return x[..., 1:], y


def uea_task(args: dict[str, Any], seed: int, data_root: str | os.PathLike[str] | None,
             cache_dir: str | os.PathLike[str] | None) -> TaskData:
    """UEA classification (LrcSSM Table 1): the run seed selects the 70/15/15 split.

    ``splits="lrcssm"`` reads the LrcSSM repository's split pickles (the paper's exact splits);
    ``"ours"`` splits the merged ``.ts`` release with :func:`liquidssm.data.uea.split_indices`;
    ``"auto"`` uses the pickles of this dataset and seed when they are under the data root, else
    ours (the results record which: ``data.location``).
    ``column0``: ``"time"`` (default) drops column 0 of the split pickles only where it is the
    time channel (every dataset but :data:`NO_TIME_COLUMN`), so every real channel is kept;
    ``"drop"`` drops it everywhere, as the released datamodule does (Ethanol and MotorImagery lose
    a real channel, also from the ``.ts`` release).
    ``source="fixture"`` writes ``.ts`` files in the release layout whose series carry a
    class-dependent mean shift (:func:`liquidssm.data.uea.write_fixture`).
    """
    args = dict(args)
    check_task_args(args, {"source", "name", "splits", "n", "length", "data_seed", "column0"}, "uea")
    source = args.pop("source", "release")
    raw_name = args.pop("name")
    name = uea.DATASETS.get(raw_name, raw_name)  # "Ethanol" -> "EthanolConcentration"
    splits = args.pop("splits", "ours")
    column0 = args.pop("column0", "time")
    if column0 not in ("time", "drop"):
        raise ValueError(f"task 'uea': column0 expected 'time' or 'drop', got {column0!r}")
    if source == "release":
        root = paths.raw_data_dir(data_root)
    elif source == "fixture":
        n, length = int(args.pop("n", 200)), int(args.pop("length", 64))
        gen = {"name": name, "n": n, "length": length, "data_seed": int(args.pop("data_seed", 0))}

        def write(folder: Path) -> None:
            n_train = (2 * n) // 3
            uea.write_fixture(folder, names=(name,), n_train=n_train, n_test=n - n_train,
                              length=length, seed=gen["data_seed"])

        root = cached_folder("uea", gen, write, cache_dir)
        splits = "ours"
    else:
        raise ValueError(f"task 'uea': source expected 'release' or 'fixture', got {source!r}")
    if splits == "auto":
        folder = Path(root) / uea.LRCSSM_SPLITS_SUBDIR / uea.LRCSSM_FOLDERS.get(name, name) / str(seed)
        splits = "lrcssm" if (folder / "X_train.pkl").is_file() else "ours"
    if splits == "lrcssm":
        drop = column0 == "drop" or name not in NO_TIME_COLUMN
        parts = uea.load_lrcssm_split(name, seed, root=root, drop_first_channel=drop)
        sets = [TensorDataset(*parts[s]) for s in ("train", "val", "test")]
        n_classes = int(max(int(parts[s][1].max()) for s in parts)) + 1
        location = str(Path(root) / "lrcssm_splits" / name / str(seed))
        files: dict[str, str] = {}
    elif splits == "ours":
        sets = [uea.UEA(name, s, seed=seed, root=root) for s in ("train", "val", "test")]
        if not all(ds.equal_length for ds in sets):
            raise ValueError(f"task 'uea': {name} has series of unequal length; LrcSSM models take "
                             "equal-length series (the UEA datasets of the paper are all equal-length)")
        n_classes = len(sets[0].classes)
        folder = Path(root) / uea.SUBDIR / name
        location = str(folder)
        files = {p.name: sha256_file(p) for p in sorted(folder.glob("*.ts"))}
        if column0 == "drop" and name in NO_TIME_COLUMN:
            sets = [_DropFirstChannel(d) for d in sets]
    else:
        raise ValueError(f"task 'uea': splits expected 'lrcssm' or 'ours', got {splits!r}")
    return TaskData(*sets, stack_collate, "classification", n_classes, source, location, files)


def _regression_collate(batch: list) -> tuple[Any, Any, None]:
    """``(x (T, C), y (n_targets,))`` items -> ``(x (B, T, C), y (B, n_targets), None)``."""
    import torch

    return torch.stack([b[0] for b in batch]), torch.stack([b[1] for b in batch]), None


def ppg_dalia_task(args: dict[str, Any], seed: int, data_root: str | os.PathLike[str] | None,
                   cache_dir: str | os.PathLike[str] | None) -> TaskData:
    """PPG-DaLiA heart-rate regression (LrcSSM Table 7): windows with one target per ``2 rate`` steps.

    ``rate`` (Hz), ``window`` and ``stride`` (steps) as :class:`liquidssm.data.ppg_dalia.PPGDaLiA`
    (benchmark: 64, 49,920, 4,992); the run seed draws each subject's block order.
    ``source="fixture"`` writes subject pickles in the release layout whose heart rate is carried
    by an input channel (:func:`liquidssm.data.ppg_dalia.write_fixture`; ``n_subjects``,
    ``minutes``, ``data_seed``).
    """
    from liquidssm.data import ppg_dalia

    args = dict(args)
    check_task_args(args, {"source", "rate", "window", "stride", "n_subjects", "minutes", "data_seed"},
                    "ppg_dalia")
    source = args.pop("source", "release")
    rate, window, stride = int(args.pop("rate", 64)), int(args.pop("window", 49920)), int(args.pop("stride", 4992))
    if source == "release":
        if args:
            raise ValueError(f"task 'ppg_dalia': {sorted(args)} apply only to source='fixture'")
        root = paths.raw_data_dir(data_root)
    elif source == "fixture":
        gen = {"n_subjects": int(args.pop("n_subjects", 4)), "minutes": float(args.pop("minutes", 15.0)),
               "data_seed": int(args.pop("data_seed", 0))}

        def write(folder: Path) -> None:
            ppg_dalia.write_fixture(folder, n_subjects=gen["n_subjects"], minutes=gen["minutes"],
                                    seed=gen["data_seed"])

        root = cached_folder("ppg_dalia", gen, write, cache_dir)
    else:
        raise ValueError(f"task 'ppg_dalia': source expected 'release' or 'fixture', got {source!r}")
    sets = [ppg_dalia.PPGDaLiA(s, seed, root=root, rate=rate, window=window, stride=stride)
            for s in ("train", "val", "test")]
    folder = Path(root) / ppg_dalia.SUBDIR
    files = {f"{p.parent.name}/{p.name}": sha256_file(p) for p in sorted(folder.glob("S*/S*.pkl"))}
    return TaskData(*sets, _regression_collate, "regression", None, source, str(folder), files)


#: task name -> builder
TASKS: dict[str, Callable[..., TaskData]] = {"uea": uea_task, "ppg_dalia": ppg_dalia_task}
