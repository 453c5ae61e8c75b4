"""LrcSSM reproduction registry and tasks: the entries agree with the paper's tables (Table 5's tuned
settings, App. E's fixed setting, the values of Tables 1, 2, 8-11), every cell of this paper's rows
has an entry, the released code's values resolve, and the UEA task's split and column-0 options."""

from __future__ import annotations

import math

import pytest
import torch

from liquidssm.repro.experiments import get_experiment, list_experiments, resolve
from liquidssm.repro.papers.lrcssm import experiments as lx
from liquidssm.repro.spec import released_overrides
from liquidssm.repro.tables import paper_table
from liquidssm.repro.tasks import build_task

TABLES_WITH_ENTRIES = ("1", "2", "7", "8", "9", "10", "11")


def _own_rows(table: str):
    """Cells of the rows this paper ran itself (no †/‡ marker), without the Average column."""
    df = paper_table(f"lrcssm-table{table}")
    mine = df[(df["marker"].fillna("") == "") & (df["task"] != "Average")]
    return list(zip(mine["model"], mine["task"], mine["mean"], mine["std"]))


@pytest.mark.parametrize("table", TABLES_WITH_ENTRIES)
def test_every_cell_of_the_papers_own_rows_has_an_entry(table):
    cells = _own_rows(table)
    assert cells, table
    for row, column, mean, std in cells:
        exp_id = lx.entry_for_cell(table, row, column)
        assert exp_id is not None, (table, row, column)
        e = get_experiment(exp_id)
        assert e.column == column
        assert e.paper_value == pytest.approx(mean) and e.paper_std == pytest.approx(std), (table, row, column)


def test_shared_cells_are_the_same_number_as_table2():
    t2 = {(r, c): (m, s) for r, c, m, s in _own_rows("2")}
    for (table, row), base in lx.SHARED_CELLS.items():
        for r, c, m, s in _own_rows(table):
            if r == row:
                assert (m, s) == t2[(base, c)], (table, row, c)
                assert lx.entry_for_cell(table, row, c) == f"lrcssm-t2-lrc-{c.lower()}"


def test_table1_entries_follow_table5_field_by_field():
    t5 = paper_table("lrcssm-table5").set_index("task")
    t1 = paper_table("lrcssm-table1")
    t1 = t1[(t1["model"] == "LrcSSM") & (t1["task"] != "Average")].set_index("task")
    for column in t5.index:
        e = get_experiment(f"lrcssm-t1-{column.lower()}")
        full = resolve(e, "full")
        r = t5.loc[column]
        assert full.optim.lr == float(r["lr"]) and full.model.d_model == int(r["hidden_dim"])
        assert full.model.d_state == int(r["state_dim"]) and full.model.n_blocks == int(r["n_blocks"])
        assert r["include_time"] == "False"  # no time channel: the task never adds one
        assert full.model.d_output == int(t1.loc[column, "n_classes"])
        assert full.seeds == lx.UEA_SPLITS and full.train.init_seed == 0 and full.train.ties == "latest"
        # the released code: ablation setting, state-only elastance, and the paper's "input size"
        rel = resolve(e, "full", released_overrides(e))
        assert (rel.optim.lr, rel.model.d_model, rel.model.d_state, rel.model.n_blocks) == (1e-4, 64, 64, 6)
        assert rel.model.variant == "official"
        assert rel.model.d_input == int(t1.loc[column, "input_size"]), column
        dropped = column in ("Ethanol", "Motor")
        assert (full.model.d_input == rel.model.d_input + 1) == dropped
        assert (rel.task_args.get("column0") == "drop") == dropped


