"""Publishing: ``make publish`` pushes the site to a gh-pages branch (tested against a local bare
repository, no network); the Pages workflow parses; the repository buttons get their URL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from liquidssm import paths
from liquidssm.book import publish
from liquidssm.cliutil import UsageError

ROOT = paths.repo_root()


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A checkout with one commit, a bare 'forge' repository and a built site."""
    for var, value in (("GIT_AUTHOR_NAME", "book"), ("GIT_AUTHOR_EMAIL", "book@example.org"),
                       ("GIT_COMMITTER_NAME", "book"), ("GIT_COMMITTER_EMAIL", "book@example.org")):
        monkeypatch.setenv(var, value)
    forge = tmp_path / "forge.git"
    _git("init", "-q", "--bare", str(forge))
    proj = tmp_path / "proj"
    _git("init", "-q", "-b", "main", str(proj))
    (proj / "README.md").write_text("# proj\n")
    (proj / ".gitignore").write_text("_build/\n")
    _git("add", "README.md", ".gitignore", cwd=proj)
    _git("commit", "-qm", "init", cwd=proj)
    _git("remote", "add", "origin", str(forge), cwd=proj)
    _git("push", "-q", "origin", "main", cwd=proj)
    html = proj / "_build" / "html"
    (html / "_static").mkdir(parents=True)
    (html / "index.html").write_text("<h1>v1</h1>")
    (html / "_static" / "site.css").write_text("body{}")
    return proj, forge, html


def test_publish_pushes_the_site_to_gh_pages_of_a_local_bare_repository(project):
    proj, forge, html = project
    assert publish.main(["push", "--remote", "origin", "--repo", str(proj), str(html)]) == 0
    files = _git("--git-dir", str(forge), "ls-tree", "-r", "--name-only", "gh-pages").split()
    assert sorted(files) == [".nojekyll", "_static/site.css", "index.html"]
    assert _git("--git-dir", str(forge), "show", "gh-pages:index.html") == "<h1>v1</h1>"
    assert _git("status", "--porcelain", cwd=proj) == ""               # work tree untouched
    assert _git("rev-parse", "--abbrev-ref", "HEAD", cwd=proj).strip() == "main"
    (html / "index.html").write_text("<h1>v2</h1>")
    assert publish.main(["push", "--remote", str(forge), "--repo", str(proj), str(html)]) == 0
    assert _git("--git-dir", str(forge), "show", "gh-pages:index.html") == "<h1>v2</h1>"
    assert _git("--git-dir", str(forge), "log", "--format=%s", "main") == "init\n"  # main untouched


def test_publish_refuses_an_unbuilt_site_and_a_missing_remote(project, tmp_path):
    proj, _, html = project
    with pytest.raises(UsageError, match="no index.html"):
        publish.push(tmp_path / "nothing", "origin", repo=proj)
    with pytest.raises(UsageError, match="--remote"):
        publish.push(html, "", repo=proj)
    assert publish.main(["push", "--remote", "nowhere", "--repo", str(proj), str(html)]) == 1


def test_make_publish_checks_remote_first_then_builds_and_pushes():
    recipe = subprocess.run(["make", "-n", "publish", "REMOTE=origin"], cwd=ROOT,
                            capture_output=True, text=True)
    assert recipe.returncode == 0, recipe.stderr
    assert "make book" in recipe.stdout.replace("$(MAKE)", "make") or " book" in recipe.stdout
    assert "liquidssm.book.publish push --remote \"origin\" _build/html" in recipe.stdout
    missing = subprocess.run(["make", "publish"], cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode == 2 and "set REMOTE" in missing.stderr


def test_ghp_import_is_pinned_in_the_book_extra():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"ghp-import==2.1.0"' in text
    assert Path(publish.find_ghp_import()).name == "ghp-import"


def test_pages_workflow_builds_with_make_book_and_deploys_the_artifact():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as True
    assert "push" in on and "workflow_dispatch" in on
    assert wf["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    build = wf["jobs"]["build"]["steps"]
    assert any(s.get("run") == "make book" for s in build)
    upload = next(s for s in build if str(s.get("uses", "")).startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")
    assert any("set-repository" in str(s.get("run", "")) for s in build)


def test_set_repository_turns_the_buttons_on_with_the_url(tmp_path):
    from jupyter_book.config import yaml_to_sphinx

    config = tmp_path / "_config.yml"
    config.write_text((ROOT / "_config.yml").read_text())
    before = yaml.safe_load(config.read_text())
    assert before["repository"]["path_to_book"] == "." and not before["html"]["use_repository_button"]
    publish.set_repository(config, "https://github.com/someone/liquid-state-spaces", branch="main")
    after = yaml.safe_load(config.read_text())
    assert after["repository"]["url"] == "https://github.com/someone/liquid-state-spaces"
    assert after["repository"]["branch"] == "main" and after["repository"]["path_to_book"] == "."
    assert after["html"]["use_repository_button"] is True and after["html"]["use_issues_button"] is True
    assert {k: v for k, v in after.items() if k not in ("repository", "html")} == {
        k: v for k, v in before.items() if k not in ("repository", "html")}
    theme = yaml_to_sphinx(after)[0]["html_theme_options"]  # Jupyter Book accepts it
    assert theme["repository_url"].endswith("/liquid-state-spaces") and theme["use_repository_button"]
    with pytest.raises(UsageError, match="http"):
        publish.set_repository(config, "not a url")
