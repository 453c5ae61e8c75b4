"""``liquidssm plan`` and ``make gpu-check`` (issue 20 items 2, 3, 6): shapes, scaling, printed
sizes, the memory guard, the JSON layouts, the cost page's frame and the command lines. The GPU
parts of gpu-check skip without CUDA; their JSON layout is checked on a document made here."""

from __future__ import annotations

import json
import math

import pytest
import torch

from liquidssm.bench import gpu_check
from liquidssm.repro import plan
from liquidssm.repro.cli import plan_main
from liquidssm.repro.experiments import get_experiment
from liquidssm.repro.shapes import task_shape

CHEAP = "lrcssm-t1-scp1"


def test_synthetic_batches_have_the_real_shapes_and_dtypes():
    listops = task_shape("listops", {"l_max": 2048})
    x, y = plan.synthetic_batch(listops, 3)
    assert x.shape == (3, 2048) and x.dtype == torch.int64 and int(x.max()) < 18
    assert y.shape == (3,) and y.dtype == torch.int64 and int(y.max()) < 10
    aan = task_shape("aan", {"l_max": 4000})
    x, y = plan.synthetic_batch(aan, 2)
    assert x.shape == (4, 4000) and y.shape == (2,)  # two documents per item
    bidmc = task_shape("bidmc", {"target": "RR"})
    x, y = plan.synthetic_batch(bidmc, 2)
    assert x.shape == (2, 4000, 2) and x.dtype == torch.float32 and y.shape == (2, 1)
    ppg = task_shape("ppg_dalia", {"rate": 64, "window": 49920, "stride": 4992})
    assert ppg.outputs == 390 and plan.synthetic_batch(ppg, 1)[1].shape == (1, 390)
    sc = task_shape("speech_commands", {"classes": "all", "resolution": 1})
    assert (sc.length, sc.classes, sc.n_train) == (16000, 35, 84843)


def test_measured_shape_scales_batch_then_length():
    cpu = torch.device("cpu")
    scp1 = task_shape("uea", {"name": "SCP1"})  # L 896
    assert plan.measured_shape(4, scp1, cpu, 1024) == (1, 896)
    assert plan.measured_shape(4, scp1, cpu, 4096) == (4, 896)
    pathx = task_shape("pathfinder", {"resolution": 128})
    assert plan.measured_shape(8, pathx, cpu, 1024) == (1, 1024)
    aan = task_shape("aan", {})
    assert plan.measured_shape(16, aan, cpu, 1024) == (1, 512)
    assert plan.measured_shape(16, aan, cpu, None) == (16, 4000)


def test_printed_sizes():
    for exp_id, ok, text in (("ls4-t4-sc35-16khz", True, "Table 4 Liquid-S4 224K"),
                             ("ls4-t1-listops", True, "Table S1 depth/H/N 9/128/7 = ours"),
                             ("lrcssm-t1-scp1", True, "Table 5 hidden/state/blocks 64/16/2 = ours"),
                             ("lrcssm-t2-lrc-scp1", None, "-")):
        exp = get_experiment(exp_id)
        spec, _ = plan._full_spec(exp)
        from liquidssm.layers import count_parameters
        from liquidssm.repro.models import build_model

        n = count_parameters(build_model(spec.model))
        got_text, got_ok = plan.printed_checks(exp, spec, n)
        assert got_ok is ok and text in got_text, (exp_id, got_text)
    # a size that differs is reported, not hidden
    exp = get_experiment("ls4-t1-listops")
    spec, _ = plan._full_spec(exp)
    spec = spec.__class__(**{**spec.__dict__, "model": spec.model.replace(d_model=64)})
    assert plan.printed_checks(exp, spec, 1)[1] is False


