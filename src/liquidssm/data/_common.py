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
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    "data_files",
    "sha256_file",
    "md5_file",
    "Archive",
    "Vocab",
    "split_lengths_like_s4",
    "random_split_indices",
    "read_text_lines",
    "require_rows",
    "require_split",
    "refuse_existing",
    "has_content",
    "fresh_dir_beside",
    "replace_path",
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
    if path.is_dir():
        raise DatasetMissingError(f"dataset {name!r}: {path} is a directory, expected a file there; run "
                                  "`liquidssm data status` to see the expected layout")
    if not path.is_file():
        raise DatasetMissingError(
            f"dataset {name!r}: missing file {path}; run `liquidssm data status` to see the "
            f"expected layout and `liquidssm data download {name}` to fetch it"
        )
    return path


def data_files(folder: Path, matches: Callable[[str], bool], expected: str, dataset: str) -> list[Path]:
    """The files of ``folder`` whose names ``matches``, sorted; every other entry is skipped with a warning.

    One policy for the loaders that list a folder of data files (IMDB reviews, Pathfinder metadata,
    Speech Commands clips): a stray entry -- a directory standing where a data file should be, a
    file of another name -- is logged on ``liquidssm.data`` by name (``expected`` says which names
    are read) and skipped; an empty result is for the caller to refuse.
    """
    found = []
    for p in sorted(folder.iterdir()):
        if matches(p.name) and p.is_file():
            found.append(p)
            continue
        why = "a directory" if p.is_dir() else "not a regular file" if matches(p.name) else "another name"
        log.warning("%s: ignoring %s (%s; expected files named %s)", dataset, p, why, expected)
    return found


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
    """S4's split sizes: ``val = int(val_frac n)``, ``test = int(test_frac n)``, train the rest.

    The fractions must be numbers in ``[0, 1)`` with ``val_frac + test_frac < 1``: larger ones
    would leave a negative training count and make the splits overlap.
    """
    for name, frac in (("val_frac", val_frac), ("test_frac", test_frac)):
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac < 1:
            raise ValueError(f"{name}: expected a fraction in [0, 1), got {frac!r}")
    if val_frac + test_frac >= 1:
        raise ValueError(f"val_frac + test_frac: expected < 1 so that training keeps some items, got "
                         f"{val_frac} + {test_frac} = {val_frac + test_frac}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n: expected a number of items >= 0, got {n!r}")
    val, test = int(val_frac * n), int(test_frac * n)
    return n - val - test, val, test


def require_split(size: int, split: str, total: int, source: object) -> None:
    """Raise :class:`CorruptDataError` when the selected ``split`` of ``total`` items is empty."""
    if size == 0:
        raise CorruptDataError(f"{source}: split {split!r} is empty ({total} items in all); the dataset is too "
                               "small for this split, or the split fractions are")


def read_text_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """``(line number, line without its newline)`` of a text file, split at newline bytes only.

    Bytes that do not decode raise :class:`CorruptDataError` naming the file, line and column;
    a directory in place of the file raises :class:`DatasetMissingError`.
    """
    path = Path(path)
    if path.is_dir():
        raise DatasetMissingError(f"{path}: is a directory, expected a {encoding} text file")
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as e:
                raise CorruptDataError(f"{path}:{lineno}: not valid {encoding} text (byte {raw[e.start]:#04x} "
                                       f"at column {e.start + 1})") from None
            yield lineno, text.rstrip("\r\n")


def require_rows(rows: Sequence[object], path: Path, what: str) -> None:
    """Raise :class:`CorruptDataError` when a data file yielded no ``what`` (empty or header only)."""
    if len(rows) == 0:
        raise CorruptDataError(f"{path}: no {what} in the file (it is empty or holds only a header); an "
                               "interrupted download or copy? Fetch the dataset again")


def has_content(path: Path) -> bool:
    """True for an existing file, or a directory that holds anything."""
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def refuse_existing(paths: Iterable[Path], force: bool, what: str, how: str) -> None:
    """Raise ``FileExistsError`` if any of ``paths`` holds data, unless ``force``.

    ``what`` names the operation, ``how`` the explicit opt-in (e.g. ``"--force"``); nothing that
    exists on disk is replaced unless the caller asked for it.
    """
    found = [p for p in paths if has_content(p)]
    if found and not force:
        listing = ", ".join(str(p) for p in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise FileExistsError(f"{what}: {listing} already exist(s) and would be replaced; choose another "
                              f"output folder or pass {how} to replace them")


def fresh_dir_beside(final: Path) -> Path:
    """A new empty hidden folder next to ``final`` (same file system, so a rename can move it there)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))


def replace_path(new: Path, final: Path) -> None:
    """Move ``new`` to ``final``, replacing what is there by renames (atomic for a file).

    A directory is swapped by two renames: the old one is moved aside, the new one into place,
    then the old one is deleted; if the second rename fails the old one is put back.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    if not final.exists() and not final.is_symlink():
        os.replace(new, final)
        return
    if final.is_file() and new.is_file():
        os.replace(new, final)
        return
    aside = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(final, aside)
    try:
        os.replace(new, final)
    except OSError:
        os.replace(aside, final)
        raise
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside)
    else:
        aside.unlink()


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

