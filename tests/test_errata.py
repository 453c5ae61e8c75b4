"""liquidssm.errata: the one file the errata page and the chapters read."""

from __future__ import annotations

import pytest

from liquidssm import errata


def test_the_file_loads_and_is_valid():
    table = errata.load()
    assert list(table.columns) == list(errata.COLUMNS[1:]) and table.index.name == "id"
    assert set(table.paper) <= set(errata.PAPERS) and len(table) >= 10
    for fid in ("ls4-eq10-u0u2", "ls4-prop1-scope", "ls4-alg1-pb", "lrcssm-lemma1-abs", "lrcssm-thm1-premise",
                "ls4-table1-avg", "ls4-pathx-text", "ls4-cifar-gain", "lrcssm-motor", "ls4-abstract-params",
                "lrcssm-abstract-forecasting"):
        assert fid in table.index
    # within the rounding of the printed entries: checked on the errata page, not errata
    assert {"lrcssm-table1-se", "lrcssm-table2-lstm"}.isdisjoint(table.index)


def test_entry_and_note():
    row = errata.entry("ls4-pathx-text")
    assert (row["printed"], row["correct"]) == ("96.54", "96.66")
    note = errata.note("ls4-pathx-text")
    assert "ls4-pathx-text" in note and "{doc}`/book/appendix/21_errata`" in note
    with pytest.raises(KeyError, match="known"):
        errata.entry("no-such-finding")


def test_markdown_table_links_every_row():
    table = errata.load()
    md = errata.markdown_table(table)
    body = md.splitlines()[2:]
    assert len(body) == len(table)
    assert all(f"<{target}>`" in md for target in table.target)
    assert all(line.count(" | ") == 4 for line in body)  # no stray pipes split a cell


@pytest.mark.parametrize("bad, message", [
    ("id,paper,location,printed,correct,finding,chapter\n", "missing columns"),
    ("id,paper,location,printed,correct,finding,chapter,target\nx,LrcSSM,l,p,c,f,liquid/01_a,t\n"
     "x,LrcSSM,l,p,c,f,liquid/01_a,t\n", "repeated ids"),
    ("id,paper,location,printed,correct,finding,chapter,target\nx,Other,l,p,c,f,liquid/01_a,t\n", "paper must be"),
    ("id,paper,location,printed,correct,finding,chapter,target\nx,LrcSSM,l,p,,f,liquid/01_a,t\n", "empty cells"),
    ("id,paper,location,printed,correct,finding,chapter,target\nx,LrcSSM,l,p,c,f,liquid/01_a.md,t\n", "chapter must"),
    ("id,paper,location,printed,correct,finding,chapter,target\nx,LrcSSM,l,$|a|$,c,f,liquid/01_a,t\n", "split a table"),
])
def test_invalid_files_are_refused(tmp_path, bad, message):
    path = tmp_path / "errata.csv"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        errata.load(path)
