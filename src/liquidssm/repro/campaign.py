"""Whole tables on a cluster: many (entry, seed) runs as scheduler jobs through submitit.

Chapter ``reproductions/02_how_reproductions_run`` (section *Running a whole table on a
cluster*); facts measured for it in ``shared/reference/cluster-and-publish-notes.md``.

``liquidssm campaign plan | submit | status | resume``:

* :func:`plan` -- the (entry, seed) runs of a selection (a paper's tables, or named entries) that
  have no valid results file (:func:`liquidssm.repro.runs.planned_runs`: the file is missing or
  was made with other settings), each with its projected cost where a cost file records one
  (:func:`load_costs`);
* :func:`submit` -- one job per run, all in one submission (a SLURM job array on a cluster;
  one process per job with submitit's local executor). Every job runs the *same command* as
  ``liquidssm train`` (:func:`train_argv`) in a child process under a :class:`TrainJob`
  supervisor;
* :func:`status` -- per run ``done`` (a valid results file), ``running``, ``pending`` (queued),
  ``failed`` (the job ended without a valid results file; the last line of its log says why) or
  ``missing`` (never submitted); :func:`resume` submits again exactly the failed and missing ones.

Preemption and time limits. SLURM sends ``SIGUSR2`` (``--signal=USR2@<delay>``, submitit's
default) to every process of the job step ``signal_delay_s`` seconds before the time limit, and,
with ``preempt_send_user_signal``, on preemption. The training child catches it like SIGTERM
(:func:`liquidssm.repro.train.stop_signals`): it finishes the step, writes its checkpoint
atomically and exits. In the supervisor, submitit's handler calls :meth:`TrainJob.checkpoint`,
which forwards SIGTERM to the child (locally nothing else signals it), waits for it to exit and
hands submitit a fresh supervisor with the same command; submitit then requeues the job
(``scontrol requeue`` on SLURM, exit status 144 for the local controller). The requeued job runs
the same command, which resumes from the checkpoint bit for bit (the engine's exact resume).
Without ``preempt_send_user_signal`` a preempted run gets only SIGTERM: the child still saves and
exits, the supervisor reports a failure, and ``campaign resume`` continues it exactly.

A campaign is one JSON file, :func:`liquidssm.paths.campaign_file` (``campaign.json`` under
``<results>/campaigns/<name>/``, next to the results its jobs write), written atomically: the
selection, profile, variant, overrides, launch, the executor's options and the exact parameters
given to submitit, and per run its command and every job id it was submitted as. submitit's own
files (pickles, ``<job id>_0_log.out|err``) go to :func:`liquidssm.paths.campaign_logs_dir`,
one folder per job.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit

from liquidssm import paths
from liquidssm.cliutil import UsageError, int_at_least
from liquidssm.repro import results as res
from liquidssm.repro.checkpoint import atomic_write, list_checkpoints
from liquidssm.repro.experiments import PAPERS, get_experiment, list_experiments, table_experiments
from liquidssm.repro.runs import current_result, merge_overrides, planned_runs, variant_overrides
from liquidssm.repro.spec import PRECISIONS, PROFILES, RUN_VARIANTS, check_placement, resolve

__all__ = ["CampaignError", "EXECUTORS", "COST_SCHEMA", "ExecutorOptions", "JobLaunch", "PlannedRun",
           "TrainJob", "select_experiments", "load_costs", "plan", "train_argv",
           "executor_parameters", "sbatch_preview", "submit", "wait", "read_campaign", "status",
           "table_summary", "resume", "run_state", "STATES", "main"]

#: the executors a campaign runs on: SLURM job arrays, or one local process per job
EXECUTORS = ("slurm", "local")
#: version of ``campaign.json``
SCHEMA = 1
#: the shape of a ``--cost FILE`` (see :func:`load_costs`)
COST_SCHEMA = ('{"profile": "full" (optional), "device": "..." (optional), "entries": '
               '[{"experiment": "<id>", "seconds_per_run": <number > 0>}, ...]}')
#: SLURM job states (``sacct``) that mean "still to run" and "running now"
_SLURM_PENDING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED",
                  "PREEMPTED", "READY", "UNKNOWN"}
_SLURM_RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING"}
STATES = ("done", "running", "pending", "failed", "missing")


class CampaignError(ValueError):
    """A campaign that cannot be planned, submitted or read; the message names what and why."""


# ------------------------------------------------------------------------------------------------
# selection and plan
# ------------------------------------------------------------------------------------------------

def select_experiments(paper: str | None = None, tables: list[str] | tuple[str, ...] = (),
                       experiments: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The entry ids of a selection: named ``experiments``, else the ``tables`` of ``paper``
    (:func:`~liquidssm.repro.experiments.table_experiments`), else every entry of ``paper``."""
    if experiments:
        if paper is not None or tables:
            raise CampaignError("--experiment: give entries or --paper/--table, not both")
        for exp_id in experiments:
            get_experiment(exp_id)
        return list(dict.fromkeys(experiments))
    if paper is None:
        raise CampaignError("selection: expected --paper (with --table) or --experiment, got none; "
                            f"papers: {', '.join(sorted(PAPERS))}")
    if paper not in PAPERS:
        raise CampaignError(f"--paper: expected one of {sorted(PAPERS)}, got {paper!r}")
    if not tables:
        return [e.id for e in list_experiments(paper=paper)]
    ids: list[str] = []
    for table in tables:
        found = table_experiments(paper, str(table))
        if not found:
            known = sorted({e.table for e in list_experiments(paper=paper)})
            raise CampaignError(f"--table: {paper} has no table {table!r}; tables: {', '.join(known)}")
        ids += found
    return list(dict.fromkeys(ids))