def test_fixed_setting_entries_follow_app_e():
    for table in ("2", "8", "9", "10", "11"):
        for e in list_experiments(table=table, paper="lrcssm"):
            full = resolve(e, "full")
            assert (full.model.d_model, full.model.d_state, full.model.n_blocks) == (64, 64, 6), e.id
            assert full.optim.lr == 1e-4 and full.optim.grad_clip == 1.0 and full.train.batch_size == 4
            assert full.train.patience == (100 if e.column == "Worms" else 1000)
    cells = {e.row: resolve(e, "full").model for e in list_experiments(paper="lrcssm")
             if e.column == "SCP1" and e.table != "1"}
    assert cells["MguSSM"].cell == "mgu" and cells["GruSSM"].cell == "gru" and cells["LstmSSM"].cell == "lstm"
    assert cells["StcSSM"].elastance is False
    assert cells["LrcSSM-full dense Jacobian"].cell == "lrc_dense"
    assert cells["LrcSSM-full dense Jacobian"].solver == "sequential"
    assert cells["LrcSSM A(u), b(x,u)"].ablation == "A(u)" and cells["LrcSSM A(u), b(u)"].ablation == "A(u),b(u)"
    assert [cells[f"LrcSSM complex {s}"].complex_params for s in ("g,k", "g,k,a", "g,k,a,b")] == [
        "g,k", "g,k,a", "g,k,a,b"]


def test_table11_columns_match_the_csv_flags():
    t11 = paper_table("lrcssm-table11")
    letters = {"g_max_x": "g", "k_max_x": "k", "a_x": "a", "b_x": "b"}
    for row, flags in t11.groupby("model").first().iterrows():
        complex_ = ",".join(v for k, v in letters.items() if flags[k] == "C")
        if not complex_:
            assert (("11", row) in lx.SHARED_CELLS)
            continue
        e = get_experiment(lx.entry_for_cell("11", row, "Heart"))
        assert e.model.complex_params == complex_, row


def test_every_entry_has_a_smoke_profile_with_a_target_above_chance():
    for e in list_experiments(paper="lrcssm"):
        smoke = resolve(e, "smoke")
        assert smoke.task_args["source"] == "fixture" and len(smoke.seeds) == 1
        assert smoke.model.d_model <= 16 and smoke.model.n_blocks == 1
        assert e.smoke_target is not None
        if e.metric == "accuracy_pct":
            assert e.smoke_target > 100 / smoke.model.d_output
        else:  # regression: an upper bound on the test RMSE of the scaled target, below the mean's
            assert e.task == "ppg_dalia" and 0 < e.smoke_target < 0.45


def test_released_overrides_round_trip():
    e = get_experiment("lrcssm-t2-lrc-ethanol")
    assert released_overrides(e) == {"model": {"variant": "official", "d_input": 2},
                                        "task": {"column0": "drop"}}
    assert released_overrides(get_experiment("lrcssm-t2-gru-scp1")) == {}
    assert lx.entry_for_cell("2", "NoSuchModel", "Heart") is None


# -- the UEA task ---------------------------------------------------------------------------------

def test_column0_drop_removes_a_real_channel_only_where_the_code_lost_one(tmp_path):
    args = {"source": "fixture", "n": 30, "length": 8}
    for name, channels, lost in (("EthanolConcentration", 3, 1), ("SelfRegulationSCP1", 6, 0)):
        keep = build_task("uea", {**args, "name": name}, 2345, cache_dir=tmp_path)
        drop = build_task("uea", {**args, "name": name, "column0": "drop"}, 2345, cache_dir=tmp_path)
        x_keep, y_keep = keep.train[0]
        x_drop, y_drop = drop.train[0]
        assert x_keep.shape[-1] == channels and x_drop.shape[-1] == channels - lost
        assert torch.equal(x_drop, x_keep[..., lost:]) and y_keep == y_drop
        assert len(drop.train) == len(keep.train) and len(drop.test) == len(keep.test)
    with pytest.raises(ValueError, match="column0 expected 'time' or 'drop'"):
        build_task("uea", {**args, "name": "SelfRegulationSCP1", "column0": "all"}, 2345, cache_dir=tmp_path)


def test_auto_splits_use_the_papers_pickles_when_present(tmp_path):
    from liquidssm.data import uea

    root = tmp_path / "raw"
    uea.write_fixture(root, names=("SelfRegulationSCP1",), n_train=20, n_test=10, length=8)
    args = {"source": "release", "name": "SelfRegulationSCP1", "splits": "auto"}
    ours = build_task("uea", args, 2345, data_root=root)
    assert "lrcssm_splits" not in ours.location and ours.train[0][0].shape[-1] == 6
    uea.write_lrcssm_split_fixture(root, name="SelfRegulationSCP1", seed=2345, n=20, length=8, channels=6)
    theirs = build_task("uea", args, 2345, data_root=root)
    assert "lrcssm_splits" in theirs.location
    x, _ = theirs.train[0]
    assert x.shape[-1] == 6  # the time channel (column 0) dropped, every real channel kept
    assert not math.isclose(float(x[1, 0] - x[0, 0]), 1 / 8)  # column 0 is no longer the time ramp
    # another seed has no pickles: our split of the .ts release
    assert "lrcssm_splits" not in build_task("uea", args, 3456, data_root=root).location


