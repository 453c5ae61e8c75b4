"""The ``liquidssm`` command: ``train``, ``experiments``, ``results``, ``reproduce``, ``data``, ``bench``.

Each sub-command forwards its remaining arguments to the module that owns it, so the command
line and the chapters call the same code.
"""

from __future__ import annotations

import argparse
import importlib
import sys


def _forward(module: str, argv: list[str]) -> int:
    mod = importlib.import_module(module)
    return int(mod.main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``liquidssm`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="liquidssm", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["train", "experiments", "results", "reproduce", "data",
                                            "bench", "env"],
                        help="train: train one registry experiment; experiments: list the registry; "
                             "results: what has run; "
                             "reproduce: run reproduction chapters with papermill; data: dataset "
                             "status/download/prepare/generate; bench: speed and memory benchmarks; "
                             "env: print the detected environment")
    if not argv or argv[0] in {"-h", "--help"}:
        parser.print_help()
        return 0 if argv else 2
    args, rest = parser.parse_known_args(argv[:1])
    rest = argv[1:]
    if args.command in ("train", "experiments", "results"):
        from liquidssm.repro import cli as repro_cli

        return getattr(repro_cli, f"{args.command}_main")(rest)
    if args.command == "bench":
        from liquidssm.bench import run

        if not rest:
            from liquidssm.bench import BENCHMARKS

            print(f"usage: liquidssm bench {{{','.join(sorted(BENCHMARKS))}}} [options]")
            return 2
        return run(rest[0], rest[1:])
    target = {"reproduce": "liquidssm.repro.reproduce", "data": "liquidssm.data.cli",
              "env": "liquidssm.environment"}[args.command]
    return _forward(target, rest)


if __name__ == "__main__":
    raise SystemExit(main())
