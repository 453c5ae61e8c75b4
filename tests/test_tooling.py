"""Tests of the book's tooling: CLI dispatch, the papermill runner, the offline-site check."""

from __future__ import annotations

from pathlib import Path

import pytest

from liquidssm import cli, environment, paths
from liquidssm.book import reproduce
from liquidssm.book import site as sitecheck

ROOT = Path(__file__).resolve().parents[1]


def test_cli_help_and_unknown_benchmark(capsys):
    assert cli.main(["--help"]) == 0
    assert "reproduce" in capsys.readouterr().out
    assert cli.main([]) == 2
    with pytest.raises(SystemExit, match="unknown benchmark 'nope'"):
        cli.main(["bench", "nope"])


def test_env_command_prints_versions(capsys):
    assert cli.main(["env"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "cuda available" in out
    assert "repository root" in out and str(ROOT) in out


def test_git_commit_of_the_checkout():
    commit = environment.git_commit()
    assert commit == "unknown" or len(commit.split("+")[0]) >= 7


def test_reproduce_output_dir_is_under_build(tmp_path, monkeypatch):
    monkeypatch.setenv("LIQUIDSSM_ROOT", str(tmp_path))
    assert reproduce.output_dir("full") == tmp_path.resolve() / "_build" / "reproduce" / "full"
    assert not (tmp_path / "_build").exists()


def test_reproduce_list_from_the_checkout(capsys):
    assert cli.main(["reproduce", "--list"]) == 0
    assert "book/reproductions/01_lra_synthetic_data.md" in capsys.readouterr().out


def test_package_versions_reports_missing():
    versions = environment.package_versions(("torch", "surely-not-a-package-xyz"))
    assert versions["surely-not-a-package-xyz"] == "not installed"
    assert versions["torch"].startswith("2.")


def test_repo_root_and_chapter_discovery(tmp_path, monkeypatch):
    assert paths.repo_root(ROOT / "src") == ROOT
    book = tmp_path / "book" / "reproductions"
    book.mkdir(parents=True)
    (tmp_path / "_toc.yml").write_text("root: book/intro\n")
    (book / "01_a.md").write_text("```{code-cell} ipython3\n:tags: [parameters]\nprofile = 'smoke'\n```\n")
    (book / "02_b.md").write_text("# no parameters cell\n")
    monkeypatch.setenv("LIQUIDSSM_ROOT", str(tmp_path))
    assert paths.repo_root() == tmp_path.resolve()
    assert [p.name for p in reproduce.reproduction_chapters(tmp_path)] == ["01_a.md"]
    assert reproduce.reproduction_chapters(tmp_path, "*zzz*") == []
    assert reproduce.main(["--list", "--chapters", "*zzz*"]) == 0
    assert reproduce.main(["--chapters", "*zzz*"]) == 1  # nothing to run is an error


def test_param_values_are_parsed():
    assert reproduce._parse_value("3") == 3
    assert reproduce._parse_value("[1, 2]") == [1, 2]
    assert reproduce._parse_value("full") == "full"


def test_static_site_check_flags_cdn_and_missing_mathjax(tmp_path):
    assert "run `make book` first" in sitecheck.static_check(tmp_path)[0]
    (tmp_path / "ok.html").write_text('<script src="_static/mathjax/tex-chtml.js"></script>')
    (tmp_path / "_static" / "mathjax").mkdir(parents=True)
    (tmp_path / "_static" / "mathjax" / "tex-chtml.js").write_text("// mathjax")
    assert sitecheck.static_check(tmp_path) == []
    (tmp_path / "cdn.html").write_text('<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/x.js"></script>')
    (tmp_path / "gone.html").write_text('<script src="mathjax/missing.js"></script>')
    problems = sitecheck.static_check(tmp_path)
    assert any("cdn.html loads a script from the network" in p for p in problems)
    assert any("gone.html: MathJax mathjax/missing.js is missing" in p for p in problems)


def test_commands_without_a_checkout_explain_the_fix(tmp_path, monkeypatch, capsys):
    from liquidssm.data import cli as data_cli

    for name in ("LIQUIDSSM_ROOT", "LIQUIDSSM_DATA", "LIQUIDSSM_RESULTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(paths, "_package_checkout", lambda: None)
    monkeypatch.chdir(tmp_path)
    assert reproduce.main(["--list"]) == 2
    assert "set LIQUIDSSM_ROOT" in capsys.readouterr().err
    assert data_cli.main(["status"]) == 2
    assert "LIQUIDSSM_DATA" in capsys.readouterr().err
    monkeypatch.setenv("LIQUIDSSM_DATA", str(tmp_path / "raw"))
    assert data_cli.main(["status"]) == 0  # raw data needs no checkout
