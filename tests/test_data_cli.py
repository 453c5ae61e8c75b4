"""``liquidssm data ...``: status, fixtures, prepare (checksums, unpacking), download --dry-run."""

from __future__ import annotations

import hashlib
import tarfile

import pytest

from liquidssm.data import ChecksumError, cli
from liquidssm.data._common import Archive
from liquidssm.data.cifar import CIFAR10Sequence, write_fixture
from liquidssm.data.registry import DATASETS


def test_status_reports_missing_with_layout_and_command(tmp_path, capsys):
    assert cli.main(["status", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "listops          missing" in out
    assert "liquidssm data download listops && liquidssm data prepare listops" in out
    assert "cifar10" in out and "published md5" in out
    assert "unverified" in out
    rows = {r["name"]: r for r in cli.status_rows(str(tmp_path))}
    assert set(rows) == set(DATASETS) and all(r["state"] == "missing" for r in rows.values())


def test_fixtures_make_status_present(tmp_path, capsys, monkeypatch):
    for name in ("listops", "aan", "bidmc"):
        assert cli.main(["fixtures", name, "--out", str(tmp_path)]) == 0
    monkeypatch.setenv("LIQUIDSSM_DATA", str(tmp_path))
    rows = {r["name"]: r["state"] for r in cli.status_rows()}
    assert rows["listops"] == rows["aan"] == rows["bidmc"] == "present"
    assert rows["imdb"] == "missing"


def test_ensure_fixtures(tmp_path):
    from liquidssm.data.registry import ensure_fixtures

    root = ensure_fixtures(["listops", "bidmc"], tmp_path)
    assert not DATASETS["listops"].missing(root) and not DATASETS["bidmc"].missing(root)
    before = (root / "listops" / "basic_train.tsv").stat().st_mtime_ns
    ensure_fixtures(["listops"], root)  # present: left alone
    assert (root / "listops" / "basic_train.tsv").stat().st_mtime_ns == before
    with pytest.raises(KeyError, match="valid names"):
        ensure_fixtures(["nope"], root)


def test_no_invented_checksums():
    for spec in DATASETS.values():
        for a in spec.archives:
            if a.sha256 is not None:
                assert len(a.sha256) == 64
            if a.md5 is not None:  # only CIFAR-10's published MD5 is recorded
                assert spec.name == "cifar10" and len(a.md5) == 32


def _cifar_tar(tmp_path, name):
    src = tmp_path / "src"
    write_fixture(src, n_per_batch=3)
    tar = tmp_path / name
    with tarfile.open(tar, "w:gz") as t:
        t.add(src / "cifar" / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    return tar


def test_prepare_from_archive_places_release_layout(tmp_path, capsys):
    tar = _cifar_tar(tmp_path, "my-cifar.tar.gz")
    root = tmp_path / "raw"
    assert cli.main(["prepare", "cifar10", "--root", str(root), "--from", str(tar)]) == 0
    out = capsys.readouterr().out
    assert f"sha256 {hashlib.sha256(tar.read_bytes()).hexdigest()}" in out and "unverified" in out
    assert len(CIFAR10Sequence("test", root=root)) == 3


def test_prepare_from_directory_copies_and_keeps_source(tmp_path):
    from liquidssm.data import listops

    src = tmp_path / "lra_release" / "listops-1000"
    listops_dir = listops.write_fixture(tmp_path / "gen")
    src.mkdir(parents=True)
    for f in listops_dir.iterdir():
        (src / f.name).write_bytes(f.read_bytes())
    root = tmp_path / "raw"
    log = cli.prepare("listops", str(root), str(tmp_path / "lra_release"))
    assert log[-1] == "listops: present" and (src / "basic_train.tsv").exists()
    assert len(listops.ListOps("val", root=root)) == 8


def test_prepare_rejects_checksum_mismatch(tmp_path):
    root = tmp_path / "raw"
    (root / "_downloads").mkdir(parents=True)
    _cifar_tar(root / "_downloads", "cifar-10-binary.tar.gz")  # official name, wrong content
    with pytest.raises(ChecksumError, match="cifar-10-binary.tar.gz: MD5 .* differs"):
        cli.prepare("cifar10", str(root))
    with pytest.raises(FileNotFoundError, match="liquidssm data download imdb"):
        cli.prepare("imdb", str(root))
    a = Archive("u", "f", sha256="0" * 64)
    p = tmp_path / "f"
    p.write_bytes(b"x")
    with pytest.raises(ChecksumError, match="SHA-256"):
        a.verify(p)
    assert Archive("u", "f", sha256=hashlib.sha256(b"x").hexdigest()).verify(p) == "verified (sha256)"
    assert Archive("u", "f").verify(p).startswith("unverified")


def test_download_dry_run_prints_urls(tmp_path, capsys):
    assert cli.main(["download", "listops", "--root", str(tmp_path), "--dry-run"]) == 0
    assert "https://storage.googleapis.com/long-range-arena/lra_release.gz" in capsys.readouterr().out
    assert not (tmp_path / "_downloads").exists()
    assert cli.main(["download", "lrcssm_splits", "--root", str(tmp_path)]) == 0
    assert "MoniFarsang/LrcSSM" in capsys.readouterr().out


def test_generate_command(tmp_path, capsys):
    assert cli.main(["generate", "pathfinder", "--out", str(tmp_path / "pf"), "--n", "2"]) == 0
    assert (tmp_path / "pf" / "metadata" / "0.npy").read_text().count("\n") == 2
    with pytest.raises(SystemExit):
        cli.main(["generate", "nope", "--out", str(tmp_path)])
