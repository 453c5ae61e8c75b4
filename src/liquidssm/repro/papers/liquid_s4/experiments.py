"""Registry entries of Liquid-S4 (ICLR 2023): Table S1 and the released configs.

The released configs are ``configs/experiment/{lra,sc,bidmc,cifar}/s4-*.yaml`` of
raminmh/liquid-s4@06031dc (liquid options given on the command line, as its README shows).

Chapters ``reproductions/02_how_reproductions_run`` and ``reproductions/10``-``19``. Pure data (no
torch import). Every Liquid-S4 cell of Tables 1-4 and S2 has an entry ``ls4-t<table>-<task>``
and its S4 twin ``...-s4``: the **same code and settings with the liquid kernel off**
(``layer="s4"``), so the liquid gain is measured rather than quoted. A twin is not the paper's
S4-LegS row (Gu et al.'s numbers with their own settings): it has its own row,
:data:`S4_TWIN_ROW`, and no paper value, so no table puts a difference between the two. Figure 1 (accuracy against the liquid order p on ListOps and IMDB) is a sweep
``ls4-f1-<task>-p<p>``; its points at the Table 1 orders are the Table 1 entries themselves.

Where Table S1 (``data/paper/ls4-tableS1.csv``) and the released configuration disagree, ``full``
follows the paper and ``released`` records the released value (``"section.field": value``):
ListOps epochs, AAN pre-norm, LRA-CIFAR batch size, the 10× Pathfinder learning rate, Δt_max
(the appendix says 0.2 for every experiment; several configs use 0.1), bidirectionality (the
appendix says Liquid-S4 works better causal; three configs are bidirectional), the IMDB length
(Table 1 header 2048, config 4096). What Table S1 does not give (the SSM learning rate, the
schedule, Δt_min, pooling, seeds) comes from the released config, and is made to do there what it
did in the released run (:func:`faithful`): Δ trains at the learning rate the released config
gives it (``lr: {dt: null, ...}`` = the global rate, :data:`RELEASED_OPTIM`), and the cosine
schedule keeps the released run's shape -- the same number of passes through ``T`` and the same
warm-up fraction, ``T`` scaled by our steps per run over the released run's
(:func:`scaled_cosine`; the released literal ``T`` is in ``released``). Every entry's ``released``
also names the released kernel (``model.variant = "official"``: frozen coefficients, all-subsets
PB, L̃ by the binomial rule). :data:`TABLE_S1_ROW` names the
Table S1 row of each entry; :data:`TABLE_S1_FIELDS` maps Table S1 columns to entry fields. The
liquid window L̃, which the paper treats as a hyperparameter without printing it, is the released
code's order-2 window at the task's length (:func:`liquid_window`).

The 8 kHz cells of Tables 4 and S2 are *evaluation* entries: ``task_args["zero_shot_of"]`` names
the 16 kHz entry whose trained model they test at half the sampling rate (:data:`ZERO_SHOT`); their
task refuses to train, and :mod:`liquidssm.repro.zeroshot` writes their results files.

Every entry has a ``smoke`` profile: a tiny model on generated or fixture data in the release
layout with a learnable signal (:mod:`liquidssm.repro.papers.liquid_s4.tasks`), and a ``smoke_target``
the smoke run must reach: an accuracy (%) above chance and the majority class, or for the BIDMC
regression an RMSE the run must stay *below*, under the mean predictor's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from liquidssm.configs import SequenceModelConfig
from liquidssm.repro.shapes import steps_per_epoch, task_shape
from liquidssm.repro.spec import Experiment, Optimisation, Profile, Training

__all__ = [
    "ENTRIES",
    "listops_experiment",
    "Cell",
    "CELLS",
    "cell_entries",
    "imdb_cell",
    "aan_cell",
    "cifar_cell",
    "pathfinder_cell",
    "pathx_cell",
    "bidmc_cell",
    "scifar_cell",
    "speech_cell",
    "zero_shot_entry",
    "table_entries",
    "TABLE_S1_ROW",
    "TABLE_S1_FIELDS",
    "FIGURE1",
    "FIGURE1_ORDERS",
    "ZERO_SHOT",
    "SMOKE_CELLS",
    "IMDB_TOKENS",
    "AAN_TOKENS",
    "liquid_window",
    "S4_LEGS_GU_SC",
    "RELEASED_OPTIM",
    "ReleasedOptim",
    "scaled_cosine",
    "schedule_shape",
    "faithful",
]

#: embedding sizes: upper bounds of the character vocabularies (IMDB ≈ 135, AAN 98 + specials)
IMDB_TOKENS = 160
AAN_TOKENS = 128

#: Table S1 column -> (section, field, how a Table S1 cell reads as that field's value)
TABLE_S1_FIELDS: dict[str, tuple[str, str, Any]] = {
    "depth": ("model", "n_blocks", int),
    "H": ("model", "d_model", int),
    "N": ("model", "d_state", int),
    "norm": ("model", "norm", {"BN": "batch", "LN": "layer"}.__getitem__),
    "prenorm": ("model", "prenorm", lambda s: {"True": True, "False": False}[s]),
    "dropout": ("model", "dropout", float),
    "lr": ("optim", "lr", float),
    "batch_size": ("train", "batch_size", int),
    "epochs": ("train", "epochs", int),
    "weight_decay": ("optim", "weight_decay", float),
}



def liquid_window(L: int) -> int:
    """L̃ of the full profiles: the released code's window for order 2 at length ``L``.

    The smallest ``n`` with ``C(n, 2) >= L`` (:func:`liquidssm.liquid.official_L_tilde` for
    p = 2). The paper treats L̃ as a hyperparameter, "typically two orders of magnitude smaller
    than the sequence length", and prints no value per task; the released code derives it from
    ``L`` this way (for every order separately). L̃ = L would sum the correlation products over
    the whole sequence, and the liquid term would outgrow the S4 term on long inputs.
    """
    n = 2
    while n * (n - 1) // 2 < L:
        n += 1
    return n


# ------------------------------------------------------------------------------------------------
# what the released configs did where the paper is silent: Δ's learning rate, the schedule's shape
# ------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ReleasedOptim:
    """The released config's optimiser facts for one task (``configs/experiment/...``).

    ``dt_lr``: ``"global"`` where the config says ``lr: {dt: null, A: x, B: x}`` (Δ at the global
    rate, no weight decay), ``"ssm"`` where one SSM rate covers Δ too; ``schedule_steps`` and
    ``warmup_steps``: the literal ``num_training_steps`` T and ``num_warmup_steps`` W (``None``
    for the multi-step schedule); ``config``: the file.
    """

    dt_lr: str
    schedule_steps: int | None
    warmup_steps: int | None
    config: str


#: task key (``ls4-t<table>-<key>``) -> the released config's Δ rate and cosine schedule
RELEASED_OPTIM: dict[str, ReleasedOptim] = {
    "listops": ReleasedOptim("global", 80000, 1000, "lra/s4-lra-listops.yaml"),
    "imdb": ReleasedOptim("global", 50000, 1000, "lra/s4-lra-imdb.yaml"),
    "aan": ReleasedOptim("global", 50000, 2500, "lra/s4-lra-aan.yaml"),
    "cifar": ReleasedOptim("global", 200000, 1000, "lra/s4-lra-cifar.yaml"),
    "pathfinder": ReleasedOptim("ssm", 500000, 2500, "lra/s4-lra-pathfinder.yaml"),
    "pathx": ReleasedOptim("ssm", 500000, 10000, "lra/s4-lra-pathx.yaml"),
    "hr": ReleasedOptim("ssm", None, None, "bidmc/s4-bidmc.yaml"),
    "rr": ReleasedOptim("ssm", None, None, "bidmc/s4-bidmc.yaml"),
    "spo2": ReleasedOptim("ssm", None, None, "bidmc/s4-bidmc.yaml"),
    # Table S1's sCIFAR row is lra/s4-lra-cifar.yaml with colour (dt: null); the released
    # cifar/s4-cifar.yaml (recorded in the entry's released values) gives Δ the layer's 1e-3
    "scifar": ReleasedOptim("global", 200000, 1000, "lra/s4-lra-cifar.yaml (grayscale false)"),
    "sc35-16khz": ReleasedOptim("global", 200000, 1000, "sc/s4-sc.yaml"),
    "sc10-16khz": ReleasedOptim("global", 200000, 1000, "sc/s4-sc.yaml"),
}


def scaled_cosine(task: str, task_args: dict[str, Any], released: ReleasedOptim, *, batch_size: int,
                  epochs: int, released_batch_size: int, released_epochs: int) -> tuple[int, int]:
    """``(T, W)`` giving our run the released run's cosine shape (chapter ``reproductions/19``).

    The released run made ``S_rel = epochs_rel · ⌊n / batch_rel⌋`` steps over a schedule of period
    ``T_rel`` (``get_cosine_schedule_with_warmup`` is not clamped: past ``T`` the rate rises
    again), so it passed ``S_rel / T_rel`` times through ``T``. With ``S = epochs · ⌊n / batch⌋``
    steps, ``T = round(T_rel · S / S_rel)`` and ``W = round(W_rel · S / S_rel)`` keep the number of
    passes and the warm-up fraction ``W / T``. ``n`` is the real training-set size
    (:func:`liquidssm.repro.shapes.task_shape`).
    """
    if released.schedule_steps is None or released.warmup_steps is None:
        raise ValueError("released: expected a cosine schedule (schedule_steps and warmup_steps), "
                         f"got {released}")
    n = task_shape(task, task_args).n_train
    ours = epochs * steps_per_epoch(n, batch_size)
    theirs = released_epochs * steps_per_epoch(n, released_batch_size)
    return (round(released.schedule_steps * ours / theirs),
            round(released.warmup_steps * ours / theirs))


def schedule_shape(task: str, task_args: dict[str, Any], optim: Optimisation, train: Training
                   ) -> dict[str, float]:
    """Steps per run, passes through ``T`` and warm-up fraction of a cosine schedule (one process)."""
    steps = int(train.epochs or 0) * steps_per_epoch(task_shape(task, task_args).n_train,
                                                     train.batch_size, train.drop_last)
    if train.max_steps is not None:
        steps = min(steps, train.max_steps) if steps else train.max_steps
    T = float(optim.schedule_steps or 0)
    return {"steps": steps, "passes": steps / T if T else float("nan"),
            "warmup_fraction": optim.warmup_steps / T if T else float("nan")}


def faithful(key: str, task: str, task_args: dict[str, Any], optim: Optimisation, train: Training,
             released: dict[str, Any]) -> tuple[Optimisation, dict[str, Any]]:
    """Δ's learning rate and the schedule's shape as the released code gave them, and the
    released values that differ (``released`` extended; never a setting the paper states).

    Adds ``model.variant = "official"`` (with ``model.liquid_window = None``: that kernel derives
    L̃ by the binomial rule) to ``released``; where the scaled ``T``/``W`` differ from the released
    literals, records the literals; where the released file that ``released`` describes gives Δ
    another rate than ``full`` does, records ``optim.dt_lr``.
    """
    rel = RELEASED_OPTIM[key]
    out = {**released, "model.variant": "official", "model.liquid_window": None}
    changes: dict[str, Any] = {"dt_lr": rel.dt_lr}
    if optim.schedule == "cosine_warmup":
        T, W = scaled_cosine(task, task_args, rel, batch_size=train.batch_size,
                             epochs=int(train.epochs or 0),
                             released_batch_size=released.get("train.batch_size", train.batch_size),
                             released_epochs=released.get("train.epochs", train.epochs))
        changes.update(schedule_steps=T, warmup_steps=W)
        if T != rel.schedule_steps:
            out["optim.schedule_steps"] = rel.schedule_steps
        if W != rel.warmup_steps:
            out["optim.warmup_steps"] = rel.warmup_steps
    return dataclasses.replace(optim, **changes), out


# ------------------------------------------------------------------------------------------------
# ListOps (kept as its own builder: chapter 02 and the engine tests use it)
# ------------------------------------------------------------------------------------------------

_LS4_SMOKE_LISTOPS = Profile(
    model={"d_model": 32, "n_blocks": 2, "dropout": 0.0, "liquid_window": 8},
    optim={"schedule": "cosine_warmup", "warmup_steps": 20, "schedule_steps": 150, "lr": 0.004,
           "ssm_lr": 0.002},
    train={"batch_size": 32, "epochs": 3, "checkpoint_every": 50},
    task={"source": "generated", "n_train": 1600, "n_val": 400, "n_test": 400, "l_max": 128,
          "max_length": 100, "max_depth": 3},
    seeds=(2222,),
)


#: the row of the S4 twins (``...-s4``): S4 re-run with a Liquid-S4 entry's settings, liquid kernel
#: off; not the paper's S4-LegS row (Gu et al.), so it carries no paper value
S4_TWIN_ROW = "S4, Liquid-S4 settings"


def _twin_note(gu: tuple[float, float | None]) -> str:
    """The note of an S4 twin: what it is, and Gu et al.'s S4-LegS number it is *not* compared with."""
    std = "" if gu[1] is None else f" ± {gu[1]}"
    return ("S4 twin: S4 re-run with the code and settings of the Liquid-S4 entry, liquid kernel "
            f"off (layer='s4'), in its own row ({S4_TWIN_ROW!r}) with no paper value; the paper's "
            f"S4-LegS row ({gu[0]}{std}) is Gu et al.'s number with their own settings. ")


