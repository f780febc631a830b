"""Sphinx configuration of the docs site (docs/*.md, Markdown through myst-parser).

Built strictly: `sphinx-build -W --keep-going -n -b html docs <out>` (.ci/run and
tests/docs/test_docs.py), so a broken link, a missing `#anchor` or a page left out of the
index fails the build. The pages are plain Markdown that GitHub renders as well: links between
them are relative `.md` paths, which myst turns into checked cross-references.
"""

project = "mcp-webtools"
author = "mcp-webtools contributors"
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
# `page.md#some-heading` links are checked too: headings down to ### get GitHub's anchors.
myst_heading_anchors = 3
html_theme = "alabaster"
html_title = "mcp-webtools"
# Without a network: no intersphinx, no remote images.
html_static_path: list[str] = []


def _repository_markdown_as_files(app, doctree):
    """Links to Markdown files outside docs/ (the README, SECURITY.md, deploy/README.md, ...) are
    relative paths that GitHub follows; here they become links to a copy of the file (a download),
    still checked: a missing file stays an unknown document, which fails the strict build."""
    import os
    from pathlib import Path

    from sphinx import addnodes

    srcdir = Path(app.srcdir).resolve()
    for node in list(doctree.findall(addnodes.pending_xref)):
        if node.get("reftype") != "myst" or node.get("refdomain") != "doc" or node.get("reftargetid"):
            continue
        target = (srcdir / f"{node['reftarget']}.md").resolve()
        if srcdir in target.parents or not target.is_file():
            continue
        here = (srcdir / node["refdoc"]).parent
        link = addnodes.download_reference(
            refdomain=None,
            reftype="myst",
            reftarget=Path(os.path.relpath(target, here)).as_posix(),
            refexplicit=True,
            refdoc=node["refdoc"],
        )
        link += node.children
        node.replace_self(link)


def setup(app):
    # Before Sphinx's own download collector (priority 500), which copies the files linked.
    app.connect("doctree-read", _repository_markdown_as_files, priority=400)
    return {"parallel_read_safe": True}
