"""``liquidssm campaign`` with submitit's local executor (no SLURM here) and SLURM's parameters.

The end-to-end test submits two tiny smoke runs as two local jobs, preempts one mid-run the way
SLURM does (SIGUSR2 to the job's processes: the submitit worker and the ``liquidssm train``
child), lets submitit requeue it and checks that the requeued run resumed from its checkpoint
and ended with the parameters of an uninterrupted run. ``LocalJob._interrupt()`` cannot do this:
it signals the local *controller*, which has no handler and dies, orphaning the worker
(``shared/reference/cluster-and-publish-notes.md`` §4), so the test signals the worker itself.
The SLURM side is checked without a cluster: the ``update_parameters`` dictionary and the sbatch
script submitit renders from the command-line flags.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from liquidssm import paths
from liquidssm.cliutil import UsageError
from liquidssm.repro import campaign as cp

EXP = "ls4-t1-listops"
SEEDS = (1, 2)
TOTAL_STEPS = 120  # 96 / 8 = 12 steps per epoch, 10 epochs
TINY = {"model": {"d_model": 8, "n_blocks": 1, "d_state": 4, "dropout": 0.1},
        "task": {"n_train": 96, "n_val": 24, "n_test": 24, "max_length": 40},
        "train": {"batch_size": 8, "epochs": 10, "checkpoint_every": 4}}


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _metric_steps(runs: Path, seed: int) -> int:
    """The last step in the attempt's own log, inside its run folder (it is copied beside the
    results file only when the run completes)."""
    path = paths.run_dir(EXP, "smoke", seed, base=runs) / "metrics.jsonl"
    if not path.exists():
        return 0
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip()]
    return max(steps, default=0)


@pytest.fixture(scope="module")
def preempted(tmp_path_factory):
    """Two jobs; the first is preempted (SIGUSR2) at step >= 8 and requeued by submitit."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the jobs
    base = tmp_path_factory.mktemp("campaign")
    results, runs, cache = base / "results", base / "runs", base / "cache"
    t0 = time.perf_counter()
    campaign, jobs = cp.submit("kill", [EXP], "smoke", executor=cp.ExecutorOptions(kind="local"),
                               seeds=SEEDS, overrides=TINY, results_dir=results, runs_dir=runs,
                               cache_dir=cache)
    try:
        assert len(jobs) == 2
        running = {r["seed"]: r["state"] for r in cp.status("kill", results)}
        deadline = time.monotonic() + 300
        while _metric_steps(runs, SEEDS[0]) < 8:
            assert time.monotonic() < deadline, "the first job never reached step 8"
            assert jobs[0].state == "RUNNING", "the first job ended before it could be preempted"
            time.sleep(0.05)
        workers = _children(int(jobs[0].job_id))
        train = [c for w in workers for c in _children(w)]
        assert workers and train, (workers, train)
        for pid in workers + train:  # as slurmstepd signals every process of the job step
            os.kill(pid, signal.SIGUSR2)
        outcome = cp.wait(jobs)
    finally:
        for job in jobs:  # never leave a job behind, whatever failed above
            if job.state == "RUNNING":
                job.cancel()
    seconds = time.perf_counter() - t0
    return {"base": base, "results": results, "runs": runs, "cache": cache, "jobs": jobs,
            "outcome": outcome, "running": running, "campaign": campaign, "seconds": seconds}


