"""Paper-beside-ours tables, the runner's plan, the run-status page and the book-cache guard."""

from __future__ import annotations

import math
import os

import nbformat
import pytest

from liquidssm.book import cache as bookcache
from liquidssm.repro import results as res
from liquidssm.repro.runs import ensure_results, planned_runs
from liquidssm.repro.tables import reproduction_table, run_status, table_key, to_markdown


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
    assert t.loc[("S4-LegS", "ListOps"), "status"] == "not run yet"  # registry entry, no results
    assert t.loc[("Transformer", "ListOps"), "status"] == "not re-run"  # another paper's baseline
    assert math.isnan(t.loc[("Transformer", "ListOps"), "ours"])
    with pytest.raises(ValueError, match="averaged together"):
        reproduction_table("ls4-table1", df)  # smoke and full are never mixed
    full = reproduction_table("ls4-table1", df, profile="full").set_index(["model", "task"])
    assert full.loc[("Liquid-S4", "ListOps"), "ours"] == 99.0
    md = to_markdown(reproduction_table("ls4-table1", df, profile="smoke").head(3))
    assert md.count("\n") == 4 and md.startswith("| model | task | paper |")


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
        _write(tmp_path, f"lrcssm-t1-{col.lower()}", "LrcSSM", col, 2345 + i, v, paper="lrcssm")
    t = fill_averages(reproduction_table("lrcssm-table1", res.load_results(tmp_path), profile="smoke"))
    avg = t[(t["model"] == "LrcSSM") & (t["task"] == "Average")].iloc[0]
    xs = list(values.values())
    mu = sum(xs) / 6
    se = (sum((x - mu) ** 2 for x in xs) / 5) ** 0.5 / 6 ** 0.5
    assert avg["ours"] == pytest.approx(mu) and avg["ours_std"] == pytest.approx(se)
    assert avg["status"] == "re-run (mean ± s.e.)"
    base = t[(t["model"] == "Transformer") & (t["task"] == "Average")].iloc[0]
    assert base["status"] == "not re-run" and math.isnan(base["ours"])
    partial = fill_averages(reproduction_table(
        "lrcssm-table1", res.load_results(tmp_path).iloc[:3], profile="smoke"))
    assert partial[(partial["model"] == "LrcSSM") & (partial["task"] == "Average")]["status"].item() == "not run yet"
