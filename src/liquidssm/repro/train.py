"""The training engine: one Lightning Fabric loop for every experiment of both papers.

Chapter ``reproductions/02_how_reproductions_run``. :func:`fit` trains one registry entry
(:mod:`liquidssm.repro.experiments`) for one profile and seed, where its
:class:`~liquidssm.repro.spec.Launch` says: a CPU, one GPU, or several GPUs/nodes through Fabric's
DDP (``fabric run`` / ``torchrun``, or ``devices=N`` which launches the processes itself), and
writes one results file (:func:`liquidssm.repro.results.make_record`). It imports no paper module:
the entries and tasks reach it as data.

The loop, one screen per phase:

* :func:`setup` -- Fabric, seeds, data, model, optimiser, and the checkpoint to resume from;
* :func:`epoch_batches` -- the batches of an epoch: a pure function of (seed, epoch, rank), so
  resuming mid-epoch skips exactly the consumed batches and replays none;
* :func:`train_step` -- schedule, forward, loss, NaN guard, backward, clipping, optimiser step;
* :func:`evaluate` (the one evaluation loop, also used by evaluation-only entries) and
  :func:`evaluate_and_select` -- validation and test metrics, the best validation result
  (model selection) and early stopping;
* :func:`train_epoch` -- the steps of one epoch with logging, checkpoints and stop conditions;
* :func:`fit` -- the epochs, the final evaluation and the results file.

Checkpoints (every ``checkpoint_every`` steps, at each epoch's end, on SIGINT/SIGTERM and when
``max_minutes`` runs out) go to :func:`liquidssm.paths.run_dir` with the best model
(``best.pt``), both through :mod:`liquidssm.repro.checkpoint`'s one writer; per-step metrics are appended to ``<profile>-seed<k>.metrics.jsonl`` next
to the results file. Nothing here renders tables (that is :mod:`liquidssm.repro.tables`).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning_fabric import Fabric
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from liquidssm import paths
from liquidssm.allocator import apply_malloc_setting
from liquidssm.configs import ModelConfig, SequenceModelConfig
from liquidssm.repro import checkpoint as ckpt
from liquidssm.repro import results as res
from liquidssm.repro.experiments import get_experiment
from liquidssm.repro.models import build_model, model_output, newton_iterations
from liquidssm.repro.optim import build_optimizer, lr_factor, set_lr
from liquidssm.repro.spec import Experiment, Launch, RunSpec, resolve
from liquidssm.repro.taskbase import TaskData, loss_fn, metrics_of, sequence_length
from liquidssm.repro.tasks import build_task

__all__ = ["fit", "setup", "train_epoch", "train_step", "evaluate", "evaluate_and_select", "epoch_batches",
           "param_digest", "order_digest", "NonFiniteLossError", "RunInterrupted"]

#: fault injection for the resume test: SIGKILL this process right after that optimiser step
KILL_ENV = "LIQUIDSSM_FAULT_KILL_AT_STEP"


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN/inf; the message names the step and the checkpoint kept."""


class RunInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM arrived; a checkpoint was written and the run can be resumed."""


@dataclass
class State:
    """Everything the loop mutates; what a checkpoint saves besides model and optimiser."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # batches of `epoch` already consumed
    best: dict[str, Any] | None = None
    bad_evals: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    samples: int = 0
    train_seconds: float = 0.0
    stopped_early: bool = False
    newton_sums: list[float] = field(default_factory=list)  # per block, summed over steps
    wall_seconds: float = 0.0  # wall time of every process of this run, up to the last save


@dataclass
class Run:
    """The objects of one run (set up by :func:`setup`)."""

    spec: RunSpec
    exp: Experiment
    seed: int
    fabric: Fabric
    task: TaskData
    model: Any
    optimizer: Any
    run_dir: Path
    results_file: Path
    metrics_file: Path
    state: State
    precision: str
    device_name: str
    tensorboard: Any = None  # a Fabric TensorBoardLogger when asked for (optional extra)
    segment_start: float = field(default_factory=time.perf_counter)  # this process's share


