"""``make check-site``'s width and machine-path checks (the width check needs Chromium)."""

from __future__ import annotations

import pytest

from liquidssm.book import site

_PAGE = """<!doctype html><html><head><style>body{margin:0} article{width:600px}</style></head>
<body><article><div style="overflow-x:auto"><table class="lss-results"><tr>{cells}</tr></table>
</div></article></body></html>"""


def _page(tmp_path, n_cells: int, name: str):
    page = tmp_path / name
    page.write_text(_PAGE.replace("{cells}", "".join(
        f'<td style="white-space:nowrap">cell number {i} with text</td>' for i in range(n_cells))))
    return page


@pytest.mark.skipif(site.find_chromium() is None, reason="needs Chromium")
def test_width_check_measures_results_tables(tmp_path):
    count, problems = site.width_check(_page(tmp_path, 2, "narrow.html"), width=1300)
    assert count == 1 and problems == []
    count, problems = site.width_check(_page(tmp_path, 12, "wide.html"), width=1300,
                                       screenshot=tmp_path / "shot.png")
    assert count == 1 and len(problems) >= 1 and "does not fit at 1300 px" in problems[0]
    assert (tmp_path / "shot.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["narrow.html", "shot.png", "wide.html"]


def test_machine_paths_are_found_in_text_not_in_urls(tmp_path):
    page = ('<p>results under /work/wt21/data/results</p><a href="https://x.org/tmp/a">x</a>'
            '<script>var p = "/root/secret";</script><p>../tmp/relative and data/results/x</p>'
            '<img src="file:///tmp/h21/x.png">')
    assert site.machine_paths(page) == ["/work/wt21/data/results", "/tmp/h21/x.png"]
    (tmp_path / "index.html").write_text(page)
    (tmp_path / "clean.html").write_text("<p>data/results/ls4-t1-listops</p>")
    assert site.static_check(tmp_path) == [
        "index.html: shows a machine path '/tmp/h21/x.png'",
        "index.html: shows a machine path '/work/wt21/data/results'"]
