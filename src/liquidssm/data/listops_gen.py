"""ListOps generator following the LRA procedure (Tay et al. 2021, ``listops.py``).

Chapter reproductions/01_lra_synthetic_data. Grammar: operators ``[MIN``, ``[MAX``, ``[MED``,
``[SM`` (sum mod 10) over digits 0-9, closed by ``]``. At each node draw ``r ~ U(0, 1)``
(``r = 1`` at ``max_depth``); ``r > VALUE_P = 0.25`` gives a leaf (uniform digit), otherwise an
operator (uniform) with ``k ~ UniformInt[2, max_args]`` children one level deeper. Trees are serialised with LRA's nested-pair brackets
(``( ( ( [MAX 2 ) 9 ) ] )``), kept if ``min_length < length < max_length`` tokens (op tokens,
digits and ``]``), deduplicated as a set, split in generation order into train/val/test and
written as ``basic_{split}.tsv`` with header ``Source<TAB>Target``.
Full LRA size: 96000/2000/2000 trees, 500 < length < 2000, max_depth 10, max_args 10.
"""

from __future__ import annotations

import csv
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from liquidssm._checks import check_int
from liquidssm.data._common import refuse_existing

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
END = "]"
VALUE_P = 0.25


@dataclass(frozen=True)
class Node:
    """An operator node: ``op`` and its children (``int`` leaves or nested nodes)."""

    op: str
    args: tuple[Node | int, ...]


Tree = Node | int


def generate_tree(rng: random.Random, depth: int = 1, max_depth: int = 10,
                  max_args: int = 10) -> tuple[Tree, int]:
    """One random tree and its token length (LRA's ``generate_tree`` rule)."""
    r = rng.random() if depth < max_depth else 1.0
    if r > VALUE_P:
        return rng.randint(0, 9), 1
    k = rng.randint(2, max_args)
    args, length = [], 2  # operator token and the closing bracket
    for _ in range(k):
        child, n = generate_tree(rng, depth + 1, max_depth, max_args)
        args.append(child)
        length += n
    return Node(rng.choice(OPERATORS), tuple(args)), length


def evaluate(tree: Tree) -> int:
    """Value of a tree: MIN, MAX, MED = ``int(numpy.median)`` (mean of the middle pair, truncated), SM = sum mod 10."""
    if isinstance(tree, int):
        return tree
    vals = sorted(evaluate(a) for a in tree.args)
    if tree.op == "[MIN":
        return vals[0]
    if tree.op == "[MAX":
        return vals[-1]
    if tree.op == "[SM":
        return sum(vals) % 10
    m = len(vals) // 2
    return vals[m] if len(vals) % 2 else int((vals[m - 1] + vals[m]) / 2)


def to_string(tree: Tree) -> str:
    """LRA serialisation: nested pairs ``((((op, a1), a2), ...), ']')`` each written ``( x y )``."""
    if isinstance(tree, int):
        return str(tree)
    s = tree.op
    for a in tree.args:
        s = f"( {s} {to_string(a)} )"
    return f"( {s} {END} )"


def generate_listops(out_dir: str | os.PathLike[str], n_train: int = 96000, n_val: int = 2000,
                     n_test: int = 2000, min_length: int = 500, max_length: int = 2000,
                     max_depth: int = 10, max_args: int = 10, seed: int = 0,
                     progress: bool = True, overwrite: bool = False) -> dict[str, int]:
    """Generate and write ``basic_{train,val,test}.tsv`` under ``out_dir``; returns split sizes.

    Deterministic for a given ``seed`` (Python's ``random.Random``). Shows a tqdm bar over the
    number of distinct trees when ``progress``. Existing ``basic_*.tsv`` files in ``out_dir``
    raise ``FileExistsError`` unless ``overwrite``; each file is written under a temporary name
    and renamed into place, so an interrupted run leaves no half-written split.
    """
    n_train = check_int(n_train, "n_train", minimum=1)
    n_val = check_int(n_val, "n_val", minimum=0)
    n_test = check_int(n_test, "n_test", minimum=0)
    check_int(max_args, "max_args", minimum=2)
    check_int(max_depth, "max_depth", minimum=1)
    check_int(seed, "seed")
    check_int(min_length, "min_length", minimum=0)
    check_int(max_length, "max_length", minimum=1)
    if not 0 <= min_length < max_length:
        raise ValueError(f"need 0 <= min_length < max_length, got {min_length}, {max_length}")
    out = Path(out_dir)
    targets = [out / f"basic_{split}.tsv" for split in ("train", "val", "test")]
    refuse_existing(targets, overwrite, "generate_listops", "--force (overwrite=True from Python)")
    total = n_train + n_val + n_test
    rng = random.Random(seed)
    seen: dict[str, int] = {}
    bar = tqdm(total=total, desc="ListOps trees", disable=not progress)
    attempts = 0
    while len(seen) < total:
        attempts += 1
        if attempts > 1000 * total + 100000:
            raise RuntimeError(f"could not find {total} distinct trees with {min_length} < length "
                               f"< {max_length} after {attempts} draws; widen the window")
        tree, length = generate_tree(rng, 1, max_depth, max_args)
        if not min_length < length < max_length:
            continue
        s = to_string(tree)
        if s not in seen:
            seen[s] = evaluate(tree)
            bar.update(1)
    bar.close()
    items = list(seen.items())
    out.mkdir(parents=True, exist_ok=True)
    splits = {"train": items[:n_train], "val": items[n_train:n_train + n_val],
              "test": items[n_train + n_val:]}
    staged = []
    try:
        for split, rows in splits.items():
            fd, tmp = tempfile.mkstemp(prefix=f".basic_{split}.", suffix=".tmp", dir=out)
            staged.append(Path(tmp))
            with open(fd, "w", encoding="utf-8", newline="") as f:
                w = csv.writer(f, delimiter="\t", lineterminator="\n")
                w.writerow(["Source", "Target"])
                w.writerows(rows)
        for tmp, target in zip(staged, targets, strict=True):
            os.replace(tmp, target)
    finally:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
    return {k: len(v) for k, v in splits.items()}


def parse(source: str) -> Tree:
    """Parse a serialised expression back into a tree (accepts LRA brackets or bare tokens)."""
    toks = source.replace("(", " ").replace(")", " ").split()
    pos = 0

    def node() -> Tree:
        nonlocal pos
        t = toks[pos]
        pos += 1
        if t.isdigit():
            return int(t)
        if t not in OPERATORS:
            raise ValueError(f"unexpected token {t!r} at position {pos - 1}")
        args = []
        while toks[pos] != END:
            args.append(node())
        pos += 1
        return Node(t, tuple(args))

    tree = node()
    if pos != len(toks):
        raise ValueError(f"trailing tokens after position {pos}")
    return tree