# ------------------------------------------------------------------------------------------------
# setup
# ------------------------------------------------------------------------------------------------

def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _device_name(fabric: Fabric) -> str:
    if fabric.device.type == "cuda":
        return torch.cuda.get_device_name(fabric.device)
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def setup(experiment: str | Experiment, profile: str, seed: int | None, launch: Launch,
          overrides: dict[str, dict[str, Any]] | None = None) -> Run:
    """Resolve the entry (an id or an :class:`Experiment`), start Fabric, build
    data/model/optimiser, load the checkpoint."""
    exp = experiment if isinstance(experiment, Experiment) else get_experiment(experiment)
    spec = resolve(exp, profile, overrides)
    seed = spec.seeds[0] if seed is None else int(seed)
    results_file = res.result_path(exp.id, profile, seed, launch.results_dir)
    res.check_writable(results_file.parent)  # fail before any training
    metrics_file = results_file.with_suffix(".metrics.jsonl")
    run_dir = (Path(launch.run_dir) if launch.run_dir is not None
               else paths.run_dir(exp.id, profile, seed))

    world = launch.devices * launch.num_nodes
    fabric = Fabric(accelerator=launch.device, devices=launch.devices, num_nodes=launch.num_nodes,
                    strategy="ddp" if world > 1 else "auto", precision=launch.precision)
    fabric.launch()
    if launch.restart and fabric.global_rank == 0:
        shutil.rmtree(run_dir, ignore_errors=True)
        metrics_file.unlink(missing_ok=True)
    fabric.barrier()

    with fabric.rank_zero_first():
        task = build_task(spec.task, spec.task_args, seed, data_root=launch.data_root,
                          cache_dir=launch.cache_dir)
    seed_everything(spec.train.init_seed if spec.train.init_seed is not None else seed)
    # an S4 / Liquid-S4 model learns C̃ at the task's length on every rank (never at a first batch's)
    l_max = sequence_length(task) if isinstance(spec.model, SequenceModelConfig) else None
    model = build_model(spec.model, l_max=l_max)
    optimizer = build_optimizer(model, spec.optim)
    model, optimizer = fabric.setup(model, optimizer)
    seed_everything(seed)
    state = State()
    found = ckpt.load_latest(run_dir, spec.config_hash())
    if found is None and fabric.global_rank == 0:
        _truncate_metrics(metrics_file, 0)  # a run killed before its first checkpoint starts over
    if found is not None:
        saved, path = found
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])  # after setup: states follow the parameters
        state = State(**{k: saved[k] for k in State.__dataclass_fields__ if k in saved})
        ckpt.set_rng_state(saved["rng"])
        if fabric.global_rank == 0:
            _truncate_metrics(metrics_file, state.step)
            print(f"resuming {exp.id} ({profile}, seed {seed}) from {path} at step {state.step}",
                  file=sys.stderr)
    return Run(spec, exp, seed, fabric, task, model, optimizer, run_dir, results_file,
               metrics_file, state, launch.precision, _device_name(fabric))


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines after ``step`` (written by the run that was interrupted), atomically."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
    ckpt.atomic_write(path, "".join(line + "\n" for line in keep).encode())


# ------------------------------------------------------------------------------------------------
# batches, steps, evaluation
# ------------------------------------------------------------------------------------------------

