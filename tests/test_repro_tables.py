"""Paper-beside-ours tables, the runner's plan, the run-status page and the book-cache guard."""

from __future__ import annotations

import math
import os
from html import escape

import nbformat
import pandas as pd
import pytest

from liquidssm.book import cache as bookcache
from liquidssm.repro import results as res
from liquidssm.repro.papers.liquid_s4.experiments import S4_TWIN_ROW
from liquidssm.repro.runs import ensure_results, planned_runs
from liquidssm.repro.tables import (
    SMOKE_AVERAGE,
    SMOKE_BANNER,
    agreement,
    coverage_html,
    coverage_matrix,
    fill_averages,
    render,
    reproduction_table,
    run_status,
    table_key,
    to_markdown,
)


def _write(base, exp, row, column, seed, value, *, paper="liquid-s4", table="1", profile="smoke",
           commit="abcdef1234", dirty=False, config_hash="h"):
    rec = {"schema": res.SCHEMA_VERSION, "experiment": exp, "paper": paper, "table": table,
           "row": row, "column": column, "profile": profile, "seed": seed, "metric": "accuracy_pct",
           "metric_key": "accuracy", "value": value, "best": {"epoch": 0, "step": 1},
           "training": {"steps": 1, "wall_s": 60.0}, "data": {"source": "generated"}, "config": {},
           "config_hash": config_hash, "provenance": {"device": "cpu", "commit": commit, "dirty": dirty,
                                              "finished_at": "2026-11-30T00:00:00+00:00",
                                              "precision": "32-true", "world_size": 1,
                                              "torch": "2.13.0"}}
    res.write_result(rec, res.result_path(exp, profile, seed, base))


def test_table_key_names_bad_input():
    assert table_key("ls4-tableS2") == ("liquid-s4", "S2")
    assert table_key("lrcssm-table11") == ("lrcssm", "11")
    with pytest.raises(ValueError, match="ls4-table<N>"):
        table_key("table1")


def test_reproduction_table_aggregates_ours_beside_the_paper(tmp_path):
    _write(tmp_path, "ls4-t1-listops", "Liquid-S4", "ListOps", 1, 40.0)
    _write(tmp_path, "ls4-t1-listops", "Liquid-S4", "ListOps", 2, 50.0, dirty=True)
    _write(tmp_path, "ls4-t1-listops", "Liquid-S4", "ListOps", 3, 99.0, profile="full")
    df = res.load_results(tmp_path)
    t = reproduction_table("ls4-table1", df, profile="smoke").set_index(["model", "task"])
    ours = t.loc[("Liquid-S4", "ListOps")]
    assert ours["ours"] == 45.0 and ours["ours_std"] == 5.0 and ours["n_seeds"] == 2
    assert ours["difference"] == pytest.approx(45.0 - 62.75)
    assert ours["status"] == "re-run" and ours["commit"] == "abcdef1 (dirty)"
    assert ours["profile"] == "smoke"
    assert t.loc[(S4_TWIN_ROW, "ListOps"), "status"] == "not run yet"  # registry entry, no results
    assert t.loc[("S4-LegS", "ListOps"), "status"] == "not re-run"  # Gu et al.'s row: a baseline
    assert t.loc[("Transformer", "ListOps"), "status"] == "not re-run"  # another paper's baseline
    assert math.isnan(t.loc[("Transformer", "ListOps"), "ours"])
    with pytest.raises(ValueError, match="averaged together"):
        reproduction_table("ls4-table1", df)  # smoke and full are never mixed
    full = reproduction_table("ls4-table1", df, profile="full").set_index(["model", "task"])
    assert full.loc[("Liquid-S4", "ListOps"), "ours"] == 99.0
    md = to_markdown(reproduction_table("ls4-table1", df, profile="smoke").head(3))
    assert md.count("\n") == 4 and md.startswith("| model | task | paper |")