@dataclass(frozen=True)
class PlannedRun:
    """One (entry, seed) run still to make; ``seconds`` is its projected cost (``None``: not measured)."""

    experiment: str
    seed: int
    paper: str
    table: str
    seconds: float | None = None
    evaluation_only: bool = False


def plan_schema() -> str:
    """The schema tag of a file written by ``liquidssm plan --json`` (read directly by ``--cost``)."""
    from liquidssm.repro.plan import SCHEMA

    return SCHEMA


def _plan_costs(path: Path) -> dict[str, float]:
    """Seconds per run (one seed) of every entry a ``liquidssm plan --json`` file projected."""
    from liquidssm.repro.plan import read_plan

    try:
        data = read_plan(path)
    except ValueError as exc:
        raise CampaignError(f"--cost: {exc}") from None
    return {e["experiment"]: 3600.0 * float(e["hours_per_seed"]) for e in data["entries"]
            if isinstance(e.get("hours_per_seed"), (int, float)) and math.isfinite(e["hours_per_seed"])
            and e["hours_per_seed"] > 0}


def load_costs(path: str | os.PathLike[str] | None, profile: str) -> dict[str, float]:
    """Projected seconds per run by entry id, from a cost file (:data:`COST_SCHEMA`), or ``{}``.

    The file is what ``liquidssm plan --json`` wrote (read as it is) or a file shaped
    :data:`COST_SCHEMA`: what was measured on some device; an entry it does not name is
    "not measured". A file for another profile, a malformed file or a non-positive cost is refused
    with the file and the field named.
    """
    if path is None:
        return {}
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CampaignError(f"--cost: {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CampaignError(f"--cost: {path} is not readable JSON ({exc})") from None
    if isinstance(data, dict) and data.get("schema") == plan_schema():
        return _plan_costs(path)
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise CampaignError(f"--cost: {path}: expected an object with an 'entries' list, "
                            f"shaped {COST_SCHEMA}")
    if data.get("profile") not in (None, profile):
        raise CampaignError(f"--cost: {path} holds costs of profile {data['profile']!r}, "
                            f"the plan is for {profile!r}")
    costs: dict[str, float] = {}
    for i, row in enumerate(data["entries"]):
        if not isinstance(row, dict) or not isinstance(row.get("experiment"), str):
            raise CampaignError(f"--cost: {path}: entries[{i}] needs a string 'experiment', got {row!r}")
        value = row.get("seconds_per_run")
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value <= 0):
            raise CampaignError(f"--cost: {path}: entries[{i}] ({row['experiment']}): "
                                f"'seconds_per_run' must be a number > 0, got {value!r}")
        costs[row["experiment"]] = float(value)
    return costs


def plan(experiment_ids: list[str] | tuple[str, ...], profile: str = "full", *,
         seeds: list[int] | tuple[int, ...] | None = None, variant: str = "paper",
         overrides: dict[str, dict[str, Any]] | None = None,
         results_dir: str | os.PathLike[str] | None = None,
         costs: dict[str, float] | None = None) -> list[PlannedRun]:
    """The runs of ``experiment_ids`` without a valid results file, in the selection's order.

    Valid = present and made with the settings the registry (plus the variant's and ``overrides``)
    gives today (:func:`~liquidssm.repro.runs.planned_runs`). Evaluation-only entries (Liquid-S4's
    8 kHz zero-shot cells) are listed with ``evaluation_only`` set: they train nothing, and are
    made from their source run's model by the chapter (:func:`~liquidssm.repro.runs.ensure_results`).
    """
    if profile not in PROFILES:
        raise CampaignError(f"--profile: expected one of {list(PROFILES)}, got {profile!r}")
    if variant not in RUN_VARIANTS:
        raise CampaignError(f"--variant: expected one of {list(RUN_VARIANTS)}, got {variant!r}")
    costs = costs or {}
    out = []
    for exp_id, seed in planned_runs(list(experiment_ids), profile, seeds=seeds, variant=variant,
                                     results_dir=results_dir, overrides=overrides):
        exp = get_experiment(exp_id)
        out.append(PlannedRun(exp_id, seed, exp.paper, exp.table, costs.get(exp_id),
                              exp.zero_shot_of is not None))
    return out


# ------------------------------------------------------------------------------------------------
# what a job runs
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobLaunch:
    """Where each job's run trains (the ``liquidssm train`` options ``--device``, ``--devices``,
    ``--num-nodes``, ``--precision``): ``devices`` > 1 is Fabric DDP inside the job."""

    device: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    precision: str = "32-true"

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", check_placement(self, option=lambda name: "--" + name.replace("_", "-"),
                                                           error=CampaignError))


def _set_items(overrides: dict[str, dict[str, Any]] | None) -> list[str]:
    """``{"train": {"max_steps": 5}}`` → ``["--set", "train.max_steps=5"]`` (JSON values)."""
    items: list[str] = []
    for section, fields in sorted((overrides or {}).items()):
        for name, value in sorted(fields.items()):
            items += ["--set", f"{section}.{name}={json.dumps(value)}"]
    return items


