"""``liquidssm results export`` / ``import``: real records round-trip; bad files are named and refused."""

from __future__ import annotations

import io
import json
import os
import tarfile
import types

import pytest

from liquidssm.repro import results as res
from liquidssm.repro import transfer
from liquidssm.repro.cli import results_main
from liquidssm.repro.experiments import get_experiment
from liquidssm.repro.runs import variant_overrides
from liquidssm.repro.spec import resolve


def _record(exp_id: str, profile: str = "smoke", seed: int | None = None, value: float = 61.5,
            finished: str | None = None, variant: str = "paper") -> dict:
    """A results record made by the one record builder, ``results.make_record``."""
    exp = get_experiment(exp_id)
    spec = resolve(exp, profile, variant_overrides(exp_id, profile, variant))
    seed = spec.seeds[0] if seed is None else seed
    task = types.SimpleNamespace(kind="classification", chance=50.0, source="fixture",
                                 location="fixture", files={}, train=[0] * 8, val=[0] * 4,
                                 test=[0] * 4)
    best = {"epoch": 1, "step": 10, "val": {"accuracy": value}, "test": {"accuracy": value - 1}}
    rec = res.make_record(exp, spec, seed, task=task, best=best, history=[best],
                          training={"steps": 10, "epochs": 2, "wall_s": 3.0}, device="cpu",
                          precision="32-true", world_size=1, param_digest=None)
    if finished is not None:
        rec["provenance"]["finished_at"] = finished
    return rec


def _write(base, rec, variant="paper"):
    folder = base / "released" if variant == "released" else base
    return res.write_result(rec, res.result_path(rec["experiment"], rec["profile"], rec["seed"], folder))


def _tar(path, members: dict[str, bytes], links: dict[str, str] | None = None):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def test_export_then_import_round_trips(tmp_path, capsys):
    box, home = tmp_path / "gpu-box", tmp_path / "home"
    recs = [_record("lrcssm-t1-scp1", "full", 2345), _record("lrcssm-t1-scp1", "full", 3456),
            _record("lrcssm-t1-heart", "smoke"), _record("ls4-t1-listops", "smoke")]
    for rec in recs:
        _write(box, rec)
    _write(box, _record("lrcssm-t1-scp1", "full", 2345, variant="released"), variant="released")
    archive = tmp_path / "lrcssm.tar.gz"
    assert results_main(["export", "--paper", "lrcssm", "--out", str(archive),
                         "--results-dir", str(box)]) == 0
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
    assert names == ["lrcssm-t1-heart/smoke-seed2345.json", "lrcssm-t1-scp1/full-seed2345.json",
                     "lrcssm-t1-scp1/full-seed3456.json", "released/lrcssm-t1-scp1/full-seed2345.json"]
    assert results_main(["import", str(archive), "--results-dir", str(home)]) == 0
    out = capsys.readouterr().out
    assert out.count("new ") == 4 and "wrote 4 file(s)" in out
    for name in names:
        assert (home / name).read_bytes() == (box / name).read_bytes()
    assert len(res.load_results(home)) == 3  # the released run lives in its own folder
    # importing the same archive again changes nothing
    assert results_main(["import", str(archive), "--results-dir", str(home)]) == 0
    assert "4 identical" in capsys.readouterr().out
    # a folder imports the same way; an export that refuses to clobber its output
    assert results_main(["import", str(box), "--results-dir", str(tmp_path / "other")]) == 0
    assert results_main(["export", "--out", str(archive), "--results-dir", str(box)]) == 1
    assert "exists; pass --force" in capsys.readouterr().err


def test_import_keeps_a_different_existing_result_unless_forced_and_says_which_is_newer(tmp_path, capsys):
    home, box = tmp_path / "home", tmp_path / "box"
    old = _record("lrcssm-t1-scp1", "full", 2345, value=60.0, finished="2026-01-01T00:00:00+00:00")
    new = _record("lrcssm-t1-scp1", "full", 2345, value=70.0, finished="2026-06-01T00:00:00+00:00")
    dest = _write(home, old)
    _write(box, new)
    before = dest.read_bytes()
    assert results_main(["import", str(box), "--results-dir", str(home)]) == 1
    out = capsys.readouterr().out
    assert "keep" in out and "newer: incoming" in out and "--force replaces it" in out
    assert dest.read_bytes() == before                              # never silently overwritten
    assert results_main(["import", str(box), "--results-dir", str(home), "--dry-run", "--force"]) == 0
    assert dest.read_bytes() == before and "dry run" in capsys.readouterr().out
    assert results_main(["import", str(box), "--results-dir", str(home), "--force"]) == 0
    assert "overwrite" in capsys.readouterr().out
    assert res.read_result(dest)["value"] == 69.0  # LrcSSM reports test accuracy: 70 - 1
    # the reverse: the older result, offered to the folder that has the newer one, is older
    _write(tmp_path / "older", old)
    plans = transfer.plan_import(tmp_path / "older", results_dir=home)
    assert [(p.action, p.newer) for p in plans] == [("keep", "existing")]