def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int, world: int,
                  drop_last: bool) -> list[list[int]]:
    """Index batches of one epoch for one rank: ``DistributedSampler(seed, epoch)``, then chunks.

    The order depends only on (seed, epoch, rank, world), never on a generator carried across
    epochs, so a resumed process reproduces it exactly (Fabric's own sampler wrapper restarts its
    epoch counter at 0 in a new process; here the epoch is set explicitly every time).
    """
    sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                 drop_last=drop_last)
    sampler.set_epoch(epoch)
    idx = list(sampler)
    batches = [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def _loader(dataset: Any, batches: list[list[int]], collate: Any, workers: int, seed: int) -> DataLoader:
    # own generator: creating the iterator draws a base seed, which must not touch the global RNG
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_sampler=batches, collate_fn=collate, num_workers=workers,
                      generator=gen)


def train_step(run: Run, batch: Any) -> float:
    """One optimiser step on ``batch``; returns the loss. Raises on a non-finite loss."""
    spec, fabric, st = run.spec, run.fabric, run.state
    set_lr(run.optimizer, lr_factor(spec.optim, st.step, st.epoch))
    x, y, lengths = fabric.to_device(batch)
    run.model.train()
    try:
        out = model_output(run.model, spec.model, x, lengths)
    except ValueError as exc:
        # the same batch shapes passed before, so the updated parameters went out of range (the
        # library refuses e.g. an infinite step Δ = exp(log Δ)); at step 0 it is a setup error
        if st.step == 0:
            raise
        _diverged(run, f"the parameters left their valid range ({exc})")
    loss = loss_fn(run.task.kind, out, y)
    bad = torch.tensor(0.0 if torch.isfinite(loss) else 1.0, device=fabric.device)
    if fabric.world_size > 1:
        bad = fabric.all_reduce(bad, reduce_op="sum")
    if bad.item() > 0:
        _diverged(run, f"loss is {loss.item()}")
    run.optimizer.zero_grad(set_to_none=True)
    fabric.backward(loss)
    if spec.optim.grad_clip is not None:
        fabric.clip_gradients(run.model, run.optimizer, max_norm=spec.optim.grad_clip)
    run.optimizer.step()
    return float(loss.item())


def _diverged(run: Run, what: str) -> None:
    st = run.state
    last = ckpt.list_checkpoints(run.run_dir)
    kept = f"the last good checkpoint {last[0]} is kept" if last else "no checkpoint was written yet"
    raise NonFiniteLossError(f"{run.spec.experiment_id}: {what} at step {st.step + 1} (epoch {st.epoch}); "
                             f"training stopped, {kept}")


@torch.no_grad()
def evaluate(model: Any, config: ModelConfig, task: TaskData, dataset: Any, batch_size: int, *,
             to_device: Any, drop_last: bool = False) -> dict[str, float]:
    """Loss and accuracy (%) or RMSE of ``model`` on a whole split, in order (every rank sees all).

    The one evaluation loop: training's model selection (:func:`evaluate_and_select`) and the
    evaluation-only entries (:mod:`liquidssm.repro.zeroshot`) both call it. ``to_device`` moves a
    batch (Fabric's ``to_device``, or ``.to(device)``); ``drop_last`` drops a last partial batch
    (LrcSSM's evaluation does).
    """
    n = len(dataset)
    batches = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    model.eval()
    loss_sum, correct, sq, count = 0.0, 0, 0.0, 0
    for batch in _loader(dataset, batches, task.collate, 0, 0):
        x, y, lengths = to_device(batch)
        out = model_output(model, config, x, lengths).float()
        loss_sum += float(loss_fn(task.kind, out, y)) * len(y)
        if task.kind == "classification":
            correct += int((out.argmax(-1) == y).sum())
        else:
            sq += float(((out - y.float().reshape(out.shape)) ** 2).mean(-1).sum())
        count += len(y)
    return metrics_of(task.kind, loss_sum, correct, sq, count)


def _evaluate_split(run: Run, dataset: Any) -> dict[str, float]:
    tr = run.spec.train
    return evaluate(run.model, run.spec.model, run.task, dataset, tr.eval_batch_size or tr.batch_size,
                    to_device=run.fabric.to_device, drop_last=tr.eval_drop_last)


