"""Bad input to the training engine, the run folder and the results files (issue: a clear error
before any work is lost, one run per run folder, nothing truncated).

Grouped per entry point: ``Launch`` / ``fit`` (in process), the run folder's lock, a finished
run's files against a later failing attempt, ``liquidssm train | experiments | results`` (through
``liquidssm.cli.main``), and the paper-table readers.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from liquidssm import cli
from liquidssm.repro import checkpoint as ckpt
from liquidssm.repro import results as res
from liquidssm.repro.experiments import get_experiment
from liquidssm.repro.spec import Launch, resolve

EXP = "lrcssm-t1-scp1"  # the cheapest smoke entry (a UEA fixture, one LrcSSM block)
TINY = {"task": {"n": 48, "length": 16}, "train": {"epochs": 2, "batch_size": 8,
                                                    "checkpoint_every": 3}}


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


# -- Launch and fit: refused before any work ------------------------------------------------------

@pytest.mark.parametrize("fields, message", [
    ({"max_minutes": -1}, "max_minutes: expected a positive finite number of minutes or None, got -1"),
    ({"max_minutes": math.nan}, "max_minutes: expected a positive finite number of minutes or None, got nan"),
    ({"max_minutes": 0}, "max_minutes: expected a positive finite"),
    ({"devices": 0}, "devices: expected an integer >= 1, got 0"),
    ({"num_nodes": True}, "num_nodes: expected an integer >= 1, got True"),
    ({"device": "tpu"}, "device: expected one of ['cpu', 'cuda', 'auto'] (or 'gpu'), got 'tpu'"),
    ({"precision": "16-true"}, "precision: expected one of"),
    ({"precision": "bf16-mixed"}, "precision: 'bf16-mixed' is for GPUs; on the CPU use '32-true'"),
])
def test_launch_refuses_bad_settings_by_name(fields, message):
    with pytest.raises(ValueError) as info:
        Launch(**fields)
    assert message in str(info.value)


def test_launch_reads_gpu_as_cuda():
    assert Launch(device="gpu").device == "cuda"


@pytest.mark.parametrize("seed", [1.5, True, -1, 2**70, "3"])
def test_fit_refuses_a_seed_that_is_not_an_integer_in_range(seed, tmp_path):
    from liquidssm.repro.train import fit

    with pytest.raises(ValueError, match=r"seed: expected an integer in \[0, 2\*\*63\)"):
        fit(EXP, "smoke", seed, results_dir=tmp_path / "r", run_dir=tmp_path / "run")
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").rglob("*.json"))
    assert not (tmp_path / "run").exists()  # refused before the run folder was made


def test_overrides_must_be_mappings():
    exp = get_experiment(EXP)
    with pytest.raises(TypeError, match="overrides: expected a mapping .* got str 'model.lr=1'"):
        resolve(exp, "smoke", "model.lr=1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"overrides\['optim'\]: expected a mapping of field -> value, got str"):
        resolve(exp, "smoke", {"optim": "lr=1"})  # type: ignore[dict-item]


@pytest.mark.parametrize("task, message", [
    ({"n": "abc"}, "task 'uea': n expected an integer >= 3, got 'abc'"),
    ({"length": 0}, "task 'uea': length expected an integer >= 1, got 0"),
    ({"length": 2.5}, "task 'uea': length expected an integer >= 1, got 2.5"),
])
def test_task_arguments_name_the_field(task, message, tmp_path):
    from liquidssm.repro.tasks import build_task

    spec = resolve(get_experiment(EXP), "smoke", {"task": task})
    with pytest.raises(ValueError) as info:
        build_task(spec.task, spec.task_args, 0, cache_dir=tmp_path)
    assert message in str(info.value)


def test_a_run_folder_that_is_a_file_is_refused_before_training(tmp_path):
    from liquidssm.repro.train import fit

    a_file = tmp_path / "run"
    a_file.write_text("not a folder")
    with pytest.raises(ckpt.CheckpointError, match=r"run_dir: .*run is a file, not a folder"):
        fit(EXP, "smoke", 0, results_dir=tmp_path / "r", run_dir=a_file, overrides=TINY)
    with pytest.raises(ckpt.CheckpointError, match="is not writable"):
        ckpt.check_run_dir(a_file / "below")
    assert a_file.read_text() == "not a folder"


# -- one run per run folder -----------------------------------------------------------------------

def _plant_lock(folder: Path, pid: int, host: str | None = None, job: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ckpt.LOCK
    path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                "started": "2026-12-07T00:00:00+00:00", "slurm_job_id": job,
                                "token": "planted"}))
    return path


def test_a_second_run_of_the_same_folder_is_refused_with_the_holders_pid(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_file = _plant_lock(tmp_path / "run", holder.pid)
        with pytest.raises(ckpt.RunLockedError) as info:
            ckpt.acquire_lock(tmp_path / "run")
        assert f"PID {holder.pid} on {socket.gethostname()}" in str(info.value)
        assert str(lock_file) in str(info.value)  # and how to proceed
        assert json.loads(lock_file.read_text())["pid"] == holder.pid  # untouched
    finally:
        holder.kill()
        holder.wait()
    with pytest.warns(RuntimeWarning, match=f"taking over a stale lock .*{holder.pid} is no longer running"):
        lock = ckpt.acquire_lock(tmp_path / "run")
    assert json.loads(lock_file.read_text())["pid"] == os.getpid()
    with pytest.raises(ckpt.RunLockedError):  # held by this live process now
        ckpt.acquire_lock(tmp_path / "run")
    lock.release()
    assert not lock_file.exists()


def test_a_lock_of_another_host_is_never_taken_over_but_a_requeued_job_takes_its_own(tmp_path,
                                                                                     monkeypatch):
    _plant_lock(tmp_path / "run", 1, host="other-node", job="4242")
    with pytest.raises(ckpt.RunLockedError, match="PID 1 on other-node"):
        ckpt.acquire_lock(tmp_path / "run")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")  # the same job, requeued onto another node
    with pytest.warns(RuntimeWarning, match=r"left by this SLURM job \(4242\) before a requeue"):
        ckpt.acquire_lock(tmp_path / "run").release()


def test_release_never_removes_another_runs_lock(tmp_path):
    lock = ckpt.acquire_lock(tmp_path / "run")
    lock.path.unlink()
    other = _plant_lock(tmp_path / "run", os.getpid())
    lock.release()
    assert other.exists()


def test_two_trainings_of_one_run_folder_one_refuses(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _plant_lock(tmp_path / "run", holder.pid)
        out = subprocess.run([sys.executable, "-m", "liquidssm.cli", "train", EXP,
                              "--results-dir", str(tmp_path / "r"), "--run-dir", str(tmp_path / "run"),
                              "--set", "task.n=48", "--set", "task.length=16"],
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 1, out.stderr
    assert f"is in use by another run (PID {holder.pid}" in out.stderr
    assert "Traceback" not in out.stderr and not list((tmp_path / "run").glob("step-*.pt"))


# -- what a finished run wrote is never truncated by a later attempt ------------------------------

@pytest.mark.slow
def test_a_failing_attempt_leaves_the_finished_runs_files_alone(tmp_path):
    from liquidssm.repro.train import NonFiniteLossError, fit

    results, cache = tmp_path / "r", tmp_path / "cache"
    fit(EXP, "smoke", 0, results_dir=results, run_dir=tmp_path / "run1", cache_dir=cache,
        overrides=TINY)
    done = res.result_path(EXP, "smoke", 0, results)
    log = done.with_suffix(".metrics.jsonl")
    before = {p: p.read_bytes() for p in (done, log)}
    assert len(log.read_text().splitlines()) > 3
    # a new attempt in a fresh run folder that diverges at once
    with pytest.raises(NonFiniteLossError):
        fit(EXP, "smoke", 0, results_dir=results, run_dir=tmp_path / "run2", cache_dir=cache,
            overrides={**TINY, "optim": {"lr": 1e30}})
    assert {p: p.read_bytes() for p in (done, log)} == before
    assert not (tmp_path / "run2" / ckpt.LOCK).exists()  # the lock went with the failure
    # and one that fails at setup (an unknown task argument)
    with pytest.raises(ValueError, match="unknown argument"):
        fit(EXP, "smoke", 0, results_dir=results, run_dir=tmp_path / "run3", cache_dir=cache,
            overrides={"task": {"nope": 1}})
    assert {p: p.read_bytes() for p in (done, log)} == before
    # a completed rerun replaces both, together
    fit(EXP, "smoke", 0, results_dir=results, run_dir=tmp_path / "run4", cache_dir=cache,
        overrides=TINY)
    assert len(log.read_text().splitlines()) == len(before[log].decode().splitlines())
    assert res.read_result(done)["config_hash"] == json.loads(before[done])["config_hash"]


# -- the command line -----------------------------------------------------------------------------

@pytest.mark.parametrize("argv, status, phrase", [
    (["train", EXP, "--max-minutes", "-1"], 2, "max_minutes: expected a positive finite number"),
    (["train", EXP, "--max-minutes", "nan"], 2, "got nan"),
    (["train", EXP, "--seed", str(2**70)], 2, "expected an integer in [0, 2**63), got 1180591620717411303424"),
    (["train", EXP, "--seed", "1.5"], 2, "expected an integer in [0, 2**63), got '1.5'"),
    (["train", EXP, "--devices", "0"], 2, "devices: expected an integer >= 1, got 0"),
    (["train", EXP, "--set", "task.n=abc"], 1, "task 'uea': n expected an integer >= 3, got 'abc'"),
    (["train", EXP, "--set", "task.length=0"], 1, "task 'uea': length expected an integer >= 1, got 0"),
    (["experiments", "--table", "99"], 2, "no experiments in table '99'; tables with experiments: 1, 2,"),
    (["experiments", "--paper", "lrcssm", "--table", "S2"], 2, "no lrcssm experiments in table 'S2'"),
])
def test_train_and_experiments_refuse_bad_values_by_name(argv, status, phrase, capsys, tmp_path):
    if argv[0] == "train":
        argv = [*argv, "--results-dir", str(tmp_path / "r"), "--run-dir", str(tmp_path / "run"),
                "--cache-dir", str(tmp_path / "cache")]
    code, text = _cli(argv, capsys)
    assert code == status, text
    assert phrase in text
    assert not list(tmp_path.rglob("step-*.pt"))  # nothing trained


def test_results_of_a_mistyped_folder_is_an_error_not_an_empty_table(capsys, tmp_path):
    code, text = _cli(["results", "--results-dir", str(tmp_path / "resluts")], capsys)
    assert code == 1 and "resluts is not a folder" in text


def test_results_skip_a_damaged_file_with_a_warning(capsys, tmp_path):
    bad = tmp_path / EXP / "smoke-seed0.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"schema": 1, "experiment": ')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, text = _cli(["results", "--results-dir", str(tmp_path)], capsys)
    assert code == 1 and "no results yet" in text
    assert any(f"{bad}:1: not valid JSON" in str(w.message) for w in caught)


# -- paper tables ---------------------------------------------------------------------------------

def test_a_percent_sign_in_a_paper_table_names_the_file_line_and_column(tmp_path, monkeypatch):
    from liquidssm import paths
    from liquidssm.repro import tables

    root = tmp_path / "checkout"
    shutil.copytree(paths.paper_dir(), root / "data" / "paper")
    (root / "book").mkdir()
    (root / "_toc.yml").write_text("root: intro\n")
    csv = root / "data" / "paper" / "ls4-table3.csv"
    text = csv.read_text()
    assert ",80.82," in text  # the second data row (line 3) holds FlexConv's 80.82
    csv.write_text(text.replace(",80.82,", ",62.1%,", 1))
    monkeypatch.setenv(paths.ROOT_ENV, str(root))
    with pytest.raises(ValueError) as info:
        tables.paper_table("ls4-table3")
    assert f"{csv}:3: column 'mean': expected a number (no unit, no '%'), got '62.1%'" in str(info.value)


def test_an_unknown_table_in_the_averages_helper_lists_the_valid_names():
    from liquidssm.repro import tables

    with pytest.raises(KeyError, match="unknown paper table 'lrcssm-table99'; valid names: .*lrcssm-table1"):
        tables.recompute_averages("lrcssm-table99")
