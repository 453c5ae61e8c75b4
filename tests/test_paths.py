"""liquidssm.paths: the one place that knows the repository root and the data folders."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from liquidssm import paths

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "liquidssm"


@pytest.fixture
def clean_env(monkeypatch):
    """No path variable set, whatever the caller's shell exports."""
    for name in (paths.ROOT_ENV, paths.DATA_ENV, paths.RESULTS_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def no_checkout(clean_env, tmp_path):
    """Simulate a wheel install run from an unrelated folder: no rule finds a checkout."""
    clean_env.setattr(paths, "_package_checkout", lambda: None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean_env.chdir(elsewhere)
    return elsewhere


def test_checkout_is_found_from_the_package(clean_env, tmp_path):
    clean_env.chdir(tmp_path)  # the current directory plays no part in an editable install
    assert paths.repo_root() == ROOT
    assert paths.root_source() == "the checkout the package was imported from"
    assert paths.raw_data_dir() == ROOT / "data" / "raw"
    assert paths.paper_dir() == ROOT / "data" / "paper"
    assert paths.results_dir() == ROOT / "data" / "results"
    assert paths.samples_dir() == ROOT / "data" / "samples"
    assert paths.benchmarks_dir() == ROOT / "data" / "benchmarks"
    assert paths.build_dir() == ROOT / "_build"


def test_root_override(clean_env, tmp_path):
    clean_env.setenv("LIQUIDSSM_ROOT", str(tmp_path))
    assert paths.repo_root() == tmp_path.resolve()
    assert paths.root_source() == "$LIQUIDSSM_ROOT"
    assert paths.raw_data_dir() == tmp_path.resolve() / "data" / "raw"
    assert paths.build_dir() == tmp_path.resolve() / "_build"
    with pytest.raises(paths.RepositoryNotFoundError, match=r"(?s)paper tables.*data/paper.*LIQUIDSSM_ROOT"):
        paths.paper_dir()
    with pytest.raises(FileNotFoundError):  # the error is a FileNotFoundError for old callers
        paths.paper_dir()


def test_root_override_that_is_not_a_directory_is_refused(clean_env, tmp_path):
    clean_env.setenv("LIQUIDSSM_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(paths.RepositoryNotFoundError, match="LIQUIDSSM_ROOT=.*nowhere is not a directory"):
        paths.repo_root()


def test_data_and_results_overrides(clean_env, tmp_path):
    clean_env.setenv("LIQUIDSSM_DATA", str(tmp_path / "raw"))
    clean_env.setenv("LIQUIDSSM_RESULTS", str(tmp_path / "results"))
    assert paths.raw_data_dir() == tmp_path / "raw"
    assert paths.raw_data_dir(tmp_path / "mine") == tmp_path / "mine"  # an argument wins
    assert paths.results_dir() == tmp_path / "results"


def test_results_dir_is_never_created(clean_env, tmp_path):
    clean_env.setenv("LIQUIDSSM_ROOT", str(tmp_path))
    assert paths.results_dir() == tmp_path.resolve() / "data" / "results"
    clean_env.setenv("LIQUIDSSM_RESULTS", str(tmp_path / "res"))
    assert paths.results_dir() == tmp_path / "res"
    assert not (tmp_path / "data").exists() and not (tmp_path / "res").exists()


def test_current_directory_rule_with_start(no_checkout, tmp_path):
    book = tmp_path / "book"
    (book / "reproductions").mkdir(parents=True)
    (tmp_path / "_toc.yml").write_text("root: book/intro\n")
    assert paths.repo_root(book / "reproductions") == tmp_path.resolve()
    assert paths.root_source(book / "reproductions") == "the current directory or a parent"


def test_current_directory_rule_uses_cwd(clean_env, tmp_path):
    clean_env.setattr(paths, "_package_checkout", lambda: None)
    (tmp_path / "book" / "s4").mkdir(parents=True)
    (tmp_path / "_toc.yml").write_text("root: book/intro\n")
    clean_env.chdir(tmp_path / "book" / "s4")
    assert paths.repo_root() == tmp_path.resolve()


def test_nothing_found_says_what_was_tried_and_how_to_fix(no_checkout):
    with pytest.raises(paths.RepositoryNotFoundError) as err:
        paths.repo_root()
    msg = str(err.value)
    assert "$LIQUIDSSM_ROOT: not set" in msg
    assert "not an editable install" in msg
    assert f"{no_checkout.resolve()} and its parents: none holds _toc.yml and book/" in msg
    assert re.search(r"fix: set LIQUIDSSM_ROOT=.*LIQUIDSSM_DATA or LIQUIDSSM_RESULTS", msg)
    for fn in (paths.paper_dir, paths.results_dir, paths.raw_data_dir, paths.build_dir,
               paths.samples_dir, paths.benchmarks_dir):
        with pytest.raises(paths.RepositoryNotFoundError):
            fn()


def test_root_variable_naming_a_file_is_reported(no_checkout, tmp_path, monkeypatch):
    bogus = tmp_path / "file.txt"
    bogus.write_text("")
    monkeypatch.setenv("LIQUIDSSM_ROOT", str(bogus))
    with pytest.raises(paths.RepositoryNotFoundError, match="file.txt is not a directory"):
        paths.repo_root()


def test_data_and_results_work_without_a_checkout(no_checkout, tmp_path, monkeypatch):
    monkeypatch.setenv("LIQUIDSSM_DATA", str(tmp_path / "raw"))
    monkeypatch.setenv("LIQUIDSSM_RESULTS", str(tmp_path / "results"))
    assert paths.raw_data_dir() == tmp_path / "raw"
    assert paths.results_dir() == tmp_path / "results"


def test_describe_never_raises(no_checkout):
    rows = paths.describe()
    assert rows["repository root"].startswith("not found: cannot find the liquidssm repository")
    assert set(rows) >= {"repository root", "root found by", "paper tables", "build outputs"}


def test_describe_lists_every_location(clean_env):
    rows = paths.describe()
    assert rows["repository root"] == str(ROOT)
    assert rows["paper tables"] == str(ROOT / "data" / "paper")


CODE_THAT_KNOWS_DIRECTORIES = re.compile(
    r"parents\[|\"_toc\.yml\"|\"_build\"|environ(?:\.get)?\(\s*\"LIQUIDSSM_|getenv\(\s*\"LIQUIDSSM_"
    r"|environ\[\s*\"LIQUIDSSM_|\"data\"\s*/\s*\"(?:raw|paper|results|samples)\"")


def test_only_paths_knows_directories():
    """Design §6: no other module finds the root or reads the path variables itself."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "paths.py" and path.parent == SRC:
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if CODE_THAT_KNOWS_DIRECTORIES.search(line):
                offenders.append(f"{path.relative_to(SRC)}:{lineno}: {line.strip()}")
    assert not offenders, "ask liquidssm.paths instead:\n" + "\n".join(offenders)


# ------------------------------------------------------------------------------------------------
# one place per concept: directories (paths.py) and the results record (results.py)
# ------------------------------------------------------------------------------------------------

#: functions of paths.py that return a folder; joining a sub-path onto one builds a directory
_FOLDER_FUNCS = {"repo_root", "build_dir", "results_dir", "raw_data_dir", "paper_dir",
                 "samples_dir", "benchmarks_dir", "book_dir", "data_cache_dir"}
#: the keys only a results record has together (a dict literal holding several is a record)
_RECORD_KEYS = {"schema", "config_hash", "paper_value", "provenance", "metric_key", "param_digest",
                "smoke_target", "chance", "history"}


def _directory_joins(tree: ast.AST) -> list[int]:
    """Lines where a folder returned by a ``paths`` function gets a sub-path joined with ``/``."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left = node.left
            while isinstance(left, ast.BinOp) and isinstance(left.op, ast.Div):
                left = left.left
            if (isinstance(left, ast.Call) and isinstance(left.func, ast.Attribute)
                    and isinstance(left.func.value, ast.Name) and left.func.value.id == "paths"
                    and left.func.attr in _FOLDER_FUNCS):
                lines.append(node.lineno)
    return lines


def _record_literals(tree: ast.AST) -> list[int]:
    """Lines of dict literals holding three or more of the results record's own keys."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            if len(keys & _RECORD_KEYS) >= 3:
                lines.append(node.lineno)
    return lines


def _sources() -> dict[str, ast.AST]:
    return {str(p.relative_to(SRC)): ast.parse(p.read_text(encoding="utf-8"))
            for p in sorted(SRC.rglob("*.py"))}


def test_only_paths_builds_directories():
    offenders = {name: lines for name, tree in _sources().items()
                 if name != "paths.py" and (lines := _directory_joins(tree))}
    assert not offenders, f"directories built outside paths.py: {offenders}"


def test_only_results_builds_the_record():
    offenders = {name: lines for name, tree in _sources().items()
                 if name != "repro/results.py" and (lines := _record_literals(tree))}
    assert not offenders, f"results records built outside repro/results.py: {offenders}"
    assert _record_literals(ast.parse((SRC / "repro" / "results.py").read_text()))  # it is there


def test_the_two_source_checks_can_fail():
    planted = ast.parse("run = paths.build_dir() / 'runs' / x\n"
                        "rec = {'schema': 1, 'config_hash': h, 'provenance': p}\n")
    assert _directory_joins(planted) == [1, 1] and _record_literals(planted) == [2]


def test_variant_folders(clean_env, tmp_path):
    clean_env.setenv(paths.RESULTS_ENV, str(tmp_path))
    assert paths.run_results_dir("paper") == tmp_path
    assert paths.run_results_dir("released") == tmp_path / "released"
    assert paths.result_file("e", "smoke", 3) == tmp_path / "e" / "smoke-seed3.json"
    assert paths.run_dir("e", "full", 2).parts[-3:] == ("runs", "e", "full-seed2")
    assert paths.run_dir("e", "full", 2, "released").parts[-3] == "runs-released"
    with pytest.raises(ValueError, match="variant: expected 'paper' or 'released', got 'official'"):
        paths.run_results_dir("official")