def train_argv(experiment_id: str, profile: str, seed: int, launch: JobLaunch, *,
               variant: str = "paper", overrides: dict[str, dict[str, Any]] | None = None,
               results_dir: str | os.PathLike[str], runs_dir: str | os.PathLike[str] | None = None,
               cache_dir: str | os.PathLike[str] | None = None,
               data_root: str | os.PathLike[str] | None = None,
               python: str | None = None) -> list[str]:
    """The ``liquidssm train`` command of one run, exactly as a user would type it.

    Re-running it is the resume (never ``--restart``). ``results_dir`` is the paper variant's
    folder (the command puts a released run in its ``released`` sub-folder); ``runs_dir`` a base
    for the checkpoint folders (default: ``liquidssm train``'s own, :func:`liquidssm.paths.run_dir`).
    """
    argv = [python or sys.executable, "-m", "liquidssm.cli", "train", experiment_id,
            "--profile", profile, "--seed", str(int(seed)), "--variant", variant,
            "--device", launch.device, "--devices", str(launch.devices),
            "--num-nodes", str(launch.num_nodes), "--precision", launch.precision, "--no-progress",
            "--results-dir", str(Path(results_dir).resolve())]
    if runs_dir is not None:
        run_dir = paths.run_dir(experiment_id, profile, seed, variant, base=Path(runs_dir).resolve())
        argv += ["--run-dir", str(run_dir)]
    for flag, value in (("--cache-dir", cache_dir), ("--data-root", data_root)):
        if value is not None:
            argv += [flag, str(Path(value).resolve())]
    return argv + _set_items(overrides)


class TrainJob(submitit.helpers.Checkpointable):
    """The callable of one job: runs a ``liquidssm train`` command in a child process.

    On the scheduler's warning signal submitit calls :meth:`checkpoint` (rank 0 only): the child
    gets SIGTERM (harmless if SLURM already sent it SIGUSR2), saves its checkpoint and exits
    within ``grace_s``; a fresh :class:`TrainJob` with the same command is returned and submitit
    requeues the job. Polls the child rather than blocking in ``wait()``: a signal handler's
    ``wait`` would find the lock ``wait()`` holds (facts §3, e6). A child that fails raises
    :class:`RuntimeError` with its status, so the job is marked failed.
    """

    def __init__(self, argv: list[str], grace_s: float = 60.0) -> None:
        self.argv = list(argv)
        self.grace_s = float(grace_s)
        self._proc: subprocess.Popen[bytes] | None = None

    def __call__(self) -> int:
        sys.stdout.flush()
        self._proc = subprocess.Popen(self.argv)  # stdout/stderr: the job's log files
        while (rc := self._proc.poll()) is None:
            time.sleep(0.2)
        if rc != 0:
            raise RuntimeError(f"{self.describe()} exited with status {rc} (130: stopped by a signal "
                               "after its checkpoint; 1: an error, see the log)")
        return rc

    def describe(self) -> str:
        """``liquidssm train <id> --seed <k>`` of this job's command, for messages."""
        seed = self.argv[self.argv.index("--seed") + 1] if "--seed" in self.argv else "?"
        return f"liquidssm train {self.argv[4]} --seed {seed}"

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Stop the child (it checkpoints on SIGTERM) and return the same command for the requeue."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            print(f"campaign: forwarding SIGTERM to the training process {proc.pid}", flush=True)
            proc.send_signal(signal.SIGTERM)
            end = time.monotonic() + self.grace_s
            while proc.poll() is None and time.monotonic() < end:
                time.sleep(0.1)
            print(f"campaign: training process exited with {proc.poll()}; requeueing", flush=True)
        return submitit.helpers.DelayedSubmission(TrainJob(self.argv, self.grace_s))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_proc"] = None  # a Popen holds locks and pipes: never pickled
        return state


# ------------------------------------------------------------------------------------------------
# executor parameters
# ------------------------------------------------------------------------------------------------

_SLURM_ONLY = ("partition", "constraint", "account", "qos", "array_parallelism", "mem_gb", "setup")


@dataclass(frozen=True)
class ExecutorOptions:
    """The scheduler side of a campaign, as the ``campaign submit`` flags give it.

    ``time_min``: each job's time limit (a requeued job gets a new one); ``gpus_per_job``:
    default ``devices × num_nodes`` for a CUDA run, 0 on a CPU; ``cpus_per_job``: split over the
    job's tasks (one task per device); ``signal_delay_s``: how long before the limit the warning
    comes (at least one step plus a checkpoint); ``max_requeues``: how many time-limit requeues a
    job may use (preemptions do not count).
    """

    kind: str = "local"
    time_min: int | None = None
    partition: str | None = None
    gpus_per_job: int | None = None
    cpus_per_job: int | None = None
    mem_gb: int | None = None
    array_parallelism: int | None = None
    constraint: str | None = None
    account: str | None = None
    qos: str | None = None
    signal_delay_s: int = 120
    max_requeues: int = 3
    setup: tuple[str, ...] = ()


