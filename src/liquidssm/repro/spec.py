"""The schema of an experiment: optimisation, training, profiles, the entry, the run spec, the launch.

Chapter ``reproductions/02_how_reproductions_run``. Pure data (no torch import). An
:class:`Experiment` names its paper cell (paper, table, row = the model as printed, column = the
task), the task, the model configuration (:mod:`liquidssm.configs`), the optimisation and
training settings, the seeds and the paper's value; where the released code's configuration
differs from the paper, ``released`` records the released values. ``profiles`` hold the
per-profile overrides: ``full`` is the paper's setting, ``smoke`` a CPU-sized run on data with a
learnable signal, which must reach ``smoke_target``. :func:`resolve` applies a profile and
returns the :class:`RunSpec` the engine trains; its :meth:`RunSpec.config_hash` identifies the
run for exact resume. The entries themselves live in :mod:`liquidssm.repro.papers.liquid_s4.experiments`
and :mod:`liquidssm.repro.papers.lrcssm.experiments`, collected by :mod:`liquidssm.repro.experiments`.
:class:`Launch` says where and how one run trains (device, processes, folders); the command line
and :mod:`liquidssm.repro.runs` build it, :func:`liquidssm.repro.train.fit` takes it whole.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from liquidssm.configs import ModelConfig

__all__ = ["Optimisation", "Training", "Profile", "Experiment", "RunSpec", "Launch", "PROFILES",
           "RUN_VARIANTS", "PRECISIONS", "DEVICES", "DT_LRS", "maximise", "resolve", "released_overrides", "check_placement"]

#: the two profiles of every entry: a CPU-sized run on data with a learnable signal, the paper's run
PROFILES = ("smoke", "full")
#: what a run trains: the registry's settings (``"paper"``) or the released code's (``"released"``,
#: the entry's ``released`` values applied; its results and checkpoints go to their own folders)
RUN_VARIANTS = ("paper", "released")
#: precisions Fabric may use; the ``*-true`` half precisions break the FFT path (engine notes)
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
#: accelerators a run may ask Fabric for
DEVICES = ("cpu", "cuda", "auto")
#: which learning rate Δ trains at (:attr:`Optimisation.dt_lr`): the SSM group's, or the global one
DT_LRS = ("ssm", "global")


def maximise(quantity: str) -> bool:
    """True when a larger ``quantity`` is better: accuracies; False for losses and errors.

    The one rule for every direction in the wing: ``"accuracy_pct"``, ``"val_accuracy"`` →
    True; ``"rmse"``, ``"mse_x1e-2"``, ``"val_loss"``, ``"val_rmse"`` → False.
    """
    name = quantity.removeprefix("val_").removeprefix("test_")
    if name.startswith("accuracy"):
        return True
    if name.startswith(("loss", "rmse", "mse")):
        return False
    raise ValueError(f"quantity: expected an accuracy, loss or (R)MSE name, got {quantity!r}")


@dataclass(frozen=True)
class Optimisation:
    """Optimiser and learning-rate schedule (chapter ``reproductions/02``; ``repro.optim``).

    ``optimizer``: ``"adamw"`` (Liquid-S4: AdamW with the SSM parameters Λ, P, B, Δ in their own
    group with ``ssm_lr`` and no weight decay) or ``"adam"`` (LrcSSM: optax Adam, no decay).
    ``dt_lr``: the learning rate of Δ (``log_dt``): ``"ssm"`` (``ssm_lr``, as the released configs
    with one SSM rate, e.g. ``lr: 0.001``) or ``"global"`` (``lr``, as the released configs with
    ``lr: {dt: null, A: x, B: x}``); Δ has no weight decay either way (chapter
    ``reproductions/19_ls4_hyperparameters``).
    ``schedule``: ``"constant"``, ``"cosine_warmup"`` (per optimiser step; ``warmup_steps``,
    ``schedule_steps`` = the released configs' ``num_training_steps``) or ``"multistep"`` (per
    epoch; ``milestones``, ``gamma``). ``grad_clip``: global-norm clipping (LrcSSM clips at 1.0;
    Liquid-S4 does not clip).
    """

    lr: float
    optimizer: str = "adamw"
    ssm_lr: float | None = None
    dt_lr: str = "ssm"
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    schedule_steps: int | None = None
    milestones: tuple[int, ...] = ()
    gamma: float = 0.5
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr: expected a positive learning rate, got {self.lr!r}")
        if self.ssm_lr is not None and not self.ssm_lr > 0:
            raise ValueError(f"ssm_lr: expected a positive learning rate or None, got {self.ssm_lr!r}")
        if self.dt_lr not in DT_LRS:
            raise ValueError(f"dt_lr: expected one of {list(DT_LRS)}, got {self.dt_lr!r}")
        if self.optimizer not in ("adamw", "adam"):
            raise ValueError(f"optimizer: expected 'adamw' or 'adam', got {self.optimizer!r}")
        if self.schedule not in ("constant", "cosine_warmup", "multistep"):
            raise ValueError("schedule: expected 'constant', 'cosine_warmup' or 'multistep', "
                             f"got {self.schedule!r}")
        if self.schedule == "cosine_warmup" and not (self.schedule_steps or 0) > self.warmup_steps:
            raise ValueError("schedule_steps: cosine_warmup needs schedule_steps > warmup_steps, got "
                             f"{self.schedule_steps!r} and {self.warmup_steps!r}")
        if self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError("weight_decay, warmup_steps: expected >= 0, got "
                             f"{self.weight_decay!r}, {self.warmup_steps!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip: expected a positive norm or None, got {self.grad_clip!r}")


@dataclass(frozen=True)
class Training:
    """Budget, batching, evaluation and model selection (chapter ``reproductions/02``).

    ``epochs``/``max_steps``: whichever ends first (``None`` = no limit from that one).
    ``eval_every``: evaluate every so many optimiser steps (``None`` = at each epoch's end).
    ``monitor``: ``"val_accuracy"`` (max) or ``"val_loss"``/``"val_rmse"`` (min); the reported
    test value is the one at the best validation evaluation (``ties="latest"``: a tie counts as an
    improvement, as LrcSSM's ``>=``; ``"first"`` keeps the earlier one). ``patience``: stop after
    so many evaluations without improvement (``None`` = never). ``report``: which split the paper
    table reports (``"test"``, or ``"val"`` where the caption says validation accuracy).
    ``init_seed``: a fixed model-initialisation seed (LrcSSM's code uses 0 for every split; the
    run seed then chooses only the data split and order); ``None`` = the run seed.
    """

    batch_size: int
    epochs: int | None = None
    max_steps: int | None = None
    eval_batch_size: int | None = None
    drop_last: bool = True
    eval_drop_last: bool = False
    eval_every: int | None = None
    monitor: str = "val_accuracy"
    ties: str = "latest"
    patience: int | None = None
    report: str = "test"
    init_seed: int | None = None
    checkpoint_every: int = 200
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.epochs is None and self.max_steps is None:
            raise ValueError("epochs, max_steps: give at least one budget, got None and None")
        for name in ("batch_size", "epochs", "max_steps", "eval_batch_size", "eval_every",
                     "patience", "checkpoint_every"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        if self.monitor not in ("val_accuracy", "val_loss", "val_rmse"):
            raise ValueError(f"monitor: expected 'val_accuracy', 'val_loss' or 'val_rmse', got {self.monitor!r}")
        if self.ties not in ("latest", "first"):
            raise ValueError(f"ties: expected 'latest' or 'first', got {self.ties!r}")
        if self.report not in ("test", "val"):
            raise ValueError(f"report: expected 'test' or 'val', got {self.report!r}")

    @property
    def maximise(self) -> bool:
        """True when a larger monitored value is better (:func:`maximise` of ``monitor``)."""
        return maximise(self.monitor)


@dataclass(frozen=True)
class Profile:
    """Overrides of one profile: field → value for the model, optimisation, training and task."""

    model: dict[str, Any] = field(default_factory=dict)
    optim: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Experiment:
    """One runnable paper-table cell (see the module docstring)."""

    id: str
    paper: str
    table: str
    row: str
    column: str
    task: str
    task_args: dict[str, Any]
    model: ModelConfig
    optim: Optimisation
    train: Training
    seeds: tuple[int, ...]
    paper_value: float | None
    paper_std: float | None = None
    metric: str = "accuracy_pct"
    released: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    smoke_target: float | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if self.paper not in ("liquid-s4", "lrcssm"):
            raise ValueError(f"paper: expected 'liquid-s4' or 'lrcssm', got {self.paper!r}")
        unknown = sorted(set(self.profiles) - set(PROFILES))
        if unknown:
            raise ValueError(f"profiles: unknown profile(s) {unknown}; valid: {list(PROFILES)}")
        maximise(self.metric)  # refuses a metric whose direction is unknown

    @property
    def maximise(self) -> bool:
        """True when a larger reported value is better (accuracy); False for RMSE/MSE cells."""
        return maximise(self.metric)

    @property
    def zero_shot_of(self) -> str | None:
        """The id of the entry whose trained model this evaluation-only entry evaluates, else None."""
        return self.task_args.get("zero_shot_of")


@dataclass(frozen=True)
class RunSpec:
    """An experiment with one profile applied: everything the engine needs, nothing else."""

    experiment_id: str
    profile: str
    task: str
    task_args: dict[str, Any]
    model: ModelConfig
    optim: Optimisation
    train: Training
    seeds: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored in checkpoints and results; the id under ``"experiment"``)."""
        return {"experiment": self.experiment_id, "profile": self.profile, "task": self.task,
                "task_args": dict(self.task_args), "model": self.model.to_dict(),
                "optim": dataclasses.asdict(self.optim), "train": dataclasses.asdict(self.train)}

    def config_hash(self) -> str:
        """SHA-256 (16 hex digits) of :meth:`to_dict` as canonical JSON; equal settings, equal hash."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _replace(obj: Any, changes: dict[str, Any], what: str) -> Any:
    names = {f.name for f in dataclasses.fields(obj)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ValueError(f"{what}: unknown field(s) {unknown}; valid: {sorted(names)}")
    return dataclasses.replace(obj, **changes)


def resolve(exp: Experiment, profile: str = "smoke", overrides: dict[str, dict[str, Any]] | None = None
            ) -> RunSpec:
    """Apply ``profile`` (then ``overrides`` = ``{"model"|"optim"|"train"|"task": {...}}``) to ``exp``."""
    if profile not in PROFILES:
        raise ValueError(f"profile: expected one of {list(PROFILES)}, got {profile!r}")
    prof = exp.profiles.get(profile, Profile())
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError(f"overrides: expected a mapping {{section: {{field: value}}}}, got "
                        f"{type(overrides).__name__} {overrides!r}")
    extra = dict(overrides or {})
    bad = sorted(set(extra) - {"model", "optim", "train", "task"})
    if bad:
        raise ValueError(f"overrides: unknown section(s) {bad}; valid: model, optim, train, task")
    for section, fields in extra.items():
        if not isinstance(fields, Mapping):
            raise TypeError(f"overrides[{section!r}]: expected a mapping of field -> value, got "
                            f"{type(fields).__name__} {fields!r}")
    model = _replace(exp.model, {**prof.model, **extra.get("model", {})}, f"{exp.id} model")
    optim = _replace(exp.optim, {**prof.optim, **extra.get("optim", {})}, f"{exp.id} optim")
    train = _replace(exp.train, {**prof.train, **extra.get("train", {})}, f"{exp.id} train")
    task_args = {**exp.task_args, **prof.task, **extra.get("task", {})}
    seeds = prof.seeds if prof.seeds is not None else exp.seeds
    return RunSpec(exp.id, profile, exp.task, task_args, model, optim, train, tuple(seeds))


def released_overrides(exp: Experiment, profile: str = "full") -> dict[str, dict[str, Any]]:
    """``exp.released`` (``{"section.field": value}``) as :func:`resolve` overrides.

    In ``full`` every released value applies: the run is what the released code ran. In another
    profile a released value of a field the profile itself sets is left out, so a smoke run of the
    released variant keeps the smoke sizes and changes only the released code's behaviour -- except
    a released ``None``, which says the released code has no such setting (Liquid-S4's official
    kernel derives L̃ itself: ``model.liquid_window = None``), so it applies in every profile.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile: expected one of {list(PROFILES)}, got {profile!r}")
    prof = exp.profiles.get(profile, Profile())
    out: dict[str, dict[str, Any]] = {}
    for key, value in exp.released.items():
        section, dot, name = key.partition(".")
        if not dot or section not in ("model", "optim", "train", "task"):
            raise ValueError(f"{exp.id} released: expected 'section.field' keys, got {key!r}")
        if profile != "full" and name in getattr(prof, section) and value is not None:
            continue
        out.setdefault(section, {})[name] = value
    return out


PathLike = str | os.PathLike[str]


def check_placement(launch: Any, *, option: Callable[[str], str] = lambda name: name,
                    error: type[Exception] = ValueError) -> str:
    """Check the ``device``, ``devices``, ``num_nodes`` and ``precision`` fields of ``launch``; return the device.

    The one check of where a run trains, shared by :class:`Launch` and the campaign's job
    options (:class:`liquidssm.repro.campaign.JobLaunch`): ``"gpu"`` is read as ``"cuda"``,
    counts are integers ``>= 1``, the precision one of :data:`PRECISIONS`. ``option`` spells a
    field's name in the messages (``"--num-nodes"`` on a command line), ``error`` is the class raised.
    """
    device = "cuda" if launch.device == "gpu" else launch.device
    if device not in DEVICES:
        raise error(f"{option('device')}: expected one of {list(DEVICES)} (or 'gpu'), got {launch.device!r}")
    for name in ("devices", "num_nodes"):
        v = getattr(launch, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise error(f"{option(name)}: expected an integer >= 1, got {v!r}")
    if launch.precision not in PRECISIONS:
        raise error(f"{option('precision')}: expected one of {list(PRECISIONS)} (the '*-true' half modes "
                    f"break the FFT convolution), got {launch.precision!r}")
    return device


@dataclass(frozen=True)
class Launch:
    """Where and how one run trains: everything :func:`liquidssm.repro.train.fit` needs besides
    the entry, the profile, the seed and the overrides (chapter ``reproductions/02``).

    ``device``: ``"cpu"``, ``"cuda"`` or ``"auto"`` (``"gpu"`` is read as ``"cuda"``);
    ``devices``/``num_nodes``: processes per node and nodes (Fabric DDP when their product is
    > 1); ``precision``: one of :data:`PRECISIONS` (``"32-true"`` on a CPU); ``max_minutes``:
    checkpoint and stop after so many minutes (a positive finite number, or ``None``);
    ``restart``: discard this run's checkpoints and start afresh; the folders default to
    :mod:`liquidssm.paths` (results, checkpoints of the run, raw data, generated-data cache);
    ``progress``: progress bars (``None``: only on a terminal); ``tensorboard``: also log to
    TensorBoard. Invalid values are refused here, before any work.
    """

    device: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    precision: str = "32-true"
    max_minutes: float | None = None
    restart: bool = False
    results_dir: PathLike | None = None
    run_dir: PathLike | None = None
    data_root: PathLike | None = None
    cache_dir: PathLike | None = None
    progress: bool | None = None
    tensorboard: bool = False

    def __post_init__(self) -> None:
        device = check_placement(self)
        object.__setattr__(self, "device", device)
        if device == "cpu" and self.precision != "32-true":
            raise ValueError(f"precision: {self.precision!r} is for GPUs; on the CPU use '32-true'")
        m = self.max_minutes
        if m is not None and (isinstance(m, bool) or not isinstance(m, (int, float))
                              or not math.isfinite(m) or m <= 0):
            raise ValueError(f"max_minutes: expected a positive finite number of minutes or None, "
                             f"got {m!r}")
