"""The task table: a registry task name → its builder, for both papers (:data:`TASKS`).

Chapter ``reproductions/02_how_reproductions_run``. A builder takes ``(args, seed, data_root,
cache_dir)`` and returns a :class:`~liquidssm.repro.taskbase.TaskData`. The builders live with
their paper under :mod:`liquidssm.repro.papers`; what they share is in
:mod:`liquidssm.repro.taskbase`, which imports no paper, so this module-level table closes no
import circle.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from liquidssm.repro.papers.liquid_s4 import tasks as liquid_s4_tasks
from liquidssm.repro.papers.lrcssm import tasks as lrcssm_tasks
from liquidssm.repro.taskbase import TaskData

__all__ = ["TASKS", "build_task"]


def _collect(*tables: dict[str, Callable[..., TaskData]]) -> dict[str, Callable[..., TaskData]]:
    out: dict[str, Callable[..., TaskData]] = {}
    for table in tables:
        for name, builder in table.items():
            if name in out:
                raise ValueError(f"task {name!r} is defined by two papers")
            out[name] = builder
    return out


#: every task of both papers: ``name -> builder(args, seed, data_root, cache_dir)``
TASKS: dict[str, Callable[..., TaskData]] = _collect(liquid_s4_tasks.TASKS, lrcssm_tasks.TASKS)


def build_task(task: str, args: dict[str, Any], seed: int, *,
               data_root: str | os.PathLike[str] | None = None,
               cache_dir: str | os.PathLike[str] | None = None) -> TaskData:
    """Datasets of ``task`` with ``args`` for run ``seed`` (an unknown name lists the known ones)."""
    if task not in TASKS:
        raise ValueError(f"task: unknown task {task!r}; known: {sorted(TASKS)}")
    return TASKS[task](args, seed, data_root, cache_dir)
