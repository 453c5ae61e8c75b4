"""Bad data never loads silently, never overwrites what is on disk, never exhausts memory.

Tables of damaged files per loader (each must raise an error naming the file, and the line where
there is one), the time-series policy for lengths and missing values, the bounded unpickler, and
the never-overwrite rules of the generators, the fixture writers and ``data prepare``/``download``.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from liquidssm.data import (
    CorruptDataError,
    DatasetMissingError,
    aan,
    bidmc,
    cifar,
    imdb,
    listops,
    listops_gen,
    pathfinder,
    pathfinder_gen,
    safe_pickle,
    speech_commands,
    stack_collate,
    tsfile,
    uea,
)
from liquidssm.data import cli as data_cli
from liquidssm.data._common import split_lengths_like_s4
from liquidssm.data.registry import DATASETS

BAD_UTF8 = b"\xff\xfe bad bytes"


# ---------------------------------------------------------------------------------------------
# the .ts format
# ---------------------------------------------------------------------------------------------
def _ts(tmp_path: Path, body: str, header: str = "@dimensions 2\n@equalLength true\n@seriesLength 3\n"
        "@classLabel true a b\n", name: str = "x.ts") -> Path:
    p = tmp_path / name
    p.write_text(f"@problemName X\n@missing false\n{header}@data\n{body}", encoding="utf-8")
    return p


def _raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


TS_CASES = [
    ("non-UTF-8", lambda d: _raw(d / "x.ts", b"@problemName X\n" + BAD_UTF8 + b"\n"),
     CorruptDataError, r"x.ts:2: not valid utf-8 text \(byte 0xff at column 1\)"),
    ("a directory", lambda d: (d / "dir.ts").mkdir() or d / "dir.ts", DatasetMissingError, "is a directory"),
    ("@dimensions six", lambda d: _ts(d, "1,2,3:4,5,6:a\n", "@dimensions six\n@classLabel true a b\n"),
     CorruptDataError, r"x.ts:3: @dimensions expects a positive integer, got 'six'"),
    ("@seriesLength -3", lambda d: _ts(d, "1,2,3:4,5,6:a\n", "@seriesLength -3\n@classLabel true a b\n"),
     CorruptDataError, "@serieslength expects a positive integer"),
    ("@equalLength maybe", lambda d: _ts(d, "1,2,3:4,5,6:a\n", "@equalLength maybe\n@classLabel true a b\n"),
     CorruptDataError, "@equallength expects true or false"),
    ("missing target", lambda d: _ts(d, "1,2,3:4,5,6:?\n", "@targetLabel true\n"), CorruptDataError,
     r"x.ts:5: the regression target is missing"),
    ("nan token", lambda d: _ts(d, "1,nan,3:4,5,6:a\n"), CorruptDataError, r"value 'nan' is not a finite number"),
    ("inf token", lambda d: _ts(d, "1,2,3:4,inf,6:a\n"), CorruptDataError, "not a finite number"),
    ("? under @missing false", lambda d: _ts(d, "1,?,3:4,5,6:a\n"), CorruptDataError,
     r"x.ts:8: a missing value '\?' although the header says @missing false"),
]


@pytest.mark.parametrize("case,make,exc,pattern", TS_CASES, ids=[c[0] for c in TS_CASES])
def test_bad_ts_files(tmp_path, case, make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        tsfile.read_ts(make(tmp_path))


def _uea_files(root: Path, name: str, X_train, X_test, y=("c0", "c1"), lengths=None) -> Path:
    d = root / uea.SUBDIR / name
    d.mkdir(parents=True, exist_ok=True)
    for part, X in (("TRAIN", X_train), ("TEST", X_test)):
        labels = [y[i % 2] for i in range(len(X))]
        tsfile.write_ts(d / f"{name}_{part}.ts", X, labels, name, list(y),
                        lengths=None if lengths is None else lengths[part])
    return d


def test_unequal_lengths_are_zero_padded_and_reported(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 5, 2))
    lengths = {"TRAIN": np.array([5, 3, 5, 2]), "TEST": np.array([4, 5])}
    _uea_files(tmp_path, "Heartbeat", X[:4], X[4:], lengths=lengths)
    parsed = tsfile.read_ts(tmp_path / uea.SUBDIR / "Heartbeat" / "Heartbeat_TRAIN.ts")
    assert parsed.lengths.tolist() == [5, 3, 5, 2] and np.isnan(parsed.X[1, 3:]).all()
    Xm, ym, classes, lens = uea.load_cases("Heart", root=tmp_path)
    assert sorted(lens.tolist()) == [2, 3, 4, 5, 5, 5] and np.isfinite(Xm).all()
    for i, n in enumerate(lens):
        assert (Xm[i, n:] == 0).all()
    ds = uea.UEA("Heart", "train", root=tmp_path, return_lengths=True)
    assert not ds.equal_length and len(ds.lengths) == len(ds)
    x, y, n = ds[0]
    assert x.shape == (5, 2) and isinstance(n, int)
    xb, yb, lb = stack_collate([ds[i] for i in range(len(ds))])
    assert xb.shape == (len(ds), 5, 2) and lb.tolist() == ds.lengths.tolist()
    plain = uea.UEA("Heart", "train", root=tmp_path)
    assert len(plain[0]) == 2  # (x, y) stays the default item
    assert stack_collate([plain[0], plain[1]])[2] is None


def test_train_and_test_of_different_lengths_merge(tmp_path):
    rng = np.random.default_rng(1)
    _uea_files(tmp_path, "Heartbeat", rng.standard_normal((4, 6, 2)), rng.standard_normal((3, 4, 2)))
    X, _, _, lens = uea.load_cases("Heartbeat", root=tmp_path)
    assert X.shape == (7, 6, 2) and sorted(lens.tolist()) == [4, 4, 4, 6, 6, 6, 6]


def test_missing_values_raise_by_default_and_fill_on_request(tmp_path):
    X = np.arange(40, dtype=float).reshape(4, 5, 2) + 1
    X[1, 2, 0] = np.nan
    X[3, 0, 1] = np.nan
    d = _uea_files(tmp_path, "Heartbeat", X[:2], X[2:])
    with pytest.raises(CorruptDataError, match=r"Heartbeat_TRAIN.ts:\d+: 1 missing value.*missing='ffill'"):
        uea.UEA("Heart", root=tmp_path)
    Xf, _, _, _ = uea.load_cases("Heart", root=tmp_path, missing="ffill")
    assert np.isfinite(Xf).all()
    row = next(r for r in Xf if r[1, 0] == 13.0)  # case 1: the value before the gap carried forward
    assert row[2, 0] == 13.0
    Xz, _, _, _ = uea.load_cases("Heart", root=tmp_path, missing="zero")
    assert np.isfinite(Xz).all() and (Xz == 0).sum() == 2
    with pytest.raises(ValueError, match="missing: expected one of"):
        uea.UEA("Heart", root=tmp_path, missing="drop")
    assert "@missing true" in (d / "Heartbeat_TRAIN.ts").read_text()


def test_files_with_different_channel_counts_are_refused(tmp_path):
    _uea_files(tmp_path, "Heartbeat", np.zeros((2, 3, 2)), np.zeros((2, 3, 3)))
    with pytest.raises(CorruptDataError, match="Heartbeat_TEST.ts: 3 dimensions, but .*Heartbeat_TRAIN.ts has 2"):
        uea.load_merged("Heart", root=tmp_path)


def test_bidmc_missing_target_and_input(tmp_path):
    bidmc.write_fixture(tmp_path, n_train=6, n_test=4, length=8)
    p = tmp_path / "bidmc" / "BIDMC32RR_TRAIN.ts"
    lines = p.read_text().splitlines()
    lines[-1] = lines[-1].rsplit(":", 1)[0] + ":?"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorruptDataError, match=rf"BIDMC32RR_TRAIN.ts:{len(lines)}: the regression target is missing"):
        bidmc.BIDMC("train", "RR", root=tmp_path)
    q = tmp_path / "bidmc" / "BIDMC32HR_TEST.ts"
    text = q.read_text().replace("@missing false", "@missing true")
    head, data = text.split("@data\n")
    rows = data.splitlines()
    rows[0] = "?" + rows[0][rows[0].index(","):]
    q.write_text(head + "@data\n" + "\n".join(rows) + "\n")
    with pytest.raises(CorruptDataError, match="BIDMC32HR_TEST.ts:.*missing value"):
        bidmc.BIDMC("train", "HR", root=tmp_path)
    ds = bidmc.BIDMC("test", "HR", root=tmp_path, missing="zero", return_lengths=True)
    assert ds.equal_length and torch.isfinite(ds.x).all() and len(ds[0]) == 3


def test_lrcssm_split_with_nan_is_refused(tmp_path):
    base = uea.write_lrcssm_split_fixture(tmp_path, "SCP1", seed=2345, n=20, length=8, channels=2)
    X = safe_pickle.load_array_pickle(base / "X_val.pkl")
    X[0, 0, 1] = np.nan
    (base / "X_val.pkl").write_bytes(safe_pickle.dumps_like_jax(X))
    with pytest.raises(CorruptDataError, match=r"X_val.pkl: expected a non-empty array of finite values.*1 NaN/inf"):
        uea.load_lrcssm_split("SCP1", 2345, root=tmp_path)


# ---------------------------------------------------------------------------------------------
# the restricted unpickler: bounded by the file's own size
# ---------------------------------------------------------------------------------------------
HUGE_NDARRAY = b"cnumpy\nndarray\n(J\x00\x00\x00\x40\x85tR."  # ndarray((2**30,)): 25 bytes
HUGE_RECONSTRUCT = (b"cnumpy._core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(J\x00\x00\x00\x40J\x00\x00\x01\x00t"
                    b"Vf8\ntR.")

PICKLE_CASES = [
    ("direct ndarray(shape)", HUGE_NDARRAY, "called directly"),
    ("_reconstruct of a huge shape", HUGE_RECONSTRUCT, r"asks for an array of 562949953421312 bytes .* holds only"),
    ("object array", pickle.dumps(np.array([1, "a"], dtype=object), protocol=2), "numpy.dtype object refused"),
    ("string array", pickle.dumps(np.array(["ab", "c"]), protocol=2), "refused"),
    ("structured array", pickle.dumps(np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]), protocol=2), "refused"),
    ("_reconstruct of another class", b"cnumpy._core.multiarray\n_reconstruct\n(cnumpy\ndtype\n(K\x01tVb\ntR.",
     "_reconstruct of"),
]


@pytest.mark.parametrize("case,data,pattern", PICKLE_CASES, ids=[c[0] for c in PICKLE_CASES])
def test_hostile_pickles_are_refused_before_allocating(tmp_path, case, data, pattern):
    p = tmp_path / "X_train.pkl"
    p.write_bytes(data)
    with pytest.raises(safe_pickle.UnsafePickleError, match=pattern):
        safe_pickle.load_array_pickle(p)


def test_bounded_unpickler_still_loads_real_arrays():
    for protocol in (2, 3, 4, 5):
        arr = np.arange(12, dtype=np.float32).reshape(3, 4)
        out = safe_pickle.NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(arr, protocol=protocol))).load()
        assert (out == arr).all() and out.dtype == np.float32
    jax_like = safe_pickle.dumps_like_jax(np.ones((5, 7), np.float64))
    assert safe_pickle.NumpyOnlyUnpickler(io.BytesIO(jax_like)).load().shape == (5, 7)
    with pytest.raises(safe_pickle.UnsafePickleError, match="holds only 10 bytes"):
        safe_pickle.NumpyOnlyUnpickler(io.BytesIO(HUGE_RECONSTRUCT), max_bytes=10).load()


# ---------------------------------------------------------------------------------------------
# empty, partial and damaged datasets of the loaders
# ---------------------------------------------------------------------------------------------
def _listops(root: Path) -> Path:
    return listops.write_fixture(root, n_train=12, n_val=4, n_test=4)


def _pathfinder(root: Path) -> Path:
    return pathfinder.write_fixture(root, n=10)


def _truncate(path: Path, text: str | bytes = "") -> None:
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)


LOADER_CASES = [
    ("listops header only", _listops, lambda b: _truncate(b / "basic_val.tsv", "Source\tTarget\n"),
     lambda r: listops.ListOps("val", root=r), CorruptDataError, r"basic_val.tsv: no expressions after the header"),
    ("listops 0 bytes", _listops, lambda b: _truncate(b / "basic_test.tsv"),
     lambda r: listops.ListOps("test", root=r), CorruptDataError, "basic_test.tsv: no expressions"),
    ("listops non-UTF-8", _listops, lambda b: _truncate(b / "basic_val.tsv", b"Source\tTarget\n[MAX 1 2 ]\t2\n\xff\t1\n"),
     lambda r: listops.ListOps("val", root=r), CorruptDataError, r"basic_val.tsv:3: not valid utf-8"),
    ("listops file is a folder", _listops, lambda b: (b / "basic_val.tsv").unlink() or (b / "basic_val.tsv").mkdir(),
     lambda r: listops.ListOps("val", root=r), DatasetMissingError, "basic_val.tsv is a directory"),
    ("aan 0 bytes", lambda r: aan.write_fixture(r), lambda b: _truncate(b / "new_aan_pairs.eval.tsv"),
     lambda r: aan.AAN("val", root=r), CorruptDataError, "new_aan_pairs.eval.tsv: no document pairs"),
    ("aan non-UTF-8", lambda r: aan.write_fixture(r), lambda b: _truncate(b / "new_aan_pairs.test.tsv", BAD_UTF8),
     lambda r: aan.AAN("test", root=r), CorruptDataError, "new_aan_pairs.test.tsv:1: not valid utf-8"),
    ("pathfinder 0-byte metadata", _pathfinder, lambda b: _truncate(b / "metadata" / "0.npy"),
     lambda r: pathfinder.PathFinder("all", root=r), CorruptDataError, r"0.npy: no metadata lines"),
    ("pathfinder no metadata folder", _pathfinder, lambda b: [p.unlink() for p in (b / "metadata").iterdir()]
     and (b / "metadata").rmdir(), lambda r: pathfinder.PathFinder("all", root=r), DatasetMissingError,
     "expected the metadata folder"),
    ("pathfinder overlapping splits", _pathfinder, lambda b: None,
     lambda r: pathfinder.PathFinder("test", root=r, val_frac=0.6, test_frac=0.6), ValueError,
     r"val_frac \+ test_frac: expected < 1"),
    ("pathfinder negative fraction", _pathfinder, lambda b: None,
     lambda r: pathfinder.PathFinder("val", root=r, val_frac=-0.1), ValueError, r"val_frac: expected a fraction in \[0, 1\)"),
    ("pathfinder empty split", _pathfinder, lambda b: None,
     lambda r: pathfinder.PathFinder("val", root=r, val_frac=0.05), CorruptDataError, "split 'val' is empty"),
    ("pathfinder tokenize string", _pathfinder, lambda b: None,
     lambda r: pathfinder.PathFinder("all", root=r, tokenize="yes"), TypeError, "tokenize: expected True or False"),
    ("imdb empty pos", lambda r: imdb.write_fixture(r, n_train=2, n_test=2),
     lambda b: [p.unlink() for p in (b / "aclImdb" / "test" / "pos").iterdir()],
     lambda r: imdb.IMDB("test", root=r, min_freq=1), CorruptDataError, r"test/pos holds no <id>_<rating>.txt reviews"),
    ("imdb review is a folder", lambda r: imdb.write_fixture(r, n_train=2, n_test=2),
     lambda b: (b / "aclImdb" / "train" / "neg" / "99_1.txt").mkdir(),
     lambda r: len(imdb.IMDB("train", root=r, min_freq=1)), None, None),
    ("cifar batch is a folder", lambda r: cifar.write_fixture(r, n_per_batch=3),
     lambda b: (b / "test_batch.bin").unlink() or (b / "test_batch.bin").mkdir(),
     lambda r: cifar.CIFAR10Sequence("test", root=r), DatasetMissingError, "test_batch.bin is a directory"),
    ("cifar val_size string", lambda r: cifar.write_fixture(r, n_per_batch=3), lambda b: None,
     lambda r: cifar.CIFAR10Sequence("val", root=r, val_size="5"), TypeError, "val_size: expected an int"),
    ("speech empty class", lambda r: speech_commands.write_fixture(r, classes="sc10"),
     lambda b: [p.unlink() for p in (b / "yes").iterdir()],
     lambda r: speech_commands.SpeechCommands(root=r, classes="sc10"), CorruptDataError, "yes holds no .wav clips"),
    ("speech list non-UTF-8", lambda r: speech_commands.write_fixture(r, classes="sc10"),
     lambda b: _truncate(b / "testing_list.txt", BAD_UTF8),
     lambda r: speech_commands.SpeechCommands(root=r, classes="sc10"), CorruptDataError, "testing_list.txt:1: not valid"),
    ("speech normalize shape", lambda r: speech_commands.write_fixture(r, classes="sc10"),
     lambda b: None, lambda r: speech_commands.SpeechCommands(root=r, classes="sc10",
                                                              normalize=(torch.zeros(8000), torch.ones(8000))),
     ValueError, r"normalize mean: expected 16000 finite values"),
]


@pytest.mark.parametrize("case,write,damage,load,exc,pattern", LOADER_CASES, ids=[c[0] for c in LOADER_CASES])
def test_damaged_datasets_are_refused(tmp_path, case, write, damage, load, exc, pattern):
    base = write(tmp_path)
    damage(base)
    if exc is None:  # tolerated: the odd entry is skipped with a warning
        assert load(tmp_path) > 0
        return
    with pytest.raises(exc, match=pattern):
        load(tmp_path)


def test_split_fractions_are_checked_before_any_split():
    assert split_lengths_like_s4(20, 0.1, 0.1) == (16, 2, 2)
    for bad in ((0.5, 0.5), (1.0, 0.0), ("0.1", 0.1), (True, 0.1)):
        with pytest.raises(ValueError):
            split_lengths_like_s4(20, *bad)


# ---------------------------------------------------------------------------------------------
# never overwrite: generators, fixtures, prepare, download
# ---------------------------------------------------------------------------------------------
def test_listops_generator_refuses_to_overwrite(tmp_path):
    out = tmp_path / "lo"
    out.mkdir()
    (out / "basic_val.tsv").write_text("my real data\n")
    kw = dict(n_train=5, n_val=2, n_test=2, min_length=3, max_length=40, max_depth=3, max_args=3, progress=False)
    with pytest.raises(FileExistsError, match=r"basic_val.tsv already exist.*--force"):
        listops_gen.generate_listops(out, **kw)
    assert (out / "basic_val.tsv").read_text() == "my real data\n" and not (out / "basic_train.tsv").exists()
    assert listops_gen.generate_listops(out, overwrite=True, **kw) == {"train": 5, "val": 2, "test": 2}
    assert (out / "basic_val.tsv").read_text().startswith("Source\tTarget")
    assert sorted(p.name for p in out.iterdir()) == ["basic_test.tsv", "basic_train.tsv", "basic_val.tsv"]
    with pytest.raises(TypeError, match="seed"):
        listops_gen.generate_listops(tmp_path / "x", seed="0", **kw)


def test_pathfinder_generator_refuses_to_overwrite(tmp_path):
    out = tmp_path / "pf"
    pathfinder_gen.generate_pathfinder(out, 2, progress=False)
    before = (out / "metadata" / "0.npy").read_text()
    with pytest.raises(FileExistsError, match="generate_pathfinder: .*imgs"):
        pathfinder_gen.generate_pathfinder(out, 3, seed=1, progress=False)
    assert (out / "metadata" / "0.npy").read_text() == before
    pathfinder_gen.generate_pathfinder(out, 3, seed=1, progress=False, overwrite=True)
    assert (out / "metadata" / "0.npy").read_text().count("\n") == 3
    assert sorted(p.name for p in out.iterdir()) == ["imgs", "metadata"]  # no temporary left behind
    assert len(list((out / "imgs" / "0").iterdir())) == 3


def test_fixture_writer_never_replaces_real_data(tmp_path):
    spec = DATASETS["listops"]
    real = tmp_path / "listops" / "basic_train.tsv"
    real.parent.mkdir(parents=True)
    real.write_text("Source\tTarget\n[MAX 1 ]\t1\n")
    with pytest.raises(FileExistsError, match=r"fixtures listops: .*listops already exist.*--force"):
        spec.write_fixture(tmp_path)
    assert real.read_text() == "Source\tTarget\n[MAX 1 ]\t1\n"
    assert spec.write_fixture(tmp_path, force=True) == tmp_path / "listops"
    assert len(listops.ListOps("train", root=tmp_path)) == 32
    assert [p.name for p in tmp_path.iterdir()] == ["listops"]  # the staging folder is gone


def test_fixtures_command_refuses_then_forces(tmp_path, capsys):
    real = tmp_path / "bidmc" / "BIDMC32HR_TRAIN.ts"
    real.parent.mkdir(parents=True)
    real.write_text("real")
    from liquidssm import cli

    assert cli.main(["data", "fixtures", "bidmc", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("liquidssm data: error: FileExistsError: fixtures bidmc:") and "Traceback" not in err
    assert real.read_text() == "real"
    assert cli.main(["data", "fixtures", "bidmc", "--out", str(tmp_path), "--force"]) == 0
    assert real.read_text().startswith("# written by liquidssm")


def test_prepare_copies_only_what_the_dataset_needs_and_keeps_existing(tmp_path):
    src = tmp_path / "downloads"
    gen = listops.write_fixture(tmp_path / "gen")
    src.mkdir()
    for f in gen.iterdir():
        (src / f.name).write_bytes(f.read_bytes())
    (src / "holiday.jpg").write_bytes(b"\xff\xd8 not data")
    (src / "other_project").mkdir()
    root = tmp_path / "raw"
    log = data_cli.prepare("listops", str(root), str(src))
    assert sorted(p.name for p in (root / "listops").iterdir()) == ["basic_test.tsv", "basic_train.tsv",
                                                                   "basic_val.tsv"]
    assert any("left 2 other entries" in line for line in log) and log[-1] == "listops: present"
    (root / "listops" / "basic_val.tsv").write_text("edited\n")
    log = data_cli.prepare("listops", str(root), str(src))
    assert sum("kept existing" in line for line in log) == 3 and not any("placed" in line for line in log)
    assert (root / "listops" / "basic_val.tsv").read_text() == "edited\n"
    log = data_cli.prepare("listops", str(root), str(src), force=True)
    assert sum(line.startswith("replaced") for line in log) == 3
    assert (root / "listops" / "basic_val.tsv").read_bytes() == (src / "basic_val.tsv").read_bytes()


def test_prepare_files_move_takes_only_the_named_ts_files(tmp_path):
    src = tmp_path / "dl"
    bidmc.write_fixture(src)
    (src / "bidmc" / "Unrelated_TRAIN.ts").write_text("x")
    root = tmp_path / "raw"
    data_cli.prepare("bidmc", str(root), str(src))
    assert sorted(p.name for p in (root / "bidmc").iterdir()) == sorted(
        f"BIDMC32{t}_{s}.ts" for t in ("HR", "RR", "SpO2") for s in ("TRAIN", "TEST"))


def test_a_failed_extraction_leaves_nothing_to_reuse(tmp_path):
    root = tmp_path / "raw"
    bad = tmp_path / "my-cifar.tar.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(CorruptDataError, match="my-cifar.tar.gz: cannot unpack"):
        data_cli.prepare("cifar10", str(root), str(bad))
    extract = root / "_extract"
    assert not extract.exists() or list(extract.iterdir()) == []


@pytest.mark.parametrize("member", ["../escape.txt", "/abs/escape.txt", "a/../../escape.txt"])
def test_archive_members_outside_the_destination_are_refused(tmp_path, member):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(member, "x")
    with pytest.raises(CorruptDataError, match="would escape"):
        data_cli.prepare("listops", str(tmp_path / "raw"), str(archive))
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "raw" / "escape.txt").exists()


def test_tar_links_outside_are_refused(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as t:
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(info)
    with pytest.raises(CorruptDataError, match="cannot unpack"):
        data_cli.prepare("listops", str(tmp_path / "raw"), str(archive))


def test_failed_download_leaves_no_partial_file_or_folder(tmp_path, monkeypatch, capsys):
    seen = {}

    def refuse(url, timeout=None):
        seen["timeout"] = timeout
        raise urllib.error.URLError("no network here")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    from liquidssm import cli

    assert cli.main(["data", "download", "cifar10", "--root", str(tmp_path), "--timeout", "7"]) == 1
    err = capsys.readouterr().err
    assert "error: ConnectionError: download of https://www.cs.toronto.edu" in err and "nothing partial" in err
    assert seen["timeout"] == 7.0 and not (tmp_path / "_downloads").exists()
    with pytest.raises(SystemExit) as info:
        cli.main(["data", "download", "cifar10", "--root", str(tmp_path), "--timeout", "0"])
    assert info.value.code == 2
