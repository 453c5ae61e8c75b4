"""``liquidssm train | experiments | results | plan``: the engine and the registry from the shell.

Chapter ``reproductions/02_how_reproductions_run``. Examples::

    liquidssm experiments --table 1
    liquidssm train ls4-t1-listops --profile smoke
    liquidssm train lrcssm-t1-scp1 --profile full --seed 3456 --device cuda
    liquidssm train ls4-t1-listops --profile full --device cuda --devices 4   # DDP via Fabric
    liquidssm results --table 1
    liquidssm plan --paper lrcssm --table 1 --json plan.json   # what a table costs (no data needed)
    liquidssm results export --paper lrcssm --profile full --out lrcssm-full.tar.gz
    liquidssm results import lrcssm-full.tar.gz
"""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from liquidssm.cliutil import UsageError, int_at_least
from liquidssm.repro.experiments import PROFILES, get_experiment, list_experiments
from liquidssm.repro.spec import PRECISIONS, RUN_VARIANTS, Launch

__all__ = ["train_main", "experiments_main", "results_main", "plan_main", "results_export_main",
           "results_import_main"]


def _parse_set(items: list[str]) -> dict[str, dict[str, object]]:
    """``--set model.d_model=64`` → ``{"model": {"d_model": 64}}`` (values parsed as JSON if possible)."""
    out: dict[str, dict[str, object]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in ("model", "optim", "train", "task"):
            raise UsageError(f"--set: expected SECTION.FIELD=VALUE with SECTION in model, optim, "
                             f"train, task; got {item!r}")
        try:
            value: object = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(section, {})[name] = value
    return out


def _known(experiment_id: str) -> None:
    """Refuse an unknown id as a usage error (status 2) that names the nearest ids."""
    try:
        get_experiment(experiment_id)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None


def train_main(argv: list[str] | None = None) -> int:
    """``liquidssm train EXPERIMENT [options]``: train one run and write its results file."""
    p = argparse.ArgumentParser(prog="liquidssm train", description=train_main.__doc__)
    p.add_argument("experiment", help="registry id (`liquidssm experiments` lists them)")
    p.add_argument("--profile", default="smoke", choices=PROFILES)
    p.add_argument("--seed", type=int_at_least(0, 2**63), default=None, help="default: the profile's first seed")
    p.add_argument("--variant", default="paper", choices=RUN_VARIANTS,
                   help="'released': the released code's settings, into their own folders")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "gpu", "auto"))
    p.add_argument("--devices", type=int, default=1, help="processes per node (DDP when > 1)")
    p.add_argument("--num-nodes", type=int, default=1)
    p.add_argument("--precision", default="32-true", choices=PRECISIONS)
    p.add_argument("--max-minutes", type=float, default=None,
                   help="checkpoint and stop after this many minutes (rerun to continue)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", dest="restart", action="store_false", default=False,
                       help="continue from the newest checkpoint of this run (default)")
    group.add_argument("--restart", dest="restart", action="store_true",
                       help="discard this run's checkpoints and metrics and start afresh")
    p.add_argument("--results-dir", default=None)
    p.add_argument("--run-dir", default=None, help="checkpoint folder (default under _build/runs)")
    p.add_argument("--data-root", default=None, help="raw datasets (default data/raw or $LIQUIDSSM_DATA)")
    p.add_argument("--cache-dir", default=None,
                   help="where generated/fixture data is written once (default _build/data)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a setting, e.g. --set train.max_steps=100 (repeatable)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--tensorboard", action="store_true",
                   help="also log per-step metrics to TensorBoard (needs the tensorboard extra)")
    args = p.parse_args(argv)
    _known(args.experiment)
    overrides = _parse_set(args.set)
    from liquidssm import paths
    from liquidssm.repro.runs import variant_overrides
    from liquidssm.repro.spec import resolve
    from liquidssm.repro.train import RunInterrupted, fit

    for section, fields in variant_overrides(args.experiment, args.profile, args.variant).items():
        overrides[section] = {**fields, **overrides.get(section, {})}  # --set wins
    seed = args.seed
    if args.run_dir is None and args.variant != "paper":
        seed = seed if seed is not None else resolve(get_experiment(args.experiment), args.profile).seeds[0]
        args.run_dir = paths.run_dir(args.experiment, args.profile, seed, args.variant)
    try:
        launch = Launch(device=args.device, devices=args.devices, num_nodes=args.num_nodes,
                        precision=args.precision, max_minutes=args.max_minutes,
                        restart=args.restart,
                        results_dir=paths.run_results_dir(args.variant, args.results_dir)
                        if args.variant != "paper" or args.results_dir is not None else None,
                        run_dir=args.run_dir, data_root=args.data_root, cache_dir=args.cache_dir,
                        progress=args.progress, tensorboard=args.tensorboard)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    # library errors (missing data, unwritable results, a changed configuration, a NaN loss)
    # propagate to `liquidssm.cli`, which prints them as one line and exits with status 1
    try:
        rec = fit(args.experiment, args.profile, seed, launch, overrides=overrides)
    except RunInterrupted as exc:
        print(f"liquidssm train: {exc}", file=sys.stderr)
        return 130
    if rec.get("status") == "incomplete":
        print(f"stopped at step {rec['step']} (time budget); checkpoint {rec['checkpoint']}; "
              "run the same command to continue")
        return 0
    best = rec["best"]
    print(f"{rec['experiment']} [{rec['profile']}, seed {rec['seed']}]: {rec['report']} "
          f"{rec['metric_key']} {rec['value']:.2f} at epoch {best['epoch']} (step {best['step']}); "
          f"paper {rec['paper_value']}; {rec['training']['steps']} steps in "
          f"{rec['training']['wall_s']:.1f} s")
    return 0


