"""Check that the built site typesets its math with no network: ``make check-site``.

Two checks on ``_build/html`` (under :func:`liquidssm.paths.build_dir` unless given):

1. *static*: no page loads MathJax (or anything else) from a CDN, and the MathJax copy the
   pages point to exists inside the site;
2. *rendered*: headless Chromium, with every host name resolving to nothing and a dead proxy
   (so no request can leave the machine), opens a page, lets MathJax run, and dumps the DOM;
   the page must contain typeset ``mjx-container`` elements and no raw ``\\(`` / ``\\[``
   delimiters. A screenshot is written next to the report for a human to look at.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from liquidssm import paths

CDN = re.compile(r"""<script[^>]+src=["']https?://""", re.I)
MATHJAX_SRC = re.compile(r"""<script[^>]+src=["']([^"']*mathjax[^"']*\.js)["']""", re.I)


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def static_check(html_dir: Path) -> list[str]:
    """Problems found by reading the HTML files (empty list = fine)."""
    problems = []
    pages = sorted(html_dir.rglob("*.html"))
    if not pages:
        return [f"no HTML pages under {html_dir}; run `make book` first"]
    for page in pages:
        text = page.read_text(encoding="utf-8", errors="ignore")
        if CDN.search(text):
            problems.append(f"{page.relative_to(html_dir)} loads a script from the network")
        for src in MATHJAX_SRC.findall(text):
            target = (page.parent / src.split("?")[0]).resolve()
            if not target.exists():
                problems.append(f"{page.relative_to(html_dir)}: MathJax {src} is missing from the site")
    return problems


def render_check(page: Path, screenshot: Path | None = None, timeout: int = 60) -> tuple[int, list[str]]:
    """Open ``page`` offline in headless Chromium; return (number of typeset formulas, problems)."""
    chromium = find_chromium()
    if chromium is None:
        return 0, ["Chromium not found: install it (Debian: `apt-get install chromium`) to run this check"]
    with tempfile.TemporaryDirectory() as profile:
        flags = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-quic", f"--user-data-dir={profile}", "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--allow-file-access-from-files",
            "--virtual-time-budget=15000", "--window-size=1280,2200",
        ]
        url = page.resolve().as_uri()
        dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True,
                             timeout=timeout).stdout
        if screenshot is not None:
            subprocess.run(flags + [f"--screenshot={screenshot}", url], capture_output=True,
                           timeout=timeout)
    typeset = dom.count("<mjx-container")
    problems = []
    if typeset == 0:
        problems.append(f"{page.name}: no typeset formula (mjx-container) after MathJax ran offline")
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", dom, flags=re.S)
    if "\\(" in body or "\\[" in body:
        problems.append(f"{page.name}: raw TeX delimiters remain in the rendered page")
    return typeset, problems


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; exit status 1 when a check fails."""
    parser = argparse.ArgumentParser(prog="python -m liquidssm.book.site", description=__doc__.splitlines()[0])
    parser.add_argument("html_dir", nargs="?", default=None,
                        help="the built site (default: <repo>/_build/html)")
    parser.add_argument("--page", action="append", default=None,
                        help="page(s) to render, relative to html_dir (default: every chapter page with math)")
    parser.add_argument("--screenshot-dir", default=None,
                        help="where screenshots go (default: <repo>/_build/sitecheck)")
    args = parser.parse_args(argv)
    html_dir = Path(args.html_dir) if args.html_dir else paths.html_dir()
    problems = static_check(html_dir)
    if args.page:
        pages = [html_dir / p for p in args.page]
    else:
        pages = [p for p in sorted((html_dir / "book").rglob("*.html"))
                 if "math notranslate" in p.read_text(encoding="utf-8", errors="ignore")]
    shots = Path(args.screenshot_dir) if args.screenshot_dir else paths.sitecheck_dir()
    shots.mkdir(parents=True, exist_ok=True)
    for page in pages:
        shot = shots / (page.relative_to(html_dir).as_posix().replace("/", "__") + ".png")
        count, found = render_check(page, shot)
        problems += found
        print(f"{page.relative_to(html_dir)}: {count} formulas typeset offline; screenshot {shot}")
    if problems:
        print("site check FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"site check passed: {len(pages)} pages, no network script, MathJax served locally")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
