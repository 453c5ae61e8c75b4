"""The real shapes and sizes of every task's data, without the data: length, channels or tokens,
classes, and the number of training, validation and test items of the real release.

Chapters ``reproductions/19_ls4_hyperparameters`` (the cosine schedule over the run) and
``reproductions/26_cost`` (what a table costs). Pure data (no torch import). The cost planner
(:mod:`liquidssm.repro.plan`) draws synthetic batches of these shapes and turns the training-set
size into steps per run; the Liquid-S4 registry scales the released cosine schedule by it
(:func:`liquidssm.repro.papers.liquid_s4.experiments.scaled_cosine`).

Where the sizes come from (``source`` of each :class:`TaskShape`): the split rules of the loaders
(``liquidssm.data``: LRA release, CIFAR 45k/5k with seed 42, Pathfinder 80/10/10 of 200k, BIDMC
70/15/15 of the 7,949 merged Monash cases) and the reference notes
(``liquid-s4-official-code.md`` §6, ``lrcssm-paper-and-code.md`` §5.1 for the UEA counts). Two are
approximate and say so: the AAN validation/test sizes and SC10's 10-word subset of the official
lists; PPG-DaLiA's window count is estimated from 15 subjects of about 2.5 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["TaskShape", "task_shape", "UEA_SIZES", "steps_per_epoch"]


@dataclass(frozen=True)
class TaskShape:
    """One task's data at its full size: what a batch looks like and how many items each split has.

    ``length``: steps per sequence the model sees (per document for a pair task); ``d_input``:
    channels of a linear encoder, or ``n_tokens``: the vocabulary an embedding encoder reads
    (exactly one is set); ``classes``: ``d_output`` (1 for a scalar regression); ``outputs``:
    targets per sequence (PPG-DaLiA: one per 128 steps); ``pair``: two documents per item
    (AAN, batch ``(2B, L)``); ``exact``: False where a size is approximate (``source`` says why).
    """

    dataset: str
    length: int
    classes: int
    n_train: int
    n_val: int
    n_test: int
    source: str
    d_input: int | None = None
    n_tokens: int | None = None
    kind: str = "classification"
    pair: bool = False
    outputs: int = 1
    exact: bool = True

    def __post_init__(self) -> None:
        if (self.d_input is None) == (self.n_tokens is None):
            raise ValueError(f"{self.dataset}: give exactly one of d_input and n_tokens, got "
                             f"{self.d_input} and {self.n_tokens}")
        for name in ("length", "classes", "n_train", "outputs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{self.dataset}: {name} expected >= 1, got {getattr(self, name)}")
        if self.kind not in ("classification", "regression"):
            raise ValueError(f"{self.dataset}: kind expected 'classification' or 'regression', "
                             f"got {self.kind!r}")


def steps_per_epoch(n_train: int, batch_size: int, drop_last: bool = True) -> int:
    """Optimiser steps in one epoch on one process: ``n // b`` (``drop_last``) or ``ceil(n / b)``."""
    if batch_size < 1 or n_train < 0:
        raise ValueError(f"batch_size, n_train: expected >= 1 and >= 0, got {batch_size}, {n_train}")
    return n_train // batch_size if drop_last else -(-n_train // batch_size)


_LRA = "LRA release (liquid-s4-official-code.md §6)"

#: UEA name -> (train, val, test, length, channels in the release, classes): the Log-NCDE
#: 70/15/15 splits (lrcssm-paper-and-code.md §5.1)
UEA_SIZES: dict[str, tuple[int, int, int, int, int, int]] = {
    "Heartbeat": (286, 61, 62, 405, 61, 2),
    "SelfRegulationSCP1": (392, 84, 85, 896, 6, 2),
    "SelfRegulationSCP2": (266, 57, 57, 1152, 7, 2),
    "EthanolConcentration": (366, 79, 79, 1751, 3, 4),
    "MotorImagery": (264, 57, 57, 3000, 64, 2),
    "EigenWorms": (165, 35, 36, 17984, 6, 5),
}
_UEA_ALIASES = {"Heart": "Heartbeat", "SCP1": "SelfRegulationSCP1", "SCP2": "SelfRegulationSCP2",
                "Ethanol": "EthanolConcentration", "Motor": "MotorImagery", "Worms": "EigenWorms"}

