"""The prose checks of liquidssm.book.check, on synthetic pages and on the chapters they guard."""

from __future__ import annotations

import pytest

from liquidssm import paths
from liquidssm.book import check as bookcheck

PAGE = """---
jupytext:
  text_representation:
    format_name: myst
---

(sec-x)=
# 3. A title with a number 42

Prose with a value 0.75 and a glued {glue:text}`key:.2f` and inline $x_1 = 17$ math
spanning $a +
b_{99}$ two lines, `code 5`, and Eq. (10) with Table 4 and item 12.
The order 3 kernel, at scale 0.1, as in (7).

$$
y = 123
$$

```{code-cell} ipython3
x = 1234
```

```{exercise} Tagged [★★, proof]
:label: ex-a
Compute 8 things.
```

```{solution-start} ex-a
:class: dropdown
```
The answer is 56.

```{code-cell} ipython3
assert 56 == 56
```
```{solution-end}
```

```{exercise} Untagged
:label: ex-b
Nothing.
```

See the reference §4.2 and the toolchain notes.
"""


def test_values_references_and_settings_are_told_apart():
    lits = bookcheck.numeric_literals(PAGE)
    values = sorted(lit.text for lit in lits if lit.kind == "value")
    assert values == ["0.75", "42", "56", "8"]  # the heading's section number "3." is not a value, its 42 is
    refs = sorted(lit.text for lit in lits if lit.kind == "reference")
    assert refs == ["10", "12", "4", "4.2", "7"]
    settings = sorted(lit.text for lit in lits if lit.kind == "setting")
    assert settings == ["0.1", "3"]


def test_code_math_roles_labels_and_front_matter_are_not_prose():
    prose = "\n".join(text for _, text in bookcheck.prose_lines(PAGE))
    for hidden in ("1234", "123", "17", "99", "key", "code 5", "format_name", "sec-x", ":label:"):
        assert hidden not in prose, hidden
    assert "The answer is 56." in prose and "Tagged" in prose  # gated solution body and exercise title are prose


def test_line_numbers_are_the_source_lines():
    lines = PAGE.splitlines()
    for lit in bookcheck.numeric_literals(PAGE):
        assert lit.text.replace(" ", "") in lines[lit.line - 1].replace(" ", ""), lit


def test_exercise_tags():
    found = bookcheck.exercises(PAGE)
    assert found == [("ex-a", "Tagged [★★, proof]", "★★"), ("ex-b", "Untagged", None)]
    assert bookcheck.untagged_exercises(PAGE) == ["ex-b"]


def test_outside_citations():
    assert [phrase for _, phrase in bookcheck.outside_citations(PAGE)] == ["reference §", "toolchain notes"]


def test_labels():
    assert bookcheck.labels(PAGE) == {"sec-x", "ex-a", "ex-b"}