def listops_experiment(layer: str) -> Experiment:
    """Liquid-S4 Table 1, ListOps: the Liquid-S4 row (``layer="liquid"``, PB, p = 5) or its S4 twin (``"s4"``)."""
    liquid = layer == "liquid"
    task_args = {"source": "release", "l_max": 2048}
    train = Training(batch_size=12, epochs=30, report="val", monitor="val_accuracy", ties="first",
                     checkpoint_every=1000)
    optim, released = faithful(
        "listops", "listops", task_args,
        Optimisation(lr=0.002, ssm_lr=9e-4, weight_decay=0.03, schedule="cosine_warmup",
                     warmup_steps=1000, schedule_steps=80000), train, {"train.epochs": 40})
    return Experiment(
        id="ls4-t1-listops" if liquid else "ls4-t1-listops-s4",
        paper="liquid-s4", table="1", row="Liquid-S4" if liquid else S4_TWIN_ROW, column="ListOps",
        task="listops", task_args=task_args,
        model=SequenceModelConfig(d_output=10, n_tokens=18, d_model=128, d_state=7, n_blocks=9,
                                  layer=layer, liquid_kind="pb", liquid_order=5,
                                  liquid_window=liquid_window(2048), dt_min=0.002, dt_max=0.2,
                                  norm="batch", prenorm=True, dropout=0.01, pool="mean"),
        optim=optim, train=train,
        seeds=(2222, 2223, 2224),
        paper_value=62.75 if liquid else None, paper_std=0.2 if liquid else None,
        released=released,
        profiles={"smoke": _LS4_SMOKE_LISTOPS},
        smoke_target=30.0,
        notes=("" if liquid else _twin_note((59.60, 0.07))) + (
               "Table S1 gives 30 epochs, the released config 40; full follows the paper. The "
               "released config gives Δ the global learning rate (dt: null), and so does full "
               "(optim.dt_lr = 'global'; Λ, P, B train at ssm_lr). The released run (40 epochs of "
               "8000 steps) passed 4 times through its cosine period T = 80000; full's 30 epochs "
               "keep the 4 passes and the warm-up fraction with T = 60000, W = 750 (released "
               "records the literal T; a single pass would be T = 240000). L̃ = "
               "liquid_window(2048) (the paper gives no value). Table 1 reports validation "
               "accuracy (the appendix: every result but BIDMC is validation accuracy). Smoke: "
               "ListOps generated by the LRA procedure (short trees, depth ≤ 3, ≤ 100 tokens); "
               "chance is 10 %, the most frequent label is far more common (see chapter 01), so "
               "the smoke target is set above the majority rate."),
    )


