"""What a table costs before anyone spends a GPU-day: ``liquidssm plan``.

Chapter ``reproductions/26_cost``. No dataset is needed. For every entry asked for, :func:`plan`
builds the model of its ``full`` configuration, counts its parameters and checks them against
every size the papers print (Liquid-S4 Table S1's depth/H/N and Table 4's parameter column,
LrcSSM Table 5's hidden/state/blocks), times a few training steps (forward, loss, backward,
optimiser step) on synthetic batches with the task's real shapes, dtypes and class count
(:mod:`liquidssm.repro.shapes`), and projects the hours of one seed, of the entry (all its
seeds), of its table and of the whole campaign asked for, on this device.

How the projection scales (each row says which batch it measured):

* steps per run = epochs x ``n_train // batch`` (the real training-set size; ``max_steps`` caps);
* seconds per step at the entry's batch and length: on a GPU measured there (wall time); on a
  CPU as **CPU seconds of one thread** (``time.process_time`` with ``torch.set_num_threads(1)``:
  other processes on a shared machine do not inflate it; a k-core machine is at best k times
  faster than the projection), measured at
  the largest batch ``b`` with ``b x length <= max_tokens`` (one item shortened to ``max_tokens``
  steps where one item is longer) and multiplied by ``batch / b`` and ``L / length``
  (:func:`measured_shape`), and timed with ``max_blocks`` of the ``n_blocks`` identical blocks
  and multiplied by ``n_blocks / max_blocks`` -- per-sample, per-step, per-block compute is about
  constant on a CPU, so this is the CPU's figure (a GPU is faster per sample at larger batches);
* LrcSSM: timed with the eager and the compiled solver (``compiled_s_per_step``,
  ``eager_s_per_step``); the projection uses the one the full entry runs (compiled);
* evaluation: every epoch the validation and test splits are run forward once (no gradient),
  timed on the same batch; hours per seed = steps x s/step + epochs x eval;
* LrcSSM's runs stop early (patience); the projection is for the full epoch budget, an upper bound.

The models are built by :func:`build_unconverted` (``C̃`` starts as the initial ``C``: the
one-time conversion is a run's setup, not a step). On a CPU the S4 kernels time the pure-torch Cauchy backend (keops's one-off compile, minutes per
formula, would dominate a few steps; keops is faster per step at large N·L, so the CPU figure is
an upper bound there). Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` of the steps; on a CPU the resident set
size sampled every few milliseconds during the steps, minus the size before the model was built
(a delta; :func:`plan` runs each CPU entry in a fresh process, since freed memory is kept). An entry whose estimated memory exceeds what the
device has free is **not run**: its row carries the estimate and ``status = "does not fit"``.
Evaluation-only entries (the 8 kHz zero-shot cells) cost one evaluation of their source entry.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from liquidssm.configs import LrcSSMConfig, SequenceModelConfig
from liquidssm.layers import count_parameters
from liquidssm.repro.experiments import PAPERS, get_experiment, table_experiments
from liquidssm.repro.shapes import TaskShape, steps_per_epoch, task_shape
from liquidssm.repro.spec import Experiment, RunSpec, resolve

__all__ = ["SCHEMA", "PlanRow", "plan", "plan_entry", "printed_checks", "synthetic_batch", "measured_shape", "build_unconverted",
           "to_json", "read_plan", "totals", "select", "unmeasured_row", "recorded", "cost_frame", "CPU_DAY_HOURS", "step_check", "step_groups", "device_name", "memory_estimate_mb", "available_memory_mb", "fmt_table"]

#: the JSON layout :func:`to_json` writes and :func:`read_plan` accepts
SCHEMA = "liquidssm-plan/1"


@dataclasses.dataclass
class PlanRow:
    """One entry's projection (see the module docstring for how each number is made)."""

    experiment: str
    paper: str
    table: str
    row: str
    column: str
    parameters: int
    printed: str               # what the papers print about its size, and whether ours matches
    sizes_match: bool | None   # None: the papers print nothing for this entry
    batch_size: int
    measured_batch: int
    length: int
    measured_length: int       # the length timed (CPU: shortened to max_tokens, then scaled by L)
    n_blocks: int
    measured_blocks: int       # the blocks timed (CPU: max_blocks, then scaled by n_blocks)
    steps_per_run: int
    epochs: int
    seeds: int
    s_per_step: float          # at batch_size (scaled from measured_batch)
    eval_s_per_epoch: float
    peak_memory_mb: float      # measured at measured_batch
    memory_estimate_mb: float  # estimated at batch_size, before allocating
    memory_kind: str
    hours_per_seed: float
    hours: float               # all seeds
    status: str                # "measured", "does not fit", "evaluation only", "failed: ..."
    compiled_s_per_step: float | None = None  # LrcSSM: with the compiled solver (None: not measured)
    eager_s_per_step: float | None = None     # LrcSSM: with the eager solver
    solver: str = ""           # LrcSSM: "compiled" or "eager" (what the full entry runs)


