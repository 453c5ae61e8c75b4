"""Liquid-S4 tasks for the engine: dataset → :class:`~liquidssm.repro.taskbase.TaskData`.

Chapters ``reproductions/02_how_reproductions_run`` and ``reproductions/10``-``19`` (the
Liquid-S4 tables). Each builder takes ``(args, seed, data_root, cache_dir)``; ``args["source"]``
chooses

* ``"release"``: the real dataset in its release layout, read by the loaders of
  :mod:`liquidssm.data` (a missing dataset names its path and the ``liquidssm data`` command);
* ``"generated"`` (ListOps, Pathfinder): data made by the LRA procedures of
  :mod:`liquidssm.data.listops_gen` / :mod:`liquidssm.data.pathfinder_gen`;
* ``"fixture"`` (IMDB, AAN, CIFAR, Speech Commands, BIDMC): small files **in the release
  layout**, written by each dataset's ``write_fixture`` (:mod:`liquidssm.data.imdb`, ...) and
  read back by the same loaders, whose content carries a learnable class- (or target-)
  dependent signal, so a smoke run can prove that loader, model, loss and optimiser learn.

Generated and fixture data are written once per argument set into an atomic cache folder
(:func:`liquidssm.repro.taskbase.cached_folder`). The smoke-only size arguments (``max_samples``
of Speech Commands, the fixture sizes) change sizes, never the code path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from liquidssm import paths
from liquidssm.data import aan as aan_data
from liquidssm.data import bidmc as bidmc_data
from liquidssm.data import cifar as cifar_data
from liquidssm.data import imdb as imdb_data
from liquidssm.data import pathfinder as pathfinder_data
from liquidssm.data import pathfinder_gen
from liquidssm.data import speech_commands as sc_data
from liquidssm.data.aan import write_fixture as write_aan_fixture
from liquidssm.data.bidmc import write_fixture as write_bidmc_fixture
from liquidssm.data.cifar import write_fixture as write_cifar_fixture
from liquidssm.data.imdb import write_fixture as write_imdb_fixture
from liquidssm.data.listops import ListOps
from liquidssm.data.listops_gen import generate_listops
from liquidssm.data.speech_commands import write_fixture as write_speech_fixture
from liquidssm.repro.taskbase import (
    TaskData,
    cached_folder,
    check_task_args,
    sha256_file,
    stack_collate,
    token_collate,
)

__all__ = [
    "TASKS",
    "listops_task",
    "imdb_task",
    "aan_task",
    "cifar_task",
    "pathfinder_task",
    "speech_commands_task",
    "bidmc_task",
    "regression_collate",
    "ZeroShotEntryError",
    "WRITER_VERSION",
]


#: bumped whenever a fixture writer changes what it writes, so cached fixture folders are rebuilt
WRITER_VERSION = 2


class ZeroShotEntryError(ValueError):
    """A zero-shot registry entry (Table 4 / S2, 8 kHz) was asked to train; it is evaluated."""


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------

def _tree_digest(folder: Path, pattern: str) -> str:
    """SHA-256 over the relative names and sizes of ``folder``'s files matching ``pattern``.

    Used for release trees of tens of thousands of files (IMDB, Speech Commands, Pathfinder),
    where hashing every byte at each run would cost more than it tells.
    """
    h = hashlib.sha256()
    for p in sorted(folder.rglob(pattern)):
        if p.is_file():
            h.update(f"{p.relative_to(folder)}\t{p.stat().st_size}\n".encode())
    return h.hexdigest()


def _files_digest(folder: Path, pattern: str) -> str:
    """SHA-256 over the relative names and bytes of ``folder``'s files matching ``pattern`` (fixtures)."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob(pattern)):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode())
            h.update(sha256_file(p).encode())
    return h.hexdigest()


def _source(args: dict[str, Any], task: str, allowed: tuple[str, ...]) -> str:
    source = args.pop("source", "release")
    if source not in allowed:
        raise ValueError(f"task {task!r}: source expected one of {allowed}, got {source!r}")
    return source


def _release_only(args: dict[str, Any], task: str, extra: tuple[str, ...]) -> None:
    given = sorted(k for k in args if k in extra)
    if given:
        raise ValueError(f"task {task!r}: {given} apply only to generated or fixture data")


def regression_collate(batch: list) -> tuple[torch.Tensor, torch.Tensor, None]:
    """Equal-length series with real targets ``(x (T, C), y)`` → ``(x (B, T, C), y (B, 1), None)``."""
    x = torch.stack([b[0] for b in batch])
    y = torch.stack([torch.as_tensor(b[1], dtype=torch.float32).reshape(-1) for b in batch])
    return x, y, None