def test_plan_entry_projects_hours():
    row = plan.plan_entry(CHEAP, steps=1, compare_compile=False)
    assert row.status == "measured" and row.solver == "compiled"
    assert row.steps_per_run == 3000 * (392 // 4) and row.measured_batch == 1
    assert (row.n_blocks, row.measured_blocks, row.measured_length) == (2, 1, 512)  # 896 shortened
    assert row.s_per_step > 0 and row.hours_per_seed > 0 and row.hours == pytest.approx(5 * row.hours_per_seed)
    assert math.isfinite(row.peak_memory_mb) and row.sizes_match is True
    shot = plan.plan_entry("ls4-t4-sc35-8khz")
    assert shot.status.startswith("evaluation only") and shot.hours == 0.0


def test_memory_guard_reports_instead_of_crashing(monkeypatch):
    monkeypatch.setattr(plan, "available_memory_mb", lambda device: 1.0)
    row = plan.plan_entry("ls4-t1-pathx")
    assert row.status.startswith("does not fit") and math.isnan(row.hours)
    assert row.memory_estimate_mb > 1.0 and row.parameters > 0


def test_json_roundtrip_and_cost_frame(tmp_path):
    rows = [plan.plan_entry(CHEAP, steps=1, compare_compile=False),
            plan.unmeasured_row("lrcssm-t1-worms", "not measured (test)")]
    doc = plan.to_json(rows, device="cpu", precision="32-true", steps=1, max_tokens=1024)
    path = tmp_path / "plan-cpu-2026-01-01.json"
    path.write_text(json.dumps(doc))
    back = plan.read_plan(path)
    assert back["entries"][1]["hours"] is None and back["unmeasured"] == 1
    assert back["campaign_hours"] == pytest.approx(rows[0].hours)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**doc, "schema": "other"}))
    with pytest.raises(ValueError, match="schema"):
        plan.read_plan(bad)
    assert plan.recorded("plan-cpu", tmp_path) == path
    assert plan.recorded("gpu-check", tmp_path) is None
    # the cost page without and with a recorded GPU check (a fake one, made here)
    frame = plan.cost_frame(back)
    assert list(frame["experiment"]) == [CHEAP, "lrcssm-t1-worms"]  # sorted by cost, unmeasured last
    assert (frame["gpu_hours"] == "not measured").all()
    gpu_plan = {**doc, "device": "cuda", "device_name": "Fake GPU", "precision": "bf16-mixed",
                "entries": [{**doc["entries"][0], "hours_per_seed": 0.5, "hours": 2.5}]}
    fake = {"schema": gpu_check.SCHEMA, "created": "2026-01-01T00:00:00+00:00",
            "device_name": "Fake GPU", "precision": "bf16-mixed", "plan": gpu_plan,
            "train": [{"experiment": CHEAP, "samples_per_s": 10.0, "peak_memory_mb": 1.0,
                       "loss_first": 1.0, "loss_last": 0.5, "loss_down": True, "steps": 3}],
            "checks": [], "ddp": {"ran": False}}
    gpu_check.validate(fake)
    frame = plan.cost_frame(back, fake)
    assert frame.loc[frame["experiment"] == CHEAP, "gpu_hours"].item() == 2.5
    assert frame.loc[frame["experiment"] == "lrcssm-t1-worms", "gpu_hours"].item() == "not measured"
    with pytest.raises(ValueError, match="train\\[0\\]"):
        gpu_check.validate({**fake, "train": [{"experiment": CHEAP}]})


def test_plan_command_line(tmp_path, capsys):
    for argv, what in ((["--table", "1"], "--table"),
                       (["--paper", "lrcssm", "--table", "99"], "no table"),
                       (["--precision", "bf16-mixed"], "GPUs"),
                       (["--experiment", "nope"], "unknown experiment")):
        with pytest.raises(SystemExit) as info:
            plan_main(argv)
        assert info.value.code == 2 and what in str(info.value), argv
    out = tmp_path / "p.json"
    assert plan_main(["--experiment", CHEAP, "--json", str(out), "--no-compile-compare",
                      "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert CHEAP in text and "campaign:" in text and plan.read_plan(out)["entries"][0]["experiment"] == CHEAP
    with pytest.raises(SystemExit) as info:
        plan_main(["--experiment", CHEAP, "--json", str(out)])
    assert info.value.code == 2 and "--force" in str(info.value)


def test_gpu_check_without_cuda(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "gpu-check.json"
    assert gpu_check.main(["--out", str(out)]) == 0
    assert not out.exists() and "skipped" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        gpu_check.main(["--out", str(out), "--train-min", "5", "--budget-min", "8"])
    assert info.value.code == 2
    out.write_text("{}")
    with pytest.raises(SystemExit) as info:
        gpu_check.main(["--out", str(out)])
    assert info.value.code == 2 and "--force" in str(info.value)
    assert gpu_check.default_out().parent.name == "benchmarks"
    assert gpu_check.ddp_check()["ran"] is False


def test_gpu_check_parts_run_on_the_cpu():
    """The check functions take a device: on the CPU the compiled solver agrees with its oracle and
    a short training run reports its numbers in the recorded layout."""
    solver = gpu_check.solver_check("cpu")
    assert solver["ok"] and solver["max_rel_error"] < 1e-3
    t = gpu_check.train_for("lrcssm-t1-scp2", 0.01, "cpu", "32-true")
    assert t["steps"] >= 1 and t["samples_per_s"] > 0 and set(t) >= {"loss_first", "loss_last", "loss_down"}