def test_s4_twin_is_an_extra_row_without_paper_value_or_difference(tmp_path):
    # an old record filed under the paper's S4-LegS row follows its entry to the twin's own row
    _write(tmp_path, "ls4-t1-listops-s4", "S4-LegS", "ListOps", 1, 70.0, profile="full")
    t = reproduction_table("ls4-table1", res.load_results(tmp_path), profile="full")
    twin = t[t["model"] == S4_TWIN_ROW].set_index("task")
    assert list(twin.index) == ["ListOps", "IMDB", "AAN", "CIFAR", "Pathfinder", "Path-X"]
    assert twin.loc["ListOps", "ours"] == 70.0 and math.isnan(twin.loc["ListOps", "paper"])
    assert math.isnan(twin.loc["ListOps", "difference"])
    legs = t[(t["model"] == "S4-LegS") & (t["task"] == "ListOps")].iloc[0]
    assert legs["status"] == "not re-run" and math.isnan(legs["ours"])
    shown = render(t)
    assert shown.wide.index[-1] == S4_TWIN_ROW and shown.wide.index.is_unique
    cell = shown.wide.loc[S4_TWIN_ROW, "ListOps"]
    assert "paper –" in cell and "70.00 ± 0.00 (n=1)" in cell and "✓" not in cell and "✗" not in cell


def test_agreement_rule():
    assert agreement(61.0, 1.0, 62.0, 0.5) is True           # |1| <= hypot(0.5, 1) + 0.005
    assert agreement(60.0, 1.0, 62.0, 0.5) is False          # |2| > 1.118 + 0.005
    assert agreement(62.004, math.nan, 62.0, math.nan) is True    # printed precision only
    assert agreement(62.3, 0.0, 62.0, None, decimals=1) is False  # 0.3 > 0.05
    assert agreement(62.04, 0.0, 62.0, None, decimals=1) is True
    assert agreement(math.nan, 1.0, 62.0, 0.5) is None and agreement(1.0, 0.0, math.nan, 0.0) is None
    with pytest.raises(ValueError, match="decimals"):
        agreement(1.0, 0.0, 1.0, 0.0, decimals=-1)


def _lrcssm_table1(tmp_path, profile, values):
    for col, v in zip(("Heart", "SCP1", "SCP2", "Ethanol", "Motor", "Worms"), values):
        exp = {"Heart": "lrcssm-t1-heart", "SCP1": "lrcssm-t1-scp1", "SCP2": "lrcssm-t1-scp2",
               "Ethanol": "lrcssm-t1-ethanol", "Motor": "lrcssm-t1-motor", "Worms": "lrcssm-t1-worms"}[col]
        for seed, dv in ((1, -1.0), (2, 1.0)):
            _write(tmp_path, exp, "LrcSSM", col, seed, v + dv, paper="lrcssm", profile=profile)
    return fill_averages(reproduction_table("lrcssm-table1", res.load_results(tmp_path), profile=profile))


def test_paper_shaped_smoke_table_has_a_banner_and_no_comparison(tmp_path):
    from liquidssm.repro.experiments import get_experiment

    ids = ["lrcssm-t1-heart", "lrcssm-t1-scp1", "lrcssm-t1-scp2", "lrcssm-t1-ethanol",
           "lrcssm-t1-motor", "lrcssm-t1-worms"]
    assert [get_experiment(i).column for i in ids] == ["Heart", "SCP1", "SCP2", "Ethanol", "Motor", "Worms"]
    t = _lrcssm_table1(tmp_path, "smoke", [90, 90, 90, 90, 90, 90])
    avg = t[(t["model"] == "LrcSSM") & (t["task"] == "Average")].iloc[0]
    assert avg["status"] == SMOKE_AVERAGE and math.isnan(avg["ours"])  # smoke cells never averaged
    shown = render(t)
    assert list(shown.wide.columns) == ["Heart", "SCP1", "SCP2", "Ethanol", "Motor", "Worms", "Average"]
    assert shown.wide.index.is_unique and len(shown.wide) == t["model"].nunique()
    html = shown._repr_html_()
    assert escape(SMOKE_BANNER) in html and "font-weight" not in html
    assert "✓" not in html and "✗" not in html
    row = shown.wide.loc["LrcSSM"]
    assert "paper 72.7 ± 5.7" in row["Heart"] and "ours 90.0 ± 1.0 (n=2)" in row["Heart"]
    assert "+" not in row["Heart"] and "not averaged" in row["Average"]
    assert "not re-run" in html and 'class="lss-baseline"' in html
    assert "<details" in html and html.count("<tr>") >= len(t)  # the tidy table, collapsed
    assert "NRDE (not re-run)" in shown.to_markdown()
    assert render(t, baselines=False).wide.index.tolist() == ["LrcSSM"]