class _Crop(Dataset):
    """The first ``n`` steps of every item ``(x (T, C), y)`` of ``base`` (short smoke clips)."""

    def __init__(self, base: Dataset, n: int) -> None:
        self.base, self.n = base, int(n)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Any]:
        x, y = self.base[i]
        return x[: self.n], y


def _check_vocab(vocab_size: int, max_tokens: int | None, task: str) -> None:
    if max_tokens is not None and vocab_size > max_tokens:
        raise ValueError(f"task {task!r}: the vocabulary has {vocab_size} tokens but the model's "
                         f"embedding holds max_tokens = {max_tokens}; raise model.n_tokens and "
                         "task.max_tokens together")


# ------------------------------------------------------------------------------------------------
# ListOps (Table 1, Figure 1)
# ------------------------------------------------------------------------------------------------

def listops_task(args: dict[str, Any], seed: int, data_root: str | os.PathLike[str] | None,
                 cache_dir: str | os.PathLike[str] | None) -> TaskData:
    """ListOps (Liquid-S4 Table 1): the LRA release, or data generated by the LRA procedure."""
    args = dict(args)
    check_task_args(args, {"source", "l_max", "n_train", "n_val", "n_test", "min_length", "max_length",
                "max_depth", "max_args", "data_seed"}, "listops")
    source = args.pop("source", "release")
    l_max = int(args.pop("l_max", 2048))
    if source == "release":
        if args:
            raise ValueError(f"task 'listops': {sorted(args)} apply only to source='generated'")
        root = paths.raw_data_dir(data_root)
    elif source == "generated":
        gen = {"n_train": 2000, "n_val": 500, "n_test": 500, "min_length": 5, "max_length": 100,
               "max_depth": 3, "max_args": 5, "data_seed": 0, **args}

        def write(folder: Path) -> None:
            generate_listops(folder / "listops", n_train=gen["n_train"], n_val=gen["n_val"],
                             n_test=gen["n_test"], min_length=gen["min_length"],
                             max_length=gen["max_length"], max_depth=gen["max_depth"],
                             max_args=gen["max_args"], seed=gen["data_seed"], progress=False)

        root = cached_folder("listops", gen, write, cache_dir)
    else:
        raise ValueError(f"task 'listops': source expected 'release' or 'generated', got {source!r}")
    train = ListOps("train", root=root, l_max=l_max)
    val = ListOps("val", root=root, l_max=l_max, vocab=train.vocab)
    test = ListOps("test", root=root, l_max=l_max, vocab=train.vocab)
    files = {p.name: sha256_file(p) for p in (train.path, val.path, test.path)}
    return TaskData(train, val, test, token_collate(train.vocab.pad), "classification", 10,
                    source, str(Path(root) / "listops"), files)


# ------------------------------------------------------------------------------------------------
# IMDB (Table 1 "Text", Figure 1)
# ------------------------------------------------------------------------------------------------

def imdb_task(args: dict[str, Any], seed: int, data_root: str | os.PathLike[str] | None,
              cache_dir: str | os.PathLike[str] | None) -> TaskData:
    """LRA Text (IMDB, characters; Liquid-S4 Table 1): the ``aclImdb`` release or a fixture.

    LRA has no validation split: the test split is evaluated as validation too (the released
    config's ``val_split=0``), so "validation accuracy" of Table 1 is test accuracy here.
    """
    args = dict(args)
    fixture_keys = ("n_train", "n_test", "min_words", "max_words", "sentiment_rate", "agreement",
                    "data_seed")
    check_task_args(args, {"source", "l_max", "min_freq", "max_tokens", *fixture_keys}, "imdb")
    source = _source(args, "imdb", ("release", "fixture"))
    l_max, min_freq = int(args.pop("l_max", 4096)), int(args.pop("min_freq", 15))
    max_tokens = args.pop("max_tokens", None)
    if source == "release":
        _release_only(args, "imdb", fixture_keys)
        root = paths.raw_data_dir(data_root)
    else:
        gen = {"writer": WRITER_VERSION, "n_train": 200, "n_test": 100, "min_words": 15, "max_words": 40,
               "sentiment_rate": 0.3, "agreement": 0.8, "data_seed": 0, **args}
        root = cached_folder("imdb", gen, lambda f: write_imdb_fixture(
            f, gen["n_train"], gen["n_test"], gen["min_words"], gen["max_words"],
            gen["sentiment_rate"], gen["agreement"], gen["data_seed"]), cache_dir)
    train = imdb_data.IMDB("train", root=root, l_max=l_max, min_freq=min_freq)
    test = imdb_data.IMDB("test", root=root, l_max=l_max, vocab=train.vocab)
    _check_vocab(len(train.vocab), max_tokens, "imdb")
    base = Path(root) / imdb_data.SUBDIR / "aclImdb"
    digest = _files_digest(base, "*.txt") if source == "fixture" else _tree_digest(base, "*.txt")
    return TaskData(train, test, test, token_collate(train.vocab.pad), "classification", 2, source,
                    str(base), {"aclImdb/*.txt (names, sizes)" if source == "release"
                                else "aclImdb/*.txt": digest})