# ------------------------------------------------------------------------------------------------
# what the papers print about an entry's size
# ------------------------------------------------------------------------------------------------

def _parse_count(text: str) -> float:
    units = {"K": 1e3, "M": 1e6}
    return float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)


def printed_checks(exp: Experiment, spec: RunSpec, n_params: int) -> tuple[str, bool | None]:
    """Every size the papers print for ``exp`` beside ours: ``(text, all match)``.

    Liquid-S4: Table S1's depth, H, N (``data/paper/ls4-tableS1.csv``) and, for the SC35 cells,
    Table 4's parameter column (a count within 10 % of the printed one counts as matching; the S4
    twin is compared with the printed S4-LegS count of Gu et al.'s own model and reported, not
    required). LrcSSM Tables 1: Table 5's hidden, state and blocks.
    """
    from liquidssm.repro.tables import paper_table

    notes, ok = [], []
    m = spec.model
    if exp.paper == "liquid-s4":
        from liquidssm.repro.papers.liquid_s4 import experiments as ls4

        s1 = paper_table("ls4-tableS1").set_index("task")
        row = s1.loc[ls4.TABLE_S1_ROW[exp.id]]
        same = (int(row["depth"]), int(row["H"]), int(row["N"])) == (m.n_blocks, m.d_model, m.d_state)
        notes.append(f"Table S1 depth/H/N {row['depth']}/{row['H']}/{row['N']} "
                     f"{'=' if same else '≠'} ours")
        ok.append(same)
        t4 = paper_table("ls4-table4")
        printed = t4[(t4["task"] == exp.column.replace("8kHz", "16kHz")) & (t4["model"] == exp.row)]
        if exp.table == "4" and len(printed):
            count = _parse_count(str(printed["parameters"].iloc[0]))
            rel = n_params / count - 1
            notes.append(f"Table 4 {exp.row} {printed['parameters'].iloc[0]}: ours {rel:+.0%}")
            if exp.row == "Liquid-S4":
                ok.append(abs(rel) <= 0.10)
    elif exp.paper == "lrcssm" and exp.table == "1":
        t5 = paper_table("lrcssm-table5").set_index("task").loc[exp.column]
        same = (int(t5["hidden_dim"]), int(t5["state_dim"]), int(t5["n_blocks"])) == (
            m.d_model, m.d_state, m.n_blocks)
        notes.append(f"Table 5 hidden/state/blocks {t5['hidden_dim']}/{t5['state_dim']}/"
                     f"{t5['n_blocks']} {'=' if same else '≠'} ours")
        ok.append(same)
    if not ok:
        return "-", None
    return "; ".join(notes), all(ok)


# ------------------------------------------------------------------------------------------------
# synthetic batches, memory
# ------------------------------------------------------------------------------------------------