def _int_field(name: str, value: Any, minimum: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
        raise CampaignError(f"--{name.replace('_', '-')}: expected an integer >= {minimum}, got {value!r}")


def _text_field(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value or any(c.isspace() for c in value)):
        raise CampaignError(f"--{name.replace('_', '-')}: expected one word without spaces, got {value!r}")


def executor_parameters(options: ExecutorOptions, launch: JobLaunch, name: str) -> dict[str, Any]:
    """The ``update_parameters`` keywords of submitit's executor for ``options``, validated.

    SLURM: :class:`submitit.SlurmExecutor`'s own names (``time``, ``nodes``, ``ntasks_per_node`` =
    ``devices``, as Fabric requires under ``srun``; ``gpus_per_node``, ``cpus_per_task``,
    ``partition``, ``signal_delay_s``, ``array_parallelism``, ``additional_parameters`` with
    ``requeue``, ...). Local: :class:`submitit.LocalExecutor`'s (``timeout_min``,
    ``signal_delay_s``, ``tasks_per_node`` = 1: ``--devices N`` makes Fabric start its own
    processes). Every inconsistency raises :class:`CampaignError` naming the flag, before any
    job is submitted.
    """
    o = options
    if o.kind not in EXECUTORS:
        raise CampaignError(f"--executor: expected one of {list(EXECUTORS)}, got {o.kind!r}")
    for name_, minimum in (("time_min", 1), ("gpus_per_job", 0), ("cpus_per_job", 1), ("mem_gb", 1),
                           ("array_parallelism", 1), ("signal_delay_s", 1), ("max_requeues", 0)):
        _int_field("time" if name_ == "time_min" else name_, getattr(o, name_), minimum)
    for name_ in ("partition", "constraint", "account", "qos"):
        _text_field(name_, getattr(o, name_))
    if o.kind == "slurm" and o.time_min is None:
        raise CampaignError("--time: a SLURM job needs a time limit (minutes, H:MM:SS or D-HH:MM:SS), "
                            "e.g. --time 4:00:00")
    time_min = o.time_min if o.time_min is not None else 24 * 60
    if o.signal_delay_s >= 60 * time_min:
        raise CampaignError(f"--signal-delay: the warning ({o.signal_delay_s} s before the limit) must "
                            f"come after the job starts; --time is {time_min} min")
    world = launch.devices * launch.num_nodes
    gpus = o.gpus_per_job if o.gpus_per_job is not None else (world if launch.device == "cuda" else 0)
    if launch.device == "cuda" and gpus != world:
        raise CampaignError(f"--gpus-per-job: a CUDA run with --devices {launch.devices} on "
                            f"--num-nodes {launch.num_nodes} uses {world} GPU(s), got {gpus}")
    if launch.device == "cpu" and gpus:
        raise CampaignError(f"--gpus-per-job: a --device cpu run uses no GPU, got {gpus}")
    if launch.device == "auto" and gpus not in (0, world):
        raise CampaignError(f"--gpus-per-job: --device auto takes 0 or {world} GPU(s), got {gpus}")
    if o.cpus_per_job is not None and o.cpus_per_job % world:
        raise CampaignError(f"--cpus-per-job: {o.cpus_per_job} CPUs cannot be split evenly over the "
                            f"job's {world} task(s) (one per device)")
    if o.kind == "local":
        given = [f"--{k.replace('_', '-')}" for k in _SLURM_ONLY if getattr(o, k) not in (None, ())]
        if given:
            raise CampaignError(f"{', '.join(given)}: only for --executor slurm (the local executor "
                                "runs every job on this machine)")
        if launch.num_nodes != 1:
            raise CampaignError(f"--num-nodes: the local executor has one node, got {launch.num_nodes}")
        params: dict[str, Any] = {"timeout_min": time_min, "signal_delay_s": o.signal_delay_s,
                                  "tasks_per_node": 1}
        if gpus:
            params["gpus_per_node"] = gpus
        return params
    params = {"job_name": f"liquidssm-{name}", "time": time_min, "nodes": launch.num_nodes,
              "ntasks_per_node": launch.devices, "signal_delay_s": o.signal_delay_s,
              "additional_parameters": {"requeue": True}}
    if gpus:
        params["gpus_per_node"] = gpus // launch.num_nodes
    if o.cpus_per_job is not None:
        params["cpus_per_task"] = o.cpus_per_job // world
    if o.mem_gb is not None:
        params["mem"] = f"{o.mem_gb}GB"
    for key in ("partition", "constraint", "account", "qos", "array_parallelism"):
        if getattr(o, key) is not None:
            params[key] = getattr(o, key)
    if o.setup:
        params["setup"] = list(o.setup)
    from submitit.slurm.slurm import _get_default_parameters

    unknown = sorted(set(params) - set(_get_default_parameters()))
    if unknown:  # this submitit would refuse them at submission: refuse them now
        raise CampaignError(f"SLURM parameters {unknown} are unknown to submitit {submitit.__version__}")
    return params


def sbatch_preview(params: dict[str, Any], n_jobs: int, folder: str | os.PathLike[str]) -> str:
    """The sbatch script submitit writes for a job array of ``n_jobs`` with SLURM ``params``.

    Rendered by submitit's own (private) ``_make_sbatch_string``, without ``srun`` or a cluster:
    what ``campaign submit --dry-run`` shows and what the tests check.
    """
    from submitit.slurm.slurm import _make_sbatch_string

    folder = Path(folder) / "%j"
    command = f"{sys.executable} -u -m submitit.core._submit {folder}"
    return _make_sbatch_string(command=command, folder=folder, map_count=n_jobs, **params)


def _make_executor(kind: str, folder: Path, params: dict[str, Any], max_requeues: int) -> Any:
    """submitit's executor for ``kind`` writing under ``folder/%j``, with ``params`` applied."""
    logs = folder / "%j"
    try:
        if kind == "slurm":
            executor: Any = submitit.SlurmExecutor(folder=logs, max_num_timeout=max_requeues)
        else:
            executor = submitit.LocalExecutor(folder=logs, max_num_timeout=max_requeues)
        executor.update_parameters(**params)
    except (RuntimeError, ValueError, NameError, AssertionError) as exc:
        raise CampaignError(f"--executor {kind}: submitit refused the parameters or the machine "
                            f"({type(exc).__name__}: {exc})") from None
    return executor


# ------------------------------------------------------------------------------------------------
# the campaign file
# ------------------------------------------------------------------------------------------------

def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _write(campaign: dict[str, Any], base: str | os.PathLike[str] | None) -> Path:
    path = paths.campaign_file(campaign["name"], base)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, (json.dumps(campaign, indent=1) + "\n").encode())