def experiments_main(argv: list[str] | None = None) -> int:
    """``liquidssm experiments [--table T] [--paper P]``: list the registry."""
    p = argparse.ArgumentParser(prog="liquidssm experiments", description=experiments_main.__doc__)
    p.add_argument("--table", default=None)
    p.add_argument("--paper", default=None, choices=("liquid-s4", "lrcssm"))
    p.add_argument("--show", default=None, metavar="ID", help="print one entry in full")
    args = p.parse_args(argv)
    if args.show:
        _known(args.show)
        print(get_experiment(args.show))
        return 0
    rows = [{"id": e.id, "paper": e.paper, "table": e.table, "row": e.row, "column": e.column,
             "task": e.task, "model": e.model.model, "paper_value": e.paper_value,
             "seeds": len(e.seeds), "released_differs": ", ".join(sorted(e.released)) or "-"}
            for e in list_experiments(args.table, args.paper)]
    if not rows:
        pool = list_experiments(paper=args.paper)
        tables = sorted({e.table for e in pool}, key=lambda t: (len(t), t))
        raise UsageError(f"--table: no {args.paper or ''} experiments in table {args.table!r}; "
                         f"tables with experiments: {', '.join(tables)}".replace("no  ", "no "))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(pd.DataFrame(rows).to_string(index=False))
    return 0


