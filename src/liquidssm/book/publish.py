"""Publish the built site: ``make publish REMOTE=...`` (Jupyter Book 1's ``ghp-import`` convention).

``push`` puts ``_build/html`` on the ``gh-pages`` branch of ``REMOTE`` (a remote name such as
``origin`` or a repository URL/path) with ``ghp-import -n -p -f``: ``-n`` adds ``.nojekyll`` so
the forge serves ``_static/`` as is, ``-p`` pushes, ``-f`` force-pushes (the branch holds only the
latest site; the source history stays on ``main``). ``ghp-import`` writes the branch with
``git fast-import``: the working tree, the index and the checked-out branch are untouched.

``set-repository URL`` turns on the site's repository and issues buttons in ``_config.yml``
(Jupyter Book refuses the buttons without a URL, so the checked-in file has them off); the CI
workflow ``.github/workflows/pages.yml`` calls it with the forge's own URL before ``make book``.

How the published site gets its ``full`` results: ``liquidssm results export`` on the GPU box,
``liquidssm results import`` in the book checkout, ``make book``, ``make publish`` (README).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from liquidssm import paths
from liquidssm.cliutil import UsageError

__all__ = ["find_ghp_import", "push", "set_repository", "main"]


def find_ghp_import() -> str:
    """The ``ghp-import`` executable beside this Python (the book extra pins it), else on PATH."""
    here = Path(sys.executable).parent / "ghp-import"
    if here.is_file():
        return str(here)
    found = shutil.which("ghp-import")
    if found is None:
        raise RuntimeError("ghp-import not found: install the book extra (pip install "
                           "'liquidssm[book]') or `pip install ghp-import==2.1.0`")
    return found


def push(html_dir: str | Path, remote: str, *, branch: str = "gh-pages",
         message: str = "Publish the book", repo: str | Path | None = None) -> str:
    """Push ``html_dir`` to ``branch`` of ``remote`` from the git checkout ``repo`` (default: the
    book's root); returns ghp-import's output. Refuses a folder without ``index.html``."""
    html_dir = Path(html_dir)
    if not (html_dir / "index.html").is_file():
        raise UsageError(f"html_dir: {html_dir} has no index.html; build the book first (make book)")
    if not remote:
        raise UsageError("--remote: expected a git remote name or URL, e.g. REMOTE=origin")
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", branch):
        raise UsageError(f"--branch: expected a branch name, got {branch!r}")
    cwd = Path(repo) if repo is not None else paths.repo_root()
    cmd = [find_ghp_import(), "-n", "-p", "-f", "-r", remote, "-b", branch, "-m", message,
           str(html_dir.resolve())]
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ghp-import failed (status {done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()}")
    return (done.stdout + done.stderr).strip()


def set_repository(config: str | Path, url: str, *, branch: str | None = None) -> str:
    """Write ``url`` (and ``branch``) into ``config``'s ``repository:`` block and turn the
    repository and issues buttons on; comments and the rest of the file are kept. Returns the text."""
    if not re.fullmatch(r"https?://[^\s\"']+", url):
        raise UsageError(f"url: expected an http(s) repository URL, got {url!r}")
    path = Path(config)
    text = path.read_text(encoding="utf-8")
    block = re.search(r"^repository:\n((?:[ \t]+.*\n)*)", text, flags=re.M)
    if block is None:
        raise ValueError(f"{path}: no 'repository:' block to fill in")
    lines = [ln for ln in block.group(1).splitlines(keepends=True)
             if not re.match(r"\s+(url|branch):", ln)]
    new = [f'  url: "{url}"\n'] + ([f"  branch: {branch}\n"] if branch else [])
    old_branch = re.search(r"^\s+branch:.*\n", block.group(1), flags=re.M)
    if not branch and old_branch:
        new.append(old_branch.group(0))
    text = text[:block.start(1)] + "".join(new + lines) + text[block.end(1):]
    for button in ("use_repository_button", "use_issues_button"):
        text, n = re.subn(rf"^(\s+{button}:)\s*\w+", r"\1 true", text, flags=re.M)
        if n != 1:
            raise ValueError(f"{path}: expected one '{button}:' line under html:, found {n}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return text


def main(argv: list[str] | None = None) -> int:
    """``python -m liquidssm.book.publish push|set-repository ...`` (``make publish`` calls ``push``)."""
    p = argparse.ArgumentParser(prog="python -m liquidssm.book.publish", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("push", help="push the built site to a gh-pages branch with ghp-import")
    a.add_argument("html_dir", nargs="?", default=None, help="default: _build/html")
    a.add_argument("--remote", required=True, help="git remote name or URL (make publish REMOTE=...)")
    a.add_argument("--branch", default="gh-pages")
    a.add_argument("--message", default="Publish the book")
    a.add_argument("--repo", default=None, help="the git checkout to run in (default: the book's root)")
    b = sub.add_parser("set-repository", help="turn on the repository buttons with this URL")
    b.add_argument("url")
    b.add_argument("--branch", default=None)
    b.add_argument("--config", default=None, help="default: <repo>/_config.yml")
    args = p.parse_args(argv)
    try:
        if args.command == "push":
            html = Path(args.html_dir) if args.html_dir else paths.html_dir()
            print(push(html, args.remote, branch=args.branch, message=args.message, repo=args.repo))
            print(f"published {html.name} to {args.branch} of {args.remote}")
        else:
            config = Path(args.config) if args.config else paths.config_file()
            set_repository(config, args.url, branch=args.branch)
            print(f"{config.name}: repository buttons on, url {args.url}")
    except UsageError as exc:
        print(f"publish: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"publish: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
