"""The datasets of the book, collected from their loader modules: ``DATASETS[name] -> DatasetSpec``.

Used by ``liquidssm data status|download|prepare|fixtures`` (:mod:`liquidssm.data.cli`);
chapter reproductions/01_lra_synthetic_data. Each loader module owns its
:class:`~liquidssm.data.spec.DatasetSpec` (layout, archives, checksums, fixture writer) as
``SPEC``; this module only gathers them, and no loader imports it.

Checksums: we record a published checksum only where we know it for certain (CIFAR-10's MD5 from
its web page). Every other archive has ``None`` and is reported as "unverified" -- fill in the
SHA-256 after a trusted download (``liquidssm data prepare`` prints it).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from liquidssm.data import (
    aan,
    bidmc,
    cifar,
    imdb,
    listops,
    pathfinder,
    ppg_dalia,
    speech_commands,
    uea,
)
from liquidssm.data.spec import DatasetSpec

__all__ = ["DATASETS", "DatasetSpec", "get", "ensure_fixtures"]

#: Every dataset by name, in the order ``liquidssm data status`` lists them.
DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (
    listops.SPEC, imdb.SPEC, aan.SPEC, cifar.SPEC, pathfinder.SPEC, pathfinder.PATHX_SPEC,
    speech_commands.SPEC, bidmc.SPEC, uea.SPEC, uea.LRCSSM_SPLITS_SPEC, ppg_dalia.SPEC,
)}


def get(name: str) -> DatasetSpec:
    """The spec called ``name``; ``KeyError`` listing the valid names otherwise."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return DATASETS[name]


def ensure_fixtures(names: Iterable[str] | None = None,
                    root: str | os.PathLike[str] | None = None) -> Path:
    """Write the tiny fixture datasets ``names`` (all by default) under ``root`` and return it.

    For smoke profiles of the reproduction chapters: ``root`` defaults to a fresh temporary
    directory; datasets already present there are left alone. Pass the result as ``root=`` to
    the loaders (or set ``LIQUIDSSM_DATA``). A dataset folder that exists but is incomplete is
    not overwritten (:meth:`~liquidssm.data.spec.DatasetSpec.write_fixture` raises).
    """
    specs = [get(n) for n in (DATASETS if names is None else names)]
    out = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="liquidssm_fixtures_"))
    for spec in specs:
        if spec.missing(out) and spec.fixture is not None:
            spec.write_fixture(out)
    return out
