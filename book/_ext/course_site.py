"""Small Sphinx fixes for the course website (loaded from _config.yml's ``local_extensions``).

sphinx-thebe adds its configuration script once per read of the sources; when Jupyter Book reads them
twice the page declares ``const THEBE_JS_URL`` twice, and the browser reports a SyntaxError on every
page. Each script is emitted once here.
"""

from __future__ import annotations


def _script_once(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    unique, seen = [], set()
    for script in scripts:
        # None and "" both mean an inline script: compare file name, priority and attributes (the body)
        if hasattr(script, "filename"):
            attributes = tuple(sorted((script.attributes or {}).items()))
            key = (script.filename or "", script.priority, attributes)
        else:  # a plain string (older Sphinx)
            key = (str(script),)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    # In place: this list is the builder's, and extensions called later (MathJax) append to it.
    scripts[:] = unique


def setup(app):
    # Early: Sphinx stops calling html-page-context handlers at the first one that returns a value.
    app.connect("html-page-context", _script_once, priority=10)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
