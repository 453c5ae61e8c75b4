"""Liquid-S4 reproductions: registry against the paper, smoke fixtures, zero-shot.

Fast tests (no training): every Liquid-S4 / S4-LegS cell of Tables 1-4 and S2 has an entry whose
settings agree with Table S1 field by field (or record the released value), the S4 twins differ
only in the layer, the smoke fixtures are the data modules' writers called with the task's sizes
(that they carry a learnable signal is tested in ``tests/test_data_fixtures.py``), and the
zero-shot machinery is rate-consistent for S4. The training tests are in
``tests/test_ls4_repro_smoke.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from liquidssm import liquid
from liquidssm.repro.experiments import chapter_experiments, get_experiment, resolve
from liquidssm.repro.papers.liquid_s4 import experiments as ls4
from liquidssm.repro.papers.liquid_s4 import frames, tasks
from liquidssm.repro.tables import paper_table

PAPER_TABLES = {"1": "ls4-table1", "2": "ls4-table2", "3": "ls4-table3", "4": "ls4-table4",
                "S2": "ls4-tableS2"}
TABLE_ENTRIES = [e for e in ls4.ENTRIES if e.table in PAPER_TABLES]


# -- the registry against the paper -----------------------------------------------------------------

@pytest.mark.parametrize("table", sorted(PAPER_TABLES))
def test_every_liquid_s4_cell_has_an_entry_and_an_s4_twin(table):
    """A test that fails when a Liquid-S4 cell of Tables 1-4/S2 has no registry entry or no S4 twin.

    The twin sits in its own row (``S4_TWIN_ROW``) with no paper value: the paper's S4-LegS row is
    Gu et al.'s number, another paper's baseline that no entry claims.
    """
    paper = paper_table(PAPER_TABLES[table])
    cells = paper[paper["model"].isin(["Liquid-S4"]) & ~paper["task"].isin(["Avg."])
                  & paper["mean"].notna()]
    have = {(e.row, e.column): e for e in ls4.ENTRIES if e.table == table}
    missing = [(r.model, r.task) for r in cells.itertuples() if (r.model, r.task) not in have]
    assert not missing, f"Table {table}: no registry entry for {missing}"
    for r in cells.itertuples():
        twin = have[(ls4.S4_TWIN_ROW, r.task)]
        assert twin.paper_value is None and twin.paper_std is None, twin.id
        assert ("S4-LegS", r.task) not in have  # nobody claims Gu et al.'s row
    for r in cells.itertuples():
        e = have[(r.model, r.task)]
        assert e.paper_value == pytest.approx(r.mean), e.id
        if not math.isnan(r.std):
            assert e.paper_std == pytest.approx(r.std), e.id
        if r.model == "Liquid-S4" and pd.notna(r.p):
            assert e.model.liquid_order == int(r.p), (e.id, e.model.liquid_order, r.p)  # the printed p
            assert e.model.layer == "liquid" and e.model.liquid_kind == "pb"       # "PB kernel" (Table 1)


@pytest.mark.parametrize("exp", TABLE_ENTRIES + [get_experiment(i) for i in ls4.table_entries("F1")],
                         ids=lambda e: e.id)
def test_entries_agree_with_table_s1_field_by_field(exp):
    """``full`` = Table S1 in every column; a recorded released value is one that differs."""
    s1 = paper_table("ls4-tableS1").set_index("task").loc[ls4.TABLE_S1_ROW[exp.id]]
    full = resolve(exp, "full")
    for column, (section, field, read) in ls4.TABLE_S1_FIELDS.items():
        paper = read(s1[column])
        assert getattr(getattr(full, section), field) == paper, (exp.id, column)
        key = f"{section}.{field}"
        if key in exp.released:
            assert exp.released[key] != paper, (exp.id, key)  # recorded only where it differs
    for key in exp.released:  # every recorded key names a real setting
        section, field = key.split(".")
        assert section in ("model", "optim", "train", "task"), key
        if section != "task":
            assert hasattr(getattr(full, section), field), key


def test_documented_paper_versus_released_differences_are_all_recorded():
    rec = {e.id: e.released for e in TABLE_ENTRIES if e.row == "Liquid-S4"}
    assert rec["ls4-t1-listops"]["train.epochs"] == 40                 # Table S1: 30
    assert rec["ls4-t1-aan"]["model.prenorm"] is True                  # Table S1: False
    assert rec["ls4-t1-cifar"]["train.batch_size"] == 50               # Table S1: 16
    assert rec["ls4-t1-pathfinder"]["optim.lr"] == pytest.approx(10 * get_experiment(
        "ls4-t1-pathfinder").optim.lr)                                 # the 10x learning rate
    assert rec["ls4-t1-imdb"]["task.l_max"] == 4096                    # Table 1 header: 2048
    for i in ("ls4-t1-aan", "ls4-t1-pathfinder", "ls4-t1-pathx", "ls4-t2-hr", "ls4-t3-scifar"):
        assert rec[i]["model.dt_max"] == 0.1 and get_experiment(i).model.dt_max == 0.2, i
    for i in ("ls4-t1-cifar", "ls4-t2-rr", "ls4-t3-scifar"):
        assert rec[i]["model.bidirectional"] is True and not get_experiment(i).model.bidirectional, i
    assert not (frames.hyperparameters()["status"] == "full ≠ Table S1").any()


def test_s4_twins_differ_only_in_the_layer_and_sweep_points_only_in_the_order():
    twins = [e for e in ls4.ENTRIES if e.id.endswith("-s4")]
    assert len(twins) == sum(1 for e in TABLE_ENTRIES if e.row == "Liquid-S4")
    for twin in twins:
        base = get_experiment(twin.id.removesuffix("-s4"))
        assert twin.row == ls4.S4_TWIN_ROW and twin.model.layer == "s4" and base.model.layer == "liquid"
        assert twin.paper_value is None and "S4-LegS" in twin.notes, twin.id
        assert twin.model == base.model.replace(layer="s4"), twin.id
        assert (twin.optim, twin.train, twin.seeds) == (base.optim, base.train, base.seeds), twin.id
        if twin.id in ls4.ZERO_SHOT:  # the S4 zero-shot cell evaluates the S4 re-run
            assert ls4.ZERO_SHOT[twin.id] == ls4.ZERO_SHOT[base.id] + "-s4"
        def strip(d: dict) -> dict:
            return {k: v for k, v in d.items() if k != "zero_shot_of"}

        assert strip(twin.task_args) == strip(base.task_args), twin.id
        assert strip(twin.profiles["smoke"].task) == strip(base.profiles["smoke"].task), twin.id
    for task, points in ls4.FIGURE1.items():
        table1 = get_experiment({"ListOps": "ls4-t1-listops", "IMDB": "ls4-t1-imdb"}[task])
        assert points[table1.model.liquid_order] == table1.id  # no duplicate run at Table 1's p
        for p, i in points.items():
            e = get_experiment(i)
            assert e.model == table1.model.replace(liquid_order=p) and e.optim == table1.optim, i


def test_liquid_window_is_the_released_rule_for_order_two():
    for L in (10, 200, 1000, 1024, 2048, 4000, 16000, 16384):
        assert ls4.liquid_window(L) == liquid.official_L_tilde(L, 2), L
    for e in TABLE_ENTRIES:
        if e.model.layer == "liquid":
            assert e.model.liquid_window is not None and e.model.liquid_window < 200, e.id


def test_every_entry_has_a_smoke_profile_and_a_target_on_the_right_side():
    for e in ls4.ENTRIES:
        smoke = resolve(e, "smoke")
        assert smoke.task_args["source"] in ("generated", "fixture"), e.id
        assert smoke.model.d_model <= 32 and smoke.model.n_blocks <= 2, e.id
        if e.id in ls4.ZERO_SHOT and e.model.layer == "liquid":
            assert e.smoke_target is None and "No smoke target" in e.notes, e.id
        else:
            assert e.smoke_target is not None, e.id
            if not e.maximise:
                assert 0 < e.smoke_target < 1 / math.sqrt(3), e.id  # below the fixture's mean predictor
            else:
                n_classes = e.model.d_output
                assert e.smoke_target > 100 / n_classes, e.id


def test_zero_shot_entries_name_their_source_and_refuse_to_train(tmp_path):
    assert set(ls4.ZERO_SHOT) == {"ls4-t4-sc35-8khz", "ls4-t4-sc35-8khz-s4", "ls4-ts2-sc10-8khz",
                                  "ls4-ts2-sc10-8khz-s4"}
    for target, source in ls4.ZERO_SHOT.items():
        t, s = get_experiment(target), get_experiment(source)
        assert t.model == s.model and t.task_args["resolution"] == 2 and t.table == s.table
        assert t.column.endswith("8kHz") and s.column.endswith("16kHz")
    spec = resolve(get_experiment("ls4-t4-sc35-8khz"), "smoke")
    with pytest.raises(tasks.ZeroShotEntryError, match="zero-shot evaluation.*ls4-t4-sc35-16khz"):
        tasks.speech_commands_task(spec.task_args, 2222, None, tmp_path)


def test_chapter_sets_and_table_entries():
    for table in ("1", "2", "3", "4", "S2", "F1"):
        smoke = chapter_experiments("liquid-s4", table, "smoke")
        full = chapter_experiments("liquid-s4", table, "full")
        assert set(smoke) <= set(full) and len(smoke) <= 4, table
        assert all(get_experiment(i) for i in full)
    assert chapter_experiments("liquid-s4", "1", "smoke", ["ls4-t1-aan"]) == ["ls4-t1-aan"]


def test_parameter_counts_explain_table4():
    counts = frames.parameter_counts()
    liquid_n, rerun_n, gu_n = counts["parameters"]
    assert liquid_n == rerun_n  # the PB kernel adds no parameters
    assert abs(counts["relative_difference"].iloc[0]) < 0.01  # 224K
    assert abs(counts["relative_difference"].iloc[2]) < 0.01  # 307K
    assert gu_n > liquid_n


# -- smoke fixtures: the data modules' writers (their signal: tests/test_data_fixtures.py) ------

FIXTURE_TASKS = [  # (builder, smoke-sized task arguments, the same call of the data module's writer)
    ("imdb", {"n_train": 20, "n_test": 10, "data_seed": 3}, {"n_train": 20, "n_test": 10, "seed": 3}),
    ("aan", {"n_train": 20, "n_val": 10, "n_test": 10, "topic_rate": 0.5},
     {"n_train": 20, "n_val": 10, "n_test": 10, "topic_rate": 0.5}),
    ("cifar", {"n_per_batch": 20, "val_size": 20, "noise": 30.0}, {"n_per_batch": 20, "noise": 30.0}),
    ("speech_commands", {"classes": "sc10", "n_train": 2, "n_val": 1, "n_test": 1, "clip_samples": 800,
                         "normalize": False},
     {"classes": "sc10", "n_train": 2, "n_val": 1, "n_test": 1, "clip_samples": 800}),
    ("bidmc", {"target": "RR", "n_train": 30, "n_test": 10, "length": 64},
     {"n_train": 30, "n_test": 10, "length": 64}),
]


@pytest.mark.parametrize("kind,args,kwargs", FIXTURE_TASKS, ids=[c[0] for c in FIXTURE_TASKS])
def test_fixture_source_writes_with_the_data_module_writer(tmp_path, kind, args, kwargs):
    """``source="fixture"`` passes its sizes to ``liquidssm.data.<name>.write_fixture``: the same files, cached."""
    import importlib
    from pathlib import Path

    from liquidssm.repro.taskbase import sha256_file

    task = tasks.TASKS[kind]({"source": "fixture", **args}, 2222, None, tmp_path / "cache")
    assert task.source == "fixture" and len(task.train) and len(task.val) and len(task.test)
    writer = importlib.import_module(f"liquidssm.data.{kind}").write_fixture
    direct = writer(tmp_path / "direct", **kwargs)  # <root>/<subdir>
    (cached,) = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    cached = cached / direct.relative_to(tmp_path / "direct")
    assert Path(task.location).is_relative_to(cached)
    written = sorted(p.relative_to(direct) for p in direct.rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(cached) for p in cached.rglob("*") if p.is_file())
    assert all((direct / f).read_bytes() == (cached / f).read_bytes() for f in written)
    assert all(digest == sha256_file(direct / name) for name, digest in task.files.items() if "*" not in name)


def test_pathfinder_smoke_parameters_make_the_label_a_marker_distance():
    import dataclasses

    from liquidssm.data import pathfinder_gen

    args = resolve(get_experiment("ls4-t1-pathfinder"), "smoke").task_args
    params = dataclasses.replace(pathfinder_gen.PARAMS[32], **{k: args[k] for k in tasks._PF_FIELDS if k in args})
    rng = np.random.default_rng(0)
    dist = {0: [], 1: []}
    for _ in range(60):
        s = pathfinder_gen.draw_sample(params, rng)
        assert pathfinder_gen.connected(s) == bool(s["label"])  # the LRA labelling rule still holds
        dist[s["label"]].append(float(np.linalg.norm(s["markers"][0] - s["markers"][1])))
    assert max(dist[1]) < min(dist[0])  # connected markers lie closer than unconnected ones


# -- zero-shot machinery ----------------------------------------------------------------------------

def test_sampling_rate_scaled_keeps_s4_consistent_and_restores_delta():
    from liquidssm.layers import LiquidS4Layer, S4Layer
    from liquidssm.repro.zeroshot import sampling_rate_scaled

    t = torch.arange(1000, dtype=torch.float64) / 16000
    u = torch.sin(2 * math.pi * 300 * t)[None, None].repeat(1, 3, 1)
    s4 = S4Layer(3, 8, dt_min=0.01, dt_max=0.05, cauchy_backend="torch").double()
    lq = LiquidS4Layer(3, 8, kind="pb", order=2, L_tilde=20, dt_min=0.01, dt_max=0.05,
                       cauchy_backend="torch").double()
    errs = {}
    for name, layer in (("s4", s4), ("liquid", lq)):
        before = layer.log_dt.detach().clone()
        with torch.no_grad():
            ref = layer.conv(u)[..., ::2]
            with sampling_rate_scaled(layer, 2):
                assert torch.allclose(layer.log_dt, before + math.log(2))
                y = layer.conv(u[..., ::2])
        assert torch.equal(layer.log_dt, before)  # restored exactly
        errs[name] = float((y - ref).norm() / ref.norm())
    assert errs["s4"] < 0.1 and errs["liquid"] > 2 * errs["s4"], errs
    with pytest.raises(ValueError, match="rate"):
        with sampling_rate_scaled(s4, 0):
            pass
    with pytest.raises(ValueError, match="no S4Layer"):
        with sampling_rate_scaled(torch.nn.Linear(2, 2), 2):
            pass


def test_zero_shot_without_a_source_run_names_the_command(tmp_path):
    from liquidssm.repro.zeroshot import ZeroShotError, evaluate_zero_shot, source_of

    assert source_of("ls4-ts2-sc10-8khz")[0].id == "ls4-ts2-sc10-16khz"
    with pytest.raises(ValueError, match="not a zero-shot entry"):
        source_of("ls4-t1-listops")
    with pytest.raises(ZeroShotError, match="liquidssm train ls4-ts2-sc10-16khz --profile smoke"):
        evaluate_zero_shot("ls4-ts2-sc10-8khz", "smoke", results_dir=tmp_path / "r",
                           run_dir=tmp_path / "run")


# -- the release code path of every builder, on files in the release layout ---------------------------

def _write_release(kind: str, root) -> dict:
    """Write a small dataset in the release layout under ``root``; return the task arguments."""
    from liquidssm.data import aan, bidmc, cifar, imdb, listops_gen, pathfinder_gen, speech_commands

    if kind == "listops":
        listops_gen.generate_listops(root / "listops", n_train=40, n_val=10, n_test=10, min_length=5,
                                     max_length=60, max_depth=3, max_args=5, seed=0, progress=False)
        return {"l_max": 128}
    if kind == "imdb":
        imdb.write_fixture(root, n_train=20, n_test=10)
        return {"l_max": 256, "max_tokens": ls4.IMDB_TOKENS}
    if kind == "aan":
        aan.write_fixture(root, n_train=20, n_val=10, n_test=10)
        return {"l_max": 200, "max_tokens": ls4.AAN_TOKENS}
    if kind == "cifar":
        cifar.write_fixture(root, n_per_batch=20)
        return {"grayscale": False, "val_size": 20}
    if kind == "pathfinder":
        out = root / "pathfinder" / "pathfinder32" / "curv_contour_length_14"
        pathfinder_gen.generate_pathfinder(out, 30, pathfinder_gen.PARAMS[32], seed=0, progress=False)
        return {"resolution": 32}
    if kind == "speech_commands":
        speech_commands.write_fixture(root, classes="all", n_train=2, n_val=1, n_test=1, clip_samples=800)
        return {"classes": "sc10", "resolution": 2, "normalize": True}
    bidmc.write_fixture(root, n_train=30, n_test=10, length=64)
    return {"target": "SpO2"}


@pytest.mark.parametrize("kind", sorted(tasks.TASKS))
def test_release_path_of_every_builder_reads_the_release_layout(kind, tmp_path):
    """``source="release"`` (the ``full`` path) on files written in the release layout: batches fit the model."""
    from liquidssm.repro.models import build_model, model_output

    args = {"source": "release", **_write_release(kind, tmp_path / "raw")}
    if kind == "bidmc":
        args.setdefault("target", "SpO2")
    task = tasks.TASKS[kind](args, 2222, tmp_path / "raw", tmp_path / "cache")
    assert task.source == "release" and len(task.train) and len(task.val) and len(task.test)
    assert task.files and all(len(v) == 64 for v in task.files.values())  # sha256 digests
    batch = task.collate([task.train[i] for i in range(min(4, len(task.train)))])
    exp = next(e for e in ls4.ENTRIES if e.task == kind and e.model.layer == "liquid")
    cfg = resolve(exp, "smoke").model
    if cfg.d_input is not None:
        cfg = cfg.replace(d_input=batch[0].shape[-1])
    if task.kind == "classification":
        cfg = cfg.replace(d_output=task.n_classes)
    cfg = cfg.replace(liquid_window=min(cfg.liquid_window or 4, int(batch[0].shape[1])))
    out = model_output(build_model(cfg), cfg, *([batch[0], batch[2]]))
    assert out.shape[-1] == cfg.d_output and torch.isfinite(out).all()
    if kind == "speech_commands":
        assert batch[0].shape[1] == 8000 and task.n_classes == 10  # SC10 at 8 kHz