# ------------------------------------------------------------------------------------------------
# AAN retrieval (Table 1 "Retrieval")
# ------------------------------------------------------------------------------------------------

def aan_task(args: dict[str, Any], seed: int, data_root: str | os.PathLike[str] | None,
             cache_dir: str | os.PathLike[str] | None) -> TaskData:
    """LRA Retrieval (AAN document pairs, bytes; Liquid-S4 Table 1): the release or a fixture.

    Batches are ``(x (2B, L), y (B,), lengths (2B,))``: both documents padded to one ``L`` and
    stacked, as the retrieval head of :class:`liquidssm.layers.SequenceModel` expects.
    """
    args = dict(args)
    fixture_keys = ("n_train", "n_val", "n_test", "min_words", "max_words", "topic_rate", "data_seed")
    check_task_args(args, {"source", "l_max", "max_tokens", *fixture_keys}, "aan")
    source = _source(args, "aan", ("release", "fixture"))
    l_max = int(args.pop("l_max", 4000))
    max_tokens = args.pop("max_tokens", None)
    if source == "release":
        _release_only(args, "aan", fixture_keys)
        root = paths.raw_data_dir(data_root)
    else:
        gen = {"writer": WRITER_VERSION, "n_train": 400, "n_val": 100, "n_test": 100, "min_words": 10, "max_words": 25,
               "topic_rate": 0.4, "data_seed": 0, **args}
        root = cached_folder("aan", gen, lambda f: write_aan_fixture(
            f, gen["n_train"], gen["n_val"], gen["n_test"], gen["min_words"], gen["max_words"],
            gen["topic_rate"], gen["data_seed"]), cache_dir)
    train = aan_data.AAN("train", root=root, l_max=l_max)
    val = aan_data.AAN("val", root=root, l_max=l_max, vocab=train.vocab)
    test = aan_data.AAN("test", root=root, l_max=l_max, vocab=train.vocab)
    _check_vocab(len(train.vocab), max_tokens, "aan")
    folder = Path(root) / aan_data.SUBDIR
    files = {p.name: sha256_file(p) for p in sorted(folder.glob("new_aan_pairs.*.tsv"))}
    return TaskData(train, val, test, aan_data.AAN.collate, "classification", 2, source,
                    str(folder), files)


# ------------------------------------------------------------------------------------------------
# CIFAR-10: LRA "Image" (grayscale, Table 1) and sCIFAR (colour, Table 3)
# ------------------------------------------------------------------------------------------------

def cifar_task(args: dict[str, Any], seed: int, data_root: str | os.PathLike[str] | None,
               cache_dir: str | os.PathLike[str] | None) -> TaskData:
    """CIFAR-10 as 1024 pixels: ``grayscale=True`` is LRA "Image" (Table 1), ``False`` sCIFAR (Table 3).

    Train/validation split 45000/5000 with seed 42 as the released code (``val_size`` for the
    fixture); test = the 10000 test images.
    """
    args = dict(args)
    fixture_keys = ("n_per_batch", "noise", "data_seed")
    check_task_args(args, {"source", "grayscale", "val_size", *fixture_keys}, "cifar")
    source = _source(args, "cifar", ("release", "fixture"))
    grayscale = bool(args.pop("grayscale", True))
    val_size = int(args.pop("val_size", 5000))
    if source == "release":
        _release_only(args, "cifar", fixture_keys)
        root = paths.raw_data_dir(data_root)
    else:
        gen = {"writer": WRITER_VERSION, "n_per_batch": 100, "noise": 40.0, "data_seed": 0, **args}
        root = cached_folder("cifar", gen, lambda f: write_cifar_fixture(
            f, gen["n_per_batch"], gen["noise"], gen["data_seed"]), cache_dir)
    sets = [cifar_data.CIFAR10Sequence(s, root=root, grayscale=grayscale, val_size=val_size)
            for s in ("train", "val", "test")]
    folder = Path(root) / cifar_data.SUBDIR
    files = {p.name: sha256_file(p) for p in sorted(folder.glob("*.bin"))}
    return TaskData(*sets, stack_collate, "classification", 10, source, str(folder), files)


