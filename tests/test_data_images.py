"""CIFAR-10 binary records and Pathfinder / Path-X (loader + generator) on fixtures."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from liquidssm.data import CorruptDataError, DatasetMissingError, cifar, pathfinder, pathfinder_gen
from liquidssm.data._common import random_split_indices, split_lengths_like_s4


def test_cifar_records_grayscale_and_color(tmp_path):
    d = cifar.write_fixture(tmp_path, n_per_batch=10)
    raw = np.fromfile(d / "test_batch.bin", dtype=np.uint8).reshape(-1, 3073)
    imgs, labels = cifar.read_batch(d / "test_batch.bin")
    assert imgs.shape == (10, 3, 32, 32) and (labels == raw[:, 0]).all()
    assert imgs[3, 1, 2, 5] == raw[3, 1 + 1024 + 2 * 32 + 5]  # G plane, row 2, col 5
    # grayscale equals PIL's "L" conversion of the RGB image
    pil = np.asarray(Image.fromarray(imgs[3].transpose(1, 2, 0), "RGB").convert("L"))
    assert (cifar.to_gray(imgs[3:4])[0] == pil).all()
    te = cifar.CIFAR10Sequence("test", root=tmp_path)
    x, y = te[3]
    assert x.shape == (1024, 1) and y == labels[3]
    expect = (pil.astype(np.float32) / 255 - cifar.GRAY_MEAN) / cifar.GRAY_STD
    torch.testing.assert_close(x[:, 0], torch.from_numpy(expect.reshape(-1)))
    col = cifar.CIFAR10Sequence("test", root=tmp_path, grayscale=False)
    xc, _ = col[3]
    r = (imgs[3, 0, 0, 1] / 255 - cifar.RGB_MEAN[0]) / cifar.RGB_STD[0]
    assert xc.shape == (1024, 3) and xc[1, 0].item() == pytest.approx(r, rel=1e-5)  # (h w) c


def test_cifar_split_is_torch_random_split(tmp_path):
    cifar.write_fixture(tmp_path, n_per_batch=10)
    tr = cifar.CIFAR10Sequence("train", root=tmp_path, val_size=5)
    va = cifar.CIFAR10Sequence("val", root=tmp_path, val_size=5)
    full = cifar.CIFAR10Sequence("train_full", root=tmp_path)
    assert (len(tr), len(va), len(full)) == (45, 5, 50)
    ref = torch.utils.data.random_split(range(50), [45, 5], torch.Generator().manual_seed(42))
    assert list(ref[1]) == random_split_indices([45, 5], 42)[1].tolist()
    torch.testing.assert_close(va.x, full.x[list(ref[1])])


def test_cifar_truncated_record_and_bad_label(tmp_path):
    d = cifar.write_fixture(tmp_path, n_per_batch=4)
    data = (d / "data_batch_2.bin").read_bytes()
    (d / "data_batch_2.bin").write_bytes(data[:-100])
    with pytest.raises(CorruptDataError, match=r"data_batch_2.bin: .*record 3 .* truncated"):
        cifar.CIFAR10Sequence("train_full", root=tmp_path)
    bad = bytearray(data)
    bad[3073] = 11
    (d / "data_batch_2.bin").write_bytes(bytes(bad))
    with pytest.raises(CorruptDataError, match="record 1 has label byte 11"):
        cifar.CIFAR10Sequence("train_full", root=tmp_path)
    (d / "test_batch.bin").unlink()
    with pytest.raises(DatasetMissingError, match="test_batch.bin"):
        cifar.CIFAR10Sequence("test", root=tmp_path)


@pytest.fixture(scope="module")
def pf_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("pf")
    pathfinder.write_fixture(root, resolution=32, n=20, seed=1)
    return root


def test_pathfinder_loader_and_split(pf_root):
    parts = [pathfinder.PathFinder(s, root=pf_root) for s in ("train", "val", "test")]
    assert [len(p) for p in parts] == [16, 2, 2]
    assert split_lengths_like_s4(200000, 0.1, 0.1) == (160000, 20000, 20000)
    seen = {r[0] for p in parts for r in p.rows}
    assert len(seen) == 20
    x, y = parts[0][0]
    assert x.shape == (1024, 1) and x.min() >= -1 and x.max() <= 1 and y in (0, 1)
    tok, _ = pathfinder.PathFinder("train", root=pf_root, tokenize=True)[0]
    assert tok.dtype == torch.long and int(tok.max()) == 255
    torch.testing.assert_close(x[:, 0], (tok.float() / 255 - 0.5) / 0.5)


def test_pathfinder_metadata_is_text_and_labels_follow_it(pf_root):
    meta = pf_root / "pathfinder" / "pathfinder32" / "curv_contour_length_14" / "metadata" / "0.npy"
    lines = meta.read_text().splitlines()
    f = lines[0].split()
    assert len(lines) == 20 and f[:2] == ["imgs/0", "sample_0.png"] and len(f) == 11
    ds = pathfinder.PathFinder("all", root=pf_root)
    assert [r[1] for r in ds.rows] == [int(line.split()[3]) for line in lines]


def test_pathfinder_errors(tmp_path, caplog):
    base = pathfinder.write_fixture(tmp_path, resolution=32, n=4, seed=0)
    Image.new("L", (30, 32)).save(base / "imgs" / "0" / "sample_1.png")
    ds = pathfinder.PathFinder("all", root=tmp_path)
    with pytest.raises(CorruptDataError, match=r"sample_1.png \(listed in .*0.npy:2\): image is 30x32"):
        ds[1]
    (base / "imgs" / "0" / "sample_2.png").write_bytes(b"\x89PNG\r\n\x1a\n trunc")
    with pytest.raises(CorruptDataError, match="sample_2.png .*unreadable PNG"):
        ds[2]
    (base / "imgs" / "0" / "sample_3.png").unlink()
    with pytest.raises(DatasetMissingError, match=r"sample_3.png: image listed in .*0.npy:4"):
        ds[3]
    meta = base / "metadata" / "0.npy"
    meta.write_text(meta.read_text() + "imgs/0 sample_9.png 9 1\n")
    with pytest.raises(CorruptDataError, match=r"0.npy:5: expected 11"):
        pathfinder.PathFinder("all", root=tmp_path)
    np.save(base / "metadata" / "0.npy", np.zeros(3))  # a real .npy is not the release format
    with pytest.raises(CorruptDataError, match="not a text metadata file"):
        pathfinder.PathFinder("all", root=tmp_path)
    with pytest.raises(DatasetMissingError, match="pathfinder128"):
        pathfinder.PathFinder("all", resolution=128, root=tmp_path)


def test_pathfinder_blacklist_is_logged(tmp_path, monkeypatch, caplog):
    base = pathfinder.write_fixture(tmp_path, resolution=32, n=3, seed=0)
    monkeypatch.setattr(pathfinder, "BLACKLIST", {"pathfinder32/curv_contour_length_14/imgs/0/sample_1.png"})
    with caplog.at_level(logging.WARNING, logger="liquidssm.data"):
        ds = pathfinder.PathFinder("all", root=tmp_path)
    assert len(ds) == 2 and "blacklisted" in caplog.text
    assert base.is_dir()


@pytest.mark.parametrize("res", [32, 128])
def test_generator_labels_agree_with_connectivity(res):
    rng = np.random.default_rng(5)
    p = pathfinder_gen.PARAMS[res]
    labels = []
    for _ in range(6 if res == 32 else 3):
        s = pathfinder_gen.draw_sample(p, rng)
        labels.append(s["label"])
        assert s["image"].shape == (res, res) and s["image"].dtype == np.uint8
        assert s["image"].max() == 255
        assert pathfinder_gen.connected(s) == bool(s["label"])
        own = s["owner"]
        assert (own == 0).sum() == p.contour_length and (own == 1).sum() == p.contour_length
        # markers are bright in the image
        for mx, my in s["markers"]:
            assert s["image"][int(my), int(mx)] > 60
    if res == 32:
        assert set(labels) == {0, 1}


def test_generator_is_deterministic(tmp_path):
    a = pathfinder_gen.generate_pathfinder(tmp_path / "a", 3, seed=7, progress=False)
    pathfinder_gen.generate_pathfinder(tmp_path / "b", 3, seed=7, progress=False)
    assert a["n_images"] == 3 and a["n_batches"] == 1
    for i in range(3):
        assert (tmp_path / "a/imgs/0" / f"sample_{i}.png").read_bytes() == \
            (tmp_path / "b/imgs/0" / f"sample_{i}.png").read_bytes()
    assert (tmp_path / "a/metadata/0.npy").read_text() == (tmp_path / "b/metadata/0.npy").read_text()
    pathfinder_gen.generate_pathfinder(tmp_path / "c", 3, seed=7, progress=False, workers=2)
    assert (tmp_path / "c/metadata/0.npy").read_text() == (tmp_path / "a/metadata/0.npy").read_text()
    assert (tmp_path / "c/imgs/0/sample_2.png").read_bytes() == \
        (tmp_path / "a/imgs/0/sample_2.png").read_bytes()
