"""Sphinx configuration of the voxsync documentation.

Build it with ``python docs/build.py`` (warnings are errors), or
``sphinx-build -W -b html docs docs/_build/html``.

Layout: ``index.rst`` lists the user guide (``guide/``), then every other
top-level page (``docs/<topic>.rst``, picked up by a glob: adding a page needs
no edit here), then the API reference (``reference/``), generated from the
docstrings of every public module of the package.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import voxsync  # noqa: E402

project = "voxsync"
author = "the voxsync authors"
copyright = "the voxsync authors"
release = voxsync.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"

# API reference: one page per public module, generated at build time into
# reference/_autosummary (not committed); new modules appear on their own.
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    "member-order": "bysource",
    "ignore-module-all": True,
}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_mock_imports: list[str] = []

# Docstrings are numpydoc-style; napoleon reads them.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_preprocess_types = False
napoleon_use_ivar = True  # "Attributes" as fields: no second entry beside the property
# A short name such as ``start`` or ``type`` is an attribute of several
# classes; Sphinx then links one of them and warns. Those links are right
# often enough, and the warning would fail the -W build for a cosmetic reason.
suppress_warnings = ["ref.python"]
napoleon_custom_sections = [("Events", "notes"), ("Threads", "notes")]

html_theme = "alabaster"
html_title = f"voxsync {release}"
html_static_path: list[str] = []
