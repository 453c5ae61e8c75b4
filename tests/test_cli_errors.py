"""The command line never ends in a traceback: ``--help`` everywhere, usage errors (2), failures (1).

Every sub-command (and every ``data`` and ``bench`` sub-command) is run with ``--help`` and with
one bad argument, in process; a few runs go through a real interpreter to check what a user sees.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from liquidssm import cli

HELP = [
    ["train", "--help"], ["experiments", "--help"], ["results", "--help"], ["reproduce", "--help"],
    ["data", "--help"], ["data", "status", "--help"], ["data", "download", "--help"],
    ["data", "prepare", "--help"], ["data", "fixtures", "--help"], ["data", "generate", "--help"],
    ["bench", "--help"], ["bench", "kernels", "--help"], ["bench", "liquid", "--help"],
    ["bench", "lrcssm", "--help"], ["bench", "engine", "--help"],
    ["bench", "official", "--help"], ["bench", "--against", "official", "--help"], ["env", "--help"], ["--help"],
]

#: (arguments, expected exit status, a phrase of the message)
BAD = [
    (["train", "ls4-t1-listops", "--nope"], 2, "unrecognized arguments: --nope"),
    (["train"], 2, "required: experiment"),
    (["experiments", "--paper", "s4"], 2, "invalid choice: 's4'"),
    (["results", "--profile", "huge"], 2, "invalid choice: 'huge'"),
    (["reproduce", "--profile", "huge"], 2, "invalid choice: 'huge'"),
    (["data"], 2, "required: cmd"),
    (["data", "nope"], 2, "invalid choice: 'nope'"),
    (["data", "status", "--nope"], 2, "unrecognized arguments"),
    (["data", "download", "imagenet"], 2, "invalid choice: 'imagenet'"),
    (["data", "download", "listops", "--timeout", "-1"], 2, "expected a finite number > 0"),
    (["data", "prepare", "listops", "--from"], 2, "expected one argument"),
    (["data", "fixtures", "listops"], 2, "required: --out"),
    (["data", "generate", "listops", "--out", "x", "--n", "0"], 2, "--n: expected an integer >= 1, got 0"),
    (["data", "generate", "listops", "--out", "x", "--n", "many"], 2, "expected an integer >= 1, got 'many'"),
    (["data", "generate", "pathfinder", "--out", "x", "--workers", "0"], 2, "--workers: expected an integer >= 1"),
    (["data", "generate", "pathfinder", "--out", "x", "--n-val", "-1"], 2, "--n-val: expected an integer >= 0"),
    (["bench"], 2, "usage: liquidssm bench"),
    (["bench", "nope"], 2, "unknown benchmark 'nope'"),
    (["bench", "kernels", "--repeats", "0"], 2, "--repeats: expected an integer >= 1, got 0"),
    (["bench", "kernels", "--backends", "cuda"], 2, "invalid choice: 'cuda'"),
    (["bench", "liquid", "--L", "0"], 2, "--L: expected an integer >= 1"),
    (["bench", "liquid", "--orders", "1"], 2, "--orders: expected an integer >= 2"),
    (["bench", "lrcssm", "--scan", "fast"], 2, "invalid choice: 'fast'"),
    (["bench", "lrcssm", "--T", "0"], 2, "--T: expected an integer >= 1"),
    (["bench", "engine", "--nope"], 2, "unrecognized arguments"),
    (["bench", "official", "--repeats", "0"], 2, "--repeats: expected an integer >= 1, got 0"),
    (["bench", "official", "--only", "s5"], 2, "invalid choice: 's5'"),
    (["bench", "--against"], 2, "--against: expected 'official', got ''"),
    (["env", "--nope"], 2, "unrecognized arguments"),
    (["nope"], 2, "unknown command 'nope'"),
    (["--nope"], 2, "unknown option '--nope'"),
    ([], 2, "usage: liquidssm"),
]


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv", HELP, ids=[" ".join(a) for a in HELP])
def test_every_command_answers_help(argv, capsys):
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    assert "usage:" in out and "Traceback" not in out + err


@pytest.mark.parametrize("argv,status,phrase", BAD, ids=[" ".join(a[0]) or "(nothing)" for a in BAD])
def test_every_command_refuses_a_bad_argument_without_traceback(argv, status, phrase, capsys):
    code, out, err = _run(argv, capsys)
    assert code == status
    assert phrase in out + err and "Traceback" not in out + err


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("liquidssm 0.")


def _failures(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    return [
        (["data", "prepare", "listops", "--root", str(tmp_path), "--from", str(tmp_path / "missing.tar")],
         "FileNotFoundError: ", "missing.tar not found"),
        (["data", "fixtures", "listops", "--out", str(a_file / "sub")], "NotADirectoryError: ", "a_file"),
        (["data", "download", "listops", "--root", str(a_file)], "", "a_file"),  # an OSError naming it
        (["data", "generate", "pathfinder", "--out", str(a_file / "pf"), "--n", "1"], "", "a_file"),
    ]


def test_library_failures_are_one_line_with_status_1(tmp_path, capsys):
    for argv, kind, phrase in _failures(tmp_path):
        code, out, err = _run(argv, capsys)
        assert code == 1, (argv, err)
        lines = err.strip().splitlines()
        assert lines[0].startswith(f"liquidssm {argv[0]}: error: {kind}"), err
        assert phrase in err and "Traceback" not in err


def test_a_message_with_a_layout_keeps_its_lines_indented(capsys):
    from liquidssm.data import DatasetMissingError

    cli.report_error("liquidssm train", DatasetMissingError("dataset 'x' not found\nexpected layout:\n  x/a.tsv"))
    assert capsys.readouterr().err.splitlines() == [
        "liquidssm train: error: DatasetMissingError: dataset 'x' not found", "  expected layout:", "    x/a.tsv"]
    cli.report_error("liquidssm data", KeyError("unknown dataset 'y'"))
    assert capsys.readouterr().err == "liquidssm data: error: KeyError: unknown dataset 'y'\n"


def test_permission_errors_are_one_line(tmp_path, capsys, monkeypatch):
    import tempfile

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    code, _, err = _run(["data", "fixtures", "aan", "--out", str(tmp_path)], capsys)
    assert code == 1 and err.strip() == f"liquidssm data: error: PermissionError: [Errno 13] Permission denied: '{tmp_path}'"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_data_root(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = _run(["data", "fixtures", "listops", "--out", str(ro)], capsys)
    finally:
        ro.chmod(0o755)
    assert code == 1 and "PermissionError" in err and "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path, capsys):
    code, _, err = _run(["--debug", "data", "prepare", "listops", "--root", str(tmp_path), "--from",
                         str(tmp_path / "missing.tar")], capsys)
    assert code == 1 and "Traceback (most recent call last)" in err and "FileNotFoundError" in err


def test_what_a_user_sees_in_a_terminal(tmp_path):
    """Through a real interpreter: exit statuses and stderr, no traceback."""
    a_file = tmp_path / "f"
    a_file.write_text("x")
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    runs = [
        ([sys.executable, "-m", "liquidssm.cli", "data", "fixtures", "listops", "--out", str(a_file / "x")], 1),
        ([sys.executable, "-m", "liquidssm.bench", "nope"], 2),
        ([sys.executable, "-m", "liquidssm.cli", "--version"], 0),
    ]
    for argv, status in runs:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == status, proc.stderr
        assert "Traceback" not in proc.stderr
        if status:
            assert len(proc.stderr.strip().splitlines()) <= 3, proc.stderr
