"""LRA Text (IMDB) loader from the ``aclImdb`` release layout, character level.

Liquid-S4 Table 1 "IMDB"; chapter reproductions/01_lra_synthetic_data. The S4/Liquid-S4 config
uses ``l_max = 4096`` (4095 characters + ``<eos>``) although the paper's Table 1 header says 2048.
Release layout (``aclImdb_v1.tar.gz``, unpacked to ``<data root>/imdb/``): :data:`LAYOUT`;
registry entry: :data:`SPEC`.
No lowercasing; vocabulary = characters seen at least ``min_freq`` (15) times in train, plus
``<pad>``, ``<unk>``, ``<eos>``. No validation split (LRA evaluates on test).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from liquidssm._checks import check_choice, check_int
from liquidssm.data._common import (
    Archive,
    CorruptDataError,
    DatasetMissingError,
    Vocab,
    dataset_dir,
    log,
)
from liquidssm.data.spec import DatasetSpec

NAME = "imdb"
SUBDIR = "imdb"
SPLITS = ("train", "test")
LAYOUT = "  imdb/aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt   (one review per file, UTF-8)"
ARCHIVE = Archive("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                  "aclImdb_v1.tar.gz")
_FILE = re.compile(r"^(\d+)_(\d+)\.txt$")


def list_reviews(base: Path, split: str) -> list[tuple[Path, int]]:
    """``(path, label)`` for ``aclImdb/<split>/{neg,pos}``; label 1 = pos. Sorted by (label, id).

    Both polarity folders must hold reviews (an empty one raises :class:`CorruptDataError`).
    """
    out = []
    for lab, sub in ((0, "neg"), (1, "pos")):
        d = base / "aclImdb" / split / sub
        if not d.is_dir():
            raise DatasetMissingError(
                f"dataset 'imdb': missing directory {d} (expected aclImdb/{split}/{{pos,neg}}/"
                f"<id>_<rating>.txt); run `liquidssm data download imdb`")
        files = []
        for p in d.iterdir():
            m = _FILE.match(p.name)
            if not m or not p.is_file():
                log.warning("imdb: ignoring %s (not a file named <id>_<rating>.txt)", p)
                continue
            files.append((int(m.group(1)), p))
        if not files:
            raise CorruptDataError(f"dataset 'imdb': {d} holds no <id>_<rating>.txt reviews, so the {split} split "
                                   f"would have a single class; an interrupted download or copy? Fetch it again")
        out += [(p, lab) for _, p in sorted(files)]
    return out


def read_review(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CorruptDataError(f"{path}: not valid UTF-8 ({e})") from None


class IMDB(Dataset):
    """Reviews as character ids: item ``(x (L_i,) int64, y int)``, ``L_i <= l_max``."""

    def __init__(self, split: str = "train", root: str | os.PathLike[str] | None = None,
                 l_max: int = 4096, min_freq: int = 15, vocab: Vocab | None = None) -> None:
        check_choice(split, "split", SPLITS)
        self.l_max = check_int(l_max, "l_max", minimum=2)
        base = dataset_dir(SPEC, root)
        self.items = list_reviews(base, split)
        self.texts = [read_review(p) for p, _ in self.items]
        if vocab is None:
            train = self.texts if split == "train" else [
                read_review(p) for p, _ in list_reviews(base, "train")]
            vocab = Vocab.build((list(t) for t in train), min_freq=min_freq)
        self.vocab = vocab

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.vocab.encode(list(self.texts[i]), self.l_max), self.items[i][1]


#: neutral words of the fixture reviews (:func:`write_fixture`)
FIXTURE_FILLER = ("the", "movie", "was", "and", "a", "of", "plot", "scene", "actor", "story", "film",
                  "some", "really", "this", "with", "cast", "music", "ending", "director", "it")
#: sentiment words of the fixture reviews; a review mostly draws those of its own polarity
FIXTURE_POSITIVE = ("great", "good", "superb", "wonderful", "loved", "brilliant", "fun", "moving")
FIXTURE_NEGATIVE = ("awful", "bad", "boring", "terrible", "hated", "poor", "dull", "weak")
#: the same closing line of every fixture review: the release's ``<br />`` markup and non-ASCII
#: text, which the loader keeps as characters (no cleaning, no lowercasing)
FIXTURE_CLOSING = "<br /><br />Seen at a café — twice."


def write_fixture(root: str | os.PathLike[str], n_train: int = 8, n_test: int = 8,
                  min_words: int = 15, max_words: int = 40, sentiment_rate: float = 0.3,
                  agreement: float = 0.8, seed: int = 0) -> Path:
    """Reviews in the ``aclImdb`` layout whose words depend on the label (``n_*`` per polarity).

    Each word is a sentiment word with probability ``sentiment_rate``, else a neutral filler
    word (:data:`FIXTURE_FILLER`); a sentiment word comes from the review's own polarity
    (:data:`FIXTURE_POSITIVE`, :data:`FIXTURE_NEGATIVE`) with probability ``agreement``, else
    from the other one. So the label is learnable from the characters, but a review with few
    sentiment words is ambiguous: perfect accuracy is not expected. Every review ends with
    :data:`FIXTURE_CLOSING` (release-like markup and non-ASCII characters, the same for both
    labels). Files are named as in the release (``<id>_<rating>.txt``, ratings 7-10 positive,
    1-4 negative). The defaults are the tiny stand-in of ``liquidssm data fixtures imdb``; the
    Liquid-S4 smoke tasks pass their sizes. Returns ``<root>/imdb``.
    """
    check_int(n_train, "n_train", minimum=1)
    check_int(n_test, "n_test", minimum=1)
    check_int(min_words, "min_words", minimum=1)
    check_int(max_words, "max_words", minimum=min_words)
    rng = np.random.default_rng(seed)
    out = Path(root) / SUBDIR / "aclImdb"
    for split, n in (("train", n_train), ("test", n_test)):
        for sub, label, ratings in (("pos", 1, (7, 10)), ("neg", 0, (1, 4))):
            d = out / split / sub
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                words = []
                for _ in range(int(rng.integers(min_words, max_words + 1))):
                    if rng.random() < sentiment_rate:
                        own = rng.random() < agreement
                        pool = FIXTURE_POSITIVE if (label == 1) == own else FIXTURE_NEGATIVE
                    else:
                        pool = FIXTURE_FILLER
                    words.append(str(rng.choice(pool)))
                text = " ".join(words).capitalize() + "." + FIXTURE_CLOSING
                rating = int(rng.integers(ratings[0], ratings[1] + 1))
                (d / f"{i}_{rating}.txt").write_text(text, encoding="utf-8")
    return out.parent


SPEC = DatasetSpec(
    name=NAME, subdir=SUBDIR, layout=LAYOUT, papers="Liquid-S4 Table 1 (IMDB / Text)",
    required=tuple(f"{SUBDIR}/aclImdb/{s}/{p}" for s in SPLITS for p in ("pos", "neg")),
    archives=(ARCHIVE,), marker="aclImdb", target=f"{SUBDIR}/aclImdb", fixture=write_fixture,
)
