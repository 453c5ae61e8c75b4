"""Check that the built site typesets its math with no network: ``make check-site``.

Three checks on ``_build/html`` (under :func:`liquidssm.paths.build_dir` unless given):

1. *static*: no page loads MathJax (or anything else) from a CDN, the MathJax copy the pages
   point to exists inside the site, and no page shows an absolute path of the machine that
   built it (:data:`MACHINE_PATHS`);
2. *rendered*: headless Chromium, with every host name resolving to nothing and a dead proxy
   (so no request can leave the machine), opens a page, lets MathJax run, and dumps the DOM;
   the page must contain typeset ``mjx-container`` elements and no raw ``\\(`` / ``\\[``
   delimiters. A screenshot is written next to the report for a human to look at;
3. *width*: every page with a results table (``table.lss-results``, from
   :func:`liquidssm.repro.tables.render` and the run-status page) is opened in a
   :data:`WIDTH_PX`-pixel window and every such table, and every element between it and the
   article, must fit: scroll width <= client width, nothing scrolls sideways. A screenshot of
   one table page, with its first table moved to the top of the article (same width), is kept
   under ``_build/sitecheck/``.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from liquidssm import paths

CDN = re.compile(r"""<script[^>]+src=["']https?://""", re.I)
MATHJAX_SRC = re.compile(r"""<script[^>]+src=["']([^"']*mathjax[^"']*\.js)["']""", re.I)
#: absolute paths of a build machine that must never reach a page (a results folder, a scratch dir)
MACHINE_PATHS = re.compile(r"(?<![\w.-])/(?:work|tmp|root|home)/[\w.-]")
#: the window width at which every results table must fit without scrolling sideways
WIDTH_PX = 1300
#: the page whose first results table is photographed (relative to the site)
TABLE_PAGE = "book/reproductions/20_lrcssm_table1.html"
_REPORT = "lss-width-report"
#: measures each results table and the elements between it and the article, after load
_MEASURE = """<script>
window.addEventListener("load", function () { setTimeout(function () {
  var out = {window: window.innerWidth, page: document.documentElement.scrollWidth, tables: []};
  document.querySelectorAll("table.lss-results").forEach(function (t, i) {
    var worst = null;
    for (var el = t; el && el !== document.body; el = el.parentElement) {
      if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
        worst = {tag: el.tagName.toLowerCase(), cls: String(el.className).slice(0, 60),
                 scroll: el.scrollWidth, client: el.clientWidth};
        break;
      }
      if (el.tagName === "ARTICLE") { break; }
    }
    out.tables.push({index: i, width: t.getBoundingClientRect().width, overflow: worst});
  });
  var first = document.querySelector(".lss-paper-table, table.lss-results");
  if (first && window.location.hash === "#lss-shot") {  /* the photograph: that table first */
    var cell = first.closest("div.cell") || first, article = document.querySelector("article");
    if (article) { article.insertBefore(cell, article.firstChild); }
  }
  document.body.setAttribute("data-REPORT", JSON.stringify(out));
}, 1500); });
</script>""".replace("REPORT", _REPORT)


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
        for hit in sorted(set(machine_paths(text)))[:3]:
            problems.append(f"{page.relative_to(html_dir)}: shows a machine path {hit!r}")
    return problems


def machine_paths(text: str) -> list[str]:
    """Absolute machine paths (``/work/...``, ``/tmp/...``, ``/root/...``, ``/home/...``) in a
    page's visible text and attributes (scripts and styles left out)."""
    body = html.unescape(re.sub(r"<(script|style)[^>]*>.*?</\1>", "", text, flags=re.S | re.I))
    return [re.split(r"[\s<>\"']", body[m.start():m.start() + 80])[0]
            for m in MACHINE_PATHS.finditer(body)]


def _chromium_flags(chromium: str, profile: str, width: int, height: int) -> list[str]:
    return [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-quic", f"--user-data-dir={profile}", "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND", "--allow-file-access-from-files",
        "--virtual-time-budget=15000", f"--window-size={width},{height}", "--hide-scrollbars",
    ]


def width_check(page: Path, width: int = WIDTH_PX, screenshot: Path | None = None,
                timeout: int = 90) -> tuple[int, list[str]]:
    """Open ``page`` in a ``width``-pixel window; return (results tables measured, problems).

    A copy of the page with :data:`_MEASURE` appended is written beside it (same relative links)
    and removed afterwards; each results table must fit its article (no element between the two
    scrolls sideways) and the page itself must not be wider than the window.
    """
    chromium = find_chromium()
    if chromium is None:
        return 0, ["Chromium not found: install it (Debian: `apt-get install chromium`) to run this check"]
    text = page.read_text(encoding="utf-8")
    probe = page.with_name(f".sitecheck-{page.name}")
    probe.write_text(text.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory() as profile:
            flags = _chromium_flags(chromium, profile, width, 1400)
            url = probe.resolve().as_uri()
            dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True,
                                 timeout=timeout).stdout
            if screenshot is not None:
                subprocess.run(flags + [f"--screenshot={screenshot}", url + "#lss-shot"],
                               capture_output=True, timeout=timeout)
    finally:
        probe.unlink(missing_ok=True)
    found = re.search(rf'data-{_REPORT}="([^"]*)"', dom)
    if found is None:
        return 0, [f"{page.name}: the width measurement did not run (no report in the DOM)"]
    report = json.loads(html.unescape(found.group(1)))
    problems = []
    if report["page"] > report["window"]:
        problems.append(f"{page.name}: the page is {report['page']} px wide in a "
                        f"{report['window']} px window (it scrolls sideways)")
    for t in report["tables"]:
        if t["overflow"] is not None:
            o = t["overflow"]
            problems.append(f"{page.name}: results table {t['index'] + 1} does not fit at {width} px: "
                            f"<{o['tag']} class={o['cls']!r}> scrolls ({o['scroll']} > {o['client']} px)")
    return len(report["tables"]), problems


def render_check(page: Path, screenshot: Path | None = None, timeout: int = 60) -> tuple[int, list[str]]:
    """Open ``page`` offline in headless Chromium; return (number of typeset formulas, problems)."""
    chromium = find_chromium()
    if chromium is None:
        return 0, ["Chromium not found: install it (Debian: `apt-get install chromium`) to run this check"]
    with tempfile.TemporaryDirectory() as profile:
        flags = _chromium_flags(chromium, profile, 1280, 2200)
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
    table_pages = [p for p in sorted((html_dir / "book").rglob("*.html"))
                   if not p.name.startswith(".") and 'class="lss-results' in p.read_text(
                       encoding="utf-8", errors="ignore")]
    if not table_pages:
        problems.append("no page has a results table (table.lss-results); is the book built?")
    measured = 0
    for page in table_pages:
        rel = page.relative_to(html_dir).as_posix()
        shot = shots / f"table-{WIDTH_PX}px.png" if rel == TABLE_PAGE else None
        count, found = width_check(page, WIDTH_PX, shot)
        measured += count
        problems += found
        print(f"{rel}: {count} results tables fit at {WIDTH_PX} px" if not found
              else f"{rel}: {len(found)} width problem(s)")
    if problems:
        print("site check FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"site check passed: {len(pages)} pages, no network script, MathJax served locally, "
          f"{measured} results tables on {len(table_pages)} pages fit at {WIDTH_PX} px, "
          "no machine path")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
