"""LRA text tasks: ListOps (loader + generator), AAN, IMDB -- on fixtures only, no network."""

from __future__ import annotations

import statistics

import pytest
import torch

from liquidssm.data import (
    CorruptDataError,
    DatasetMissingError,
    aan,
    imdb,
    listops,
    listops_gen,
    pad_collate,
)
from liquidssm.data._common import Vocab


def _independent_eval(source: str) -> int:
    """Stack evaluation over S4 tokens, written separately from listops_gen.evaluate."""
    stack: list[list] = []
    for tok in listops.tokenize(source):
        if tok.startswith("["):
            stack.append([tok])
        elif tok == "X":
            op, *args = stack.pop()
            val = {"[MIN": min, "[MAX": max, "[SM": lambda a: sum(a) % 10,
                   "[MED": lambda a: int(statistics.median(a))}[op](args)
            if not stack:
                return val
            stack[-1].append(val)
        else:
            stack[-1].append(int(tok))
    raise AssertionError("unbalanced expression")


def test_tokenizer_matches_s4():
    assert listops.tokenize("( ( ( [MAX 2 ) 9 ) ] )") == ["[MAX", "2", "9", "X"]
    t = listops_gen.Node("[MAX", (2, 9))
    assert listops_gen.to_string(t) == "( ( ( [MAX 2 ) 9 ) ] )"


def test_vocab_specials_and_order():
    v = Vocab.build([["b", "a", "b"], ["c", "b", "a"]])
    assert v.itos == ["<pad>", "<unk>", "<eos>", "b", "a", "c"]
    assert v.encode(["a", "zz", "b"], l_max=3).tolist() == [4, 1, 2]  # truncated to l_max-1, <eos>
    assert len(Vocab.build([["a"], ["b"], ["b"]], min_freq=2)) == 4
    assert Vocab.build([["z", "y", "x", "y"]]).itos[3:] == ["y", "x", "z"]  # ties: lexicographic


def test_generator_labels_lengths_dedup_determinism(tmp_path):
    sizes = listops_gen.generate_listops(tmp_path / "a", n_train=40, n_val=5, n_test=5,
                                         min_length=10, max_length=40, max_depth=5,
                                         max_args=5, seed=3, progress=False)
    assert sizes == {"train": 40, "val": 5, "test": 5}
    listops_gen.generate_listops(tmp_path / "b", n_train=40, n_val=5, n_test=5, min_length=10,
                                 max_length=40, max_depth=5, max_args=5, seed=3, progress=False)
    for s in ("train", "val", "test"):
        a = (tmp_path / "a" / f"basic_{s}.tsv").read_text()
        assert a == (tmp_path / "b" / f"basic_{s}.tsv").read_text()
        assert a.startswith("Source\tTarget\n")
    rows = [r for s in ("train", "val", "test")
            for r in listops.read_tsv(tmp_path / "a" / f"basic_{s}.tsv")]
    assert len({src for src, _ in rows}) == 50  # distinct trees
    for src, lab in rows:
        assert _independent_eval(src) == lab
        n = len(listops.tokenize(src))  # op tokens + digits + X == LRA length
        assert 10 < n < 40
        assert listops_gen.evaluate(listops_gen.parse(src)) == lab
    with pytest.raises(ValueError, match="min_length < max_length"):
        listops_gen.generate_listops(tmp_path / "c", n_train=1, min_length=5, max_length=5)


def test_median_rule_truncates_mean_of_middle_pair():
    assert listops_gen.evaluate(listops_gen.Node("[MED", (1, 2, 4, 9))) == 3
    assert listops_gen.evaluate(listops_gen.Node("[SM", (9, 9, 5))) == 3


def test_listops_loader_and_collate(tmp_path):
    listops.write_fixture(tmp_path)
    tr = listops.ListOps("train", root=tmp_path)
    te = listops.ListOps("test", root=tmp_path, l_max=4)
    assert len(tr) == 32 and len(te) == 8 and te.vocab.itos == tr.vocab.itos
    x, y = te[0]
    assert x.dtype == torch.long and len(x) <= 4 and x[-1] == tr.vocab.stoi["<eos>"]
    xb, yb, lengths = pad_collate([tr[i] for i in range(4)])
    assert xb.shape == (4, int(lengths.max())) and yb.shape == (4,)
    assert (xb[0, lengths[0]:] == 0).all()


def test_listops_errors(tmp_path):
    with pytest.raises(DatasetMissingError, match=r"(?s)expected directory .*listops.*expected layout:.*basic_\{train.*liquidssm data download listops"):
        listops.ListOps("train", root=tmp_path)
    d = listops.write_fixture(tmp_path)
    p = d / "basic_val.tsv"
    p.write_text("Source\tTarget\n( [MAX 1 ] )\t1\n( [MAX 1 ] )\t1\textra\n")
    with pytest.raises(CorruptDataError, match=r"basic_val.tsv:3: expected 2"):
        listops.ListOps("val", root=tmp_path)
    p.write_text("Source\tTarget\nx\t12\n")
    with pytest.raises(CorruptDataError, match=r"basic_val.tsv:2: label 12"):
        listops.ListOps("val", root=tmp_path)
    p.write_text("src\ttgt\n")
    with pytest.raises(CorruptDataError, match="header"):
        listops.ListOps("val", root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        listops.ListOps("dev", root=tmp_path)


def test_aan_quotes_pairs_and_errors(tmp_path):
    d = aan.write_fixture(tmp_path)
    ds = aan.AAN("train", root=tmp_path, l_max=30)
    assert '"' in "".join(r[3] for r in ds.rows)  # quotes survive (quoting off)
    x, y, lengths = aan.AAN.collate([ds[0], ds[1]])
    assert x.shape[0] == 4 and lengths.shape == (4,) and y.tolist() == [0, 1]
    assert aan.AAN("test", root=tmp_path).vocab.itos == aan.AAN("train", root=tmp_path).vocab.itos
    (d / "new_aan_pairs.eval.tsv").write_text("1.0\ta\tb\ttext one\n")
    with pytest.raises(CorruptDataError, match=r"new_aan_pairs.eval.tsv:1: expected 5"):
        aan.AAN("val", root=tmp_path)
    (d / "new_aan_pairs.eval.tsv").write_text("0.5\ta\tb\tt1\tt2\n")
    with pytest.raises(CorruptDataError, match="not 0 or 1"):
        aan.AAN("val", root=tmp_path)


def test_imdb_layout_and_errors(tmp_path):
    imdb.write_fixture(tmp_path)
    tr = imdb.IMDB("train", root=tmp_path, min_freq=1, l_max=4096)
    assert len(tr) == 16 and {lab for _, lab in tr.items} == {0, 1}
    x, _ = tr[0]
    assert x[-1] == tr.vocab.stoi["<eos>"] and "é" in tr.vocab.stoi  # no lowercasing, unicode kept
    strict = imdb.IMDB("train", root=tmp_path, min_freq=100)
    assert len(strict.vocab) < len(tr.vocab)
    bad = tmp_path / "imdb" / "aclImdb" / "test" / "pos" / "99_9.txt"
    bad.write_bytes(b"\xff\xfe bad")
    with pytest.raises(CorruptDataError, match="99_9.txt: not valid UTF-8"):
        imdb.IMDB("test", root=tmp_path, min_freq=1)