def results_export_main(argv: list[str]) -> int:
    """``liquidssm results export [--table T] [--paper P] [--profile P] --out FILE.tar.gz``."""
    from liquidssm.repro import transfer

    p = argparse.ArgumentParser(prog="liquidssm results export", description=results_export_main.__doc__)
    p.add_argument("--table", default=None)
    p.add_argument("--paper", default=None, choices=("liquid-s4", "lrcssm"))
    p.add_argument("--profile", default=None, choices=PROFILES)
    p.add_argument("--results-dir", default=None)
    p.add_argument("--out", required=True, help="the archive to write (FILE.tar.gz)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    args = p.parse_args(argv)
    out, members, skipped = transfer.export_results(
        args.out, table=args.table, paper=args.paper, profile=args.profile,
        results_dir=args.results_dir, force=args.force)
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    print(f"wrote {len(members)} results file(s) to {out}")
    return 0


def results_import_main(argv: list[str]) -> int:
    """``liquidssm results import PATH [--force] [--dry-run]``: bring results made elsewhere in.

    PATH is a results folder or a ``.tar.gz`` from ``liquidssm results export``. Each file is
    checked (name, schema, provenance, finite value, the config hash of today's registry) and the
    command says what it does with it; an existing different result is kept unless ``--force``.
    Exit status 1 when a file was rejected or kept.
    """
    from liquidssm import paths
    from liquidssm.repro import transfer

    p = argparse.ArgumentParser(prog="liquidssm results import", description=results_import_main.__doc__)
    p.add_argument("path", help="a results folder or a .tar.gz made by `liquidssm results export`")
    p.add_argument("--results-dir", default=None, help="where to import (default data/results)")
    p.add_argument("--force", action="store_true", help="replace existing results that differ")
    p.add_argument("--dry-run", action="store_true", help="say what would happen, write nothing")
    args = p.parse_args(argv)
    plans = transfer.plan_import(args.path, results_dir=args.results_dir, force=args.force)
    if not plans:
        print(f"{args.path}: no results files found", file=sys.stderr)
        return 1
    base = paths.results_dir() if args.results_dir is None else None
    root = paths.repo_root() if base is not None else None
    for line in transfer.describe(plans, root=root):
        print(line)
    written = [] if args.dry_run else transfer.apply_import(plans)
    counts = {a: sum(pl.action == a for pl in plans)
              for a in ("new", "overwrite", "identical", "keep", "reject")}
    print(("dry run: would write " if args.dry_run else "wrote ") + f"{counts['new'] + counts['overwrite']}"
          f" file(s) ({len(written)} written); " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 1 if counts["reject"] or counts["keep"] else 0


def results_main(argv: list[str] | None = None) -> int:
    """``liquidssm results [--table T] [--experiment ID] | export ... | import PATH``: what has run,
    per seed and aggregated; ``export``/``import`` carry results files between checkouts."""
    from liquidssm.repro.results import load_results, summarise

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("export", "import"):
        from liquidssm.repro.transfer import TransferError

        sub = results_export_main if argv[0] == "export" else results_import_main
        try:
            return sub(argv[1:])
        except TransferError as exc:
            print(f"liquidssm results {argv[0]}: {exc}", file=sys.stderr)
            return 1

    p = argparse.ArgumentParser(prog="liquidssm results", description=results_main.__doc__)
    p.add_argument("--table", default=None)
    p.add_argument("--experiment", default=None)
    p.add_argument("--profile", default=None, choices=PROFILES)
    p.add_argument("--results-dir", default=None)
    args = p.parse_args(argv)
    df = load_results(args.results_dir, table=args.table, experiment=args.experiment,
                      profile=args.profile)
    if df.empty:
        print("no results yet (`liquidssm train ID` writes them)", file=sys.stderr)
        return 1
    cols = ["experiment", "profile", "seed", "value", "paper_value", "best_epoch", "steps",
            "wall_s", "device", "commit", "dirty", "data_source"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(df[cols].to_string(index=False))
        print()
        print(summarise(df).to_string(index=False))
    return 0


def plan_main(argv: list[str] | None = None) -> int:
    """``liquidssm plan [--paper P] [--table T] ...``: what each full entry, table and the campaign
    costs on this device (no dataset needed; chapter ``reproductions/26_cost``)."""
    from pathlib import Path

    from liquidssm.repro import plan as planner
    from liquidssm.repro.checkpoint import atomic_write

    p = argparse.ArgumentParser(prog="liquidssm plan", description=plan_main.__doc__)
    p.add_argument("--paper", default=None, choices=("liquid-s4", "lrcssm"))
    p.add_argument("--table", default=None, help="a table of --paper (e.g. 1, S2, F1); all if omitted")
    p.add_argument("--experiment", action="append", default=None, metavar="ID",
                   help="plan only these entries (repeatable; instead of --paper/--table)")
    p.add_argument("--profile", default="full", choices=("full",),
                   help="the profile costed (only full: smoke runs take minutes on any CPU)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--precision", default="32-true", choices=PRECISIONS)
    p.add_argument("--steps", type=int_at_least(1), default=1,
                   help="timed training steps per entry (median), after one untimed forward (default 1)")
    p.add_argument("--max-tokens", type=int_at_least(2), default=512,
                   help="CPU only: time at most this many batch x length steps (the largest batch "
                        "that fits, else one item shortened), then scale to the entry's batch and "
                        "length (default 512)")
    p.add_argument("--max-blocks", type=int_at_least(1), default=1,
                   help="CPU only: time this many of an entry's identical blocks, then scale to its "
                        "depth (default 1)")
    p.add_argument("--no-compile-compare", dest="compare_compile", action="store_false",
                   help="LrcSSM: skip timing the compiled solver beside the eager one")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the plan as JSON")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json FILE")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    args = p.parse_args(argv)
    if args.experiment and (args.paper or args.table):
        raise UsageError("--experiment: give entries or --paper/--table, not both")
    if args.table is not None and args.paper is None:
        raise UsageError(f"--table: name the paper too (--paper liquid-s4|lrcssm), got --table {args.table}")
    for exp_id in args.experiment or []:
        _known(exp_id)
    if args.device == "cpu" and args.precision != "32-true":
        raise UsageError(f"--precision: {args.precision!r} is for GPUs; on the CPU use 32-true")
    if args.paper is not None and args.table is not None:
        from liquidssm.repro.experiments import table_experiments

        if not table_experiments(args.paper, args.table):
            raise UsageError(f"--table: {args.paper} has no table {args.table!r}")
    out = Path(args.json) if args.json else None
    if out is not None and out.exists() and not args.force:
        raise UsageError(f"--json: {out} exists; pass --force to overwrite it")
    if out is not None and not out.parent.is_dir():
        raise UsageError(f"--json: the folder {out.parent} does not exist")
    rows = planner.plan(args.paper, args.table, device=args.device, precision=args.precision,
                        steps=args.steps, max_tokens=args.max_tokens, max_blocks=args.max_blocks,
                        progress=args.progress,
                        compare_compile=args.compare_compile, experiment_ids=args.experiment)
    print(f"device: {planner.device_name(args.device)}, precision {args.precision}, "
          f"{args.steps} timed step(s) per entry")
    print(planner.fmt_table(rows))
    if out is not None:
        data = planner.to_json(rows, device=args.device, precision=args.precision, steps=args.steps,
                               max_tokens=args.max_tokens, max_blocks=args.max_blocks)
        atomic_write(out, (json.dumps(data, indent=1) + "\n").encode())
        print(f"wrote {out}")
    return 1 if any(r.status.startswith("failed") for r in rows) else 0