# ------------------------------------------------------------------------------------------------
# model selection, checkpoints, logging
# ------------------------------------------------------------------------------------------------

def _improved(run: Run, val: dict[str, float]) -> bool:
    st, tr = run.state, run.spec.train
    if st.best is None:
        return True
    key = tr.monitor.removeprefix("val_")
    new, old = val[key], st.best["val"][key]
    if tr.ties == "latest":
        return new >= old if tr.maximise else new <= old
    return new > old if tr.maximise else new < old


def param_digest(model: Any) -> str:
    """SHA-256 of every parameter and buffer (sorted by name): equal digests, equal models."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _checkpoint_state(run: Run, *, resume: bool) -> dict[str, Any]:
    """The one checkpoint dict: model, step and configuration; with ``resume`` also the optimiser,
    every RNG and the loop's :class:`State` (``last``), without them the model alone (``best``)."""
    state = {"config_hash": run.spec.config_hash(), "experiment": run.spec.experiment_id,
             "profile": run.spec.profile, "seed": run.seed, "model": run.model.state_dict(),
             "step": run.state.step}
    if resume:
        state.update({"optimizer": run.optimizer.state_dict(), "rng": ckpt.rng_state(),
                      **{k: getattr(run.state, k) for k in State.__dataclass_fields__}})
    return state


def _save(run: Run) -> Path | None:
    st = run.state
    now = time.perf_counter()
    st.wall_seconds += now - run.segment_start  # accumulated across resumed processes
    run.segment_start = now
    path = None
    if run.fabric.global_rank == 0:
        path = ckpt.save_checkpoint(run.run_dir, _checkpoint_state(run, resume=True))
    run.fabric.barrier()
    return path