def test_import_rejects_tampered_old_schema_other_settings_and_names_the_field(tmp_path):
    good = _record("lrcssm-t1-scp1", "full", 2345)
    tampered = dict(good, value=float("nan"))
    old_schema = dict(good, schema=0)
    other_hash = dict(good, config_hash="0123456789abcdef")
    wrong_seed = dict(good, seed=9)
    no_provenance = dict(good, provenance={k: v for k, v in good["provenance"].items() if k != "commit"})
    unknown = dict(good, experiment="ls4-t9-nothing")
    members = {
        "lrcssm-t1-scp1/full-seed2345.json": json.dumps(good).encode(),
        "lrcssm-t1-scp1/full-seed1.json": json.dumps(dict(tampered, seed=1)).encode(),
        "lrcssm-t1-scp1/full-seed2.json": json.dumps(dict(old_schema, seed=2)).encode(),
        "lrcssm-t1-scp1/full-seed3.json": json.dumps(dict(other_hash, seed=3)).encode(),
        "lrcssm-t1-scp1/full-seed4.json": json.dumps(wrong_seed).encode(),
        "lrcssm-t1-scp1/full-seed5.json": json.dumps(dict(no_provenance, seed=5)).encode(),
        "ls4-t9-nothing/full-seed2345.json": json.dumps(unknown).encode(),
        "lrcssm-t1-scp1/full-seed6.json": b"{not json",
    }
    archive = _tar(tmp_path / "bad.tar.gz", members)
    plans = {p.name: p for p in transfer.plan_import(archive, results_dir=tmp_path / "home")}
    assert plans["lrcssm-t1-scp1/full-seed2345.json"].action == "new"
    why = {name: p.reason for name, p in plans.items() if p.action == "reject"}
    assert "field 'value'" in why["lrcssm-t1-scp1/full-seed1.json"]
    assert "field 'schema'" in why["lrcssm-t1-scp1/full-seed2.json"]
    assert "field 'config_hash'" in why["lrcssm-t1-scp1/full-seed3.json"]
    assert "field 'seed'" in why["lrcssm-t1-scp1/full-seed4.json"]
    assert "field 'provenance'" in why["lrcssm-t1-scp1/full-seed5.json"]
    assert "field 'experiment'" in why["ls4-t9-nothing/full-seed2345.json"]
    assert "not valid JSON" in why["lrcssm-t1-scp1/full-seed6.json"]
    assert all(name in reason for name, reason in why.items())  # each names its file
    written = transfer.apply_import(list(plans.values()))
    assert [p.name for p in written] == ["full-seed2345.json"]


def test_import_is_safe_against_hostile_archives(tmp_path):
    good = json.dumps(_record("lrcssm-t1-scp1", "full", 2345)).encode()
    home = tmp_path / "home"
    archive = _tar(tmp_path / "evil.tar.gz",
                   {"../../escape/full-seed2345.json": good, "/abs/full-seed2345.json": good,
                    "lrcssm-t1-scp1/../../x/full-seed2345.json": good, "notes.txt": b"hello"},
                   links={"lrcssm-t1-scp1/full-seed3456.json": "/etc/passwd"})
    plans = transfer.plan_import(archive, results_dir=home)
    assert [p.action for p in plans] == ["reject"] * 5
    assert "a link" in plans[-1].reason
    transfer.apply_import(plans)
    assert not home.exists() and not (tmp_path / "escape").exists()
    # an oversized member is refused by its size, unread
    big = _tar(tmp_path / "big.tar.gz", {"lrcssm-t1-scp1/full-seed2345.json": b" " * (transfer.MAX_FILE_BYTES + 1)})
    assert "limit" in transfer.plan_import(big, results_dir=home)[0].reason
    # a folder with a link to a file outside it
    folder = tmp_path / "folder" / "lrcssm-t1-scp1"
    folder.mkdir(parents=True)
    (tmp_path / "outside.json").write_bytes(good)
    os.symlink(tmp_path / "outside.json", folder / "full-seed2345.json")
    assert transfer.plan_import(tmp_path / "folder", results_dir=home)[0].action == "reject"
    with pytest.raises(transfer.TransferError, match="not a readable tar archive"):
        transfer.plan_import(tmp_path / "outside.json", results_dir=home)
    assert results_main(["import", str(tmp_path / "missing.tar.gz")]) == 1
