"""CIFAR-10 from the binary release: LRA "Image" (grayscale) and sCIFAR (colour) sequences.

Liquid-S4 Table 1 "CIFAR" (grayscale, L = 1024) and Table 3 (sCIFAR, colour); chapter
reproductions/01_lra_synthetic_data. Release ``cifar-10-binary.tar.gz`` unpacked under
``<data root>/cifar/``: :data:`LAYOUT`; registry entry: :data:`SPEC`.

A record is 3073 bytes: the label byte (0-9), then 1024 red, 1024 green, 1024 blue bytes, each
plane row-major 32x32. No pickle is involved. Preprocessing as S4: grayscale = PIL ``L``
conversion (ITU-R 601-2 luma, integer), normalised with mean 122.6/255, std 61.0/255; colour
normalised per channel with (0.4914, 0.4822, 0.4465) / (0.247, 0.243, 0.261). Validation = 5000
training images drawn by ``random_split`` with seed 42.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from liquidssm._checks import check_choice, check_int
from liquidssm.data._common import (
    Archive,
    CorruptDataError,
    dataset_dir,
    random_split_indices,
    require_file,
)
from liquidssm.data.spec import DatasetSpec

NAME = "cifar10"
SUBDIR = "cifar/cifar-10-batches-bin"
RECORD = 3073
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILES = ("test_batch.bin",)
LAYOUT = ("  cifar/cifar-10-batches-bin/data_batch_{1..5}.bin   10000 records of 3073 bytes each\n"
          "  cifar/cifar-10-batches-bin/test_batch.bin          10000 records\n"
          "  cifar/cifar-10-batches-bin/batches.meta.txt        class names, one per line")
ARCHIVE = Archive("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                  "cifar-10-binary.tar.gz", md5="c32a1d4ab5d03f1284b67883e8d87530",
                  note="MD5 published on the CIFAR-10 page")
GRAY_MEAN, GRAY_STD = 122.6 / 255.0, 61.0 / 255.0
RGB_MEAN = (0.4914, 0.4822, 0.4465)
RGB_STD = (0.247, 0.243, 0.261)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images (n, 3, 32, 32) uint8, labels (n,) int64)`` from one binary batch file."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        full = raw.size // RECORD
        raise CorruptDataError(
            f"{path}: size {raw.size} bytes is not a multiple of the {RECORD}-byte record; "
            f"record {full} (0-based) is truncated after {raw.size - full * RECORD} bytes")
    rec = raw.reshape(-1, RECORD)
    labels = rec[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise CorruptDataError(f"{path}: record {int(bad[0])} has label byte {labels[bad[0]]} > 9")
    return rec[:, 1:].reshape(-1, 3, 32, 32), labels


def to_gray(img: np.ndarray) -> np.ndarray:
    """PIL ``convert("L")``: ``(R*19595 + G*38470 + B*7471 + 2**15) >> 16`` on uint8 planes."""
    r, g, b = (img[..., c, :, :].astype(np.uint32) for c in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


class CIFAR10Sequence(Dataset):
    """CIFAR-10 as a pixel sequence: item ``(x (1024, C) float32, y int)``, C = 1 or 3.

    ``split``: ``train`` (45000 of the training set), ``val`` (the other 5000; seed 42),
    ``test`` (10000) or ``train_full`` (all 50000). ``grayscale=True`` is LRA "Image";
    ``False`` is sCIFAR, flattened as ``(h w) c``.
    """

    def __init__(self, split: str = "train", root: str | os.PathLike[str] | None = None,
                 grayscale: bool = True, val_size: int = 5000, seed: int = 42) -> None:
        check_choice(split, "split", ("train", "val", "test", "train_full"))
        check_int(val_size, "val_size", minimum=1)
        if not isinstance(grayscale, bool):
            raise TypeError(f"grayscale: expected True or False, got {grayscale!r}")
        d = dataset_dir(SPEC, root)
        files = TEST_FILES if split == "test" else TRAIN_FILES
        parts = [read_batch(require_file(d / f, NAME)) for f in files]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        if split in ("train", "val"):
            if not 0 < val_size < len(labels):
                raise ValueError(f"val_size must be in 1..{len(labels) - 1}, got {val_size}")
            tr, va = random_split_indices([len(labels) - val_size, val_size], seed)
            idx = (tr if split == "train" else va).numpy()
            images, labels = images[idx], labels[idx]
        if grayscale:
            x = torch.from_numpy(to_gray(images).astype(np.float32) / 255.0)
            x = ((x - GRAY_MEAN) / GRAY_STD).reshape(len(labels), 1024, 1)
        else:
            x = torch.from_numpy(images.astype(np.float32) / 255.0)
            x = (x - torch.tensor(RGB_MEAN).view(1, 3, 1, 1)) / torch.tensor(RGB_STD).view(1, 3, 1, 1)
            x = x.permute(0, 2, 3, 1).reshape(len(labels), 1024, 3)
        self.x = x.contiguous()
        self.y = torch.from_numpy(labels)
        self.grayscale = grayscale

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], int(self.y[i])


CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def fixture_image(label: int, rng: np.random.Generator, noise: float = 40.0) -> np.ndarray:
    """One ``(3, 32, 32)`` uint8 image of class ``label``: stripes whose period and orientation code the class.

    Classes 0-4 have horizontal stripes (constant along a row: slow changes in the row-major
    pixel sequence), 5-9 vertical ones (fast, periodic changes); the period is
    ``(2, 3, 4, 6, 8)[label % 5]`` pixels. Phase, colour tint and pixel noise are random.
    """
    period = (2, 3, 4, 6, 8)[label % 5]
    coord = np.arange(32)
    phase = rng.uniform(0, 2 * math.pi)
    wave = np.sin(2 * math.pi * coord / period + phase)
    pattern = np.repeat(wave[:, None], 32, 1) if label < 5 else np.repeat(wave[None, :], 32, 0)
    tint = rng.uniform(0.6, 1.0, size=3)
    img = 128 + 70 * tint[:, None, None] * pattern[None] + noise * rng.standard_normal((3, 32, 32))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_fixture(root: str | os.PathLike[str], n_per_batch: int = 10, noise: float = 40.0,
                  seed: int = 0) -> Path:
    """The CIFAR-10 binary release (``data_batch_1..5.bin``, ``test_batch.bin``, 3073-byte records).

    Every record is ``label byte + R, G, B planes`` of :func:`fixture_image`; labels are
    balanced within each file (``n_per_batch`` records, in random order). The defaults are the
    tiny stand-in of ``liquidssm data fixtures cifar10``; the Liquid-S4 smoke tasks pass their
    sizes. Returns ``<root>/cifar/cifar-10-batches-bin``.
    """
    check_int(n_per_batch, "n_per_batch", minimum=1)
    rng = np.random.default_rng(seed)
    out = Path(root) / SUBDIR
    out.mkdir(parents=True, exist_ok=True)
    for name in TRAIN_FILES + TEST_FILES:
        labels = rng.permutation(np.arange(n_per_batch) % 10).astype(np.uint8)
        pix = np.stack([fixture_image(int(c), rng, noise).reshape(-1) for c in labels])
        np.concatenate([labels[:, None], pix], axis=1).astype(np.uint8).tofile(out / name)
    (out / "batches.meta.txt").write_text("\n".join(CLASSES) + "\n")
    return out


SPEC = DatasetSpec(
    name=NAME, subdir=SUBDIR, layout=LAYOUT,
    papers="Liquid-S4 Table 1 (Image) and Table 3 (sCIFAR)",
    required=tuple(f"{SUBDIR}/{f}" for f in TRAIN_FILES + TEST_FILES),
    archives=(ARCHIVE,), marker="cifar-10-batches-bin", target=SUBDIR, fixture=write_fixture,
)
