"""``liquidssm bench official``: ours alone at a tiny size, root errors, atomic output, loader.

None of these needs the official code; the last test runs against it only when
``LIQUIDSSM_OFFICIAL_ROOT`` names a folder with the checkouts ``s4/``, ``liquid-s4/``, ``lrcssm/``.
"""

from __future__ import annotations

import json
import os

import pytest

from liquidssm import cli
from liquidssm.bench import official
from liquidssm.bench._util import interleaved_times, write_json_atomic

TINY = {"kernel": {"H": 2, "N": 4, "L": 16}, "block": {"B": 1, "H": 2, "N": 4, "L": 16},
        "liquid": {"B": 1, "H": 2, "N": 4, "L": 16}, "lrcssm": {"B": 1, "H": 2, "T": 8, "T_fwd": 8}}


def test_ours_alone_at_a_tiny_size():
    records = official.bench_official(None, comparisons=["kernel", "lrcssm"], sizes=TINY, repeats=2,
                                      warmup=0, isolate=False, compiled=False)
    times = [r for r in records if r["kind"] == "time"]
    assert {r["variant"] for r in times} >= {"ours_torch", "ours_newton", "ours_seq"}
    assert all(r["side"] == "ours" and r["median_s"] > 0 and len(r["times_s"]) == 2 for r in times)
    assert not [r for r in records if r["kind"] == "ratio"]  # nothing to divide by
    for key in ("date", "commit", "cpu", "cpu_count", "torch", "allocator", "official_commits"):
        assert key in records[0], key
    assert {(r["comparison"], r["pass"]) for r in times} == {("kernel", "fwdbwd"), ("lrcssm", "fwdbwd"),
                                                             ("lrcssm", "fwd")}
    assert {r["T"] for r in times if r["comparison"] == "lrcssm"} == {8}


def test_interleaving_rotates_the_order():
    calls: list[str] = []
    steps = {k: (lambda k=k: calls.append(k)) for k in "abc"}
    first, times = interleaved_times(steps, repeats=3, warmup=1)
    assert set(first) == set("abc") and all(len(v) == 3 for v in times.values())
    timed = calls[6:]  # after the first calls and one warm-up round
    assert timed == list("abc") + list("bca") + list("cab")


def test_a_bad_root_names_the_path_and_the_layout(tmp_path):
    with pytest.raises(official.OfficialRootError, match="is not a folder") as err:
        official.bench_official(tmp_path / "nowhere", isolate=False)
    assert "s4/" in str(err.value) and "lrcssm/" in str(err.value)
    (tmp_path / "s4").mkdir()
    with pytest.raises(official.OfficialRootError, match=r"checkout .*liquid-s4 of raminmh/liquid-s4 not found"):
        official.check_official_root(tmp_path, ["kernel", "liquid"])
    assert official.check_official_root(tmp_path, ["kernel", "block"]) == tmp_path


def test_the_cli_reports_a_bad_root_in_one_line(tmp_path, capsys):
    code = cli.main(["bench", "--against", "official", "--official-root", str(tmp_path / "x"), "--quick"])
    err = capsys.readouterr().err
    assert code == 1 and "OfficialRootError: official-root:" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--against", "s5"])
    assert exc.value.code == 2 and "--against: expected 'official', got 's5'" in capsys.readouterr().err


def test_atomic_write_refuses_to_overwrite(tmp_path):
    out = tmp_path / "m.json"
    write_json_atomic(out, {"records": [1]})
    with pytest.raises(FileExistsError, match="--force"):
        write_json_atomic(out, {"records": [2]})
    assert json.loads(out.read_text()) == {"records": [1]}
    write_json_atomic(out, {"records": [3]}, force=True)
    assert json.loads(out.read_text()) == {"records": [3]}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary file left behind
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_json_atomic(tmp_path / "no" / "m.json", {})