# ------------------------------------------------------------------------------------------------
# the other cells: one specification per task, two entries (Liquid-S4, S4-LegS) per cell
# ------------------------------------------------------------------------------------------------

def _smoke(model: dict[str, Any], train: dict[str, Any], task: dict[str, Any], *, lr: float,
           steps: int, seed: int, optim: dict[str, Any] | None = None) -> Profile:
    """A smoke profile: a tiny model, ``steps`` optimiser steps of a short cosine schedule."""
    opt = {"lr": lr, "ssm_lr": lr / 2, "schedule": "cosine_warmup", "warmup_steps": max(1, steps // 10),
           "schedule_steps": steps, **(optim or {})}
    return Profile(model={"dropout": 0.0, **model}, optim=opt,
                   train={"checkpoint_every": 1000, **train}, task=task, seeds=(seed,))


@dataclasses.dataclass(frozen=True)
class Cell:
    """The settings of one task (one Table S1 row) and its paper values; :func:`cell_entries` makes the entries."""

    key: str           # id part: ls4-t<table>-<key>
    table: str
    column: str
    s1_row: str
    task: str
    task_args: dict[str, Any]
    model: SequenceModelConfig
    optim: Optimisation
    train: Training
    seeds: tuple[int, ...]
    liquid: tuple[float, float | None]  # paper value, std of the Liquid-S4 row
    s4: tuple[float, float | None]      # the paper's S4-LegS row (Gu et al.), quoted in the twin's note
    released: dict[str, Any]
    smoke: Profile
    smoke_target: float
    notes: str
    metric: str = "accuracy_pct"


def cell_entries(c: Cell) -> tuple[Experiment, Experiment]:
    """The Liquid-S4 entry of a cell and its S4 twin: the same settings with ``layer="s4"``, in the
    row :data:`S4_TWIN_ROW` with no paper value."""
    out = []
    optim, released = faithful(c.key, c.task, c.task_args, c.optim, c.train, c.released)
    for layer, row, (value, std) in (("liquid", "Liquid-S4", c.liquid), ("s4", S4_TWIN_ROW, (None, None))):
        suffix = "" if layer == "liquid" else "-s4"
        note = c.notes if layer == "liquid" else _twin_note(c.s4) + c.notes
        out.append(Experiment(
            id=f"ls4-t{c.table.lower()}-{c.key}{suffix}", paper="liquid-s4", table=c.table, row=row,
            column=c.column, task=c.task, task_args=dict(c.task_args),
            model=c.model.replace(layer=layer), optim=optim, train=c.train, seeds=c.seeds,
            paper_value=value, paper_std=std, metric=c.metric, released=dict(released),
            profiles={"smoke": c.smoke}, smoke_target=c.smoke_target, notes=note))
    return out[0], out[1]


def _lra_train(batch: int, epochs: int, **kw: Any) -> Training:
    # Tables 1 and 4 report validation accuracy; the released checkpointing keeps the first best
    return Training(batch_size=batch, epochs=epochs, monitor="val_accuracy", report="val",
                    ties="first", checkpoint_every=1000, **kw)


_SMOKE_1024 = {"d_model": 24, "n_blocks": 2, "d_state": 8}
_PF_SMOKE = {"source": "generated", "n_images": 1000, "contour_length": 2, "seed_distance": 20.0,
             "num_distractor_snakes": 0}


def imdb_cell() -> Cell:
    """Table 1, Text (IMDB, characters): PB, p = 6."""
    return Cell(
        key="imdb", table="1", column="IMDB", s1_row="Text (IMDB)", task="imdb",
        task_args={"source": "release", "l_max": 2048, "max_tokens": IMDB_TOKENS},
        model=SequenceModelConfig(d_output=2, n_tokens=IMDB_TOKENS, d_model=128, d_state=7,
                                  n_blocks=4, layer="liquid", liquid_kind="pb", liquid_order=6,
                                  liquid_window=liquid_window(2048), dt_min=0.002, dt_max=0.2,
                                  norm="batch", prenorm=True, dropout=0.1, pool="mean"),
        optim=Optimisation(lr=0.003, ssm_lr=9e-4, weight_decay=0.01, schedule="cosine_warmup",
                           warmup_steps=1000, schedule_steps=50000),
        train=_lra_train(8, 50), seeds=(2222, 2223, 2224),
        liquid=(89.02, 0.04), s4=(86.82, 0.13),
        released={"task.l_max": 4096},
        smoke=_smoke({"d_model": 32, "n_blocks": 2, "liquid_window": 8},
                     {"batch_size": 16, "epochs": 5},
                     {"source": "fixture", "l_max": 256, "n_train": 160, "n_test": 100},
                     lr=0.01, steps=100, seed=2222),
        smoke_target=65.0,
        notes=("Characters, no validation split (LRA evaluates on test, so Table 1's validation "
               "accuracy is test accuracy). Table 1's header gives length 2048, the released config "
               "4096 (l_max); full follows the paper. The embedding holds IMDB_TOKENS rows, an "
               "upper bound of the ≈135-character vocabulary (the released config sizes it to the "
               "vocabulary). Smoke: aclImdb-layout reviews whose sentiment words depend on the "
               "label (chance and majority 50 %)."),
    )


def aan_cell() -> Cell:
    """Table 1, Retrieval (AAN document pairs, bytes): PB, p = 2, retrieval head."""
    return Cell(
        key="aan", table="1", column="AAN", s1_row="Retrieval (AAN)", task="aan",
        task_args={"source": "release", "l_max": 4000, "max_tokens": AAN_TOKENS},
        model=SequenceModelConfig(d_output=2, n_tokens=AAN_TOKENS, d_model=256, d_state=64,
                                  n_blocks=6, layer="liquid", liquid_kind="pb", liquid_order=2,
                                  liquid_window=liquid_window(4000), dt_min=0.001, dt_max=0.2,
                                  norm="batch", prenorm=False, dropout=0.2, pool="mean",
                                  head="retrieval"),
        optim=Optimisation(lr=0.005, ssm_lr=1e-3, weight_decay=0.05, schedule="cosine_warmup",
                           warmup_steps=2500, schedule_steps=50000),
        train=_lra_train(16, 20), seeds=(2222, 2223, 2224),
        liquid=(91.20, 0.01), s4=(90.90, 0.15),
        released={"model.prenorm": True, "model.dt_max": 0.1},
        smoke=_smoke({"d_model": 32, "n_blocks": 2, "d_state": 8, "liquid_window": 8},
                     {"batch_size": 16, "epochs": 5},
                     {"source": "fixture", "l_max": 200, "n_train": 400, "n_val": 100,
                      "n_test": 100, "topic_rate": 0.45}, lr=0.01, steps=125, seed=2222),
        smoke_target=65.0,
        notes=("Document pairs; retrieval head on [a, b, a−b, a⊙b] of the mean-pooled documents. "
               "Table S1 gives pre-norm False, the released config True; Δt_max 0.2 (appendix) "
               "vs 0.1 (config); full follows the paper. Smoke: AAN-layout pairs labelled 1 when "
               "both documents share a topic (chance and majority 50 %)."),
    )


def cifar_cell() -> Cell:
    """Table 1, Image (LRA-CIFAR, grayscale, 1024 pixels): PB, p = 3."""
    return Cell(
        key="cifar", table="1", column="CIFAR", s1_row="Image (CIFAR)", task="cifar",
        task_args={"source": "release", "grayscale": True},
        model=SequenceModelConfig(d_output=10, d_input=1, d_model=512, d_state=512, n_blocks=6,
                                  layer="liquid", liquid_kind="pb", liquid_order=3,
                                  liquid_window=liquid_window(1024), dt_min=0.002, dt_max=0.2,
                                  norm="layer", prenorm=False, dropout=0.1, pool="mean"),
        optim=Optimisation(lr=0.01, ssm_lr=1e-3, weight_decay=0.03, schedule="cosine_warmup",
                           warmup_steps=1000, schedule_steps=200000),
        train=_lra_train(16, 200), seeds=(2222, 2223, 2224),
        liquid=(89.50, 0.4), s4=(88.65, 0.23),
        released={"train.batch_size": 50, "model.bidirectional": True},
        smoke=_smoke(_SMOKE_1024, {"batch_size": 32, "epochs": 6},
                     {"source": "fixture", "n_per_batch": 100, "val_size": 100},
                     lr=0.01, steps=72, seed=2222),
        smoke_target=30.0,
        notes=("LRA Image: grayscale CIFAR-10, 1024 pixels. Table S1 gives batch 16, the released "
               "config 50; the appendix says Liquid-S4 works better causal, the config is "
               "bidirectional; full follows the paper. The released run (batch 50: 900 steps per "
               "epoch, 180000 steps) ended at 0.9 of its cosine period T = 200000; full's batch 16 "
               "(2812 steps per epoch) keeps that shape with T and W scaled by 562400/180000 "
               "(released records the literal T = 200000, W = 1000; a single pass would be "
               "T = 562400). Δ trains at the global rate (dt: null). Smoke: CIFAR binary records whose stripe "
               "period and orientation code the class (chance and majority 10 %)."),
    )


def pathfinder_cell() -> Cell:
    """Table 1, Pathfinder (32 × 32, 1024 pixels): PB, p = 2, read out at the last step."""
    return Cell(
        key="pathfinder", table="1", column="Pathfinder", s1_row="Pathfinder", task="pathfinder",
        task_args={"source": "release", "resolution": 32},
        model=SequenceModelConfig(d_output=2, d_input=1, d_model=256, d_state=64, n_blocks=6,
                                  layer="liquid", liquid_kind="pb", liquid_order=2,
                                  liquid_window=liquid_window(1024), dt_min=0.001, dt_max=0.2,
                                  norm="batch", prenorm=True, dropout=0.0, pool="last"),
        optim=Optimisation(lr=0.0004, ssm_lr=1e-3, weight_decay=0.03, schedule="cosine_warmup",
                           warmup_steps=2500, schedule_steps=500000),
        train=_lra_train(4, 200, num_workers=4), seeds=(2222, 2223, 2224),
        liquid=(94.8, 0.2), s4=(94.20, 0.25),
        released={"optim.lr": 0.004, "model.dt_max": 0.1},
        smoke=_smoke(_SMOKE_1024, {"batch_size": 32, "epochs": 6, "num_workers": 0},
                     _PF_SMOKE, lr=0.01, steps=150, seed=2222),
        smoke_target=65.0,
        notes=("Pathfinder-32 (L = 1024), read out at the last step (the released decoder). Table "
               "S1 gives lr 0.0004, the released config 0.004 (10×); Δt_max 0.2 vs 0.1; full "
               "follows the paper. Smoke: images drawn by the LRA Pathfinder procedure with easy "
               "parameters: two-paddle snakes started 20 pixels apart and no distractors, so the "
               "markers of a connected pair lie close together and those of an unconnected pair "
               "far apart; the model must learn the gap between the two marker blobs in the pixel "
               "sequence. Balanced labels (chance 50 %). With the LRA parameters a CPU minute "
               "stays at chance."),
    )


def pathx_cell() -> Cell:
    """Table 1, Path-X (Pathfinder at 128 × 128, 16384 pixels): PB, p = 2."""
    return Cell(
        key="pathx", table="1", column="Path-X", s1_row="Path-X", task="pathfinder",
        task_args={"source": "release", "resolution": 128},
        model=SequenceModelConfig(d_output=2, d_input=1, d_model=320, d_state=64, n_blocks=6,
                                  layer="liquid", liquid_kind="pb", liquid_order=2,
                                  liquid_window=liquid_window(16384), dt_min=0.0001, dt_max=0.2,
                                  norm="batch", prenorm=True, dropout=0.0, pool="mean"),
        optim=Optimisation(lr=0.001, ssm_lr=5e-4, weight_decay=0.05, schedule="cosine_warmup",
                           warmup_steps=10000, schedule_steps=500000),
        train=_lra_train(8, 60, num_workers=4), seeds=(1112, 1113, 1114),
        liquid=(96.66, 0.001), s4=(96.35, None),
        released={"model.dt_max": 0.1},
        smoke=_smoke({**_SMOKE_1024, "liquid_window": liquid_window(1024)},
                     {"batch_size": 32, "epochs": 6, "num_workers": 0},
                     {**_PF_SMOKE, "resolution": 32}, lr=0.01, steps=150, seed=1112),
        smoke_target=65.0,
        notes=("Path-X: Pathfinder at 128 × 128 (L = 16384). Δt_max 0.2 (appendix) vs 0.1 (config); "
               "full follows the paper. Smoke: the Pathfinder smoke data at 32 × 32 (a 16384-step "
               "smoke run would not fit a CPU minute); the full profile uses the 128 × 128 release."),
    )


_BIDMC_NOTE = ("Smoke: Monash .ts files whose two-channel series encode a target y ~ U[-1, 1] "
               "(pulse rate, breathing rate or pulse amplitude); the mean predictor's RMSE is about "
               "1/sqrt(3), the smoke target about half of it.")


def bidmc_cell(target: str) -> Cell:
    """Table 2, BIDMC32 ``target`` (HR: p = 3, lr 0.005; RR: p = 2; SpO2: p = 4): test RMSE."""
    order = {"HR": 3, "RR": 2, "SpO2": 4}[target]
    lr = 0.005 if target == "HR" else 0.01
    what = {"HR": "heart rate", "RR": "respiratory rate", "SpO2": "blood oxygen saturation"}[target]
    released = {"model.dt_max": 0.1, "model.bidirectional": True}
    if target == "HR":
        released["optim.lr"] = 0.01  # the config's lr; '0.005 for HR' is only a comment there
    return Cell(
        key=target.lower(), table="2", column=target, s1_row=f"BICMD ({target})", task="bidmc",
        task_args={"source": "release", "target": target},
        model=SequenceModelConfig(d_output=1, d_input=2, d_model=128, d_state=256, n_blocks=6,
                                  layer="liquid", liquid_kind="pb", liquid_order=order,
                                  liquid_window=liquid_window(4000), dt_min=0.001, dt_max=0.2,
                                  norm="layer", prenorm=True, dropout=0.0, pool="mean",
                                  head="regression"),
        optim=Optimisation(lr=lr, ssm_lr=1e-3, weight_decay=0.01, schedule="multistep",
                           milestones=(100, 200, 300, 400, 500), gamma=0.5),
        train=Training(batch_size=32, epochs=500, monitor="val_rmse", report="test", ties="first",
                       checkpoint_every=1000), seeds=(1112, 1113, 1114),
        liquid={"HR": (0.303, 0.002), "RR": (0.158, 0.001), "SpO2": (0.066, 0.002)}[target],
        s4={"HR": (0.332, 0.013), "RR": (0.247, 0.062), "SpO2": (0.090, 0.006)}[target],
        released=released,
        smoke=_smoke({"d_model": 32, "n_blocks": 2, "d_state": 16,
                      "liquid_window": liquid_window(200)},
                     {"batch_size": 16, "epochs": 8},
                     {"source": "fixture", "n_train": 280, "n_test": 120, "length": 200},
                     lr=0.01, steps=1, seed=1112,
                     optim={"schedule": "multistep", "milestones": (6,), "warmup_steps": 0,
                            "schedule_steps": None}),
        smoke_target=0.30,
        metric="rmse",
        notes=(f"BIDMC32 {what}, RMSE on the test split (Table 2 reports test RMSE), model "
               "selected on validation RMSE; MultiStep schedule (×0.5 every 100 epochs). The "
               "released config sets lr 0.01 (with '0.005 for HR' in a comment); Δt_max 0.2 "
               "(appendix) vs 0.1; the appendix says causal, the config is bidirectional; full "
               "follows the paper. " + _BIDMC_NOTE),
    )


def scifar_cell() -> Cell:
    """Table 3, sCIFAR (colour CIFAR-10, 1024 pixels × 3 channels): PB, p = 3."""
    return Cell(
        key="scifar", table="3", column="sCIFAR", s1_row="sCIFAR", task="cifar",
        task_args={"source": "release", "grayscale": False},
        model=SequenceModelConfig(d_output=10, d_input=3, d_model=512, d_state=512, n_blocks=6,
                                  layer="liquid", liquid_kind="pb", liquid_order=3,
                                  liquid_window=liquid_window(1024), dt_min=0.001, dt_max=0.2,
                                  norm="layer", prenorm=False, dropout=0.1, pool="mean"),
        optim=Optimisation(lr=0.01, ssm_lr=1e-3, weight_decay=0.03, schedule="cosine_warmup",
                           warmup_steps=1000, schedule_steps=200000),
        train=_lra_train(50, 200), seeds=(2222, 2223, 2224),
        liquid=(92.02, 0.14), s4=(91.80, 0.43),
        released={"model.d_state": 64, "optim.weight_decay": 0.05, "model.dt_max": 0.1,
                  "model.bidirectional": True, "optim.dt_lr": "ssm"},
        smoke=_smoke(_SMOKE_1024, {"batch_size": 32, "epochs": 6},
                     {"source": "fixture", "n_per_batch": 100, "val_size": 100},
                     lr=0.01, steps=72, seed=2222),
        smoke_target=30.0,
        notes=("Colour CIFAR-10, 1024 pixels × 3 channels. Table S1's row (N 512, WD 0.03, batch "
               "50) matches the released LRA-CIFAR config with grayscale off, not the released "
               "cifar/s4-cifar.yaml (N 64, WD 0.05, Δt_max 0.1, bidirectional, Δ at the SSM rate "
               "1e-3), which `released` records; full follows the paper, and Δ trains at the "
               "global rate as in the LRA-CIFAR config the row matches. Validation accuracy: the "
               "appendix says every reported result but BIDMC is validation accuracy. Smoke: colour CIFAR binary records whose stripe "
               "period and orientation code the class (chance and majority 10 %)."),
    )


def speech_cell(classes: str) -> Cell:
    """Table 4 (``classes="all"``, SC35) or Table S2 (``"sc10"``), 16 kHz: PB, p = 2."""
    sc35 = classes == "all"
    n = 35 if sc35 else 10
    n_train = 12 if sc35 else 16  # smoke clips per word
    return Cell(
        key="sc35-16khz" if sc35 else "sc10-16khz", table="4" if sc35 else "S2",
        column="SC35-16kHz" if sc35 else "SC10-16kHz", s1_row="Speech Commands",
        task="speech_commands",
        task_args={"source": "release", "classes": classes, "resolution": 1, "normalize": True},
        model=SequenceModelConfig(d_output=n, d_input=1, d_model=128, d_state=7, n_blocks=6,
                                  layer="liquid", liquid_kind="pb", liquid_order=2,
                                  liquid_window=liquid_window(16000), dt_min=0.002, dt_max=0.2,
                                  norm="batch", prenorm=True, dropout=0.0, pool="mean"),
        optim=Optimisation(lr=0.008, ssm_lr=1e-3, weight_decay=0.05, schedule="cosine_warmup",
                           warmup_steps=1000, schedule_steps=200000),
        train=_lra_train(10, 50, num_workers=4), seeds=(2222, 2223),
        liquid=(96.78, 0.05) if sc35 else (98.51, None),
        s4=(96.08, 0.15) if sc35 else (98.32, None),
        released={},
        smoke=_smoke({"d_model": 24, "n_blocks": 2, "liquid_window": liquid_window(1000)},
                     {"batch_size": 16, "epochs": 6, "num_workers": 0},
                     {"source": "fixture", "n_train": n_train, "n_val": 4, "n_test": 4,
                      "clip_samples": 1000, "max_samples": 1000},
                     lr=0.01, steps=6 * (n * n_train // 16), seed=2222),
        smoke_target=25.0 if sc35 else 40.0,
        notes=(f"Raw Speech Commands, {n} classes, 16 kHz (16000 steps), each time index "
               "standardised with training statistics (released quirk); Tables 4 and S2 report "
               "validation accuracy. The configs match Table S1 (the paper gives SC10 the SC35 "
               "settings). Smoke: Speech Commands-layout WAV files whose tone pitch codes the class "
               "(150-1500 Hz, so the class survives the 8 kHz test), clips of 1000 samples."),
    )


def zero_shot_entry(source: Experiment, column: str, value: float, std: float | None,
                    smoke_target: float | None) -> Experiment:
    """The 8 kHz zero-shot cell: ``source``'s trained model evaluated at half the sampling rate."""
    smoke = source.profiles["smoke"]
    target_note = ("" if smoke_target is not None else
                   "No smoke target: on the smoke fixture the liquid correlation features of "
                   "consecutive samples change with the sampling rate and the 8 kHz accuracy falls "
                   "to chance (chapter 13 shows it); the S4 re-run keeps its accuracy. ")
    return dataclasses.replace(
        source, id=source.id.replace("-16khz", "-8khz"), column=column,
        task_args={**source.task_args, "resolution": 2, "zero_shot_of": source.id},
        paper_value=value, paper_std=std, smoke_target=smoke_target,
        profiles={"smoke": dataclasses.replace(smoke, task={**smoke.task, "resolution": 2,
                                                            "zero_shot_of": source.id})},
        notes=(f"Zero-shot: the model trained by {source.id} evaluated on clips subsampled to "
               "8 kHz (every second sample) with every step Δ doubled, as the released code's "
               "rate=2 evaluation; nothing is trained (liquidssm.repro.zeroshot). "
               + target_note + source.notes))


def _speech_entries() -> list[Experiment]:
    out = []
    for classes, col8, (lv, ls), (sv, ss), s4_target in (
            ("all", "SC35-8kHz", (90.00, 0.25), (91.32, 0.17), 30.0),
            ("sc10", "SC10-8kHz", (95.9, None), (96.30, None), 50.0)):
        liquid, s4 = cell_entries(speech_cell(classes))
        twin8 = zero_shot_entry(s4, col8, None, None, s4_target)  # a twin has no paper value
        twin8 = dataclasses.replace(twin8, notes=f"The paper's S4-LegS at 8 kHz (Gu et al.): {sv}"
                                    + ("" if ss is None else f" ± {ss}") + ". " + twin8.notes)
        out += [liquid, s4, zero_shot_entry(liquid, col8, lv, ls, None), twin8]
    return out


#: every cell but ListOps, in table order
CELLS: tuple[Cell, ...] = (imdb_cell(), aan_cell(), cifar_cell(), pathfinder_cell(), pathx_cell(),
                           bidmc_cell("HR"), bidmc_cell("RR"), bidmc_cell("SpO2"), scifar_cell(),
                           speech_cell("all"), speech_cell("sc10"))

_TABLE_ENTRIES: list[Experiment] = [listops_experiment("liquid"), listops_experiment("s4")]
for _c in CELLS:
    if _c.task != "speech_commands":
        _TABLE_ENTRIES += list(cell_entries(_c))
_TABLE_ENTRIES += _speech_entries()

# ------------------------------------------------------------------------------------------------
# Figure 1: accuracy against the liquid order p (ListOps, IMDB)
# ------------------------------------------------------------------------------------------------

#: the orders of the sweep (the paper plots p; its axis values are not printed)
FIGURE1_ORDERS: tuple[int, ...] = (2, 3, 4, 5, 6)


def _figure1() -> tuple[list[Experiment], dict[str, dict[int, str]]]:
    entries, points = [], {}
    for base in (_TABLE_ENTRIES[0], next(e for e in _TABLE_ENTRIES if e.id == "ls4-t1-imdb")):
        task = base.column
        points[task] = {}
        for p in FIGURE1_ORDERS:
            if p == base.model.liquid_order:
                points[task][p] = base.id  # the Table 1 entry is this point
                continue
            e = dataclasses.replace(
                base, id=f"ls4-f1-{base.task}-p{p}", table="F1", row=f"Liquid-S4 (p={p})",
                model=base.model.replace(liquid_order=p), paper_value=None, paper_std=None,
                notes=(f"Figure 1 sweep: {base.id} with liquid order p = {p} (Table 1 uses "
                       f"p = {base.model.liquid_order}). The paper gives the figure as a plot only "
                       "(three seeds); no numbers are printed. " + base.notes))
            entries.append(e)
            points[task][p] = e.id
    return entries, points


_FIGURE1_ENTRIES, FIGURE1 = _figure1()
"""``FIGURE1[task][p]`` is the experiment id of the point (task "ListOps" or "IMDB", order p)."""

#: every Liquid-S4 entry, in table order
ENTRIES: tuple[Experiment, ...] = tuple(_TABLE_ENTRIES + _FIGURE1_ENTRIES)

#: zero-shot entry id -> the entry whose trained model it evaluates
ZERO_SHOT: dict[str, str] = {e.id: e.task_args["zero_shot_of"] for e in ENTRIES
                             if "zero_shot_of" in e.task_args}


def _table_s1_rows() -> dict[str, str]:
    rows = {}
    for e in ENTRIES:
        source = e.task_args.get("zero_shot_of", e.id)
        key = source.removesuffix("-s4").replace("-8khz", "-16khz")
        if e.table == "F1":
            key = "ls4-t1-" + e.task
        cell = next((c for c in CELLS if key == f"ls4-t{c.table.lower()}-{c.key}"), None)
        rows[e.id] = "ListOps" if e.task == "listops" else cell.s1_row  # type: ignore[union-attr]
    return rows


#: Table S1 row of every entry (SC10 uses the Speech Commands row, as Table S2's caption says)
TABLE_S1_ROW: dict[str, str] = _table_s1_rows()

#: the cells each chapter runs in the smoke profile by default: Liquid-S4 and its S4 re-run on one
#: task (Tables 4/S2: with their 8 kHz zero-shot evaluations; Figure 1: ListOps at three orders and
#: the S4 reference)
SMOKE_CELLS: dict[str, tuple[str, ...]] = {
    "1": ("ls4-t1-listops", "ls4-t1-listops-s4"),
    "2": ("ls4-t2-rr", "ls4-t2-rr-s4"),
    "3": ("ls4-t3-scifar", "ls4-t3-scifar-s4"),
    "4": ("ls4-t4-sc35-16khz", "ls4-t4-sc35-16khz-s4", "ls4-t4-sc35-8khz", "ls4-t4-sc35-8khz-s4"),
    "S2": ("ls4-ts2-sc10-16khz", "ls4-ts2-sc10-16khz-s4", "ls4-ts2-sc10-8khz",
           "ls4-ts2-sc10-8khz-s4"),
    "F1": ("ls4-f1-listops-p2", "ls4-f1-listops-p3", "ls4-t1-listops", "ls4-t1-listops-s4"),
}


#: the S4-LegS model behind Table 4's printed 307K parameters: Gu et al.'s Speech Commands setting
#: (H = 128, N = 64, 6 blocks, bidirectional, one (Λ, P, B) shared by all features); it is not
#: re-run (the ``-s4`` entries re-run S4 with the Liquid-S4 settings instead)
S4_LEGS_GU_SC = SequenceModelConfig(d_output=35, d_input=1, d_model=128, d_state=64, n_blocks=6,
                                    layer="s4", bidirectional=True, n_ssm=1, norm="batch",
                                    prenorm=True, pool="mean")


def table_entries(table: str) -> list[str]:
    """Ids of the entries of one table (``"1"``, ``"2"``, ``"3"``, ``"4"``, ``"S2"``), in order.

    ``"F1"``: every point of Figure 1 (the sweep and the Table 1 entries at their orders) and the
    S4 re-runs of ListOps and IMDB (the figure's reference line).
    """
    if table == "F1":
        points = [i for task in FIGURE1.values() for _, i in sorted(task.items())]
        return points + ["ls4-t1-listops-s4", "ls4-t1-imdb-s4"]
    return [e.id for e in ENTRIES if e.table == table]
