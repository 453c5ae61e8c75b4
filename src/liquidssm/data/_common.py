"""Shared plumbing of the dataset loaders: data root, errors, checksums, vocabularies, splits.

Chapter reproductions/01_lra_synthetic_data and every reproduction chapter use these loaders.
The real datasets live in their original release layouts under ``data/raw/`` at the repository
root (git-ignored); :mod:`liquidssm.paths` finds it. Override with the environment variable
``LIQUIDSSM_DATA`` or the ``root=`` argument of every loader. This module imports no loader and
no registry: a loader passes its own spec to :func:`dataset_dir`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from liquidssm import paths

if TYPE_CHECKING:
    from liquidssm.data.spec import DatasetSpec

log = logging.getLogger("liquidssm.data")

__all__ = [
    "DatasetMissingError",
    "CorruptDataError",
    "ChecksumError",
    "data_root",
    "dataset_dir",
    "require_file",
    "sha256_file",
    "md5_file",
    "Archive",
    "Vocab",
    "split_lengths_like_s4",
    "random_split_indices",
]


class DatasetMissingError(FileNotFoundError):
    """A dataset (or one of its files) is not where its original release layout puts it."""


class CorruptDataError(ValueError):
    """A dataset file exists but does not parse; the message names the file and line/record."""


class ChecksumError(CorruptDataError):
    """A downloaded archive's checksum differs from the published one."""


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Root of the raw datasets: ``root`` if given, else ``$LIQUIDSSM_DATA``, else ``<repo>/data/raw``.

    A thin alias of :func:`liquidssm.paths.raw_data_dir`, which documents how ``<repo>`` is found.
    """
    return paths.raw_data_dir(root)


def dataset_dir(spec: DatasetSpec, root: str | os.PathLike[str] | None = None,
                *parts: str) -> Path:
    """``<data root>/<spec.subdir>/<parts...>``; raises :class:`DatasetMissingError` if absent.

    The message names the expected directory, the layout ``spec.layout`` and the commands that
    fetch the dataset or write a stand-in. ``spec`` is the caller's own
    :class:`~liquidssm.data.spec.DatasetSpec`, so this module needs no registry.
    """
    path = data_root(root).joinpath(spec.subdir, *parts)
    if not path.is_dir():
        raise DatasetMissingError(
            f"dataset {spec.name!r} not found: expected directory {path}\n"
            f"expected layout:\n{spec.layout}\n"
            f"fetch it with `liquidssm data download {spec.name}` then "
            f"`liquidssm data prepare {spec.name}`, or point LIQUIDSSM_DATA (or root=) at a "
            f"directory holding {spec.subdir}/; `liquidssm data fixtures {spec.name} --out DIR` "
            "writes a tiny stand-in in the same layout"
        )
    return path


def require_file(path: Path, name: str) -> Path:
    """Raise :class:`DatasetMissingError` naming ``path`` unless it is a file."""
    if not path.is_file():
        raise DatasetMissingError(
            f"dataset {name!r}: missing file {path}; run `liquidssm data status` to see the "
            f"expected layout and `liquidssm data download {name}` to fetch it"
        )
    return path


def _hash_file(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    return _hash_file(Path(path), "sha256")


def md5_file(path: str | os.PathLike[str]) -> str:
    """MD5 hex digest of a file (only for archives whose publisher gives an MD5)."""
    return _hash_file(Path(path), "md5")


@dataclass(frozen=True)
class Archive:
    """An official release archive: URL, file name and the checksums we know for certain.

    ``sha256``/``md5`` are ``None`` when we do not know the published value; such archives are
    reported as "unverified" and never checked against an invented value.
    """

    url: str
    filename: str
    sha256: str | None = None
    md5: str | None = None
    note: str = ""

    def verify(self, path: Path) -> str:
        """Check ``path`` against the known checksum; return "verified (...)" or "unverified"."""
        if self.sha256 is not None:
            got = sha256_file(path)
            if got != self.sha256:
                raise ChecksumError(f"{path}: SHA-256 {got} differs from the published {self.sha256}")
            return "verified (sha256)"
        if self.md5 is not None:
            got = md5_file(path)
            if got != self.md5:
                raise ChecksumError(f"{path}: MD5 {got} differs from the published {self.md5}")
            return "verified (md5)"
        return "unverified (no published checksum known to us)"


@dataclass
class Vocab:
    """Token vocabulary as torchtext's ``build_vocab_from_iterator`` builds it in S4's loaders.

    Specials first (``<pad>``=0, ``<unk>``=1, ``<eos>``=2), then tokens by decreasing frequency,
    ties in lexicographic order; tokens rarer than ``min_freq`` are dropped; unknown tokens map to
    ``<unk>``.
    """

    itos: list[str]
    stoi: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    SPECIALS = ("<pad>", "<unk>", "<eos>")

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_freq: int = 1) -> Vocab:
        counts: Counter[str] = Counter()
        for toks in token_lists:
            counts.update(toks)
        # torchtext: descending frequency, ties broken lexicographically
        ordered = [t for t, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                   if c >= min_freq and t not in cls.SPECIALS]
        return cls(list(cls.SPECIALS) + ordered)

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def pad(self) -> int:
        return self.stoi["<pad>"]

    def encode(self, tokens: Sequence[str], l_max: int) -> torch.Tensor:
        """Indices of ``tokens[: l_max - 1]`` followed by ``<eos>`` (int64, shape ``(<= l_max,)``)."""
        unk = self.stoi["<unk>"]
        ids = [self.stoi.get(t, unk) for t in tokens[: l_max - 1]]
        ids.append(self.stoi["<eos>"])
        return torch.tensor(ids, dtype=torch.long)


def split_lengths_like_s4(n: int, val_frac: float, test_frac: float) -> tuple[int, int, int]:
    """S4's split sizes: ``val = int(val_frac n)``, ``test = int(test_frac n)``, train the rest."""
    val, test = int(val_frac * n), int(test_frac * n)
    return n - val - test, val, test


def random_split_indices(lengths: Sequence[int], seed: int) -> list[torch.Tensor]:
    """Index sets identical to ``torch.utils.data.random_split(range(n), lengths, Generator(seed))``.

    ``random_split`` draws ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))``
    and cuts it in order; S4 uses seed 42 for CIFAR (45k/5k) and Pathfinder (80/10/10).
    """
    n = sum(lengths)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    out, start = [], 0
    for k in lengths:
        out.append(perm[start:start + k])
        start += k
    return out

