"""Code stays readable without scrolling sideways: CONTRIBUTING.md's 90-character line limit.

Checked in the code cells of every solution notebook (the student edition is generated from them)
and in the ``{code-cell}`` blocks of every chapter page. Markdown prose is free.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from autograder.course import ROOT, SOLUTIONS

MAX_CODE_LINE = 90
CODE_CELL_OPENING = re.compile(r"^(`{3,})\{code-cell\}")


def notebook_code_lines(path: Path) -> list[tuple[str, str]]:
    """(place, line) for each line of each code cell; place reads ``file, cell N line M``."""
    notebook = nbformat.read(path, as_version=4)
    found = []
    for number, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            for line_number, line in enumerate(cell.source.splitlines(), 1):
                found.append((f"{path.relative_to(ROOT)}, cell {number} line {line_number}", line))
    return found


def page_code_lines(path: Path) -> list[tuple[str, str]]:
    """(place, line) for each line inside a ``{code-cell}`` block of a MyST page (``file:line``)."""
    found, fence = [], None
    for line_number, line in enumerate(path.read_text().splitlines(), 1):
        opening = CODE_CELL_OPENING.match(line)
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is not None:
            found.append((f"{path.relative_to(ROOT)}:{line_number}", line))
    return found


def test_code_cells_are_found():
    pages = sorted((ROOT / "book").glob("*.md"))
    assert any(page_code_lines(page) for page in pages), "no {code-cell} block found in book/*.md"
    assert all(notebook_code_lines(path) for path in SOLUTIONS.glob("*/*.ipynb"))


def test_code_lines_fit_in_90_characters():
    lines = [place_line for path in sorted(SOLUTIONS.glob("*/*.ipynb"))
             for place_line in notebook_code_lines(path)]
    lines += [place_line for page in sorted((ROOT / "book").glob("*.md"))
              for place_line in page_code_lines(page)]
    too_long = [f"{place} ({len(line)} characters)" for place, line in lines
                if len(line) > MAX_CODE_LINE]
    assert not too_long, (f"{len(too_long)} code lines longer than {MAX_CODE_LINE} characters "
                          "(break inside brackets, as black does):\n" + "\n".join(too_long))
