"""What every ``liquidssm`` sub-command shares: the usage error and the argument types.

A leaf module (it imports nothing of the package), so the sub-commands (``liquidssm.repro.cli``,
``liquidssm.bench``, ``liquidssm.data.cli``) import it without reaching back into
:mod:`liquidssm.cli`, which imports them: no import circle. A usage error exits with status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["UsageError", "int_at_least", "positive_float"]


class UsageError(SystemExit):
    """A command-line usage error: printed as one line, exit status 2 (as argparse does).

    ``str(error)`` is the message (a plain ``SystemExit`` would give the status).
    """

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An ``argparse`` type: an integer ``>= minimum`` (``--repeats 0`` is a usage error, not a crash)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def positive_float(text: str) -> float:
    """An ``argparse`` type: a finite number ``> 0`` (a timeout, a step)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value