def _log(run: Run, record: dict[str, Any]) -> None:
    if run.fabric.global_rank == 0:
        run.metrics_file.parent.mkdir(parents=True, exist_ok=True)
        with open(run.metrics_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if run.tensorboard is not None:
            numbers = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
            run.tensorboard.log_metrics(numbers, step=record["step"])


def _require_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ValueError("tensorboard: the TensorBoard logger needs the tensorboard package; "
                         "install it with pip install 'liquidssm[tensorboard]'") from None


def tensorboard_logger(run_dir: Path) -> Any:
    """Fabric's TensorBoard logger writing under ``run_dir/tensorboard`` (the optional extra)."""
    _require_tensorboard()
    from lightning_fabric.loggers import TensorBoardLogger

    return TensorBoardLogger(root_dir=str(run_dir / "tensorboard"), name="", version="")


def order_digest(batches: list[list[int]]) -> str:
    """Short SHA-256 of an epoch's batch order (recorded so a test can see epochs differ)."""
    return hashlib.sha256(json.dumps(batches).encode()).hexdigest()[:12]


def evaluate_and_select(run: Run, order: str | None = None) -> None:
    st = run.state
    val, test = _evaluate_split(run, run.task.val), _evaluate_split(run, run.task.test)
    entry = {"step": st.step, "epoch": st.epoch, "val": val, "test": test}
    if order is not None:
        entry["order_digest"] = order
    st.history.append(entry)
    _log(run, {"step": st.step, "epoch": st.epoch, **{f"val_{k}": v for k, v in val.items()},
               **{f"test_{k}": v for k, v in test.items()}})
    if _improved(run, val):
        st.best, st.bad_evals = entry, 0
        if run.fabric.global_rank == 0:
            ckpt.save_best(run.run_dir, _checkpoint_state(run, resume=False))
    else:
        st.bad_evals += 1
        if run.spec.train.patience is not None and st.bad_evals >= run.spec.train.patience:
            st.stopped_early = True


def _budget_left(run: Run) -> bool:
    st, tr = run.state, run.spec.train
    if st.stopped_early:
        return False
    if tr.max_steps is not None and st.step >= tr.max_steps:
        return False
    return tr.epochs is None or st.epoch < tr.epochs


# ------------------------------------------------------------------------------------------------
# the loop
# ------------------------------------------------------------------------------------------------

class _Signals:
    """Turn SIGINT/SIGTERM into a flag checked between steps (main thread only)."""

    def __init__(self) -> None:
        self.caught: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.caught = signum

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _epoch_batches(run: Run) -> list[list[int]]:
    tr, fabric = run.spec.train, run.fabric
    return epoch_batches(len(run.task.train), tr.batch_size, run.seed, run.state.epoch,
                         fabric.global_rank, fabric.world_size, tr.drop_last)


def train_epoch(run: Run, signals: _Signals, deadline: float | None, bar: Any) -> str:
    """Consume the rest of the current epoch; returns "epoch", "budget", "signal" or "time"."""
    st, tr, fabric = run.state, run.spec.train, run.fabric
    batches = _epoch_batches(run)
    bar.set_description(f"{run.spec.experiment_id} [{run.spec.profile}] epoch {st.epoch + 1}"
                        + (f"/{tr.epochs}" if tr.epochs is not None else ""))
    loader = _loader(run.task.train, batches[st.batch:], run.task.collate, tr.num_workers,
                     run.seed * 100003 + st.epoch)
    kill_at = int(os.environ.get(KILL_ENV, "0") or 0)
    for batch in loader:
        t0 = time.perf_counter()
        loss = train_step(run, batch)
        dt = time.perf_counter() - t0
        st.step, st.batch = st.step + 1, st.batch + 1
        n = len(batch[1]) * fabric.world_size
        st.samples += n
        st.train_seconds += dt
        record = {"step": st.step, "epoch": st.epoch, "loss": loss,
                  "lr": run.optimizer.param_groups[0]["lr"], "samples_per_s": n / max(dt, 1e-9)}
        its = newton_iterations(run.model)
        if its is not None:
            record["newton_iterations"] = its
            st.newton_sums = [a + b for a, b in zip(st.newton_sums or [0.0] * len(its), its)]
        _log(run, record)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", samples_s=f"{st.samples / max(st.train_seconds, 1e-9):.0f}")
        if tr.eval_every is not None and st.step % tr.eval_every == 0:
            evaluate_and_select(run)
        if st.step % tr.checkpoint_every == 0:
            _save(run)
        if kill_at and st.step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if signals.caught is not None:
            return "signal"
        if deadline is not None and time.monotonic() > deadline:
            return "time"
        if not _budget_left(run):
            return "budget"
    return "epoch"


def fit(experiment: str | Experiment, profile: str = "smoke", seed: int | None = None,
        launch: Launch | None = None, *, overrides: dict[str, dict[str, Any]] | None = None,
        **launch_fields: Any) -> dict[str, Any]:
    """Train ``experiment`` (an id or an entry) in ``profile`` with ``seed``; return the record.

    ``launch`` says where and how (:class:`~liquidssm.repro.spec.Launch`); its fields may instead
    be given as keywords (``fit("ls4-t1-listops", "smoke", 0, results_dir=tmp)``), never both.
    Resumes from the newest checkpoint of the same run unless ``launch.restart``; a checkpoint with
    other settings refuses (:class:`~liquidssm.repro.checkpoint.ConfigMismatchError`). On
    SIGINT/SIGTERM or when ``max_minutes`` runs out it checkpoints and stops
    (:class:`RunInterrupted`, or a record with ``"status": "incomplete"``); the results file is
    written only when the run completes.
    """
    if launch is None:
        launch = Launch(**launch_fields)
    elif launch_fields:
        raise TypeError(f"fit: give a Launch or its fields {sorted(launch_fields)}, not both")
    if launch.tensorboard:
        _require_tensorboard()  # fail before any training
    apply_malloc_setting()  # keep freed large blocks (LIQUIDSSM_MALLOC=system opts out)
    run = setup(experiment, profile, seed, launch, overrides)
    if launch.tensorboard and run.fabric.global_rank == 0:
        run.tensorboard = tensorboard_logger(run.run_dir)
    max_minutes, progress = launch.max_minutes, launch.progress
    st, tr, fabric = run.state, run.spec.train, run.fabric
    deadline = None if max_minutes is None else time.monotonic() + 60.0 * max_minutes
    rank0 = fabric.global_rank == 0
    steps_per_epoch = len(epoch_batches(len(run.task.train), tr.batch_size, run.seed, 0,
                                        fabric.global_rank, fabric.world_size, tr.drop_last))
    if steps_per_epoch == 0:
        raise ValueError(f"{run.spec.experiment_id}: the training split ({len(run.task.train)} items) "
                         f"gives no full batch of {tr.batch_size} per process")
    total = min(x for x in (tr.max_steps, None if tr.epochs is None else tr.epochs * steps_per_epoch)
                if x is not None)
    show = rank0 and (progress if progress is not None else sys.stderr.isatty())
    with _Signals() as signals, tqdm(total=total, initial=st.step, disable=not show, unit="step",
                                     desc=f"{run.spec.experiment_id} [{profile}]") as bar:
        while _budget_left(run):
            why = train_epoch(run, signals, deadline, bar)
            if why == "epoch":
                if tr.eval_every is None:
                    evaluate_and_select(run, order_digest(_epoch_batches(run)))
                st.epoch, st.batch = st.epoch + 1, 0
                _save(run)
            elif why == "signal":
                path = _save(run)
                raise RunInterrupted(f"{run.spec.experiment_id}: stopped by signal {signals.caught} at "
                                     f"step {st.step}; checkpoint {path}; run the same command to resume")
            elif why == "time":
                path = _save(run)
                return {"status": "incomplete", "step": st.step, "checkpoint": str(path)}
    if not st.history or st.history[-1]["step"] != st.step:  # a step budget ended mid-epoch
        evaluate_and_select(run)
    _save(run)
    record = _record(run, st.wall_seconds)
    record["training"]["param_digest_ranks"] = _digests_of_all_ranks(fabric, record["param_digest"])
    if rank0:
        res.write_result(record, run.results_file)
    fabric.barrier()
    return record


def _digests_of_all_ranks(fabric: Fabric, digest: str) -> list[str]:
    """Every rank's parameter digest (gathered through Fabric): DDP keeps them all equal."""
    if fabric.world_size == 1:
        return [digest]
    mine = torch.tensor([int(digest[i:i + 8], 16) for i in range(0, 64, 8)], dtype=torch.int64,
                        device=fabric.device)
    every = fabric.all_gather(mine).reshape(fabric.world_size, -1).cpu()
    return ["".join(f"{int(v):08x}" for v in row) for row in every]


def _peak_memory(fabric: Fabric) -> dict[str, Any]:
    if fabric.device.type == "cuda":
        return {"peak_memory_mb": torch.cuda.max_memory_allocated(fabric.device) / 2**20,
                "peak_memory_kind": "cuda max_memory_allocated"}
    return {"peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_memory_kind": "process peak RSS"}


def _record(run: Run, wall_s: float) -> dict[str, Any]:
    st = run.state
    newton = [v / max(st.step, 1) for v in st.newton_sums] or None
    training = {"steps": st.step, "epochs": st.epoch, "stopped_early": st.stopped_early,
                "train_seconds": st.train_seconds, "wall_s": wall_s,
                "samples_per_s": st.samples / max(st.train_seconds, 1e-9),
                "newton_iterations_per_block": newton, **_peak_memory(run.fabric)}
    return res.make_record(run.exp, run.spec, run.seed, task=run.task, best=st.best or {},
                           history=st.history, training=training, device=run.device_name,
                           precision=run.precision, world_size=run.fabric.world_size,
                           param_digest=param_digest(run.model))