#: BIDMC32: 5,550 + 2,399 Monash cases merged, split 70/15/15 as sklearn (data/bidmc.py)
_BIDMC_TOTAL = 7949


def _bidmc_sizes() -> tuple[int, int, int]:
    rest = -(-3 * _BIDMC_TOTAL // 10)  # ceil(0.3 n)
    test = -(-rest // 2)
    return _BIDMC_TOTAL - rest, rest - test, test


def _ppg_windows(block_fraction: float, hours: float = 2.5, subjects: int = 15, rate: int = 64,
                 window: int = 49920, stride: int = 4992) -> int:
    steps = int(hours * 3600 * rate * block_fraction)
    return subjects * max(0, (steps - window) // stride + 1)


def task_shape(task: str, args: dict[str, Any]) -> TaskShape:
    """The full-size shape of ``task`` with the entry's ``task_args`` (``source`` is ignored)."""
    if task == "listops":
        return TaskShape("ListOps", int(args.get("l_max", 2048)), 10, 96000, 2000, 2000, _LRA,
                         n_tokens=18)
    if task == "imdb":
        return TaskShape("IMDB (characters)", int(args.get("l_max", 4096)), 2, 25000, 0, 25000,
                         "IMDB release: 25k train / 25k test, no validation split (LRA)",
                         n_tokens=int(args.get("max_tokens", 160)))
    if task == "aan":
        return TaskShape("AAN (document pairs)", int(args.get("l_max", 4000)), 2, 147086, 18090,
                         17437, _LRA + "; validation and test sizes approximate",
                         n_tokens=int(args.get("max_tokens", 128)), pair=True, exact=False)
    if task == "cifar":
        gray = bool(args.get("grayscale", True))
        return TaskShape("CIFAR-10 " + ("grayscale" if gray else "colour"), 1024, 10, 45000, 5000,
                         10000, "CIFAR-10: 45k/5k random split (seed 42) of the 50k, test 10k",
                         d_input=1 if gray else 3)
    if task == "pathfinder":
        r = int(args.get("resolution", 32))
        return TaskShape(f"Pathfinder {r}x{r}", r * r, 2, 160000, 20000, 20000,
                         "200k images split 80/10/10 (seed 42)", d_input=1)
    if task == "speech_commands":
        rate = int(args.get("resolution", 1))
        length = -(-16000 // rate)
        if args.get("classes", "all") == "all":
            return TaskShape("Speech Commands (35 words)", length, 35, 84843, 9981, 11005,
                             "Speech Commands v0.02 official lists", d_input=1)
        return TaskShape("Speech Commands (10 words)", length, 10, 30769, 3643, 4107,
                         "Speech Commands v0.02 official lists, 10 command words (approximate)",
                         d_input=1, exact=False)
    if task == "bidmc":
        tr, va, te = _bidmc_sizes()
        return TaskShape(f"BIDMC32 {args.get('target', 'HR')}", 4000, 1, tr, va, te,
                         f"{_BIDMC_TOTAL} Monash cases merged, split 70/15/15", d_input=2,
                         kind="regression")
    if task == "uea":
        name = _UEA_ALIASES.get(args["name"], args["name"])
        tr, va, te, length, channels, classes = UEA_SIZES[name]
        fed = channels - 1 if args.get("column0") == "drop" else channels
        return TaskShape(name, length, classes, tr, va, te,
                         "Log-NCDE 70/15/15 splits (lrcssm-paper-and-code.md §5.1)", d_input=fed)
    if task == "ppg_dalia":
        rate, window = int(args.get("rate", 64)), int(args.get("window", 49920))
        stride = int(args.get("stride", 4992))
        sizes = [_ppg_windows(f, rate=rate, window=window, stride=stride) for f in (0.7, 0.15, 0.15)]
        return TaskShape("PPG-DaLiA", window, 1, *sizes,
                         "estimated: 15 subjects of about 2.5 h, 70/15/15 blocks, windows every "
                         f"{stride} steps", d_input=6, kind="regression",
                         outputs=window // (2 * rate), exact=False)
    raise KeyError(f"task: no recorded shape for {task!r}")
