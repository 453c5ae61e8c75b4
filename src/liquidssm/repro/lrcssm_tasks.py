"""LrcSSM tasks for the engine: dataset → :class:`~liquidssm.repro.tasks.TaskData`.

Chapter ``reproductions/02_how_reproductions_run`` and the LrcSSM table chapters. Each builder
takes ``(args, seed, data_root, cache_dir)``; ``args["source"]`` chooses the real release or a
fixture in the release layout with a learnable class-dependent signal.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch.utils.data import TensorDataset

from liquidssm import paths
from liquidssm.data import uea
from liquidssm.repro.tasks import (
    TaskData,
    cached_folder,
    check_task_args,
    sha256_file,
    stack_collate,
)

__all__ = ["TASKS", "uea_task"]


def uea_task(args: dict[str, Any], seed: int, data_root: str | os.PathLike[str] | None,
             cache_dir: str | os.PathLike[str] | None) -> TaskData:
    """UEA classification (LrcSSM Table 1): the run seed selects the 70/15/15 split.

    ``splits="lrcssm"`` reads the LrcSSM repository's split pickles (the paper's exact splits);
    ``"ours"`` splits the merged ``.ts`` release with :func:`liquidssm.data.uea.split_indices`.
    ``source="fixture"`` writes ``.ts`` files in the release layout whose series carry a
    class-dependent mean shift (:func:`liquidssm.data.uea.write_fixture`).
    """
    args = dict(args)
    check_task_args(args, {"source", "name", "splits", "n", "length", "data_seed"}, "uea")
    source = args.pop("source", "release")
    name = args.pop("name")
    splits = args.pop("splits", "ours")
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
    if splits == "lrcssm":
        parts = uea.load_lrcssm_split(name, seed, root=root)
        sets = [TensorDataset(*parts[s]) for s in ("train", "val", "test")]
        n_classes = int(max(int(parts[s][1].max()) for s in parts)) + 1
        location = str(Path(root) / "lrcssm_splits" / name / str(seed))
        files: dict[str, str] = {}
    elif splits == "ours":
        sets = [uea.UEA(name, s, seed=seed, root=root) for s in ("train", "val", "test")]
        n_classes = len(sets[0].classes)
        folder = Path(root) / uea.SUBDIR / name
        location = str(folder)
        files = {p.name: sha256_file(p) for p in sorted(folder.glob("*.ts"))}
    else:
        raise ValueError(f"task 'uea': splits expected 'lrcssm' or 'ours', got {splits!r}")
    return TaskData(*sets, stack_collate, "classification", n_classes, source, location, files)


#: task name -> builder
TASKS: dict[str, Callable[..., TaskData]] = {"uea": uea_task}
