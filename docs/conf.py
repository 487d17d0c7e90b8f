"""Sphinx configuration of the leanstack documentation site (`make docs` builds it into build/site).

The pages are Markdown, read by MyST. The build runs with warnings as errors (`-W`), so a link to
a page or a heading that does not exist fails it.
"""

project = "leanstack"
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
# Headings down to ### get anchors, so `page.md#a-heading` links resolve (and are checked).
myst_heading_anchors = 4
html_theme = "alabaster"
html_title = "leanstack"
html_static_path: list[str] = []
