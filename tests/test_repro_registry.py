"""Registry, schedules, checkpoints and results files of the reproduction wing (no training)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings

import pandas as pd
import pytest
import torch

from liquidssm.repro import checkpoint as ckpt
from liquidssm.repro import results as res
from liquidssm.repro.experiments import (
    EXPERIMENTS,
    Optimisation,
    Training,
    get_experiment,
    list_experiments,
    resolve,
)
from liquidssm.repro.optim import cosine_warmup_factor, lr_factor, multistep_factor
from liquidssm.repro.tables import list_paper_tables, paper_table

# -- registry ------------------------------------------------------------------------------------

def test_registry_has_both_papers_and_paper_values_match_the_csv():
    papers = {e.paper for e in EXPERIMENTS.values()}
    assert papers == {"liquid-s4", "lrcssm"}
    tables = set(list_paper_tables())
    for e in EXPERIMENTS.values():
        name = ("ls4-table" if e.paper == "liquid-s4" else "lrcssm-table") + e.table
        if name not in tables:  # a figure: the paper gives a plot, no transcribed table
            assert e.table.startswith("F"), f"{e.id}: no data/paper/{name}.csv"
            continue
        table = paper_table(name)
        row = table[(table["model"] == e.row) & (table["task"] == e.column)]
        if e.paper_value is None:  # an S4 twin: its own row, absent from the paper
            assert e.id.endswith("-s4") and row.empty, (e.id, e.row)
            continue
        assert len(row) == 1, (e.id, e.row, e.column)
        assert float(row["mean"].iloc[0]) == pytest.approx(e.paper_value), e.id
        if e.paper_std is not None:
            assert float(row["std"].iloc[0]) == pytest.approx(e.paper_std), e.id


def test_registry_is_pure_data_without_torch():
    code = ("import sys; import liquidssm.repro.experiments as m; "
            "assert 'torch' not in sys.modules, 'torch imported'; print(len(m.EXPERIMENTS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(EXPERIMENTS)


def test_resolve_applies_profile_and_hash_tracks_settings():
    e = get_experiment("ls4-t1-listops")
    full, smoke = resolve(e, "full"), resolve(e, "smoke")
    assert full.model == e.model and smoke.model.d_model == 32
    assert smoke.task_args["source"] == "generated"
    assert full.config_hash() != smoke.config_hash()
    assert resolve(e, "smoke").config_hash() == smoke.config_hash()
    changed = resolve(e, "smoke", {"train": {"epochs": 7}})
    assert changed.train.epochs == 7 and changed.config_hash() != smoke.config_hash()


def test_registry_errors_name_the_problem():
    with pytest.raises(KeyError, match="did you mean ls4-t1-listops"):
        get_experiment("ls4-t1-listop")
    e = get_experiment("lrcssm-t1-scp1")
    with pytest.raises(ValueError, match="unknown field.*d_modle"):
        resolve(e, "smoke", {"model": {"d_modle": 3}})
    with pytest.raises(ValueError, match="profile"):
        resolve(e, "huge")
    with pytest.raises(ValueError, match="schedule_steps"):
        Optimisation(lr=1e-3, schedule="cosine_warmup", warmup_steps=10, schedule_steps=5)
    with pytest.raises(ValueError, match="epochs, max_steps"):
        Training(batch_size=4)
    table1 = [x.id for x in list_experiments(table="1", paper="lrcssm")]
    assert "lrcssm-t1-scp1" in table1 and all(i.startswith("lrcssm-t1-") for i in table1)


# -- schedules -----------------------------------------------------------------------------------

def test_cosine_warmup_matches_its_formula_including_the_periodic_quirk():
    W, T = 10, 110
    assert cosine_warmup_factor(0, W, T) == 0.0
    assert cosine_warmup_factor(5, W, T) == pytest.approx(0.5)
    assert cosine_warmup_factor(10, W, T) == pytest.approx(1.0)
    assert cosine_warmup_factor(60, W, T) == pytest.approx(0.5)
    assert cosine_warmup_factor(110, W, T) == pytest.approx(0.0, abs=1e-12)
    # past T the released schedule rises again (progress 1.5 -> (1 + cos 1.5 pi) / 2 = 0.5)
    assert cosine_warmup_factor(160, W, T) == pytest.approx(0.5)


def test_multistep_and_constant():
    assert multistep_factor(99, (100, 200), 0.5) == 1.0
    assert multistep_factor(100, (100, 200), 0.5) == 0.5
    assert multistep_factor(250, (100, 200), 0.5) == 0.25
    assert lr_factor(Optimisation(lr=1e-3), 10_000, 50) == 1.0


# -- checkpoints ---------------------------------------------------------------------------------

def _state(step: int) -> dict:
    return {"step": step, "config_hash": "abc", "model": {"w": torch.full((3,), float(step))},
            "rng": ckpt.rng_state()}


def test_checkpoints_keep_two_load_safely_and_restore_rng(tmp_path):
    for s in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, _state(s))
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step-000000003.pt", "step-000000002.pt"]
    state, path = ckpt.load_latest(tmp_path, "abc")
    assert state["step"] == 3 and torch.equal(state["model"]["w"], torch.full((3,), 3.0))
    torch.load(path, weights_only=True)  # no unsafe unpickling needed
    ckpt.set_rng_state(state["rng"])
    a = (torch.rand(3), __import__("random").random(), __import__("numpy").random.rand())
    ckpt.set_rng_state(state["rng"])
    b = (torch.rand(3), __import__("random").random(), __import__("numpy").random.rand())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path):
    ckpt.save_checkpoint(tmp_path, _state(1))
    newest = ckpt.save_checkpoint(tmp_path, _state(2))
    newest.write_bytes(newest.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="step-000000002.pt.*unreadable"):
        state, path = ckpt.load_latest(tmp_path, "abc")
    assert state["step"] == 1 and path.name == "step-000000001.pt"
    (tmp_path / "step-000000001.pt").write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ckpt.CheckpointError, match="none of the checkpoints"):
            ckpt.load_latest(tmp_path, "abc")


def test_config_mismatch_refuses_and_deletes_nothing(tmp_path):
    ckpt.save_checkpoint(tmp_path, _state(4))
    with pytest.raises(ckpt.ConfigMismatchError, match="configuration hash abc.*--restart"):
        ckpt.load_latest(tmp_path, "other")
    assert ckpt.list_checkpoints(tmp_path)


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    target.write_text("old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        ckpt.atomic_write(target, b"new")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


# -- results -------------------------------------------------------------------------------------

def _record(exp: str, seed: int, value: float, table: str = "1") -> dict:
    return {"schema": res.SCHEMA_VERSION, "experiment": exp, "paper": "lrcssm", "table": table,
            "row": "LrcSSM", "column": exp, "profile": "smoke", "seed": seed,
            "metric": "accuracy_pct", "metric_key": "accuracy", "value": value,
            "best": {"epoch": 1, "step": 5, "val": {"accuracy": value}, "test": {"accuracy": value}},
            "training": {"steps": 5}, "data": {"source": "fixture"}, "config": {},
            "config_hash": "x", "provenance": {"device": "cpu", "commit": "c", "dirty": False,
                                                "precision": "32-true", "world_size": 1,
                                                "torch": "2.13.0", "finished_at": "2026-11-30"}}


def test_results_round_trip_and_aggregation_against_hand_computed_values(tmp_path):
    values = {"a": [70.0, 80.0, 90.0], "b": [50.0, 60.0]}
    for exp, vs in values.items():
        for seed, v in enumerate(vs):
            res.write_result(_record(exp, seed, v), res.result_path(exp, "smoke", seed, tmp_path))
    rec = res.read_result(tmp_path / "a" / "smoke-seed1.json")
    assert rec["value"] == 80.0
    df = res.load_results(tmp_path)
    assert len(df) == 5 and set(df["experiment"]) == {"a", "b"}
    agg = res.summarise(df).set_index("experiment")
    assert agg.loc["a", "mean"] == pytest.approx(80.0)
    assert agg.loc["a", "std"] == pytest.approx(math.sqrt(200 / 3))  # population std
    assert agg.loc["b", "std"] == pytest.approx(5.0) and agg.loc["b", "n_seeds"] == 2
    mu, se = res.cross_dataset_average(pd.Series([80.0, 55.0, 65.0]))
    assert mu == pytest.approx(200 / 3)
    sd = math.sqrt(((80 - mu) ** 2 + (55 - mu) ** 2 + (65 - mu) ** 2) / 2)
    assert se == pytest.approx(sd / math.sqrt(3))
    assert len(res.load_results(tmp_path, experiment="b")) == 2


def test_bad_results_files_are_named(tmp_path):
    bad = tmp_path / "x" / "smoke-seed0.json"
    bad.parent.mkdir()
    bad.write_text("{\n  not json")
    with pytest.raises(res.ResultsError, match=r"smoke-seed0.json:2: not valid JSON"):
        res.read_result(bad)
    bad.write_text(json.dumps({"schema": 99}))
    with pytest.raises(res.ResultsError, match="expected results schema 1, got 99"):
        res.read_result(bad)
    with pytest.raises(res.ResultsError, match="lacks"):
        res.write_result({"schema": 1}, tmp_path / "y.json")


def test_unwritable_results_folder_is_refused(tmp_path):
    # a regular file where the results folder should be: unwritable for every user, root included
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    with pytest.raises(res.ResultsError, match=r"results folder .*results/exp is not writable"):
        res.check_writable(blocker / "exp")
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(seed=True), "field 'seed': expected int, got True"),
    (lambda r: r.update(seed=1.5), "field 'seed': expected int, got 1.5"),
    (lambda r: r.update(value=float("nan")), "field 'value': expected a finite number"),
    (lambda r: r.update(value="62.1%"), "field 'value': expected int or float, got '62.1%'"),
    (lambda r: r.update(profile="quick"), "field 'profile': expected 'smoke' or 'full'"),
    (lambda r: r["provenance"].pop("commit"), r"field 'provenance': lacks \['commit'\]"),
    (lambda r: r.update(schema=0), "field 'schema': expected results schema 1, got 0"),
    (lambda r: r.pop("best"), r"missing keys \['best'\]"),
])
def test_validator_names_the_file_and_the_field(tmp_path, change, message):
    rec = _record("a", 0, 70.0)
    change(rec)
    path = tmp_path / "a" / "smoke-seed0.json"
    path.parent.mkdir()
    path.write_text(json.dumps(rec))
    with pytest.raises(res.ResultsError, match=message) as info:
        res.read_result(path)
    assert str(path) in str(info.value)
    with pytest.warns(RuntimeWarning, match="skipping a results file"):
        assert res.load_results(tmp_path).empty  # readers skip it with a visible warning


def test_validator_refuses_non_json_files_by_name(tmp_path):
    bad = tmp_path / "a" / "smoke-seed0.json"
    bad.parent.mkdir()
    bad.write_bytes(b"\xff\xfe{")
    with pytest.raises(res.ResultsError, match="not UTF-8"):
        res.read_result(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(res.ResultsError, match="expected a JSON object"):
        res.read_result(bad)
    with pytest.raises(res.ResultsError, match="results_dir: .* is not a folder"):
        res.load_results(tmp_path / "typo")