def test_two_jobs_one_preempted_and_requeued_both_complete(preempted):
    assert preempted["outcome"] == ["ok", "ok"]
    assert set(preempted["running"].values()) == {"running"}  # while they ran
    rows = cp.status("kill", preempted["results"])
    assert [r["state"] for r in rows] == ["done", "done"]
    assert cp.table_summary(rows) == [{"paper": "liquid-s4", "table": "1", "done": 2, "running": 0,
                                       "pending": 0, "failed": 0, "missing": 0}]
    for seed in SEEDS:
        rec = json.loads((preempted["results"] / EXP / f"smoke-seed{seed}.json").read_text())
        assert rec["training"]["steps"] == TOTAL_STEPS
    job = preempted["jobs"][0]
    out = Path(job.paths.stdout).read_text()
    err = Path(job.paths.stderr).read_text()
    assert "this job is preempted" in out and "forwarding SIGTERM" in out, out[-2000:]
    assert "Requeued job" in out and "training process exited with 130" in out, out[-2000:]
    # the child caught the signals (it did not die of SIGUSR2), saved at step k and exited ...
    stopped = [ln for ln in err.splitlines() if ln.startswith(f"liquidssm train: {EXP}: stopped by signal")]
    assert len(stopped) == 1, err[-2000:]
    k = int(stopped[0].split(" at step ")[1].split(";")[0])
    assert 8 <= k < TOTAL_STEPS
    # ... and the requeued job (same job id, same command) resumed from exactly that checkpoint
    resumed = [ln for ln in err.splitlines() if ln.startswith(f"resuming {EXP}")]
    assert len(resumed) == 1 and resumed[0].endswith(f"step-{k:09d}.pt at step {k}"), err[-2000:]
    assert "resuming" not in Path(preempted["jobs"][1].paths.stderr).read_text()


def test_requeued_run_has_the_parameters_of_an_uninterrupted_run(preempted):
    base = preempted["base"]
    run = preempted["campaign"]["runs"][0]
    argv = cp.train_argv(EXP, "smoke", run["seed"], cp.JobLaunch(), overrides=TINY,
                         results_dir=base / "reference", runs_dir=base / "reference-runs",
                         cache_dir=preempted["cache"])
    seed = run["seed"]
    swap = {str(preempted["results"].resolve()): str((base / "reference").resolve()),
            str(paths.run_dir(EXP, "smoke", seed, base=preempted["runs"].resolve())):
            str(paths.run_dir(EXP, "smoke", seed, base=(base / "reference-runs").resolve()))}
    assert argv == [swap.get(a, a) for a in run["argv"]]  # the job's command, other folders
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    ref = json.loads((base / "reference" / EXP / f"smoke-seed{run['seed']}.json").read_text())
    got = json.loads((preempted["results"] / EXP / f"smoke-seed{run['seed']}.json").read_text())
    assert got["param_digest"] == ref["param_digest"]
    assert got["value"] == ref["value"] and got["history"] == ref["history"]


def test_plan_skips_valid_results_and_replans_a_changed_configuration(preempted, tmp_path):
    results = preempted["results"]
    assert cp.plan([EXP], "smoke", seeds=SEEDS, overrides=TINY, results_dir=results) == []
    changed = {**TINY, "train": {**TINY["train"], "epochs": 11}}
    assert [(r.experiment, r.seed) for r in cp.plan([EXP], "smoke", seeds=SEEDS, overrides=changed,
                                                     results_dir=results)] == [(EXP, 1), (EXP, 2)]
    # a results file whose recorded configuration hash differs (the entry changed since) is stale
    copy = tmp_path / "results" / EXP
    copy.mkdir(parents=True)
    for seed in SEEDS:
        rec = json.loads((results / EXP / f"smoke-seed{seed}.json").read_text())
        if seed == 2:
            rec["config_hash"] = "0" * 16
        (copy / f"smoke-seed{seed}.json").write_text(json.dumps(rec))
    todo = cp.plan([EXP], "smoke", seeds=SEEDS, overrides=TINY, results_dir=tmp_path / "results")
    assert [(r.experiment, r.seed, r.seconds) for r in todo] == [(EXP, 2, None)]
    costs = tmp_path / "cost.json"
    costs.write_text(json.dumps({"profile": "smoke", "entries": [{"experiment": EXP,
                                                                 "seconds_per_run": 30}]}))
    todo = cp.plan([EXP], "smoke", seeds=SEEDS, overrides=TINY, results_dir=tmp_path / "results",
                   costs=cp.load_costs(costs, "smoke"))
    assert todo[0].seconds == 30.0


