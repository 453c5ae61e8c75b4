"""LRA Retrieval (AAN) loader: ``new_aan_pairs.{train,eval,test}.tsv``, byte-level pairs.

Liquid-S4 Table 1 "AAN" (L = 4000 per document); chapter reproductions/01_lra_synthetic_data.
Release layout (``lra_release/tsv_data/``, copied to ``<data root>/aan/``): :data:`LAYOUT`, with
**no header** and five tab-separated fields ``label  input1_id  input2_id  text1  text2``; the
label is written as a float (``0.0``/``1.0``). Quoting is off: texts may contain ``"`` characters, so lines are split
on tabs only (never with a CSV quote parser). Registry entry: :data:`SPEC`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
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
from liquidssm.data.collate import pad_pair_collate
from liquidssm.data.spec import LRA_RELEASE, DatasetSpec

NAME = "aan"
SUBDIR = "aan"
SPLITS = {"train": "train", "val": "eval", "test": "test"}
LAYOUT = "  aan/new_aan_pairs.{train,eval,test}.tsv   (no header; label id1 id2 text1 text2)"


def read_tsv(path: Path) -> list[tuple[int, str, str, str, str]]:
    """Rows ``(label, id1, id2, text1, text2)``; any malformed line raises naming file and line.

    Lines are split at newline bytes only (texts may hold a bare carriage return) and an empty
    file is refused (:func:`~liquidssm.data._common.require_rows`).
    """
    rows = []
    for lineno, line in read_text_lines(path):
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) != 5:
            raise CorruptDataError(
                f"{path}:{lineno}: expected 5 tab-separated fields (label, id1, id2, text1, "
                f"text2), got {len(parts)}")
        try:
            lab = float(parts[0])
        except ValueError:
            raise CorruptDataError(f"{path}:{lineno}: label {parts[0]!r} is not a number") from None
        if lab not in (0.0, 1.0):
            raise CorruptDataError(f"{path}:{lineno}: label {parts[0]!r} is not 0 or 1")
        rows.append((int(lab), parts[1], parts[2], parts[3], parts[4]))
    require_rows(rows, path, "document pairs")
    return rows


class AAN(Dataset):
    """Document pairs as byte tokens: item ``(x1 (L1,), x2 (L2,), y)`` with ``L_i <= l_max``.

    Each text is split into characters, truncated to ``l_max - 1`` and ends with ``<eos>``; the
    vocabulary comes from train text1 + text2 (98 tokens on the full data). ``collate``
    (:func:`~liquidssm.data.collate.pad_pair_collate`) pads
    both documents to a common length and stacks them as ``(2B, L)`` (first all text1, then all
    text2), as S4's retrieval decoder expects.
    """

    def __init__(self, split: str = "train", root: str | os.PathLike[str] | None = None,
                 l_max: int = 4000, vocab: Vocab | None = None, min_freq: int = 1) -> None:
        check_choice(split, "split", tuple(SPLITS))
        self.l_max = check_int(l_max, "l_max", minimum=2)
        d = dataset_dir(SPEC, root)
        self.path = require_file(d / f"new_aan_pairs.{SPLITS[split]}.tsv", NAME)
        self.rows = read_tsv(self.path)
        if vocab is None:
            train = self.rows if split == "train" else read_tsv(
                require_file(d / "new_aan_pairs.train.tsv", NAME))
            vocab = Vocab.build((t for r in train for t in (list(r[3]), list(r[4]))), min_freq)
        self.vocab = vocab

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        lab, _, _, t1, t2 = self.rows[i]
        return (self.vocab.encode(list(t1), self.l_max), self.vocab.encode(list(t2), self.l_max),
                lab)

    #: ``(x (2B, L), y (B,), lengths (2B,))`` with both documents padded to one L.
    collate = staticmethod(pad_pair_collate)


#: the four topics of the fixture documents (:func:`write_fixture`), a word list each
FIXTURE_TOPICS = (
    ("parsing", "grammar", "treebank", "syntax", "dependency", "parser"),
    ("translation", "bilingual", "alignment", "phrase", "decoder", "bleu"),
    ("speech", "acoustic", "phoneme", "audio", "prosody", "voice"),
    ("semantic", "lexicon", "wordnet", "meaning", "sense", "frame"),
)
#: generic paper words shared by all topics, with quote characters as the release has
FIXTURE_PAPER_WORDS = ("we", "the", "a", "of", "in", "model", "results", "paper", "\"method\"", "it's",
                       "data", "show", "using", "on")


def _fixture_document(rng: np.random.Generator, topic: int, min_words: int, max_words: int,
                      topic_rate: float) -> str:
    """One fixture document: words of ``FIXTURE_TOPICS[topic]`` (probability ``topic_rate``) and paper words."""
    words = []
    for _ in range(int(rng.integers(min_words, max_words + 1))):
        pool = FIXTURE_TOPICS[topic] if rng.random() < topic_rate else FIXTURE_PAPER_WORDS
        words.append(str(rng.choice(pool)))
    return " ".join(words)


def write_fixture(root: str | os.PathLike[str], n_train: int = 24, n_val: int = 8,
                  n_test: int = 8, min_words: int = 10, max_words: int = 25,
                  topic_rate: float = 0.4, seed: int = 0) -> Path:
    """``new_aan_pairs.{train,eval,test}.tsv`` whose label says whether two documents share a topic.

    Each document mixes words of one of four topics (:data:`FIXTURE_TOPICS`, probability
    ``topic_rate``) with generic paper words (:data:`FIXTURE_PAPER_WORDS`, with quote
    characters, as the release has). A pair is labelled 1 ("cites") when both documents come
    from the same topic, else 0; labels alternate, so the classes are balanced. Written in the
    release's format: no header, five tab-separated fields, the label as a float. The defaults
    are the tiny stand-in of ``liquidssm data fixtures aan``; the Liquid-S4 smoke tasks pass
    their sizes. Returns ``<root>/aan``.
    """
    for name, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        check_int(n, name, minimum=1)
    check_int(min_words, "min_words", minimum=1)
    check_int(max_words, "max_words", minimum=min_words)
    rng = np.random.default_rng(seed)
    out = Path(root) / SUBDIR
    out.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("eval", n_val), ("test", n_test)):
        with open(out / f"new_aan_pairs.{split}.tsv", "w", encoding="utf-8", newline="") as f:
            for i in range(n):
                label = i % 2
                t1 = int(rng.integers(len(FIXTURE_TOPICS)))
                t2 = t1 if label else int((t1 + rng.integers(1, len(FIXTURE_TOPICS))) % len(FIXTURE_TOPICS))
                d1 = _fixture_document(rng, t1, min_words, max_words, topic_rate)
                d2 = _fixture_document(rng, t2, min_words, max_words, topic_rate)
                f.write(f"{float(label)}\t{split}-{i}-a\t{split}-{i}-b\t{d1}\t{d2}\n")
    return out


SPEC = DatasetSpec(
    name=NAME, subdir=SUBDIR, layout=LAYOUT, papers="Liquid-S4 Table 1 (AAN / Retrieval)",
    required=tuple(f"{SUBDIR}/new_aan_pairs.{s}.tsv" for s in SPLITS.values()),
    archives=(LRA_RELEASE,), marker="new_aan_pairs.train.tsv", target=SUBDIR, move="parent",
    fixture=write_fixture,
)
