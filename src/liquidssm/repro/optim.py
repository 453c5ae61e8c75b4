"""Optimisers and learning-rate schedules as pure functions of the step.

Chapter ``reproductions/02_how_reproductions_run``. Liquid-S4 (``SequenceLightningModule.configure_optimizers`` in ``train.py`` of raminmh/liquid-s4@06031dc): AdamW, the SSM
parameters (Λ, P, B, Δ) in their own group with ``ssm_lr`` and no weight decay (Δ at the global
rate where the released config says ``dt: null``: ``Optimisation.dt_lr``), and the
``cosine_warmup`` schedule stepped per optimiser step (the multi-step schedule per epoch for
BIDMC). LrcSSM (``experiments/lrc_ssm/run_train.py`` of MoniFarsang/LrcSSM@5581972): Adam with a constant learning rate after clipping the global
gradient norm at 1.0.

A schedule is a multiplier ``factor(step, epoch)`` of every group's base learning rate; the
engine sets ``group["lr"] = group["base_lr"] * factor`` before each step, so the schedule has
no state to save: the step and epoch in a checkpoint restore it exactly.
"""

from __future__ import annotations

import bisect
import math

import torch
from torch import nn

from liquidssm.layers import ssm_param_groups
from liquidssm.repro.spec import Optimisation

__all__ = ["cosine_warmup_factor", "multistep_factor", "lr_factor", "build_optimizer", "set_lr"]


def cosine_warmup_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    r"""``get_cosine_schedule_with_warmup``: ``s/W`` for ``s < W``, else ``max(0, (1 + cos(π q))/2)``.

    ``q = (s - W) / (T - W)``. As in the released code, ``q > 1`` (training past ``T``) makes the
    factor rise again: the formula is periodic, and several released configs run past ``T``.
    """
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def multistep_factor(epoch: int, milestones: tuple[int, ...], gamma: float) -> float:
    """``MultiStepLR``: ``gamma ** (number of milestones <= epoch)`` (stepped per epoch)."""
    return gamma ** bisect.bisect_right(sorted(milestones), epoch)


def lr_factor(opt: Optimisation, step: int, epoch: int) -> float:
    """The schedule's multiplier at optimiser ``step`` (0-based) in ``epoch`` (0-based)."""
    if opt.schedule == "cosine_warmup":
        return cosine_warmup_factor(step, opt.warmup_steps, int(opt.schedule_steps or 0))
    if opt.schedule == "multistep":
        return multistep_factor(epoch, opt.milestones, opt.gamma)
    return 1.0


def build_optimizer(model: nn.Module, opt: Optimisation) -> torch.optim.Optimizer:
    """AdamW/Adam over :func:`liquidssm.layers.ssm_param_groups`; each group remembers ``base_lr``.

    For ``optimizer="adam"`` every group has zero weight decay (LrcSSM: optax Adam, no decay).
    ``opt.dt_lr == "global"`` puts Δ in its own group at ``opt.lr`` with no weight decay (the
    released configs' ``lr: {dt: null, ...}``); ``"ssm"`` keeps it in the SSM group.
    """
    wd = opt.weight_decay if opt.optimizer == "adamw" else 0.0
    groups = ssm_param_groups(model, opt.lr, opt.ssm_lr, wd,
                              dt_lr=opt.lr if opt.dt_lr == "global" else None)
    for g in groups:
        g["base_lr"] = g["lr"]
    if opt.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=opt.lr, weight_decay=wd)
    return torch.optim.Adam(groups, lr=opt.lr)


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """``lr = base_lr * factor`` in every parameter group."""
    for g in optimizer.param_groups:
        g["lr"] = g["base_lr"] * factor