# -- PPG-DaLiA (Table 7) --------------------------------------------------------------------------

def test_ppg_fixture_round_trip_and_windows(tmp_path):
    import numpy as np

    from liquidssm.data import ppg_dalia as p

    p.write_fixture(tmp_path, n_subjects=2, minutes=6, seed=1)
    rec = p.load_subject(tmp_path / p.SUBDIR / "S1" / "S1.pkl")
    X, hr = p.subject_arrays(rec, rate=4)
    assert X.shape == (len(hr) * 8, 6) and len(hr) == 6 * 60 // 2
    # every channel at 4 Hz by repeating the last sample: ACC (32 Hz) keeps every 8th sample
    np.testing.assert_array_equal(X[:, :3], rec["signal"]["wrist"]["ACC"][::8][: len(X)])
    np.testing.assert_array_equal(X[:, 4], rec["signal"]["wrist"]["EDA"][: len(X), 0])
    blocks = p.split_blocks(len(hr), 2345, "S1")
    spans = sorted(blocks.values())
    assert spans[0][0] == 0 and spans[-1][1] == len(hr)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # contiguous, no overlap
    assert blocks["train"][1] - blocks["train"][0] == int(0.7 * len(hr))
    assert p.split_blocks(len(hr), 2345, "S1") == blocks  # deterministic
    ds = {s: p.PPGDaLiA(s, 2345, root=tmp_path, rate=4, window=64, stride=16) for s in ("train", "val", "test")}
    x, y = ds["train"][0]
    assert x.shape == (64, 6) and y.shape == (8,)
    assert float(ds["train"].x.abs().max()) <= 1.0 + 1e-6 and float(ds["train"].y.abs().max()) <= 1.0 + 1e-6
    # the fixture's EDA channel carries the heart rate: learnable
    chunk = ds["train"].x[:, :, 4].reshape(len(ds["train"]), 8, 8).mean(-1)
    assert float(np.corrcoef(chunk.flatten(), ds["train"].y.flatten())[0, 1]) > 0.95
    with pytest.raises(ValueError, match="window: expected a positive multiple of 2 \\* rate = 8"):
        p.PPGDaLiA("train", 2345, root=tmp_path, rate=4, window=60)


def test_ppg_unpickler_refuses_foreign_code(tmp_path):
    import pickle

    from liquidssm.data import ppg_dalia as p
    from liquidssm.data.safe_pickle import UnsafePickleError

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    d = tmp_path / p.SUBDIR / "S1"
    d.mkdir(parents=True)
    (d / "S1.pkl").write_bytes(pickle.dumps({"signal": Evil(), "label": []}, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"refusing to load global (__builtin__|builtins)\.print"):
        p.load_subject(d / "S1.pkl")
    (d / "S1.pkl").write_bytes(pickle.dumps([1, 2], protocol=2))
    with pytest.raises(ValueError, match="expected a dict with 'signal' and 'label'"):
        p.load_subject(d / "S1.pkl")


def test_ppg_task_and_missing_release(tmp_path):
    from liquidssm.data import DatasetMissingError  # noqa: F401 - the loaders' error type

    task = build_task("ppg_dalia", {"source": "fixture", "rate": 4, "window": 256, "stride": 64}, 2345,
                      cache_dir=tmp_path)
    x, y, lengths = task.collate([task.train[0], task.train[1]])
    assert x.shape == (2, 256, 6) and y.shape == (2, 32) and lengths is None
    assert task.kind == "regression" and task.chance is None and len(task.files) == 4
    with pytest.raises(FileNotFoundError, match="liquidssm data"):
        build_task("ppg_dalia", {"source": "release"}, 2345, data_root=tmp_path / "empty")
    with pytest.raises(ValueError, match="apply only to source='fixture'"):
        build_task("ppg_dalia", {"source": "release", "minutes": 3}, 2345, data_root=tmp_path)