def read_campaign(name: str, base: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The campaign ``name`` (its ``campaign.json``); a missing or foreign file is refused."""
    path = paths.campaign_file(name, base)
    if not path.exists():
        folder = paths.campaigns_dir(base)
        known = sorted(p.name for p in folder.iterdir() if (p / "campaign.json").exists()) \
            if folder.is_dir() else []
        raise CampaignError(f"campaign {name!r}: {path} does not exist; campaigns in {folder}: "
                            f"{', '.join(known) or 'none'}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CampaignError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("runs"), list):
        raise CampaignError(f"{path}: not a version-{SCHEMA} campaign file (expected 'schema' "
                            f"{SCHEMA} and a 'runs' list)")
    return data


def _campaign_base(results_dir: str | os.PathLike[str] | None) -> Path:
    """The folder holding ``campaigns/``: the results folder (paper variant) of the campaign."""
    return Path(results_dir).resolve() if results_dir is not None else paths.results_dir().resolve()


# ------------------------------------------------------------------------------------------------
# submit, wait, resume
# ------------------------------------------------------------------------------------------------

def submit(name: str, experiment_ids: list[str] | tuple[str, ...], profile: str = "full", *,
           executor: ExecutorOptions, launch: JobLaunch | None = None,
           seeds: list[int] | tuple[int, ...] | None = None, variant: str = "paper",
           overrides: dict[str, dict[str, Any]] | None = None,
           results_dir: str | os.PathLike[str] | None = None,
           runs_dir: str | os.PathLike[str] | None = None,
           cache_dir: str | os.PathLike[str] | None = None,
           data_root: str | os.PathLike[str] | None = None,
           selection: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[Any]]:
    """Submit one job per run of :func:`plan` and write the campaign file; returns it and the jobs.

    The executor parameters are validated (:func:`executor_parameters`, then submitit's own
    ``update_parameters``) before anything is written or submitted. A campaign of that name that
    already exists is refused (``campaign resume`` continues it). Evaluation-only entries are
    recorded but get no job.
    """
    launch = launch or JobLaunch()
    params = executor_parameters(executor, launch, name)
    base = _campaign_base(results_dir)
    path = paths.campaign_file(name, base)
    if path.exists():
        raise CampaignError(f"campaign {name!r} exists ({path}); `liquidssm campaign resume {name}` "
                            "submits what is missing or failed, or choose another --name")
    todo = plan(experiment_ids, profile, seeds=seeds, variant=variant, overrides=overrides,
                results_dir=base)
    ex = _make_executor(executor.kind, paths.campaign_logs_dir(name, base), params,
                        executor.max_requeues)
    runs = []
    for r in todo:
        argv = None if r.evaluation_only else train_argv(
            r.experiment, profile, r.seed, launch, variant=variant, overrides=overrides,
            results_dir=base, runs_dir=runs_dir, cache_dir=cache_dir, data_root=data_root)
        runs.append({"experiment": r.experiment, "seed": r.seed, "paper": r.paper, "table": r.table,
                     "evaluation_only": r.evaluation_only, "argv": argv, "jobs": []})
    campaign = {
        "schema": SCHEMA, "name": name, "created": _now(), "selection": selection or
        {"experiments": list(experiment_ids)}, "experiments": list(experiment_ids),
        "profile": profile, "variant": variant, "seeds": None if seeds is None else list(seeds),
        "overrides": overrides or {}, "results_dir": str(base),
        "runs_dir": None if runs_dir is None else str(Path(runs_dir).resolve()),
        "launch": dataclasses.asdict(launch),
        "executor": {"kind": executor.kind, "options": dataclasses.asdict(executor),
                     "parameters": params, "submitit": submitit.__version__},
        "grace_s": _grace(executor), "runs": runs, "submissions": []}
    _write(campaign, base)  # the description exists before the first job does
    jobs = _submit_runs(campaign, ex, [r for r in runs if r["argv"] is not None], "submit", base)
    return campaign, jobs


def _grace(options: ExecutorOptions) -> float:
    """How long :meth:`TrainJob.checkpoint` waits for the child: the warning's lead, less a margin."""
    return float(max(options.signal_delay_s - 15, 5))


def _submit_runs(campaign: dict[str, Any], ex: Any, runs: list[dict[str, Any]], kind: str,
                 base: Path) -> list[Any]:
    """Submit ``runs`` as one batch (one SLURM array), record their job ids, rewrite the file."""
    if not runs:
        campaign["submissions"].append({"at": _now(), "kind": kind, "jobs": 0})
        _write(campaign, base)
        return []
    with ex.batch():
        jobs = [ex.submit(TrainJob(r["argv"], campaign["grace_s"])) for r in runs]
    for r, job in zip(runs, jobs):
        r["jobs"].append({"job_id": str(job.job_id), "submitted": _now()})
    campaign["submissions"].append({"at": _now(), "kind": kind, "jobs": len(jobs),
                                    "job_ids": [str(j.job_id) for j in jobs]})
    _write(campaign, base)
    return jobs


def wait(jobs: list[Any]) -> list[str]:
    """Wait for submitted jobs (of this process); returns ``"ok"`` or the error line per job."""
    out = []
    for job in jobs:
        try:
            job.result()
            out.append("ok")
        except Exception as exc:  # noqa: BLE001 - a failed job is reported, not raised
            out.append(f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}")
    return out


def resume(name: str, results_dir: str | os.PathLike[str] | None = None) -> tuple[dict[str, Any], list[Any]]:
    """Submit again the runs of campaign ``name`` that are ``failed`` or ``missing``.

    Runs that are done, running or still queued are left alone; each resubmitted job runs the
    run's recorded command, which resumes from its checkpoint.
    """
    base = _campaign_base(results_dir)
    campaign = read_campaign(name, base)
    rows = status(name, base)
    again = {(r["experiment"], r["seed"]) for r in rows if r["state"] in ("failed", "missing")}
    runs = [r for r in campaign["runs"]
            if r["argv"] is not None and (r["experiment"], r["seed"]) in again]
    ex_info = campaign["executor"]
    ex = _make_executor(ex_info["kind"], paths.campaign_logs_dir(name, base), ex_info["parameters"],
                        ex_info["options"]["max_requeues"])
    jobs = _submit_runs(campaign, ex, runs, "resume", base)
    return campaign, jobs


# ------------------------------------------------------------------------------------------------
# status
# ------------------------------------------------------------------------------------------------

def run_state(result_valid: bool, submitted: bool, outcome: str | None, scheduler: str | None) -> str:
    """One run's state from what can be observed (the rule :func:`status` applies).

    ``result_valid``: a results file made with today's settings; ``submitted``: a job exists;
    ``outcome``: the job's result file (``"success"``/``"error"``, ``None`` if absent);
    ``scheduler``: its scheduler state (SLURM's ``sacct`` name, or ``"RUNNING"``/``"GONE"``
    for a local job). A job that ended without a valid results file is ``failed``.
    """
    if result_valid:
        return "done"
    if not submitted:
        return "missing"
    if outcome is not None:
        return "failed"
    state = (scheduler or "UNKNOWN").upper().split()[0]
    if state in _SLURM_RUNNING:
        return "running"
    if state in _SLURM_PENDING:
        return "pending"
    return "failed"


def _outcome(job_paths: Any) -> str | None:
    """``"success"``/``"error"`` from submitit's result pickle of a job, ``None`` while it has none."""
    path = job_paths.result_pickle
    if not path.exists():
        return None
    try:
        with open(path, "rb") as f:  # written by submitit for this campaign's own job
            return str(pickle.load(f)[0])
    except Exception:  # noqa: BLE001 - a half-written or foreign file: treat as an error outcome
        return "error"


def _local_state(job_id: str) -> str:
    """``"RUNNING"`` while the local controller process ``job_id`` lives, else ``"GONE"``."""
    try:
        cmdline = Path(f"/proc/{int(job_id)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return "GONE"
    return "RUNNING" if b"submitit" in cmdline else "GONE"


def _slurm_state(folder: Path, job_id: str) -> str:
    try:
        return str(submitit.SlurmJob(folder=folder / "%j", job_id=job_id).state)
    except Exception as exc:  # noqa: BLE001 - sacct missing or failing: say so, never guess
        return f"UNKNOWN ({type(exc).__name__})"


def _last_line(*files: Path) -> str:
    """The line a failed job's log ends with: its last ``liquidssm ...: error`` line, else the last one."""
    for path in files:
        if not path.exists():
            continue
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        for ln in reversed(lines):
            if ln.startswith("liquidssm ") and ": error" in ln:
                return ln
        if lines:
            return lines[-1]
    return "(no log)"


def status(name: str, results_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Per run of campaign ``name``: state (:func:`run_state`), latest job id, checkpoint step and,
    for a failed run, the last line of its job's log."""
    base = _campaign_base(results_dir)
    campaign = read_campaign(name, base)
    profile, variant = campaign["profile"], campaign["variant"]
    overrides = campaign.get("overrides") or {}
    folder = paths.campaign_logs_dir(name, base)
    results_folder = paths.run_results_dir(variant, base)
    kind = campaign["executor"]["kind"]
    rows = []
    for run in campaign["runs"]:
        exp_id, seed = run["experiment"], int(run["seed"])
        spec = resolve(get_experiment(exp_id), profile,
                       merge_overrides(variant_overrides(exp_id, profile, variant), overrides))
        valid = current_result(res.result_path(exp_id, profile, seed, results_folder), spec.config_hash())
        job_id = run["jobs"][-1]["job_id"] if run["jobs"] else None
        outcome = scheduler = None
        log = ""
        if job_id is not None:
            jp = submitit.core.utils.JobPaths(folder / "%j", job_id=job_id, task_id=0)
            outcome = _outcome(jp)
            if outcome is None and not valid:
                scheduler = _local_state(job_id) if kind == "local" else _slurm_state(folder, job_id)
            log = str(jp.stderr)
        state = "pending" if run["evaluation_only"] and not valid else run_state(
            valid, job_id is not None, outcome, scheduler)
        step = _checkpoint_step(run)
        rows.append({"paper": run["paper"], "table": run["table"], "experiment": exp_id, "seed": seed,
                     "state": state, "job_id": job_id, "submissions": len(run["jobs"]),
                     "checkpoint_step": step, "evaluation_only": run["evaluation_only"],
                     "last_line": _last_line(Path(log), Path(log).with_suffix(".out"))
                     if state == "failed" and log else "", "log": log})
    return rows


def _checkpoint_step(run: dict[str, Any]) -> int | None:
    """The step of the run's newest checkpoint (from its command's ``--run-dir`` or the default)."""
    argv = run.get("argv") or []
    if "--run-dir" in argv:
        folder = Path(argv[argv.index("--run-dir") + 1])
    else:
        variant = argv[argv.index("--variant") + 1] if "--variant" in argv else "paper"
        profile = argv[argv.index("--profile") + 1] if "--profile" in argv else "full"
        folder = paths.run_dir(run["experiment"], profile, int(run["seed"]), variant)
    found = list_checkpoints(folder)
    return int(found[0].stem.removeprefix("step-")) if found else None


def table_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Counts of each state per (paper, table), in the order the tables first appear."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["paper"], r["table"])
        row = out.setdefault(key, {"paper": key[0], "table": key[1], **dict.fromkeys(STATES, 0)})
        row[r["state"]] += 1
    return list(out.values())


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------

def _minutes(text: str) -> int:
    """``--time``: minutes (``240``), ``H:MM:SS``/``MM:SS`` or ``D-HH:MM:SS`` → whole minutes (>= 1)."""
    try:
        days, dash, clock = text.rpartition("-")
        parts = [int(p) for p in clock.split(":")]
        if len(parts) > 3 or min(parts) < 0:
            raise ValueError(text)
        if dash:  # SLURM: days-hours[:minutes[:seconds]]
            h, m, s = parts + [0] * (3 - len(parts))
            minutes = int(days) * 24 * 60 + h * 60 + m + math.ceil(s / 60)
        elif len(parts) == 1:  # minutes
            minutes = parts[0]
        else:  # minutes:seconds or hours:minutes:seconds
            h, m, s = [0] * (3 - len(parts)) + parts
            minutes = h * 60 + m + math.ceil(s / 60)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected minutes, H:MM:SS or D-HH:MM:SS, got {text!r}") from None
    if minutes < 1:
        raise argparse.ArgumentTypeError(f"expected at least one minute, got {text!r}")
    return minutes


def _selection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--paper", default=None, choices=sorted(PAPERS))
    p.add_argument("--table", action="append", default=[], help="a table of --paper (repeatable)")
    p.add_argument("--experiment", action="append", default=[], metavar="ID",
                   help="an entry instead of --paper/--table (repeatable)")
    p.add_argument("--profile", default="full", choices=PROFILES)
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default: each profile's seeds")
    p.add_argument("--variant", default="paper", choices=RUN_VARIANTS)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a setting of every run, as `liquidssm train --set`")
    p.add_argument("--results-dir", default=None,
                   help="results folder (default data/results or $LIQUIDSSM_RESULTS); the campaign "
                        "is written to its campaigns/ sub-folder")


def _selected(args: argparse.Namespace) -> tuple[list[str], dict[str, Any], dict[str, dict[str, Any]]]:
    from liquidssm.repro.cli import _parse_set

    overrides = _parse_set(args.set)
    try:
        ids = select_experiments(args.paper, args.table, args.experiment)
        for exp_id in ids:  # a bad --set is a usage error here, not in the jobs
            resolve(get_experiment(exp_id), args.profile, overrides)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    selection = {"paper": args.paper, "tables": list(args.table), "experiments": list(args.experiment)}
    return ids, selection, overrides


def _hours(seconds: float | None) -> str:
    return "not measured" if seconds is None else f"{seconds / 3600:.2f} h"


def _print_plan(todo: list[PlannedRun], profile: str) -> None:
    if not todo:
        print(f"nothing to run: every selected ({profile}) run has a valid results file")
        return
    width = max(len(r.experiment) for r in todo)
    twidth = max(len(f"{r.paper} {r.table}") for r in todo)
    print(f"{'table':{twidth}s} {'experiment':{width}s} {'seed':>6s}  projected")
    for r in todo:
        cost = "evaluation only (made from its source run)" if r.evaluation_only else _hours(r.seconds)
        print(f"{r.paper + ' ' + r.table:{twidth}s} {r.experiment:{width}s} {r.seed:6d}  {cost}")
    train = [r for r in todo if not r.evaluation_only]
    known = [r.seconds for r in train if r.seconds is not None]
    if not known:
        cost = "projected cost not measured (`--cost FILE` reads one)"
    else:
        cost = f"projected {_hours(sum(known))} for {len(known)} of them"
        if len(known) < len(train):
            cost += f", {len(train) - len(known)} not measured"
    print(f"\n{len(todo)} run(s) without a valid {profile} results file ({len(train)} to train); {cost}")


def _plan_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="liquidssm campaign plan",
                                description="the (entry, seed) runs without a valid results file")
    _selection_args(p)
    p.add_argument("--cost", default=None, metavar="FILE",
                   help=f"projected costs recorded by `liquidssm plan`, JSON {COST_SCHEMA}")
    args = p.parse_args(argv)
    ids, _, overrides = _selected(args)
    try:
        costs = load_costs(args.cost, args.profile)
    except CampaignError as exc:
        raise UsageError(str(exc)) from None
    _print_plan(plan(ids, args.profile, seeds=args.seeds, variant=args.variant, overrides=overrides,
                     results_dir=args.results_dir, costs=costs), args.profile)
    return 0


def _executor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", required=True, choices=EXECUTORS)
    p.add_argument("--name", default=None, help="campaign name (default <paper>-t<table>-<profile>)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "gpu", "auto"))
    p.add_argument("--devices", type=int_at_least(1), default=1, help="processes per node (Fabric DDP)")
    p.add_argument("--num-nodes", type=int_at_least(1), default=1)
    p.add_argument("--precision", default="32-true", choices=PRECISIONS)
    p.add_argument("--time", type=_minutes, default=None, help="time limit per job (slurm: required)")
    p.add_argument("--partition", default=None)
    p.add_argument("--gpus-per-job", type=int_at_least(0), default=None)
    p.add_argument("--cpus-per-job", type=int_at_least(1), default=None)
    p.add_argument("--mem-gb", type=int_at_least(1), default=None)
    p.add_argument("--array-parallelism", type=int_at_least(1), default=None,
                   help="at most so many jobs of the array at once")
    p.add_argument("--constraint", default=None)
    p.add_argument("--account", default=None)
    p.add_argument("--qos", default=None)
    p.add_argument("--signal-delay", type=int_at_least(1), default=120,
                   help="seconds before the time limit the warning signal comes (default 120)")
    p.add_argument("--max-requeues", type=int_at_least(0), default=3,
                   help="time-limit requeues per job (preemptions do not count)")
    p.add_argument("--setup", action="append", default=[], metavar="LINE",
                   help="a shell line the sbatch script runs first (module load ..., repeatable)")
    p.add_argument("--runs-dir", default=None, help="base of the checkpoint folders (default _build)")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and the executor parameters (slurm: the sbatch script); "
                        "submit nothing")
    p.add_argument("--wait", action="store_true", help="wait for the jobs and print the status")


def _options(args: argparse.Namespace) -> tuple[ExecutorOptions, JobLaunch]:
    try:
        launch = JobLaunch(args.device, args.devices, args.num_nodes, args.precision)
    except CampaignError as exc:
        raise UsageError(str(exc)) from None
    return ExecutorOptions(
        kind=args.executor, time_min=args.time, partition=args.partition,
        gpus_per_job=args.gpus_per_job, cpus_per_job=args.cpus_per_job, mem_gb=args.mem_gb,
        array_parallelism=args.array_parallelism, constraint=args.constraint, account=args.account,
        qos=args.qos, signal_delay_s=args.signal_delay, max_requeues=args.max_requeues,
        setup=tuple(args.setup)), launch


def _default_name(args: argparse.Namespace) -> str:
    if args.paper is not None:
        tables = "-".join(args.table) if args.table else "all"
        return f"{args.paper}-t{tables}-{args.profile}"
    return f"experiments-{args.profile}"


def _submit_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="liquidssm campaign submit",
                                description="one job per run without a valid results file")
    _selection_args(p)
    _executor_args(p)
    args = p.parse_args(argv)
    ids, selection, overrides = _selected(args)
    options, launch = _options(args)
    name = args.name or _default_name(args)
    try:
        paths.campaign_dir(name)
        params = executor_parameters(options, launch, name)
    except (CampaignError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if args.dry_run:
        todo = plan(ids, args.profile, seeds=args.seeds, variant=args.variant, overrides=overrides,
                    results_dir=args.results_dir)
        _print_plan(todo, args.profile)
        print(f"\n{args.executor} executor parameters: {json.dumps(params, sort_keys=True)}")
        n = sum(not r.evaluation_only for r in todo)
        if args.executor == "slurm" and n:
            logs = paths.campaign_logs_dir(name, _campaign_base(args.results_dir))
            print("\n" + sbatch_preview(params, n, logs))
        return 0
    try:
        campaign, jobs = submit(name, ids, args.profile, executor=options, launch=launch,
                                seeds=args.seeds, variant=args.variant, overrides=overrides,
                                results_dir=args.results_dir, runs_dir=args.runs_dir,
                                cache_dir=args.cache_dir, data_root=args.data_root,
                                selection=selection)
    except CampaignError as exc:
        raise UsageError(str(exc)) from None
    print(f"campaign {name}: {len(jobs)} job(s) submitted ({args.executor}); "
          f"{paths.campaign_file(name, _campaign_base(args.results_dir))}")
    for run in campaign["runs"]:
        job = run["jobs"][-1]["job_id"] if run["jobs"] else "-"
        print(f"  {run['experiment']} seed {run['seed']}: job {job}")
    return _finish(name, jobs, args)


def _finish(name: str, jobs: list[Any], args: argparse.Namespace) -> int:
    """After a submission: with ``--wait`` (or nothing submitted) the status, else how to follow it."""
    if args.wait and jobs:
        wait(jobs)
    if args.wait or not jobs:
        return _print_status(name, args.results_dir)
    print(f"follow it with `liquidssm campaign status {name}`")
    return 0


def _print_status(name: str, results_dir: str | None) -> int:
    rows = status(name, results_dir)
    print(f"campaign {name}")
    for t in table_summary(rows):
        print(f"  {t['paper']} table {t['table']}: " + ", ".join(f"{t[s]} {s}" for s in STATES))
    for r in rows:
        where = f"job {r['job_id']}" if r["job_id"] else "no job"
        step = "" if r["checkpoint_step"] is None else f", checkpoint at step {r['checkpoint_step']}"
        print(f"  {r['experiment']} seed {r['seed']}: {r['state']} ({where}{step})")
        if r["state"] == "failed":
            print(f"      {r['last_line']}\n      log: {r['log']}")
    return 1 if any(r["state"] == "failed" for r in rows) else 0


def _status_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="liquidssm campaign status",
                                description="runs done / running / pending / failed / missing per "
                                            "table; exit status 1 when a run failed")
    p.add_argument("name")
    p.add_argument("--results-dir", default=None)
    args = p.parse_args(argv)
    try:
        return _print_status(args.name, args.results_dir)
    except (CampaignError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def _resume_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="liquidssm campaign resume",
                                description="submit again the runs that failed or were never submitted")
    p.add_argument("name")
    p.add_argument("--results-dir", default=None)
    p.add_argument("--wait", action="store_true")
    args = p.parse_args(argv)
    try:
        campaign, jobs = resume(args.name, args.results_dir)
    except (CampaignError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    print(f"campaign {args.name}: {len(jobs)} job(s) resubmitted")
    args.executor = campaign["executor"]["kind"]
    return _finish(args.name, jobs, args)


def main(argv: list[str] | None = None) -> int:
    """``liquidssm campaign plan | submit | status | resume``: whole tables on a cluster."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"plan": _plan_main, "submit": _submit_main, "status": _status_main,
                "resume": _resume_main}
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: liquidssm campaign {plan,submit,status,resume} [options]\n\n"
              "  plan    the (entry, seed) runs without a valid results file, with projected costs\n"
              "  submit  one job per run (--executor slurm: a job array; local: this machine)\n"
              "  status  per table: runs done / running / pending / failed / missing\n"
              "  resume  submit again what failed or was never submitted\n\n"
              "run `liquidssm campaign COMMAND --help` for its options")
        return 0 if argv else 2
    if argv[0] not in commands:
        raise UsageError(f"campaign: unknown command {argv[0]!r}; choose one of {', '.join(commands)}")
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
