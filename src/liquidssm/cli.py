"""The ``liquidssm`` command: ``train``, ``experiments``, ``results``, ``campaign``, ``reproduce``, ``data``, ``bench``, ``env``.

Each sub-command forwards its remaining arguments to the module that owns it, so the command
line and the chapters call the same code. Every sub-command answers ``--help``.

Errors never end in a Python traceback: a usage error (an unknown command, option or benchmark,
or a value the option does not accept) prints the usage and exits with status 2; an error raised
by the library (bad data, a missing dataset, a refused size, a read-only folder, ...) prints one
line ``liquidssm <command>: error: <kind>: <message>`` (a message with a layout or a fix may
continue on indented lines) and exits with status 1. ``liquidssm --debug <command> ...`` prints
the traceback instead. ``liquidssm --version`` prints the version.

Before a sub-command runs, glibc malloc is told to keep freed large blocks
(:func:`liquidssm.allocator.apply_malloc_setting`; ``LIQUIDSSM_MALLOC=system`` opts out).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from liquidssm.cliutil import UsageError, int_at_least, positive_float

__all__ = ["COMMANDS", "UsageError", "int_at_least", "positive_float", "main", "report_error"]

# the shared helpers live in a leaf module the sub-commands import (no import circle); they are
# re-exported here because they are part of this command's documented interface

#: sub-command -> one-line description (``liquidssm --help``)
COMMANDS = {
    "train": "train one registry experiment and write its results file",
    "experiments": "list the experiment registry",
    "results": "what has run, per seed and aggregated; export | import results between checkouts",
    "campaign": "whole tables on a cluster: plan / submit / status / resume (submitit: SLURM or local)",
    "plan": "what each full entry and table costs on this device (no data needed)",
    "reproduce": "run the reproduction chapters with papermill",
    "data": "dataset status / download / prepare / fixtures / generate",
    "bench": "speed and memory benchmarks",
    "env": "print the detected environment",
}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("liquidssm")
    except Exception:  # noqa: BLE001 - not installed as a distribution: the package's own number
        import liquidssm

        return liquidssm.__version__


def _parser() -> argparse.ArgumentParser:
    """The top-level parser, used for ``--help`` and the usage line (dispatch is by hand)."""
    parser = argparse.ArgumentParser(
        prog="liquidssm", description=__doc__.splitlines()[0],
        epilog="run `liquidssm COMMAND --help` for a command's options; exit status 2 = usage error, "
               "1 = failure (one-line message; --debug shows the traceback)")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    parser.add_argument("command", choices=list(COMMANDS),
                        help="; ".join(f"{name}: {text}" for name, text in COMMANDS.items()))
    return parser


def report_error(prog: str, exc: BaseException) -> None:
    """Print ``exc`` for a user: ``<prog>: error: <kind>: <first line>``, further lines indented."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str) else str(exc)
    lines = text.splitlines() or [""]
    print(f"{prog}: error: {type(exc).__name__}: {lines[0]}", file=sys.stderr)
    for line in lines[1:]:
        print(f"  {line}", file=sys.stderr)


def _bench(rest: list[str]) -> int:
    from liquidssm.bench import BENCHMARKS, describe, run

    if not rest or rest[0] in ("-h", "--help"):
        print(f"usage: liquidssm bench {{{','.join(sorted(BENCHMARKS))}}} [options]\n\nbenchmarks:")
        for name in sorted(BENCHMARKS):
            print(f"  {name:10s} {describe(name)}")
        print("\nrun `liquidssm bench NAME --help` for a benchmark's options; "
              "`liquidssm bench --against official` = `liquidssm bench official`")
        return 0 if rest else 2
    if rest[0] == "--against" or rest[0].startswith("--against="):
        if "=" in rest[0]:
            target, rest = rest[0].partition("=")[2], rest[1:]
        else:
            target, rest = (rest[1] if len(rest) > 1 else ""), rest[2:]
        if target != "official":
            raise UsageError(f"--against: expected 'official', got {target!r}")
        return run("official", rest)
    return run(rest[0], rest[1:])


def _apply_allocator() -> None:
    """Keep freed large heap blocks in the process (glibc; see :mod:`liquidssm.allocator`).

    ``LIQUIDSSM_MALLOC=system`` opts out; elsewhere than glibc/Linux it does nothing.
    """
    from liquidssm.allocator import apply_malloc_setting

    apply_malloc_setting()


def _forward(command: str, rest: list[str]) -> int:
    """Run sub-command ``command`` with its arguments ``rest``; returns its exit status."""
    if command in ("train", "experiments", "results", "plan"):
        from liquidssm.repro import cli as repro_cli

        return int(getattr(repro_cli, f"{command}_main")(rest) or 0)
    if command == "bench":
        return _bench(rest)
    module = {"reproduce": "liquidssm.book.reproduce", "data": "liquidssm.data.cli",
              "campaign": "liquidssm.repro.campaign",
              "env": "liquidssm.environment"}[command]
    return int(importlib.import_module(module).main(rest) or 0)


def _split(argv: list[str]) -> tuple[dict[str, bool], str | None, list[str]]:
    """Global options before the command, the command, and the command's own arguments."""
    flags = {"help": False, "version": False, "debug": False}
    for i, arg in enumerate(argv):
        if not arg.startswith("-"):
            return flags, arg, argv[i + 1:]
        key = {"-h": "help", "--help": "help", "--version": "version", "--debug": "debug"}.get(arg)
        if key is None:
            raise UsageError(f"unknown option {arg!r} (options before the command: --help, --version, --debug)")
        flags[key] = True
    return flags, None, []


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``liquidssm`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        flags, command, rest = _split(argv)
        if command is not None and command not in COMMANDS:
            raise UsageError(f"unknown command {command!r}; choose one of {', '.join(COMMANDS)}")
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"liquidssm: error: {exc}", file=sys.stderr)
        raise
    if flags["version"]:
        print(f"liquidssm {_version()}")
        return 0
    if flags["help"] or command is None:
        parser.print_help()
        return 0 if flags["help"] else 2
    prog = f"liquidssm {command}"
    try:
        _apply_allocator()
        return _forward(command, rest)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        raise
    except SystemExit:  # argparse has printed the usage and the message (status 2), or --help (0)
        raise
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`liquidssm ... | head`): stop quietly
        try:  # and keep the interpreter's final flush from failing on the closed pipe
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except Exception as exc:  # noqa: BLE001 - the one place that turns any error into one line
        if flags["debug"]:
            traceback.print_exc()
        else:
            report_error(prog, exc)
        return 1


if __name__ == "__main__":
    # run the package's module, not this __main__ copy: sub-commands raise liquidssm.cli.UsageError,
    # which must be the class `main` catches
    from liquidssm.cli import main as _package_main

    raise SystemExit(_package_main())
