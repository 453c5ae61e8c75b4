"""What the book knows about one dataset: :class:`DatasetSpec`, owned by its loader module.

Chapter reproductions/01_lra_synthetic_data. Every loader module (``listops``, ``imdb``, ...)
defines a module-level ``SPEC`` next to the code that reads the layout;
:mod:`liquidssm.data.registry` only collects them for ``liquidssm data status|download|
prepare|fixtures``. This module imports no loader, so the loaders can import it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from liquidssm.data._common import Archive, data_root, refuse_existing, replace_path

__all__ = ["DatasetSpec", "LRA_RELEASE"]

#: The Long Range Arena release: ListOps, AAN (Retrieval) and Pathfinder share this archive.
LRA_RELEASE = Archive(
    url="https://storage.googleapis.com/long-range-arena/lra_release.gz",
    filename="lra_release.gz",
    note="gzipped tar (about 7.7 GB) holding listops-1000/, tsv_data/ and pathfinder{32,64,128,256}/",
)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: where it lives under the data root, what it looks like and how to get it.

    Attributes:
        name: the name used on the command line (``liquidssm data status NAME``).
        subdir: folder under the data root that the loader opens.
        layout: the release layout as indented text, shown in errors and by ``data status``.
        required: paths relative to the data root that must exist for the dataset to be present.
        archives: official archives (URL, file name, published checksum if known).
        marker: a file or folder name located inside the unpacked archive(s) by ``prepare``.
        target: where ``prepare`` puts what it found, relative to the data root.
        move: ``"dir"`` moves the marker folder to ``target``; ``"parent"`` moves the marker's
            siblings into ``target``; ``"files"`` moves every ``.ts`` file into ``target``.
        fixture: ``fixture(root) -> Path`` writes a tiny stand-in in the same layout.
        papers: the paper tables that use the dataset.
    """

    name: str
    subdir: str
    layout: str
    required: tuple[str, ...]
    archives: tuple[Archive, ...]
    marker: str
    target: str
    move: str = "dir"
    fixture: Callable[..., Path] | None = None
    papers: str = ""

    def __post_init__(self) -> None:
        if self.move not in ("dir", "parent", "files"):
            raise ValueError(f"move must be 'dir', 'parent' or 'files', got {self.move!r}")
        if not self.required:
            raise ValueError(f"dataset {self.name!r}: required must name at least one path")

    def missing(self, root: str | os.PathLike[str] | None = None) -> list[Path]:
        """The ``required`` paths absent under the data root (empty list: present)."""
        base = data_root(root)
        return [base / r for r in self.required if not (base / r).exists()]

    def write_fixture(self, root: str | os.PathLike[str], force: bool = False) -> Path:
        """Write the tiny stand-in under ``<root>/<subdir>`` and return that folder, never over data.

        If ``<root>/<subdir>`` already holds anything, raise ``FileExistsError`` unless ``force``;
        with ``force`` the folder is replaced as a whole. The fixture is written into a hidden
        folder of ``root`` first and renamed into place, so an interrupted call leaves nothing
        half-written (used by ``liquidssm data fixtures`` and :func:`~liquidssm.data.registry.ensure_fixtures`).
        """
        if self.fixture is None:
            raise ValueError(f"dataset {self.name!r} has no fixture writer")
        out = Path(root)
        target = out / self.subdir
        refuse_existing([target], force, f"fixtures {self.name}", "--force (force=True from Python)")
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".fixture-{self.name}-", dir=out))
        try:
            self.fixture(tmp)
            replace_path(tmp / self.subdir, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target
