"""Datasets in their original release layouts, fixture writers and the LRA generators.

Chapter reproductions/01_lra_synthetic_data. Loaders (PyTorch ``Dataset`` classes):
:class:`~liquidssm.data.listops.ListOps`, :class:`~liquidssm.data.imdb.IMDB`,
:class:`~liquidssm.data.aan.AAN`, :class:`~liquidssm.data.cifar.CIFAR10Sequence`,
:class:`~liquidssm.data.pathfinder.PathFinder`,
:class:`~liquidssm.data.speech_commands.SpeechCommands`, :class:`~liquidssm.data.bidmc.BIDMC`,
:class:`~liquidssm.data.uea.UEA` (+ :func:`~liquidssm.data.uea.load_lrcssm_split`).
Generators: :mod:`liquidssm.data.listops_gen`, :mod:`liquidssm.data.pathfinder_gen`.
Data root: ``root=`` argument, else ``$LIQUIDSSM_DATA``, else ``<repo>/data/raw``.
"""

from liquidssm.data._common import (
    ChecksumError,
    CorruptDataError,
    DatasetMissingError,
    data_root,
)

__all__ = ["ChecksumError", "CorruptDataError", "DatasetMissingError", "data_root"]