# ------------------------------------------------------------------------------------------------
# Pathfinder and Path-X (Table 1)
# ------------------------------------------------------------------------------------------------

#: generator fields a task may override (the rest follow :data:`pathfinder_gen.PARAMS`)
_PF_FIELDS = ("contour_length", "num_distractor_snakes", "distractor_length", "paddle_thickness",
              "marker_radius", "seed_distance", "continuity")


def pathfinder_task(args: dict[str, Any], seed: int, data_root: str | os.PathLike[str] | None,
                    cache_dir: str | os.PathLike[str] | None) -> TaskData:
    """Pathfinder (``resolution=32``, L = 1024) and Path-X (``128``, L = 16384) of Liquid-S4 Table 1.

    ``source="generated"`` draws ``n_images`` images with the LRA Pathfinder procedure
    (:func:`liquidssm.data.pathfinder_gen.generate_pathfinder`), optionally with easier
    parameters (``contour_length``, ``num_distractor_snakes``, ...), and writes them in the
    release layout that :class:`liquidssm.data.pathfinder.PathFinder` reads (split 80/10/10,
    seed 42, as the released code).
    """
    args = dict(args)
    gen_keys = ("n_images", "data_seed", *_PF_FIELDS)
    check_task_args(args, {"source", "resolution", *gen_keys}, "pathfinder")
    source = _source(args, "pathfinder", ("release", "generated"))
    resolution = int(args.pop("resolution", 32))
    if resolution not in pathfinder_data.RESOLUTIONS:
        raise ValueError(f"task 'pathfinder': resolution expected one of "
                         f"{sorted(pathfinder_data.RESOLUTIONS)}, got {resolution}")
    if source == "release":
        _release_only(args, "pathfinder", gen_keys)
        root = paths.raw_data_dir(data_root)
    else:
        gen = {"writer": WRITER_VERSION, "resolution": resolution, "n_images": 1000, "data_seed": 0, **args}
        changes = {k: gen[k] for k in _PF_FIELDS if k in gen}

        def write(folder: Path) -> None:
            params = dataclasses.replace(pathfinder_gen.PARAMS[resolution], **changes)
            out = (folder / "pathfinder" / pathfinder_data.RESOLUTIONS[resolution]
                   / pathfinder_data.DIFFICULTY)
            pathfinder_gen.generate_pathfinder(out, gen["n_images"], params, seed=gen["data_seed"],
                                               images_per_batch=1000, progress=False)

        root = cached_folder(f"pathfinder{resolution}", gen, write, cache_dir)
    sets = [pathfinder_data.PathFinder(s, resolution=resolution, root=root)
            for s in ("train", "val", "test")]
    base = sets[0].base
    files = {"metadata/*.npy": _files_digest(base / "metadata", "*.npy"),
             "imgs/*.png (names, sizes)": _tree_digest(base / "imgs", "*.png")}
    return TaskData(*sets, stack_collate, "classification", 2, source, str(base), files)


# ------------------------------------------------------------------------------------------------
# Speech Commands: SC35 (Table 4) and SC10 (Table S2), 16 kHz and the 8 kHz zero-shot test
# ------------------------------------------------------------------------------------------------