def test_cli_out_file_and_loader_round_trip(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LIQUIDSSM_OFFICIAL_ROOT", raising=False)  # ours alone
    out = tmp_path / "official.json"
    argv = ["bench", "official", "--only", "kernel", "--in-process", "--repeats", "2", "--warmup", "0",
            "--kernel-H", "2", "--kernel-N", "4", "--kernel-L", "16", "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "ours_torch" in printed and "allocator:" in printed
    df = official.load_measurements(out)
    raw = json.loads(out.read_text())["records"]
    assert len(df) == len(raw) and set(df["kind"]) == {"time"}
    row = df[df.variant == "ours_torch"].iloc[0]
    mine = next(r for r in raw if r["variant"] == "ours_torch")
    assert (row.H, row.N, row.L) == (2, 4, 16) and row.median_s == mine["median_s"]
    assert list(row.times_s) == mine["times_s"] and row.allocator == mine["allocator"]
    assert cli.main(argv) == 1  # exists: refused without --force
    assert "--force" in capsys.readouterr().err
    bad = tmp_path / "other.json"
    bad.write_text("[]")
    with pytest.raises(ValueError, match="no 'records'"):
        official.load_measurements(bad)


@pytest.mark.skipif(not os.environ.get("LIQUIDSSM_OFFICIAL_ROOT"), reason="LIQUIDSSM_OFFICIAL_ROOT not set")
def test_against_the_official_code_they_agree():
    records = official.bench_official(os.environ["LIQUIDSSM_OFFICIAL_ROOT"], comparisons=["kernel"],
                                      sizes=TINY, repeats=2, warmup=0)
    ratios = [r for r in records if r["kind"] == "ratio"]
    assert ratios and all(r["agree"] and r["max_rel_diff"] < 1e-3 and r["ratio"] > 0 for r in ratios)


def _time(comparison, passes, variant, median, allocator="glibc 2.36 malloc: kept", **size):
    return {"kind": "time", "comparison": comparison, "pass": passes, "variant": variant, "median_s": median,
            "allocator": allocator, "date": "2026-11-30T04:00:00+00:00", **size}


def test_target_table_checks_each_target_on_the_best_variants():
    import pandas as pd

    k = {"H": 256, "N": 64, "L": 4096}
    lrc = {"B": 4, "H": 64, "T": 4096, "T_fwd": 17984}
    recs = [_time("kernel", "fwdbwd", "ours_torch", 0.30, **k), _time("kernel", "fwdbwd", "ours_keops", 0.50, **k),
            _time("kernel", "fwdbwd", "official_naive", 0.70, **k),
            _time("kernel", "fwdbwd", "official_keops", 0.60, **k),
            _time("kernel", "fwdbwd", "official_naive", 4.70, allocator="system malloc left unchanged", **k),
            _time("kernel", "fwdbwd", "ours_torch", 0.40, allocator="system malloc left unchanged", **k),
            _time("lrcssm", "fwd", "ours_newton", 0.9, **lrc), _time("lrcssm", "fwd", "official_deer", 1.0, **lrc),
            {"kind": "ratio", "comparison": "lrcssm", "pass": "fwd", "variant": "ours_newton / official_deer",
             "agree": False}]
    tab = official.target_table(pd.DataFrame(recs)).set_index(["target", "allocator"])
    best = tab.loc[("S4 DPLR kernel fwd+bwd, best vs best", "retain")]
    assert (best.ours, best.official) == ("ours_torch", "official_keops")  # fastest of each side
    assert best.ratio == pytest.approx(0.5) and bool(best.met) and best["size"] == "H=256 N=64 L=4096"
    system = tab.loc[("S4 DPLR kernel fwd+bwd, best vs best", "system")]
    assert system.ratio == pytest.approx(0.4 / 4.7) and bool(system.met)
    refused = tab.loc[("LrcSSM Newton forward (eager)", "retain")]
    assert refused.ratio is None or pd.isna(refused.ratio)  # outputs disagreed: no ratio, not met
    assert not bool(refused.met) and refused["size"] == "B=4 H=D=64 T=17984"
    assert "LrcSSM Newton forward (compiled)" not in tab.index.get_level_values(0)  # not measured: left out


def test_target_summary_lists_every_run_per_allocator():
    import pandas as pd

    table = pd.DataFrame([
        {"target": "t", "size": "s", "bound": 0.5, "allocator": "retain", "ratio": 0.4, "met": True},
        {"target": "t", "size": "s", "bound": 0.5, "allocator": "retain", "ratio": 0.6, "met": False},
        {"target": "t", "size": "s", "bound": 0.5, "allocator": "system", "ratio": None, "met": False},
        {"target": "u", "size": "s", "bound": 2.0, "allocator": "system", "ratio": 1.0, "met": True}])
    out = official.target_summary(table).set_index("target")
    assert out.loc["t", "retain"] == "0.40 / 0.60" and out.loc["t", "system"] == "refused"
    assert not out.loc["t", "met"] and out.loc["u", "met"] and out.loc["u", "retain"] == "-"