def test_resume_resubmits_only_what_failed(preempted):
    results = preempted["results"]
    lost = results / EXP / "smoke-seed2.json"
    lost.unlink()  # its job succeeded, its results file is gone: the run counts as failed
    rows = {r["seed"]: r for r in cp.status("kill", results)}
    assert rows[1]["state"] == "done" and rows[2]["state"] == "failed"
    assert rows[2]["checkpoint_step"] == TOTAL_STEPS
    campaign, jobs = cp.resume("kill", results)
    assert len(jobs) == 1 and cp.wait(jobs) == ["ok"]
    assert [len(r["jobs"]) for r in cp.read_campaign("kill", results)["runs"]] == [1, 2]
    assert [r["state"] for r in cp.status("kill", results)] == ["done", "done"]
    assert lost.exists()  # made again from the final checkpoint
    _, again = cp.resume("kill", results)
    assert again == []  # nothing missing or failed


def test_lrcssm_table_1_full_plans_30_runs(tmp_path, capsys):
    todo = cp.plan(cp.select_experiments("lrcssm", ["1"]), "full", results_dir=tmp_path)
    assert len(todo) == 30 and len({(r.experiment, r.seed) for r in todo}) == 30
    assert cp.main(["plan", "--paper", "lrcssm", "--table", "1", "--profile", "full",
                    "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "30 run(s) without a valid full results file (30 to train)" in out
    assert out.count("not measured") == 31  # 30 rows and the total


SLURM_FLAGS = ["submit", "--paper", "lrcssm", "--table", "1", "--executor", "slurm",
               "--time", "1-02:30:00", "--partition", "gpu", "--device", "cuda", "--devices", "2",
               "--gpus-per-job", "2", "--cpus-per-job", "16", "--mem-gb", "64",
               "--array-parallelism", "4", "--constraint", "a100", "--account", "proj",
               "--qos", "high", "--signal-delay", "300", "--setup", "module load cuda",
               "--name", "t1", "--dry-run"]


def test_slurm_parameters_follow_the_flags_without_submitting(tmp_path, capsys):
    assert cp.main([*SLURM_FLAGS, "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("slurm executor parameters: "))
    params = json.loads(line.removeprefix("slurm executor parameters: "))
    assert params == {"job_name": "liquidssm-t1", "time": 26 * 60 + 30, "nodes": 1,
                      "ntasks_per_node": 2, "gpus_per_node": 2, "cpus_per_task": 8, "mem": "64GB",
                      "partition": "gpu", "constraint": "a100", "account": "proj", "qos": "high",
                      "array_parallelism": 4, "signal_delay_s": 300, "setup": ["module load cuda"],
                      "additional_parameters": {"requeue": True}}
    for text in ("#SBATCH --array=0-29%4", "#SBATCH --partition=gpu", "#SBATCH --time=1590",
                 "#SBATCH --gpus-per-node=2", "#SBATCH --ntasks-per-node=2",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --signal=USR2@300", "#SBATCH --requeue",
                 "#SBATCH --account=proj", "#SBATCH --constraint=a100", "#SBATCH --qos=high",
                 "#SBATCH --job-name=liquidssm-t1", "module load cuda", "srun --unbuffered"):
        assert text in out, text
    assert not paths.campaigns_dir(tmp_path).exists()  # a dry run writes nothing


@pytest.mark.parametrize("change, message", [
    ({"kind": "pbs"}, "--executor: expected one of ['slurm', 'local'], got 'pbs'"),
    ({"time_min": None}, "--time: a SLURM job needs a time limit"),
    ({"gpus_per_job": 1}, "--gpus-per-job: a CUDA run with --devices 2 on --num-nodes 1 uses 2 GPU(s), got 1"),
    ({"cpus_per_job": 15}, "--cpus-per-job: 15 CPUs cannot be split evenly over the job's 2 task(s)"),
    ({"signal_delay_s": 600}, "--signal-delay: the warning (600 s before the limit)"),
    ({"partition": "two words"}, "--partition: expected one word without spaces, got 'two words'"),
    ({"array_parallelism": 0}, "--array-parallelism: expected an integer >= 1, got 0"),
])
def test_bad_slurm_parameters_are_refused(change, message):
    good = cp.ExecutorOptions(kind="slurm", time_min=10, partition="gpu")
    launch = cp.JobLaunch(device="cuda", devices=2)
    assert cp.executor_parameters(good, launch, "x")["ntasks_per_node"] == 2
    bad = cp.ExecutorOptions(**{**good.__dict__, **change})
    with pytest.raises(cp.CampaignError) as info:
        cp.executor_parameters(bad, launch, "x")
    assert message in str(info.value)


@pytest.mark.parametrize("flags, message", [
    (["--executor", "local", "--partition", "gpu"], "--partition: only for --executor slurm"),
    (["--executor", "local", "--num-nodes", "2"], "--num-nodes: the local executor has one node"),
    (["--executor", "local", "--gpus-per-job", "1"], "--gpus-per-job: a --device cpu run uses no GPU"),
    (["--executor", "slurm"], "--time: a SLURM job needs a time limit"),
    (["--executor", "slurm", "--time", "30"], "Could not detect \"srun\""),  # no cluster here
])
def test_bad_executor_parameters_are_refused_before_anything_is_submitted(tmp_path, flags, message):
    with pytest.raises(UsageError) as info:
        cp.main(["submit", "--experiment", EXP, "--profile", "smoke", "--results-dir", str(tmp_path),
                 *flags])
    assert info.value.code == 2 and message in str(info.value)
    assert not paths.campaign_file("experiments-smoke", tmp_path).exists()
    assert not list(tmp_path.rglob("*.pkl"))  # no job was pickled, none submitted


def test_selection_cost_file_and_campaign_file_errors(tmp_path):
    with pytest.raises(cp.CampaignError, match="expected --paper"):
        cp.select_experiments()
    with pytest.raises(cp.CampaignError, match="lrcssm has no table '99'; tables: 1, 10, 11, 2, 7, 8, 9"):
        cp.select_experiments("lrcssm", ["99"])
    bad = tmp_path / "cost.json"
    bad.write_text(json.dumps({"entries": [{"experiment": EXP, "seconds_per_run": -1}]}))
    with pytest.raises(cp.CampaignError, match=r"entries\[0\] \(ls4-t1-listops\): 'seconds_per_run' "
                                               r"must be a number > 0, got -1"):
        cp.load_costs(bad, "full")
    bad.write_text(json.dumps({"profile": "smoke", "entries": []}))
    with pytest.raises(cp.CampaignError, match="holds costs of profile 'smoke', the plan is for 'full'"):
        cp.load_costs(bad, "full")
    with pytest.raises(cp.CampaignError, match="campaign 'nope': .* does not exist"):
        cp.status("nope", tmp_path)


def test_run_state_rule():
    assert cp.run_state(True, True, "error", None) == "done"
    assert cp.run_state(False, False, None, None) == "missing"
    assert cp.run_state(False, True, "success", None) == "failed"  # ended without a valid result
    assert cp.run_state(False, True, None, "RUNNING") == "running"
    assert cp.run_state(False, True, None, "PENDING") == "pending"
    assert cp.run_state(False, True, None, "REQUEUED") == "pending"
    assert cp.run_state(False, True, None, "TIMEOUT") == "failed"
    assert cp.run_state(False, True, None, "GONE") == "failed"  # a local job killed outright


def test_the_engine_stops_on_the_schedulers_signal(monkeypatch):
    from liquidssm.repro.train import stop_signals

    monkeypatch.delenv("SUBMITIT_PREEMPT_SIGNAL", raising=False)
    assert stop_signals() == (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)
    monkeypatch.setenv("SUBMITIT_PREEMPT_SIGNAL", "USR1")  # submitit's override, read by both
    assert stop_signals() == (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    monkeypatch.setenv("SUBMITIT_PREEMPT_SIGNAL", "TERM")
    assert stop_signals() == (signal.SIGINT, signal.SIGTERM)


def _tiny_train(base: Path, name: str, *extra: str) -> list[str]:
    items = [f"{s}.{k}={json.dumps(v)}" for s, fields in TINY.items() for k, v in fields.items()]
    return [sys.executable, "-m", "liquidssm.cli", "train", EXP, "--profile", "smoke", "--seed", "1",
            "--results-dir", str(base / name), "--run-dir", str(base / name / "run"),
            "--cache-dir", str(base / "cache"), "--no-progress",
            *[a for item in items for a in ("--set", item)], *extra]


def test_ddp_ranks_stop_together_when_one_is_signalled_and_resume_exactly(tmp_path):
    """A scheduler may signal one DDP rank (or the ranks a step apart): all must stop after the
    same step, or the others wait in their next collective for ever; the resumed run then equals
    an uninterrupted one."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = ("--devices", "2")
    procs = {name: subprocess.Popen(_tiny_train(tmp_path, name, *ddp), env=env, start_new_session=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name in ("ref", "cut")}
    try:
        metrics = tmp_path / "cut" / "run" / "metrics.jsonl"  # the attempt's own log
        deadline = time.monotonic() + 300
        while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 6):
            assert procs["cut"].poll() is None and time.monotonic() < deadline, "never reached step 6"
            time.sleep(0.05)
        procs["cut"].send_signal(signal.SIGTERM)  # rank 0 only: Fabric started rank 1 itself
        out = procs["cut"].communicate(timeout=120)[0]  # a hang fails here
        assert procs["cut"].returncode == 130, out[-2000:]
        stops = [ln for ln in out.splitlines() if ": stopped by signal" in ln]
        assert len(stops) == 2 and len({ln.split(" at step ")[1].split(";")[0] for ln in stops}) == 1, out
        assert procs["ref"].wait(timeout=300) == 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    again = subprocess.run(_tiny_train(tmp_path, "cut", *ddp), env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    ref, cut = (json.loads((tmp_path / n / EXP / "smoke-seed1.json").read_text()) for n in ("ref", "cut"))
    assert cut["param_digest"] == ref["param_digest"] and cut["history"] == ref["history"]
    assert cut["training"]["param_digest_ranks"] == ref["training"]["param_digest_ranks"]


def test_time_limits_in_slurm_formats():
    assert [cp._minutes(t) for t in ("240", "30:00", "4:00:00", "1-12", "1-02:30:00", "0:00:30")] == \
        [240, 30, 240, 36 * 60, 26 * 60 + 30, 1]
    for bad in ("0", "1-", "a:b", "1:2:3:4"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected"):
            cp._minutes(bad)


def test_status_names_a_failed_job_with_the_last_line_of_its_log(tmp_path, capsys):
    results = tmp_path / "results"
    rc = cp.main(["submit", "--experiment", EXP, "--profile", "smoke", "--seeds", "1",
                  "--executor", "local", "--name", "bad", "--results-dir", str(results),
                  "--runs-dir", str(tmp_path), "--cache-dir", str(tmp_path / "cache"),
                  "--set", "task.n_train=16", "--set", "train.batch_size=64", "--wait"])
    out = capsys.readouterr().out
    assert rc == 1  # status after --wait: a run failed
    assert "liquid-s4 table 1: 0 done, 0 running, 0 pending, 1 failed, 0 missing" in out
    assert (f"liquidssm train: error: ValueError: {EXP}: the training split (16 items) gives no full "
            "batch of 64 per process") in out, out
    (row,) = cp.status("bad", results)
    assert row["state"] == "failed" and row["log"].endswith(f"{row['job_id']}_0_log.err")


def test_the_cost_of_a_recorded_liquidssm_plan_file_is_read_as_it_is(tmp_path):
    from liquidssm import paths
    from liquidssm.repro import plan as plan_mod

    recorded = paths.benchmarks_dir() / "plan-cpu-2026-12-07.json"
    data = plan_mod.read_plan(recorded)
    costs = cp.load_costs(recorded, "full")
    entry = data["entries"][0]
    assert costs[entry["experiment"]] == pytest.approx(3600.0 * entry["hours_per_seed"])
    assert set(costs) <= {e["experiment"] for e in data["entries"]}
    broken = tmp_path / "plan.json"
    broken.write_text(json.dumps({"schema": plan_mod.SCHEMA, "entries": []}))
    with pytest.raises(cp.CampaignError, match="--cost: .*missing key 'device'"):
        cp.load_costs(broken, "full")