def test_paper_shaped_full_table_marks_agreement_and_fills_the_average(tmp_path):
    paper = [72.7, 85.2, 53.9, 36.9, 58.6, 90.6]
    t = _lrcssm_table1(tmp_path, "full", [paper[0], paper[1], paper[2], paper[3], 80.0, paper[5]])
    avg = t[(t["model"] == "LrcSSM") & (t["task"] == "Average")].iloc[0]
    assert avg["status"] == "re-run (mean ± s.e.)" and avg["ours"] == pytest.approx(
        (sum(paper) - 58.6 + 80.0) / 6)
    shown = render(t)
    row = shown.wide.loc["LrcSSM"]
    assert "✓ +0.0" in row["Heart"] and "✗ +21.4" in row["Motor"] and "(n=2)" in row["Motor"]
    html = shown._repr_html_()
    assert escape(SMOKE_BANNER) not in html and "lss-agree" in html and "lss-differ" in html
    plain = render(t, compare=False)  # e.g. run times measured on other machines
    assert "✓" not in plain._repr_html_() and "✗" not in plain.wide.loc["LrcSSM", "Motor"]
    with pytest.raises(ValueError, match="profiles"):
        render(pd.concat([t, t.assign(profile="smoke")]))


def test_coverage_matrix_has_one_row_per_paper_table(tmp_path):
    from liquidssm.repro.experiments import EXPERIMENTS

    _write(tmp_path, "ls4-t1-listops", "Liquid-S4", "ListOps", 2222, 40.0)
    m = coverage_matrix(run_status(tmp_path))
    tables = {(e.paper, e.table) for e in EXPERIMENTS.values()}
    assert len(m) == len(tables) and not m.duplicated(["paper", "table"]).any()
    t1 = m[(m["paper"] == "liquid-s4") & (m["table"] == "Table 1")].iloc[0]
    assert t1["smoke entries"] == f"1/{t1['entries']}" and t1["smoke seeds"].startswith("1/")
    assert t1["full entries"] == f"0/{t1['entries']}" and t1["newest commit"] == "abcdef1"
    assert t1["devices"] == "cpu" and t1["chapter"] == "10_ls4_table1_lra"
    assert t1["last finished"] == "2026-11-30 00:00"
    html = coverage_html(m)
    assert html.count("<tr>") == len(m) + 1 and 'href="10_ls4_table1_lra.html"' in html


def test_every_table_chapter_exists_and_names_its_table():
    from liquidssm import paths
    from liquidssm.repro.tables import TABLE_CHAPTERS

    for (paper, table), chapter in TABLE_CHAPTERS.items():
        path = paths.reproductions_dir() / f"{chapter}.md"
        assert path.is_file(), path
        if not table.startswith("F"):
            name = ("ls4-table" if paper == "liquid-s4" else "lrcssm-table") + table
            assert name in path.read_text() or "lrcssm-table{t}" in path.read_text(), (chapter, name)


def test_runner_plans_missing_all_none(tmp_path):
    from liquidssm.repro.experiments import get_experiment, resolve

    today = resolve(get_experiment("ls4-t1-listops"), "smoke").config_hash()
    _write(tmp_path, "ls4-t1-listops", "Liquid-S4", "ListOps", 2222, 40.0, config_hash=today)
    # a result made with other settings is stale: it counts as missing
    _write(tmp_path, "lrcssm-t1-scp1", "LrcSSM", "SCP1", 2345, 90.0, paper="lrcssm", config_hash="old")
    ids = ["ls4-t1-listops", "lrcssm-t1-scp1"]
    assert planned_runs(ids, "smoke", run="missing", results_dir=tmp_path) == [("lrcssm-t1-scp1", 2345)]
    assert planned_runs(ids, "smoke", run="all", results_dir=tmp_path) == [
        ("ls4-t1-listops", 2222), ("lrcssm-t1-scp1", 2345)]
    assert planned_runs(ids, "smoke", run="none", results_dir=tmp_path) == []
    assert planned_runs(["lrcssm-t1-scp1"], "full", seeds=[1, 2], results_dir=tmp_path) == [
        ("lrcssm-t1-scp1", 1), ("lrcssm-t1-scp1", 2)]
    with pytest.raises(ValueError, match="run: expected one of"):
        planned_runs(ids, "smoke", run="some")
    got = ensure_results(ids, "smoke", run="none", results_dir=tmp_path)
    assert sorted(got["experiment"]) == ["lrcssm-t1-scp1", "ls4-t1-listops"]


