"""Tests of liquidssm.repro.tables: transcribed paper tables and the re-derivation of their averages."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liquidssm.repro import tables

EXPECTED = {
    "ls4-table1", "ls4-table2", "ls4-table3", "ls4-table4", "ls4-tableS1", "ls4-tableS2",
    "lrcssm-table1", "lrcssm-table2", "lrcssm-table3", "lrcssm-table4", "lrcssm-table5",
    "lrcssm-table6", "lrcssm-table7", "lrcssm-table8", "lrcssm-table9", "lrcssm-table10",
    "lrcssm-table11",
}


def test_every_table_is_listed_and_loads():
    assert set(tables.list_paper_tables()) == EXPECTED
    for name in EXPECTED:
        df = tables.paper_table(name)
        assert len(df) > 0, name
        if "mean" in df.columns:
            assert df["mean"].dtype.kind == "f", name


def test_every_table_has_provenance():
    for name in EXPECTED:
        info = tables.paper_table_info(name)
        assert info["caption"] and info["table"].startswith("Table")
    assert tables.paper_table("ls4-table3").attrs["caption"].startswith(
        "Liquid-S4 (ICLR 2023), Table 3: Performance on sCIFAR")
    with pytest.raises(KeyError, match="valid names"):
        tables.paper_table_info("x")


def test_unknown_name_lists_valid_names():
    with pytest.raises(KeyError, match="valid names: .*ls4-table1"):
        tables.paper_table("ls4-table99")
    with pytest.raises(TypeError, match="name must be a str"):
        tables.paper_table(1)  # type: ignore[arg-type]


def test_spot_values_transcribed_exactly():
    t1 = tables.paper_table("ls4-table1")
    ls4 = t1[t1["model"] == "Liquid-S4"].set_index("task")
    assert ls4.loc["Path-X", "mean"] == 96.66 and ls4.loc["Path-X", "std"] == 0.001
    assert ls4.loc["ListOps", "p"] == 5 and ls4.loc["IMDB", "p"] == 6
    assert ls4.loc["ListOps", "input_length"] == "2048"
    px = t1[(t1["task"] == "Path-X") & (t1["note"] == "x")]
    assert len(px) == 18  # every printed x in the Path-X column
    t4 = tables.paper_table("ls4-table4").set_index(["model", "task"])
    assert t4.loc[("Liquid-S4", "SC35-16kHz"), "parameters"] == "224K"
    assert t4.loc[("Liquid-S4", "SC35-8kHz"), "mean"] == 90.00
    assert t4.loc[("InceptionNet", "SC35-8kHz"), "mean"] == 5.18
    s2 = tables.paper_table("ls4-tableS2").set_index(["model", "task"])
    assert s2.loc[("Liquid-S4", "SC10-16kHz"), "mean"] == 98.51
    assert s2.loc[("WaveGAN-D", "SC10-8kHz"), "note"] == "x"
    b = tables.paper_table("ls4-table2").set_index(["model", "task"])
    assert b.loc[("Liquid-S4", "RR"), "mean"] == 0.158 and b.loc[("Liquid-S4", "SpO2"), "p"] == 4
    assert b.loc[("coRNN", "SpO2"), "note"] == "-"
    lr = tables.paper_table("lrcssm-table1")
    tr = lr[lr["model"] == "Transformer"].set_index("task")
    assert tr.loc["Worms", "note"] == "OOM" and math.isnan(tr.loc["Worms", "mean"])
    ours = lr[lr["model"] == "LrcSSM"].set_index("task")
    assert ours.loc["Worms", ["mean", "std"]].tolist() == [90.6, 1.4]
    assert ours.loc["Worms", "seq_len"] == "17984" and ours.loc["Ethanol", "input_size"] == "2"
    s1 = tables.paper_table("ls4-tableS1").set_index("task")
    assert s1.loc["Pathfinder", "lr"] == "0.0004" and s1.loc["ListOps", "epochs"] == "30"
    t5 = tables.paper_table("lrcssm-table5").set_index("task")
    assert t5.loc["Motor", "hidden_dim"] == "16"
    t6 = tables.paper_table("lrcssm-table6").set_index(["model", "task"])
    assert t6.loc[("NCDE", "Worms"), "mean"] == 24595
    t11 = tables.paper_table("lrcssm-table11").set_index(["model", "task"])
    assert t11.loc[("LrcSSM complex g,k,a", "Heart"), "mean"] == 73.75
    assert t11.loc[("LrcSSM complex g,k,a", "Heart"), "a_x"] == "C"


def test_table_shapes():
    t1 = tables.paper_table("ls4-table1")
    assert t1.groupby("model").size().eq(7).all() and t1["model"].nunique() == 26
    lr = tables.paper_table("lrcssm-table1")
    assert lr.groupby("model").size().eq(7).all() and lr["model"].nunique() == 12
    for name, n_models in (("lrcssm-table2", 4), ("lrcssm-table8", 2), ("lrcssm-table9", 2),
                           ("lrcssm-table10", 3), ("lrcssm-table11", 4)):
        df = tables.paper_table(name)
        assert df["model"].nunique() == n_models and df.groupby("model").size().eq(7).all()
    assert len(tables.paper_table("lrcssm-table6")) == 60
    assert len(tables.paper_table("lrcssm-table4")) == 12


def test_averages_match_except_known_discrepancies():
    """Recompute every Avg./Average; exactly the recorded rows differ, with the recorded values."""
    found = tables.average_discrepancies()
    known = tables.known_discrepancies()
    key = ["table", "model", "quantity"]
    assert sorted(map(tuple, found[key].values.tolist())) == sorted(
        map(tuple, known[key].values.tolist()))
    merged = found.merge(known, on=key, suffixes=("", "_known"))
    np.testing.assert_allclose(merged["computed"], merged["computed_known"].astype(float), atol=1e-3)
    np.testing.assert_allclose(merged["paper"], merged["paper_known"].astype(float), atol=1e-9)
    # the Path-X rows do match under the "x counts as 50" convention; the other rows do not need it
    t1 = tables.recompute_averages("ls4-table1")
    bad = t1[~t1["mean_ok"]]
    assert (bad["paper"] - bad["computed_missing_as_50"]).abs().max() < 0.005


def test_lrcssm_average_plus_minus_is_standard_error():
    r = tables.recompute_averages("lrcssm-table1").set_index("model")
    assert r.loc["LrcSSM", "mean_ok"] and r.loc["LrcSSM", "se_ok"]
    assert r.loc["Transformer", "n_entries"] == 5  # OOM on Worms: average of five
    with pytest.raises(ValueError, match="no 'Avg.'/'Average'"):
        tables.recompute_averages("ls4-table2")


def test_root_override(tmp_path, monkeypatch):
    (tmp_path / "data" / "paper").mkdir(parents=True)
    (tmp_path / "data" / "paper" / "x-table1.csv").write_text("model,task,mean,std\nA,T,1.5,\n")
    monkeypatch.setenv("LIQUIDSSM_ROOT", str(tmp_path))
    assert tables.list_paper_tables() == ["x-table1"]
    assert tables.paper_table("x-table1")["mean"].tolist() == [1.5]
    monkeypatch.setenv("LIQUIDSSM_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="is not a directory"):  # never a silent fallback
        tables.list_paper_tables()
    monkeypatch.delenv("LIQUIDSSM_ROOT")
    assert "ls4-table1" in tables.list_paper_tables()  # unset: the checkout
