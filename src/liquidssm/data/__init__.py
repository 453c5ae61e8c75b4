"""Datasets in their original release layouts, fixture writers and the LRA generators.

Chapter reproductions/01_lra_synthetic_data. Loaders (PyTorch ``Dataset`` classes):
:class:`~liquidssm.data.listops.ListOps`, :class:`~liquidssm.data.imdb.IMDB`,
:class:`~liquidssm.data.aan.AAN`, :class:`~liquidssm.data.cifar.CIFAR10Sequence`,
:class:`~liquidssm.data.pathfinder.PathFinder`,
:class:`~liquidssm.data.speech_commands.SpeechCommands`, :class:`~liquidssm.data.bidmc.BIDMC`,
:class:`~liquidssm.data.uea.UEA` (+ :func:`~liquidssm.data.uea.load_lrcssm_split`).
Generators: :mod:`liquidssm.data.listops_gen`, :mod:`liquidssm.data.pathfinder_gen`.
Each loader module owns its :class:`~liquidssm.data.spec.DatasetSpec` (``SPEC``: layout,
archives, checksums, fixture writer); :mod:`liquidssm.data.registry` collects them and is not
imported here. Batching of variable-length token data: :func:`pad_collate`,
:func:`pad_pair_collate`; of series with their lengths: :func:`stack_collate`. Data root:
``root=`` argument, else ``$LIQUIDSSM_DATA``, else ``<repo>/data/raw``
(:func:`liquidssm.paths.raw_data_dir`).
"""

from liquidssm.data._common import (
    ChecksumError,
    CorruptDataError,
    DatasetMissingError,
    data_root,
)
from liquidssm.data.collate import pad_collate, pad_pair_collate, stack_collate
from liquidssm.data.spec import DatasetSpec

__all__ = [
    "ChecksumError",
    "CorruptDataError",
    "DatasetMissingError",
    "DatasetSpec",
    "data_root",
    "pad_collate",
    "pad_pair_collate",
    "stack_collate",
]
