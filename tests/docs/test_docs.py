"""The docs site builds strictly, and strict means a broken link fails it.

`sphinx-build -W --keep-going -n` over docs/ (as .ci/run runs it) into a temporary folder: any
warning fails. A copy of the docs with a link to a missing page, a missing `#anchor`, a link to a
missing repository file and a page left out of the index must fail, naming each. The README is
not part of the site, so its relative links and anchors are checked here the way myst checks the
pages' (GitHub's heading anchors). Needs the `docs` extra: without it the tests skip, except
under CI=true, where .ci/run installs it and they fail.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from support import REPO

# myst-parser 5.2 still reads `env.app`, which Sphinx 9 deprecates for Sphinx 11: theirs, not a docs warning.
pytestmark = pytest.mark.filterwarnings("ignore:.*Check CHANGES for Sphinx API modifications")

DOCS = REPO / "docs"
# The files outside docs/ that the pages link to (a download in the site, a link on GitHub).
LINKED_FROM_DOCS = ("README.md", "SECURITY.md", "config", "deploy", "bench")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def require_docs_extra() -> None:
    try:
        import myst_parser  # noqa: F401 - the extension conf.py names
        import sphinx  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("sphinx or myst-parser is not installed: .ci/run installs them (pip install -e '.[docs]')")
        pytest.skip("sphinx or myst-parser is not installed (pip install -e '.[docs]')")


def sphinx_build(source: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Build `source` strictly, as .ci/run does; its exit code and warnings."""
    require_docs_extra()
    from sphinx.cmd.build import build_main

    argv = ["--no-color", "-W", "--keep-going", "-n", "-E", "-q", "-b", "html", "-d", str(out / ".doctrees")]
    argv += [str(source), str(out)]
    code = build_main(argv)
    return code, capsys.readouterr().err


def test_the_docs_site_builds_without_a_warning(tmp_path, capsys):
    code, warnings = sphinx_build(DOCS, tmp_path / "site", capsys)
    assert (code, warnings) == (0, "")
    pages = sorted(p.stem for p in DOCS.glob("*.md"))
    assert sorted(p.stem for p in (tmp_path / "site").glob("*.html") if p.stem not in ("genindex", "search")) == pages
    # SECURITY.md, kept at the root, is in the site whole.
    security = (tmp_path / "site" / "security.html").read_text()
    assert "What is not covered" in security and "Who can reach what" in security


def test_a_broken_link_or_a_page_left_out_fails_the_build(tmp_path, capsys):
    repo = tmp_path / "repo"
    shutil.copytree(DOCS, repo / "docs", ignore=shutil.ignore_patterns("_build"))
    for name in LINKED_FROM_DOCS:
        (repo / name).symlink_to(REPO / name)
    with (repo / "docs" / "operations.md").open("a") as page:
        page.write(
            "\n[a missing page](no-such-page.md), [a missing anchor](configuration.md#no-such-heading),"
            " [a missing file](../no-such-file.md)\n"
        )
    (repo / "docs" / "orphan.md").write_text("# A page no index lists\n")
    code, warnings = sphinx_build(repo / "docs", tmp_path / "site", capsys)
    assert code != 0
    lines = [line.split("WARNING: ", 1)[1] for line in warnings.splitlines() if "WARNING: " in line]
    assert sorted(lines) == sorted(
        [
            "'myst' cross-reference target not found: 'no-such-page.md' [myst.xref_missing]",
            "local id not found in doc 'configuration': 'no-such-heading' [myst.xref_missing]",
            "'myst' cross-reference target not found: '../no-such-file.md' [myst.xref_missing]",
            "document isn't included in any toctree [toc.not_included]",
        ]
    ), warnings


def test_every_link_in_the_readme_leads_somewhere():
    require_docs_extra()
    from myst_parser.mdit_to_docutils.base import default_slugify

    readme = (REPO / "README.md").read_text()
    checked = 0
    for target in LINK.findall(readme):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        assert (REPO / path).exists(), target
        if anchor:
            headings = re.findall(r"^#{1,3} (.+)$", (REPO / path).read_text(), re.M)
            assert anchor in {default_slugify(heading) for heading in headings}, target
        checked += 1
    assert checked >= 10  # every docs page, SECURITY.md, deploy/ and bench/


def test_every_test_file_the_docs_name_exists():
    """As `pipeline/test_retries.py` (from tests/), `tests/system/test_deploy.py`, or by its name alone."""
    tests = REPO / "tests"
    files = [REPO / "README.md", REPO / "SECURITY.md", *DOCS.glob("*.md"), *REPO.glob("*/README.md")]
    named = {m for f in files for m in re.findall(r"(?:tests/)?(?:[a-z_]+/)?test_[a-z0-9_]+\.py", f.read_text())}
    assert len(named) > 20
    everywhere = {path.name for path in tests.rglob("test_*.py")}  # names are unique across folders
    for name in named:
        assert (tests / name.removeprefix("tests/")).is_file() if "/" in name else name in everywhere, name
