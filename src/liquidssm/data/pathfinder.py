"""LRA Pathfinder (32x32) and Path-X (128x128) loaders from the release layout.

Liquid-S4 Table 1 "Pathfinder" (L = 1024) and "Path-X" (L = 16384); chapter
reproductions/01_lra_synthetic_data. Release (``lra_release/pathfinder{32,128}/``) under
``<data root>/pathfinder/``: :data:`LAYOUT` with ``<R>`` the resolution; registry entries
:data:`SPEC` (32) and :data:`PATHX_SPEC` (128), built by :func:`spec_for`.

Each metadata line reads ``imgs/<k> sample_<i>.png <nimg> <label> <continuity> <contour_length>
<distractor_length> <paddle_length> <paddle_thickness> <paddle_margin> <n_contrasts>``; the
loader uses fields 0, 1 and 3 (S4). Metadata files are read in integer order of their stem.
Only the hardest difficulty (``curv_contour_length_14``) is used. Pixels are mapped to [-1, 1]
(``ToTensor`` then ``Normalize(0.5, 0.5)``) and flattened row-major to ``(R*R, 1)``; split
80/10/10 with ``random_split`` seed 42 (S4: val = int(0.1 n), test = int(0.1 n)).
S4 skips one known-empty image of the release (``pathfinder32/curv_baseline/imgs/0/sample_172.png``);
the same blacklist is applied here and logged.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from liquidssm._checks import check_choice, check_int
from liquidssm.data._common import (
    CorruptDataError,
    DatasetMissingError,
    data_files,
    dataset_dir,
    log,
    random_split_indices,
    read_text_lines,
    require_rows,
    require_split,
    split_lengths_like_s4,
)
from liquidssm.data.pathfinder_gen import PARAMS, generate_pathfinder
from liquidssm.data.spec import LRA_RELEASE, DatasetSpec

RESOLUTIONS = {32: "pathfinder32", 64: "pathfinder64", 128: "pathfinder128", 256: "pathfinder256"}
DIFFICULTY = "curv_contour_length_14"
BLACKLIST = {"pathfinder32/curv_baseline/imgs/0/sample_172.png"}
LAYOUT = ("  pathfinder/pathfinder<R>/curv_contour_length_14/imgs/<k>/sample_<i>.png   "
          "8-bit grayscale R x R\n"
          "  pathfinder/pathfinder<R>/curv_contour_length_14/metadata/<k>.npy          "
          "text, despite \".npy\"")
_PAPERS = {32: "Liquid-S4 Table 1 (Pathfinder)", 128: "Liquid-S4 Table 1 (Path-X)"}


def dataset_name(resolution: int) -> str:
    """The command-line name of a resolution: ``pathx`` for 128, else ``pathfinder<R>``."""
    return "pathx" if resolution == 128 else f"pathfinder{resolution}"


def read_metadata(meta_dir: Path) -> list[tuple[str, int, Path, int]]:
    """``(relative image path, label, metadata file, line)`` over ``metadata/<k>.npy`` (as text).

    Every metadata file must hold at least one line: an empty one is a partial copy of the
    release and is refused, naming the file. Any other entry (a directory named ``<k>.npy``, a
    stray file) is skipped with a warning (:func:`~liquidssm.data._common.data_files`).
    """
    if not meta_dir.is_dir():
        raise DatasetMissingError(f"{meta_dir}: expected the metadata folder (metadata/<k>.npy text files)")
    files = [(int(p.stem), p) for p in data_files(meta_dir, _is_metadata_name, "<k>.npy", "pathfinder")]
    if not files:
        raise DatasetMissingError(f"no metadata/<k>.npy files in {meta_dir}")
    rows = []
    for _, p in sorted(files):
        n_before = len(rows)
        try:
            for lineno, line in read_text_lines(p, "ascii"):
                if not line.strip():
                    continue
                rows.append(_metadata_row(line, p, lineno))
        except CorruptDataError as e:
            if "not valid ascii" in str(e):
                raise CorruptDataError(f"{p}: not a text metadata file (the LRA release stores text despite "
                                       f"the .npy extension): {e}") from None
            raise
        require_rows(rows[n_before:], p, "metadata lines")
    return rows


def _is_metadata_name(name: str) -> bool:
    stem, dot, ext = name.rpartition(".")
    return dot == "." and ext == "npy" and stem.isdigit()


def _metadata_row(line: str, path: Path, lineno: int) -> tuple[str, int, Path, int]:
    """One metadata line ``imgs/<k> sample_<i>.png <i> <label> ...`` (11 fields) -> a row."""
    fields = line.split()
    if len(fields) != 11:
        raise CorruptDataError(f"{path}:{lineno}: expected 11 space-separated fields, got {len(fields)}")
    if fields[3] not in ("0", "1"):
        raise CorruptDataError(f"{path}:{lineno}: label field {fields[3]!r} is not 0 or 1")
    return f"{fields[0]}/{fields[1]}", int(fields[3]), path, lineno


class PathFinder(Dataset):
    """Pathfinder / Path-X: item ``(x (R*R, 1) float32 in [-1, 1], y int)``; images load lazily.

    ``tokenize=True`` returns int64 pixel values 0..255 of shape ``(R*R,)`` instead.
    """

    def __init__(self, split: str = "train", resolution: int = 32,
                 root: str | os.PathLike[str] | None = None, tokenize: bool = False,
                 seed: int = 42, val_frac: float = 0.1, test_frac: float = 0.1) -> None:
        check_choice(split, "split", ("train", "val", "test", "all"))
        _check_resolution(resolution)
        if not isinstance(tokenize, bool):
            raise TypeError(f"tokenize: expected True or False, got {tokenize!r}")
        split_lengths_like_s4(0, val_frac, test_frac)  # check the fractions before any I/O
        self.resolution = resolution
        self.tokenize = tokenize
        base = dataset_dir(spec_for(resolution), root, DIFFICULTY)
        self.base = base
        rows = read_metadata(base / "metadata")
        kept = []
        for rel, lab, mfile, line in rows:
            key = f"{RESOLUTIONS[resolution]}/{DIFFICULTY}/{rel}"
            if key in BLACKLIST:
                log.warning("pathfinder: skipping blacklisted empty image %s (as S4 does)", key)
                continue
            kept.append((rel, lab, mfile, line))
        self.rows = kept
        if split != "all":
            lengths = split_lengths_like_s4(len(kept), val_frac, test_frac)
            idx = random_split_indices(lengths, seed)[("train", "val", "test").index(split)]
            self.rows = [kept[i] for i in idx.tolist()]
            require_split(len(self.rows), split, len(kept), base)

    def __len__(self) -> int:
        return len(self.rows)

    def load_image(self, i: int) -> np.ndarray:
        """The raw ``(R, R)`` uint8 image of item ``i``; errors name the file and metadata line."""
        rel, _, mfile, line = self.rows[i]
        path = self.base / rel
        if path.is_dir():
            raise DatasetMissingError(f"{path}: a directory stands where the PNG image listed in {mfile}:{line} "
                                      "should be")
        if not path.is_file():
            raise DatasetMissingError(f"{path}: image listed in {mfile}:{line} does not exist")
        try:
            with Image.open(path) as im:
                im.load()
                arr = np.asarray(im.convert("L"))
        except (OSError, SyntaxError) as e:
            raise CorruptDataError(f"{path} (listed in {mfile}:{line}): unreadable PNG ({e})") from None
        r = self.resolution
        if arr.shape != (r, r):
            raise CorruptDataError(
                f"{path} (listed in {mfile}:{line}): image is {arr.shape[1]}x{arr.shape[0]}, "
                f"expected {r}x{r}")
        return arr

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        arr = self.load_image(i)
        label = self.rows[i][1]
        if self.tokenize:
            return torch.from_numpy(arr.astype(np.int64).reshape(-1)), label
        x = torch.from_numpy(arr.astype(np.float32) / 255.0)
        return ((x - 0.5) / 0.5).reshape(-1, 1), label


def _check_resolution(resolution: object) -> int:
    """An int image side among :data:`RESOLUTIONS` (``32.0`` or ``True`` are refused, not taken for 32 or 1)."""
    check_int(resolution, "resolution")
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution: expected one of {sorted(RESOLUTIONS)} (the image side in pixels), "
                         f"got {resolution}")
    return resolution  # type: ignore[return-value]


def write_fixture(root: str | os.PathLike[str], resolution: int = 32, n: int = 20,
                  seed: int = 0) -> Path:
    """Tiny release layout drawn by the Pathfinder generator (``n`` images in batch 0)."""
    out = Path(root) / "pathfinder" / RESOLUTIONS[resolution] / DIFFICULTY
    generate_pathfinder(out, n_images=n, params=PARAMS[resolution], seed=seed,
                        images_per_batch=n, progress=False)
    return out


def spec_for(resolution: int) -> DatasetSpec:
    """The registry entry of Pathfinder at ``resolution`` (32, 64, 128 = Path-X, or 256)."""
    _check_resolution(resolution)
    folder = RESOLUTIONS[resolution]
    subdir = f"pathfinder/{folder}"
    return DatasetSpec(
        name=dataset_name(resolution), subdir=subdir,
        layout=LAYOUT.replace("pathfinder<R>", folder).replace("R x R", f"{resolution} x {resolution}"),
        papers=_PAPERS.get(resolution, ""),
        required=(f"{subdir}/{DIFFICULTY}/metadata", f"{subdir}/{DIFFICULTY}/imgs"),
        archives=(LRA_RELEASE,), marker=folder, target=subdir,
        fixture=functools.partial(write_fixture, resolution=resolution),
    )


SPEC = spec_for(32)
PATHX_SPEC = spec_for(128)