def test_main_reports_and_fails_on_untagged(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text(PAGE, encoding="utf-8")
    assert bookcheck.main(["--check", "exercises", str(page)]) == 1
    assert "untagged exercise: page.md: ex-b" in capsys.readouterr().out
    assert bookcheck.main(["--check", "numbers", "-v", str(page)]) == 0
    assert "numeric literals left in prose" in capsys.readouterr().out


#: the chapters whose exercises, citations and numbers this project's issue 14 put under the checks
GUARDED = [
    "intro.md", "s4/01_ssm.md", "s4/02_hippo.md", "s4/03_s4_kernel.md", "liquid/01_linear_ltc.md",
    "liquid/02_unrolled_liquid_terms.md", "liquid/03_proposition1.md", "liquid/04_kb_vs_pb.md",
    "liquid/05_liquid_s4_layer.md", "lrcssm/01_lrc_diagonal_jacobian.md", "lrcssm/02_parallel_scans.md",
    "lrcssm/03_newton_solver.md", "lrcssm/04_stability.md", "lrcssm/90_bridge_liquid_s4.md",
    "appendix/10_paper_vs_code_liquid_s4.md", "appendix/11_paper_vs_code_lrcssm.md",
    "appendix/20_glossary.md", "appendix/21_errata.md", "appendix/30_course.md",
]


@pytest.mark.parametrize("page", GUARDED)
def test_guarded_chapters(page):
    path = paths.repo_root() / "book" / page
    text = path.read_text(encoding="utf-8")
    assert bookcheck.untagged_exercises(text) == [], "every exercise needs a difficulty tag [★..★★★]"
    assert bookcheck.outside_citations(text) == [], "cite the paper, the released code or a chapter"


def test_every_errata_link_resolves():
    assert bookcheck.missing_errata_targets() == []


def test_summary_covers_the_book():
    rows = bookcheck.summary()
    assert {r["page"] for r in rows} >= set(GUARDED)
    assert all(r["values"] >= 0 and r["untagged"] <= r["exercises"] for r in rows)


FRONT = "---\njupytext:\n  text_representation:\n    format_name: myst\n---\n\n# A chapter\n\n"
OBJECTIVES = "```{admonition} Learning objectives\n:class: tip\n1. learn\n```\n\n"
EXERCISE = "```{exercise} Think [★]\n:label: ex-t\nThink.\n```\n\n"
STATIC_OK = "```{solution} ex-t\n:class: dropdown\nA sentence, and a list:\n\n- one\n    continued\n```\n"
STATIC_FENCED = "```{solution} ex-t\n:class: dropdown\nRun this:\n\n````python\nassert 1 == 2\n````\n```\n"
STATIC_INDENTED = "```{solution} ex-t\n:class: dropdown\nRun this:\n\n    assert 1 == 2\n```\n"
GATED = ("```{solution-start} ex-t\n:class: dropdown\n```\nIt holds.\n\n```{code-cell} ipython3\nassert 1 == 1\n```\n"
         "```{solution-end}\n```\n")


@pytest.mark.parametrize("solution", [STATIC_FENCED, STATIC_INDENTED])
def test_static_solution_with_code_fails(tmp_path, capsys, solution):
    page = tmp_path / "bad.md"
    page.write_text(FRONT + OBJECTIVES + EXERCISE + solution, encoding="utf-8")
    assert bookcheck.static_solution_code(page.read_text(encoding="utf-8"))[0][1] == "ex-t"
    assert bookcheck.main(["--check", "solutions", str(page)]) == 1
    assert "code in a static solution" in capsys.readouterr().out
    assert bookcheck.main([str(page)]) == 1  # "all" includes the rule


@pytest.mark.parametrize("solution", [STATIC_OK, GATED])
def test_prose_and_gated_solutions_pass(tmp_path, solution):
    page = tmp_path / "good.md"
    page.write_text(FRONT + OBJECTIVES + EXERCISE + solution, encoding="utf-8")
    assert bookcheck.static_solution_code(page.read_text(encoding="utf-8")) == []
    assert bookcheck.main(["--check", "solutions", str(page)]) == 0
    assert bookcheck.main(["--check", "course", str(page)]) == 0


@pytest.mark.parametrize(("body", "gaps"), [
    (EXERCISE + GATED, ["objectives"]),
    (OBJECTIVES + "No exercises here.\n", ["exercises"]),
    ("Neither.\n", ["objectives", "exercises"]),
])
def test_chapter_without_objectives_or_exercises_fails(tmp_path, capsys, body, gaps):
    page = tmp_path / "thin.md"
    page.write_text(FRONT + body, encoding="utf-8")
    assert bookcheck.course_gaps(page.read_text(encoding="utf-8")) == gaps
    assert bookcheck.main(["--check", "course", str(page)]) == 1
    out = capsys.readouterr().out
    assert all(f"chapter without {gap}: thin.md" in out for gap in gaps)


def test_which_pages_are_chapters():
    book = paths.repo_root() / "book"
    assert bookcheck.is_chapter(book / "s4" / "01_ssm.md")
    assert bookcheck.is_chapter(book / "reproductions" / "30_performance.md")
    assert not bookcheck.is_chapter(book / "reproductions" / "99_run_status.md")
    assert not bookcheck.is_chapter(book / "appendix" / "30_course.md")
    assert not bookcheck.is_chapter(book / "intro.md")


def test_every_chapter_has_objectives_exercises_and_no_static_code():
    for page in bookcheck.chapters():
        text = page.read_text(encoding="utf-8")
        assert bookcheck.static_solution_code(text) == [], page
        if bookcheck.is_chapter(page):
            assert bookcheck.course_gaps(text) == [], page
