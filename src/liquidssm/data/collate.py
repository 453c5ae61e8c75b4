"""Batch collation for variable-length token datasets (ListOps, IMDB, AAN) and series (UEA, BIDMC).

Chapter reproductions/01_lra_synthetic_data; the training engine passes these as
``collate_fn``. Fixed-length datasets (CIFAR, Pathfinder, Speech Commands, BIDMC, UEA) need
none: PyTorch's default collation stacks them. Lengths come back so that a model can mask the
padding or pool over the real tokens only; :func:`stack_collate` does the same for series
datasets built with ``return_lengths=True``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["pad_sequences", "pad_collate", "pad_pair_collate", "stack_collate"]


def pad_sequences(seqs: Sequence[torch.Tensor], pad: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack 1-D int64 sequences, right-padded with ``pad``: ``(x (B, L_max), lengths (B,))``."""
    if len(seqs) == 0:
        raise ValueError("cannot collate an empty batch")
    lengths = torch.tensor([len(s) for s in seqs])
    x = torch.full((len(seqs), int(lengths.max())), pad, dtype=torch.long)
    for i, seq in enumerate(seqs):
        x[i, : len(seq)] = seq
    return x, lengths


def pad_collate(batch: Sequence[tuple[torch.Tensor, int]], pad: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad token sequences to the batch maximum: returns ``(x (B, L), y (B,), lengths (B,))``.

    ``batch`` holds ``(x (L_i,) int64, y int)`` items as :class:`~liquidssm.data.listops.ListOps`
    and :class:`~liquidssm.data.imdb.IMDB` return them.
    """
    x, lengths = pad_sequences([seq for seq, _ in batch], pad)
    y = torch.tensor([int(t) for _, t in batch])
    return x, y, lengths


def pad_pair_collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor, int]], pad: int = 0
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Retrieval pairs ``(x1, x2, y)`` as ``(x (2B, L), y (B,), lengths (2B,))``.

    Both documents are padded to one ``L`` and stacked first all ``x1`` then all ``x2``, as S4's
    retrieval decoder expects (:class:`~liquidssm.data.aan.AAN`).
    """
    x, lengths = pad_sequences([b[0] for b in batch] + [b[1] for b in batch], pad)
    return x, torch.tensor([b[2] for b in batch]), lengths


def stack_collate(batch: Sequence[tuple]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Equal-shape items ``(x, y)`` or ``(x, y, length)`` as ``(x (B, T, C), y (B, ...), lengths (B,) | None)``.

    For :class:`~liquidssm.data.uea.UEA` and :class:`~liquidssm.data.bidmc.BIDMC`: items built
    with ``return_lengths=True`` carry the series length (zero padding after it), the others
    give ``lengths=None`` (every series has the full length).
    """
    if len(batch) == 0:
        raise ValueError("cannot collate an empty batch")
    sizes = {len(b) for b in batch}
    if sizes not in ({2}, {3}):
        raise ValueError(f"batch: expected items (x, y) or (x, y, length), got item sizes {sorted(sizes)}")
    x = torch.stack([b[0] for b in batch])
    y = torch.stack([torch.as_tensor(b[1]) for b in batch])
    lengths = torch.tensor([int(b[2]) for b in batch]) if sizes == {3} else None
    return x, y, lengths
