"""LRA ListOps loader (``basic_{train,val,test}.tsv``) with S4's tokenizer and vocabulary.

Liquid-S4 Table 1 "ListOps" (L = 2048); chapter reproductions/01_lra_synthetic_data.
Release layout (``lra_release/listops-1000/``, copied to ``<data root>/listops/``): :data:`LAYOUT`;
registry entry: :data:`SPEC`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from liquidssm._checks import check_choice, check_int
from liquidssm.data._common import (
    CorruptDataError,
    Vocab,
    dataset_dir,
    read_text_lines,
    require_file,
    require_rows,
)
from liquidssm.data.listops_gen import generate_listops
from liquidssm.data.spec import LRA_RELEASE, DatasetSpec

NAME = "listops"
SUBDIR = "listops"
SPLITS = ("train", "val", "test")
N_CLASSES = 10
LAYOUT = ("  listops/basic_{train,val,test}.tsv   (TSV, header Source<TAB>Target, "
          "then one expression and label per line)")


def tokenize(source: str) -> list[str]:
    """S4's ``listops_tokenizer``: drop ``(`` and ``)``, map ``]`` to ``X``, split on whitespace."""
    return source.translate({ord("("): None, ord(")"): None, ord("]"): "X"}).split()


def read_tsv(path: Path) -> list[tuple[str, int]]:
    """Parse one ListOps TSV strictly: header ``Source\\tTarget``, two fields, label 0..9, >= 1 row.

    Every error names the file and line (undecodable bytes included, :func:`read_text_lines`).
    """
    rows: list[tuple[str, int]] = []
    for lineno, line in read_text_lines(path):
        if lineno == 1:
            if line != "Source\tTarget":
                raise CorruptDataError(f"{path}:1: expected header 'Source<TAB>Target', got {line!r}")
            continue
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise CorruptDataError(f"{path}:{lineno}: expected 2 tab-separated fields, got {len(parts)}")
        src, tgt = parts
        try:
            label = int(tgt)
        except ValueError:
            raise CorruptDataError(f"{path}:{lineno}: label {tgt!r} is not an integer") from None
        if not 0 <= label < N_CLASSES:
            raise CorruptDataError(f"{path}:{lineno}: label {label} outside 0..9")
        rows.append((src, label))
    require_rows(rows, path, "expressions after the header 'Source<TAB>Target'")
    return rows


class ListOps(Dataset):
    """ListOps split as token ids: item ``(x (L_i,) int64, y int)`` with ``L_i <= l_max``.

    Sequences are truncated to ``l_max - 1`` tokens and end with ``<eos>`` (S4). The vocabulary
    is built from the training split (specials + 16 tokens = size 18 on the full data);
    ``vocab`` may be passed to share one across splits. Pad batches with
    :func:`liquidssm.data.pad_collate`.
    """

    def __init__(self, split: str = "train", root: str | os.PathLike[str] | None = None,
                 l_max: int = 2048, vocab: Vocab | None = None) -> None:
        self.split = check_choice(split, "split", SPLITS)
        self.l_max = check_int(l_max, "l_max", minimum=2)
        d = dataset_dir(SPEC, root)
        self.path = require_file(d / f"basic_{split}.tsv", NAME)
        rows = read_tsv(self.path)
        if vocab is None:
            train = rows if split == "train" else read_tsv(require_file(d / "basic_train.tsv", NAME))
            vocab = Vocab.build(tokenize(s) for s, _ in train)
        self.vocab = vocab
        self.sources = [s for s, _ in rows]
        self.labels = torch.tensor([y for _, y in rows], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.vocab.encode(tokenize(self.sources[i]), self.l_max), int(self.labels[i])


def write_fixture(root: str | os.PathLike[str], n_train: int = 32, n_val: int = 8,
                  n_test: int = 8, seed: int = 0) -> Path:
    """Write a tiny ListOps in the release layout under ``<root>/listops`` (generated trees)."""
    out = Path(root) / SUBDIR
    generate_listops(out, n_train=n_train, n_val=n_val, n_test=n_test, min_length=5,
                     max_length=60, max_depth=4, max_args=4, seed=seed, progress=False)
    return out


SPEC = DatasetSpec(
    name=NAME, subdir=SUBDIR, layout=LAYOUT, papers="Liquid-S4 Table 1 (ListOps)",
    required=tuple(f"{SUBDIR}/basic_{s}.tsv" for s in SPLITS),
    archives=(LRA_RELEASE,), marker="basic_train.tsv", target=SUBDIR, move="parent",
    fixture=write_fixture,
)