def _sc_statistics(train: sc_data.SpeechCommands, key: dict[str, Any],
                   cache_dir: str | os.PathLike[str] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """S4's per-time-index mean and std over the 16 kHz training clips, computed once and cached."""
    def write(folder: Path) -> None:
        mean, std = sc_data.per_time_statistics(train)
        torch.save({"mean": mean, "std": std}, folder / "statistics.pt")

    folder = cached_folder("speech-commands-statistics", key, write, cache_dir)
    saved = torch.load(folder / "statistics.pt", weights_only=True)
    return saved["mean"], saved["std"]


def speech_commands_task(args: dict[str, Any], seed: int, data_root: str | os.PathLike[str] | None,
                         cache_dir: str | os.PathLike[str] | None) -> TaskData:
    """Raw Speech Commands (Liquid-S4 Table 4: ``classes="all"``, 35 words; Table S2: ``"sc10"``).

    ``resolution=1`` reads 16 kHz clips (16000 steps), ``2`` subsamples them by 2 (8 kHz, the
    zero-shot test of a model trained at 16 kHz; :mod:`liquidssm.repro.zeroshot`).
    ``normalize=True`` standardises every time index with the 16 kHz training statistics, as the
    released code does (before subsampling). ``max_samples`` (smoke only) keeps the first so many
    16 kHz samples of each clip (``max_samples // resolution`` steps). A registry entry that
    names ``zero_shot_of`` is an evaluation of another entry's model and is refused here.
    """
    args = dict(args)
    if "zero_shot_of" in args:
        raise ZeroShotEntryError(
            f"task 'speech_commands': this entry is the zero-shot evaluation (resolution "
            f"{args.get('resolution')}) of the model trained by {args['zero_shot_of']!r}; it is "
            "not trained. Evaluate it with liquidssm.repro.runs.ensure_results (the "
            "Table 4 / S2 chapters do)")
    fixture_keys = ("n_train", "n_val", "n_test", "clip_samples", "data_seed")
    check_task_args(args, {"source", "classes", "resolution", "normalize", "max_samples",
                           *fixture_keys}, "speech_commands")
    source = _source(args, "speech_commands", ("release", "fixture"))
    classes = args.pop("classes", "all")
    resolution = int(args.pop("resolution", 1))
    normalize = bool(args.pop("normalize", True))
    max_samples = args.pop("max_samples", None)
    if source == "release":
        _release_only(args, "speech_commands", fixture_keys)
        root = paths.raw_data_dir(data_root)
    else:
        gen = {"writer": WRITER_VERSION, "classes": classes, "n_train": 12, "n_val": 4, "n_test": 4, "clip_samples": 2000,
               "data_seed": 0, **args}
        root = cached_folder("speech-commands", gen, lambda f: write_speech_fixture(
            f, gen["classes"], gen["n_train"], gen["n_val"], gen["n_test"], gen["clip_samples"],
            gen["data_seed"]), cache_dir)
    base = Path(root) / sc_data.SUBDIR
    train16 = sc_data.SpeechCommands("train", root=root, classes=classes)
    lists = {p.name: sha256_file(p) for p in (base / "validation_list.txt", base / "testing_list.txt")}
    stats = None
    if normalize:
        key = {"root": str(base.resolve()), "classes": classes, "n_train": len(train16), **lists}
        stats = _sc_statistics(train16, key, cache_dir)
    sets: list[Dataset] = [sc_data.SpeechCommands(s, root=root, classes=classes, resolution=resolution,
                                                  normalize=stats) for s in ("train", "val", "test")]
    if max_samples is not None:
        sets = [_Crop(s, int(max_samples) // resolution) for s in sets]
    wav_digest = (_files_digest if source == "fixture" else _tree_digest)(base, "*.wav")
    files = {**lists, "*/*.wav" + (" (names, sizes)" if source == "release" else ""): wav_digest}
    n_classes = len(sc_data.ALL_CLASSES) if classes == "all" else len(sc_data.SC10_CLASSES)
    return TaskData(*sets, stack_collate, "classification", n_classes, source, str(base), files)


# ------------------------------------------------------------------------------------------------
# BIDMC vital signs regression (Table 2)
# ------------------------------------------------------------------------------------------------

def bidmc_task(args: dict[str, Any], seed: int, data_root: str | os.PathLike[str] | None,
               cache_dir: str | os.PathLike[str] | None) -> TaskData:
    """BIDMC32 HR / RR / SpO2 regression (Liquid-S4 Table 2, RMSE): the TSER release or a fixture."""
    args = dict(args)
    fixture_keys = ("n_train", "n_test", "length", "data_seed")
    check_task_args(args, {"source", "target", *fixture_keys}, "bidmc")
    source = _source(args, "bidmc", ("release", "fixture"))
    target = args.pop("target")
    if source == "release":
        _release_only(args, "bidmc", fixture_keys)
        root = paths.raw_data_dir(data_root)
    else:
        gen = {"writer": WRITER_VERSION, "n_train": 280, "n_test": 120, "length": 200, "data_seed": 0, **args}
        root = cached_folder("bidmc", gen, lambda f: write_bidmc_fixture(
            f, gen["n_train"], gen["n_test"], gen["length"], gen["data_seed"]), cache_dir)
    sets = [bidmc_data.BIDMC(s, target=target, root=root) for s in ("train", "val", "test")]
    folder = Path(root) / bidmc_data.SUBDIR
    files = {p.name: sha256_file(p) for p in sorted(folder.glob(f"BIDMC32{target}_*.ts"))}
    return TaskData(*sets, regression_collate, "regression", None, source, str(folder), files)


#: task name -> builder
TASKS: dict[str, Callable[..., TaskData]] = {
    "listops": listops_task,
    "imdb": imdb_task,
    "aan": aan_task,
    "cifar": cifar_task,
    "pathfinder": pathfinder_task,
    "speech_commands": speech_commands_task,
    "bidmc": bidmc_task,
}