def test_run_status_lists_every_entry_and_profile(tmp_path):
    from liquidssm.repro.experiments import EXPERIMENTS

    _write(tmp_path, "ls4-t1-listops", "Liquid-S4", "ListOps", 2222, 40.0)
    st = run_status(tmp_path)
    assert len(st) == 2 * len(EXPERIMENTS)
    row = st[(st["experiment"] == "ls4-t1-listops") & (st["profile"] == "smoke")].iloc[0]
    assert row["seeds"] == "1/1" and row["value"] == 40.0 and row["commit"] == "abcdef1"
    assert row["wall_min"] == 1.0 and row["finished"].startswith("2026-11-30")


def test_bookcache_invalidates_only_result_reading_chapters_when_results_change(tmp_path):
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    reader = tmp_path / "table.md"
    reader.write_text("# A table\n\n```{code-cell} ipython3\n%matplotlib inline\n"
                      "from liquidssm.repro.tables import reproduction_table\n"
                      "x = reproduction_table('ls4-table1')\n```\n")
    other = tmp_path / "maths.md"
    other.write_text("# Maths\n\n```{code-cell} ipython3\nimport liquidssm.kernels\n"
                     "# reproduction_table( is only named here, never imported\ny = 1\n```\n")
    assert bookcache.reads_results(reader) and not bookcache.reads_results(other)
    assert "liquidssm.repro.tables" in bookcache.chapter_imports(reader)
    build, results = tmp_path / "_build", tmp_path / "results"
    cache = get_cache(str(build / ".jupyter_cache"))

    def cache_chapter(path, i):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"z = {i}")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        cache.cache_notebook_bundle(CacheBundleIn(nb, str(path)), check_validity=False)

    cache_chapter(reader, 0)
    cache_chapter(other, 1)
    assert bookcache.invalidate(build, results, [reader, other]) == [str(reader)]  # first build: no stamp yet
    cache_chapter(reader, 2)
    assert bookcache.invalidate(build, results, [reader, other]) == []               # unchanged results: keep
    assert sorted(r.uri for r in cache.list_cache_records()) == sorted([str(reader), str(other)])
    _write(results, "ls4-t1-listops", "Liquid-S4", "ListOps", 1, 40.0)
    os.utime(reader, (1_000_000, 1_000_000))
    text = reader.read_text()
    assert bookcache.invalidate(build, results, [reader, other]) == [str(reader)]  # a new results file
    assert reader.stat().st_mtime > 1_000_000 and reader.read_text() == text  # touched, unchanged
    assert [r.uri for r in cache.list_cache_records()] == [str(other)]


def test_fill_averages_is_mean_of_dataset_means_plus_minus_standard_error(tmp_path):
    from liquidssm.repro.tables import fill_averages

    values = {"Heart": 70.0, "SCP1": 80.0, "SCP2": 50.0, "Ethanol": 30.0, "Motor": 60.0, "Worms": 90.0}
    for i, (col, v) in enumerate(values.items()):
        _write(tmp_path, f"lrcssm-t1-{col.lower()}", "LrcSSM", col, 2345 + i, v, paper="lrcssm",
               profile="full")
    t = fill_averages(reproduction_table("lrcssm-table1", res.load_results(tmp_path), profile="full"))
    avg = t[(t["model"] == "LrcSSM") & (t["task"] == "Average")].iloc[0]
    xs = list(values.values())
    mu = sum(xs) / 6
    se = (sum((x - mu) ** 2 for x in xs) / 5) ** 0.5 / 6 ** 0.5
    assert avg["ours"] == pytest.approx(mu) and avg["ours_std"] == pytest.approx(se)
    assert avg["status"] == "re-run (mean ± s.e.)"
    base = t[(t["model"] == "Transformer") & (t["task"] == "Average")].iloc[0]
    assert base["status"] == "not re-run" and math.isnan(base["ours"])
    partial = fill_averages(reproduction_table(
        "lrcssm-table1", res.load_results(tmp_path).iloc[:3], profile="full"))
    assert partial[(partial["model"] == "LrcSSM") & (partial["task"] == "Average")]["status"].item() == "not run yet"