def synthetic_batch(shape: TaskShape, batch: int, generator: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` of the task's real shapes and dtypes: tokens ``(B, L)`` int64 (``(2B, L)`` for a
    pair task) or series ``(B, L, d_input)`` float32; labels ``(B,)`` int64 in ``[0, classes)`` or
    regression targets ``(B, outputs)`` / ``(B, classes)`` float32."""
    if batch < 1:
        raise ValueError(f"batch: expected >= 1, got {batch}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    rows = 2 * batch if shape.pair else batch
    if shape.n_tokens is not None:
        x = torch.randint(0, shape.n_tokens, (rows, shape.length), generator=g)
    else:
        x = torch.randn(rows, shape.length, int(shape.d_input or 1), generator=g)
    if shape.kind == "classification":
        y = torch.randint(0, shape.classes, (batch,), generator=g)
    else:
        y = torch.randn(batch, shape.outputs if shape.outputs > 1 else shape.classes, generator=g)
    return x, y


def memory_estimate_mb(spec: RunSpec, shape: TaskShape, batch: int, n_params: int) -> float:
    """A generous estimate of a training step's memory at ``batch``, made before allocating.

    Parameters, gradients and two Adam moments (4 x params x 4 bytes), plus activations kept for
    the backward pass: about 40 floats per (sequence step, feature, block) for the S4/Liquid-S4
    blocks (the residual stream, norm, kernel convolution in the frequency domain, GELU/GLU and
    the liquid products) and the kernel's frequency-domain terms (H x N/2 x L complex), or, for
    LrcSSM, about 60 floats per (step, state, block) (the Newton iterates and the scan).
    """
    m = spec.model
    rows = 2 * batch if shape.pair else batch
    static = 16.0 * n_params
    if isinstance(m, SequenceModelConfig):
        act = 40.0 * 4 * rows * shape.length * m.d_model * m.n_blocks
        act += 8.0 * 4 * m.d_model * max(1, m.d_state // 2) * (shape.length + 2) * m.n_blocks
    elif isinstance(m, LrcSSMConfig):
        act = 60.0 * 4 * rows * shape.length * max(m.d_model, m.d_state) * m.n_blocks
    else:
        raise TypeError(f"spec.model: expected SequenceModelConfig or LrcSSMConfig, got {type(m).__name__}")
    return (static + act) / 2**20


def available_memory_mb(device: torch.device) -> float:
    """Free memory of the device: CUDA ``mem_get_info``; CPU ``MemAvailable`` of ``/proc/meminfo``
    (elsewhere: the physical memory from ``os.sysconf``)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free / 2**20
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux: the process's peak so far (a coarser delta)
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _RssSampler:
    """The largest resident set size seen while the ``with`` block runs (sampled every 5 ms)."""

    def __init__(self) -> None:
        self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb())

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


# ------------------------------------------------------------------------------------------------
# one entry
# ------------------------------------------------------------------------------------------------

def _full_spec(exp: Experiment, *, compile: bool | None = None, cauchy: str | None = None
               ) -> tuple[RunSpec, TaskShape]:
    """The entry's ``full`` run spec and task shape; ``compile`` (LrcSSM) and ``cauchy`` (S4 /
    Liquid-S4 Cauchy backend) replace the entry's own where given."""
    spec = resolve(exp, "full")
    shape = task_shape(spec.task, spec.task_args)
    model = spec.model
    if isinstance(model, SequenceModelConfig) and model.c_param == "tilde" and model.l_max is None:
        model = model.replace(l_max=shape.length)
    if isinstance(model, SequenceModelConfig) and cauchy is not None:
        model = model.replace(cauchy_backend=cauchy)
    if isinstance(model, LrcSSMConfig) and compile is not None:
        model = model.replace(compile=compile)
    return dataclasses.replace(spec, model=model), shape


def build_unconverted(config: Any, length: int) -> torch.nn.Module:
    """The model of ``config`` with its S4 layers' ``C̃`` fixed at ``length`` *without* the
    conversion ``C̃ = C(I − Ā^L)``: ``C̃`` starts as the random initial ``C``.

    The conversion is a one-time setup of a run (a dense O(N³ log L) power per feature: minutes
    on a CPU for N = 512), not part of a training step; the planner and the CI step check skip it.
    Every step computes exactly what a converted model computes (``C̃`` is a free trainable
    parameter either way). Other configurations are built as they are.
    """
    from liquidssm.repro.models import build_model

    if not (isinstance(config, SequenceModelConfig) and config.c_param == "tilde"):
        return build_model(config)
    model = build_model(config.replace(l_max=None))
    for module in model.modules():
        if getattr(module, "c_param", None) == "tilde" and isinstance(getattr(module, "l_max", None), torch.Tensor):
            module.l_max.fill_(int(length))
    return model


def _time_steps(spec: RunSpec, shape: TaskShape, batch: int, steps: int, device: torch.device,
                precision: str) -> tuple[float, float, float]:
    """``(median s/step, s per forward-only batch, peak MB)`` of ``steps`` training steps at ``batch``,
    after one untimed training step."""
    from liquidssm.repro.models import model_output
    from liquidssm.repro.optim import build_optimizer
    from liquidssm.repro.taskbase import loss_fn

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    base = _rss_mb()
    torch.manual_seed(0)
    kind = shape.kind
    autocast = (torch.autocast(device_type="cuda", dtype=torch.bfloat16)
                if precision == "bf16-mixed" else
                torch.autocast(device_type="cuda", dtype=torch.float16)
                if precision == "16-mixed" else None)

    def forward(model: Any, x: torch.Tensor) -> torch.Tensor:
        if autocast is None:
            return model_output(model, spec.model, x, None)
        with autocast:
            return model_output(model, spec.model, x, None)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # CPU: the process's CPU seconds on one thread, which other processes on a shared machine do
    # not inflate (wall time does); CUDA: wall time after a synchronize
    clock = time.perf_counter if device.type == "cuda" else time.process_time

    times = []
    with _RssSampler() as rss:
        model = build_unconverted(spec.model, shape.length).to(device)
        opt = build_optimizer(model, spec.optim)
        x, y = synthetic_batch(shape, batch)
        x, y = x.to(device), y.to(device)
        model.train()
        # untimed: one training step builds the first-call caches (kernels, compiled graphs)
        loss_fn(kind, forward(model, x), y).backward()
        opt.zero_grad(set_to_none=True)
        for _ in range(steps):
            sync()
            t0 = clock()
            loss = loss_fn(kind, forward(model, x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sync()
            times.append(clock() - t0)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"{spec.experiment_id}: loss is {value} on a synthetic batch")
        model.eval()
        with torch.no_grad():
            sync()
            t0 = clock()
            forward(model, x)
            sync()
            fwd = clock() - t0
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = rss.peak - base
    del model, opt
    return statistics.median(times), fwd, peak


def measured_shape(batch_size: int, shape: TaskShape, device: torch.device, max_tokens: int | None
                   ) -> tuple[int, int]:
    """``(batch, length)`` to time. The entry's own on a GPU (or with ``max_tokens=None``); on a
    CPU the largest batch with ``batch x length <= max_tokens`` (two documents per item for a pair
    task), and where even one item is longer, one item shortened to ``max_tokens`` steps. The
    projection multiplies the time by ``batch_size / batch`` and ``L / length``: CPU time per
    sample and per step is about constant (the FFT's ``log L`` makes the length scaling a slight
    under-estimate; the liquid window L̃ is the entry's own at every length)."""
    if device.type == "cuda" or max_tokens is None:
        return batch_size, shape.length
    docs = 2 if shape.pair else 1
    b = max(1, min(batch_size, max_tokens // (shape.length * docs)))
    length = shape.length if b * shape.length * docs <= max_tokens else max(2, max_tokens // docs)
    return b, length


def plan_entry(experiment_id: str, *, device: str = "cpu", precision: str = "32-true", steps: int = 1,
               max_tokens: int | None = 512, max_blocks: int | None = 1,
               compare_compile: bool = True) -> PlanRow:
    """Measure and project one entry (see the module docstring); never raises for lack of memory."""
    exp = get_experiment(experiment_id)
    dev = torch.device(device)
    # on a CPU the pure-torch Cauchy backend: keops's one-off compile (minutes per formula) would
    # dominate a few timed steps; at large N·L keops is faster per step, so this is an upper bound
    spec, shape = _full_spec(exp, cauchy="torch" if dev.type == "cpu" else None)
    torch.manual_seed(0)
    n_params = count_parameters(build_unconverted(spec.model, shape.length))
    printed, match = printed_checks(exp, spec, n_params)
    tr = spec.train
    epochs = int(tr.epochs or 0)
    per_epoch = steps_per_epoch(shape.n_train, tr.batch_size, tr.drop_last)
    run_steps = epochs * per_epoch if epochs else 0
    if tr.max_steps is not None:
        run_steps = min(run_steps, tr.max_steps) if run_steps else tr.max_steps
        epochs = math.ceil(run_steps / max(per_epoch, 1))
    b, length = measured_shape(tr.batch_size, shape, dev, max_tokens)
    timed_shape = dataclasses.replace(shape, length=length)
    depth = int(spec.model.n_blocks)
    blocks = depth if dev.type == "cuda" or max_blocks is None else min(depth, max_blocks)
    timed_model = spec.model.replace(n_blocks=blocks)
    if isinstance(timed_model, SequenceModelConfig) and timed_model.l_max is not None:
        timed_model = timed_model.replace(l_max=length)
    timed_spec = dataclasses.replace(spec, model=timed_model)
    est_full = memory_estimate_mb(spec, shape, tr.batch_size, n_params)
    est_b = memory_estimate_mb(spec, timed_shape, b, n_params)
    memory_kind = "cuda max_memory_allocated" if dev.type == "cuda" else "RSS peak minus RSS before the model (sampled)"
    solver = ""
    if isinstance(spec.model, LrcSSMConfig):
        solver = "compiled" if spec.model.compile else "eager"
    row = PlanRow(exp.id, exp.paper, exp.table, exp.row, exp.column, n_params, printed, match,
                  tr.batch_size, b, shape.length, length, depth, blocks, run_steps, epochs, len(spec.seeds), math.nan,
                  math.nan, math.nan, est_full, memory_kind, math.nan, math.nan, "measured",
                  solver=solver)
    if exp.zero_shot_of is not None:
        row.status = f"evaluation only (of {exp.zero_shot_of})"
        row.steps_per_run, row.hours_per_seed, row.hours = 0, 0.0, 0.0
        return row
    free = available_memory_mb(dev)
    threads = torch.get_num_threads()
    if dev.type == "cpu":
        torch.set_num_threads(1)  # CPU seconds of one thread (see _time_steps); restored below
    try:
        return _measure(row, exp, spec, timed_spec, shape, timed_shape, b, length, depth, blocks,
                        solver, est_b, free, steps, dev, precision, compare_compile)
    finally:
        torch.set_num_threads(threads)


def _measure(row: PlanRow, exp: Experiment, spec: RunSpec, timed_spec: RunSpec, shape: TaskShape,
             timed_shape: TaskShape, b: int, length: int, depth: int, blocks: int, solver: str,
             est_b: float, free: float, steps: int, dev: torch.device, precision: str,
             compare_compile: bool) -> PlanRow:
    tr = spec.train
    if est_b > 0.8 * free:
        row.status = f"does not fit: about {est_b / 1024:.1f} GiB needed at batch {b}, {free / 1024:.1f} GiB free"
        return row
    try:
        scale = tr.batch_size / b * shape.length / length * depth / blocks
        if solver:
            eager = dataclasses.replace(timed_spec, model=timed_spec.model.replace(compile=False))
            s_step, s_fwd, peak = _time_steps(eager, timed_shape, b, steps, dev, precision)
            row.eager_s_per_step = s_step * scale
            if compare_compile:
                compiled = dataclasses.replace(timed_spec, model=timed_spec.model.replace(compile=True))
                c_step, _, _ = _time_steps(compiled, timed_shape, b, steps, dev, precision)
                row.compiled_s_per_step = c_step * scale
        else:
            s_step, s_fwd, peak = _time_steps(timed_spec, timed_shape, b, steps, dev, precision)
    except (torch.cuda.OutOfMemoryError, MemoryError) as exc:
        row.status = f"does not fit: {type(exc).__name__} at batch {b} (estimate {est_b / 1024:.1f} GiB)"
        return row
    row.s_per_step = s_step * scale
    if solver == "compiled" and row.compiled_s_per_step is not None:
        row.s_per_step = row.compiled_s_per_step  # what the full entry runs (eager if it falls back)
    row.eval_s_per_epoch = (shape.n_val + shape.n_test) / b * s_fwd * shape.length / length * depth / blocks
    row.peak_memory_mb = peak
    row.hours_per_seed = (row.steps_per_run * row.s_per_step + row.epochs * row.eval_s_per_epoch) / 3600
    row.hours = row.hours_per_seed * row.seeds
    return row


# ------------------------------------------------------------------------------------------------
# the CI check: every full entry steps at its full length and width
# ------------------------------------------------------------------------------------------------

def step_groups(experiment_ids: list[str] | None = None) -> dict[str, list[str]]:
    """Full entries grouped by what one step computes: ``{key: [ids]}`` (the first id is stepped).

    The key is the one-block model configuration and the task shape, so entries that would step
    the very same computation (an 8 kHz zero-shot cell and its source, a Figure 1 point and the
    Table 1 entry at the same order) are checked once.
    """
    groups: dict[str, list[str]] = {}
    ids = experiment_ids if experiment_ids is not None else sorted(
        i for p in PAPERS.values() for i in (e.id for e in p.ENTRIES))
    for exp_id in ids:
        exp = get_experiment(exp_id)
        source = exp.zero_shot_of or exp_id
        spec, shape = _full_spec(get_experiment(source), compile=False)
        key = json.dumps({"model": spec.model.replace(n_blocks=1).to_dict(),
                          "shape": dataclasses.asdict(shape)}, sort_keys=True, default=list)
        groups.setdefault(key, []).append(exp_id)
    return groups


def step_check(experiment_id: str, *, n_blocks: int | None = 1, batch: int = 1) -> dict[str, Any]:
    """One forward and backward of ``experiment_id``'s ``full`` model at its full sequence length
    and width, on a synthetic batch of the real shapes (eager solvers).

    ``n_blocks``: the blocks stepped (``None``: the entry's own depth; the blocks of a model are
    copies of one layer, so one block at full length and width runs every kernel the full depth
    runs). ``C̃`` is not converted (:func:`build_unconverted`). The Cauchy kernel runs its pure-torch backend (keops's compile is not for CI; the two
    backends agree in ``tests/test_cauchy.py``). Returns ``loss``, ``finite_grads`` (every gradient finite and at least one nonzero; parameters an
    ablation leaves unused have none: ``unused_parameters``),
    ``parameters`` of the full-depth model, ``seconds``.
    """
    from liquidssm.repro.models import model_output
    from liquidssm.repro.taskbase import loss_fn

    exp = get_experiment(experiment_id)
    exp = get_experiment(exp.zero_shot_of) if exp.zero_shot_of else exp
    spec, shape = _full_spec(exp, compile=False, cauchy="torch")
    torch.manual_seed(0)
    full_params = count_parameters(build_unconverted(spec.model, shape.length))
    model_cfg = spec.model if n_blocks is None else spec.model.replace(n_blocks=n_blocks)
    model = build_unconverted(model_cfg, shape.length)
    model.train()
    x, y = synthetic_batch(shape, batch)
    t0 = time.perf_counter()
    loss = loss_fn(shape.kind, model_output(model, model_cfg, x, None), y)
    loss.backward()
    seconds = time.perf_counter() - t0
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    got = [g for g in grads if g is not None]  # an ablation leaves some parameters unused
    finite = all(bool(torch.isfinite(g).all()) for g in got)
    nonzero = any(bool((g != 0).any()) for g in got)
    return {"loss": float(loss.detach()), "finite_grads": finite and nonzero,
            "unused_parameters": len(grads) - len(got),
            "parameters": full_params, "seconds": seconds, "length": shape.length,
            "input": tuple(x.shape)}


# ------------------------------------------------------------------------------------------------
# many entries, totals, JSON
# ------------------------------------------------------------------------------------------------

def unmeasured_row(experiment_id: str, status: str) -> PlanRow:
    """A row for an entry that was not measured (``status`` says why); its hours are NaN."""
    e = get_experiment(experiment_id)
    return PlanRow(experiment_id, e.paper, e.table, e.row, e.column, 0, "-", None, 0, 0, 0, 0, 0, 0, 0,
                   0, len(e.seeds), math.nan, math.nan, math.nan, math.nan, "", math.nan, math.nan,
                   status)


def select(paper: str | None, table: str | None) -> list[str]:
    """The ids of ``paper``'s ``table`` (every table of both papers where ``None``), in order."""
    papers = [paper] if paper else sorted(PAPERS)
    out: list[str] = []
    for p in papers:
        if p not in PAPERS:
            raise ValueError(f"paper: expected one of {sorted(PAPERS)}, got {p!r}")
        tabs = [table] if table else sorted({e.table for e in PAPERS[p].ENTRIES}, key=str)
        for t in tabs:
            ids = table_experiments(p, t)
            if not ids:
                raise ValueError(f"table: paper {p!r} has no entries for table {t!r}")
            out += [i for i in ids if i not in out]
    return out


def plan(paper: str | None = None, table: str | None = None, *, device: str = "cpu",
         precision: str = "32-true", steps: int = 1, max_tokens: int | None = 512,
         max_blocks: int | None = 1, progress: bool | None = None, compare_compile: bool = True,
         experiment_ids: list[str] | None = None, isolate: bool = True,
         on_row: Callable[[PlanRow], None] | None = None) -> list[PlanRow]:
    """Plan every entry of ``paper``/``table`` (all when ``None``) or ``experiment_ids``.

    An entry whose step fails for another reason than memory is reported with ``status="failed:
    ..."``, so one bad entry never hides the others' costs. On a CPU with ``isolate`` each entry
    runs in a fresh process (a fork server), so its RSS peak is its own.
    """
    from tqdm import tqdm

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: 'cuda' asked for, but torch sees no CUDA device here")
    if device == "cpu" and precision != "32-true":
        raise ValueError(f"precision: {precision!r} is for GPUs; on the CPU use '32-true'")
    ids = list(experiment_ids) if experiment_ids is not None else select(paper, table)
    rows = []
    show = progress if progress is not None else os.isatty(2)
    kwargs = {"device": device, "precision": precision, "steps": steps, "max_tokens": max_tokens,
              "max_blocks": max_blocks, "compare_compile": compare_compile}
    pool = None
    if device == "cpu" and isolate:
        # one fresh process per entry, forked from a server that has imported the library (fast):
        # its resident set starts small, so the RSS peak is this entry's alone
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["liquidssm.repro.plan"])
        pool = ProcessPoolExecutor(max_workers=1, mp_context=ctx, max_tasks_per_child=1)
    with tqdm(ids, disable=not show, unit="entry", desc="plan") as bar:
        for exp_id in bar:
            bar.set_postfix_str(exp_id)
            try:
                row = (pool.submit(plan_entry, exp_id, **kwargs).result() if pool is not None
                       else plan_entry(exp_id, **kwargs))
            except Exception as exc:  # noqa: BLE001 - reported in the row, the plan goes on
                row = unmeasured_row(exp_id, f"failed: {type(exc).__name__}: "
                                             f"{str(exc).splitlines()[0][:200]}")
            rows.append(row)
            if on_row is not None:
                on_row(row)
    if pool is not None:
        pool.shutdown()
    return rows


def totals(rows: list[PlanRow]) -> dict[str, Any]:
    """Hours per (paper, table) and for the whole campaign; entries without a measurement are
    counted in ``unmeasured`` (their hours are not in the sums)."""
    tables: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        t = tables.setdefault((r.paper, r.table), {"paper": r.paper, "table": r.table, "hours": 0.0,
                                                   "entries": 0, "unmeasured": 0})
        t["entries"] += 1
        if math.isfinite(r.hours):
            t["hours"] += r.hours
        else:
            t["unmeasured"] += 1
    return {"tables": list(tables.values()),
            "campaign_hours": sum(t["hours"] for t in tables.values()),
            "unmeasured": sum(t["unmeasured"] for t in tables.values())}


def device_name(device: str) -> str:
    """The device in words: the GPU's name, or the CPU with its cores and torch threads."""
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def to_json(rows: list[PlanRow], *, device: str, precision: str, steps: int,
            max_tokens: int | None, max_blocks: int | None = None) -> dict[str, Any]:
    """The plan as one JSON-serialisable dict (:data:`SCHEMA`); NaN becomes ``null``."""
    def clean(v: Any) -> Any:
        return None if isinstance(v, float) and not math.isfinite(v) else v

    return {"schema": SCHEMA, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "device": device, "device_name": device_name(device), "precision": precision,
            "torch": torch.__version__, "steps": steps, "max_tokens": max_tokens,
            "max_blocks": max_blocks,
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "timing": ("wall seconds after torch.cuda.synchronize" if device == "cuda" else
                       "CPU seconds of one thread (time.process_time, torch.set_num_threads(1))"),
            "entries": [{k: clean(v) for k, v in dataclasses.asdict(r).items()} for r in rows],
            **totals(rows)}


def read_plan(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A plan JSON written by ``liquidssm plan --json``; refuses another schema or missing keys."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: expected a plan with schema {SCHEMA!r}, got "
                         f"{data.get('schema') if isinstance(data, dict) else type(data).__name__!r}")
    fields = {f.name for f in dataclasses.fields(PlanRow)}
    for key in ("device", "device_name", "precision", "entries", "tables", "campaign_hours"):
        if key not in data:
            raise ValueError(f"{path}: missing key {key!r}")
    for i, e in enumerate(data["entries"]):
        missing = fields - set(e)
        if missing:
            raise ValueError(f"{path}: entries[{i}] lacks {sorted(missing)}")
    return data


def fmt_table(rows: list[PlanRow]) -> str:
    """The plan as a fixed-width text table (what ``liquidssm plan`` prints), sorted by cost."""
    head = (f"{'experiment':28s} {'params':>9s} {'sizes':>6s} {'batch':>5s} {'meas':>4s} {'L':>6s} {'L meas':>6s} {'blocks':>6s} "
            f"{'steps/run':>10s} {'s/step':>9s} {'peak MB':>8s} {'h/seed':>9s} {'h total':>9s}  status")
    lines = [head, "-" * len(head)]

    def num(v: float, fmt: str) -> str:
        return format(v, fmt) if math.isfinite(v) else "-"

    for r in sorted(rows, key=lambda r: (-r.hours if math.isfinite(r.hours) else -math.inf)):
        sizes = "-" if r.sizes_match is None else ("ok" if r.sizes_match else "DIFF")
        blocks = f"{r.measured_blocks}/{r.n_blocks}"
        lines.append(f"{r.experiment:28s} {r.parameters:9,d} {sizes:>6s} {r.batch_size:5d} "
                     f"{r.measured_batch:4d} {r.length:6d} {r.measured_length:6d} {blocks:>6s} {r.steps_per_run:10,d} "
                     f"{num(r.s_per_step, '9.4f')} {num(r.peak_memory_mb, '8.0f')} "
                     f"{num(r.hours_per_seed, '9.1f')} {num(r.hours, '9.1f')}  {r.status}"
                     + (f" (eager {r.eager_s_per_step:.4f}, compiled {r.compiled_s_per_step:.4f} s/step)"
                        if r.compiled_s_per_step and r.eager_s_per_step else ""))
    t = totals(rows)
    lines.append("")
    for tab in t["tables"]:
        lines.append(f"{tab['paper']} table {tab['table']}: {tab['hours']:,.1f} h "
                     f"({tab['entries']} entries" + (f", {tab['unmeasured']} not measured" if tab["unmeasured"] else "")
                     + ")")
    lines.append(f"campaign: {t['campaign_hours']:,.1f} h on this device")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# the cost page: recorded plans beside each other
# ------------------------------------------------------------------------------------------------

#: a CPU-feasible entry: one seed in under this many hours on the CPU measured
CPU_DAY_HOURS = 24.0


def recorded(prefix: str, folder: str | os.PathLike[str] | None = None) -> Path | None:
    """The newest recorded ``<prefix>-*.json`` under ``data/benchmarks`` (or ``folder``), or None.

    ``prefix``: ``"plan-cpu"`` (``liquidssm plan --json``) or ``"gpu-check"`` (``make gpu-check``);
    newest by the name's date, which both writers put after the prefix.
    """
    from liquidssm import paths

    base = Path(folder) if folder is not None else paths.benchmarks_dir()
    found = sorted(base.glob(f"{prefix}-*.json"))
    return found[-1] if found else None


def cost_frame(cpu: dict[str, Any], gpu: dict[str, Any] | None = None) -> Any:
    """One row per entry of the CPU plan ``cpu`` (a ``liquidssm-plan/1`` document), sorted by cost.

    Columns ``experiment, paper, table, parameters, cpu_hours_per_seed, cpu_hours, cpu_day``
    (one seed in under :data:`CPU_DAY_HOURS` on that CPU), ``gpu_hours_per_seed``/``gpu_hours``
    from ``gpu`` (a gpu-check document; its ``plan``), ``"not measured"`` where there is none, and
    ``status``.
    """
    import pandas as pd

    gpu_rows = {e["experiment"]: e for e in (gpu["plan"]["entries"] if gpu else [])}
    rows = []
    for e in cpu["entries"]:
        per_seed = e["hours_per_seed"]
        g = gpu_rows.get(e["experiment"])
        rows.append({"experiment": e["experiment"], "paper": e["paper"], "table": e["table"],
                     "parameters": e["parameters"],
                     "cpu_hours_per_seed": math.nan if per_seed is None else per_seed,
                     "cpu_hours": math.nan if e["hours"] is None else e["hours"],
                     "cpu_day": per_seed is not None and per_seed < CPU_DAY_HOURS,
                     "gpu_hours_per_seed": ("not measured" if g is None or g["hours_per_seed"] is None
                                            else g["hours_per_seed"]),
                     "gpu_hours": "not measured" if g is None or g["hours"] is None else g["hours"],
                     "status": e["status"]})
    df = pd.DataFrame(rows)
    return df.sort_values("cpu_hours", na_position="last", kind="stable").reset_index(drop=True)
