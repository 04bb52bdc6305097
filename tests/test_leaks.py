"""The leak scan finds planted solution and hidden-test lines, also inside HTML and notebooks."""

import html

import nbformat

from autograder.leaks import fingerprints, scan
from autograder.course import SOLUTIONS


def _one_secret(kind_marker):
    for path in sorted(SOLUTIONS.glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            lines = cell.source.splitlines()
            if kind_marker in cell.source:
                start = next(i for i, l in enumerate(lines) if kind_marker in l)
                for line in lines[start + 1:]:
                    if line.strip() in fingerprints():
                        return line.strip()
    raise AssertionError(f"no {kind_marker} line found")


def test_hidden_and_solution_lines_are_fingerprinted():
    hidden = fingerprints(solutions_too=False)
    everything = fingerprints()
    assert set(hidden) < set(everything)
    assert _one_secret("### BEGIN HIDDEN TESTS") in hidden
    assert _one_secret("### BEGIN SOLUTION") not in hidden


def test_scan_finds_planted_lines_in_text_html_and_notebooks(tmp_path):
    secrets = fingerprints()
    solution_line = _one_secret("### BEGIN SOLUTION")
    hidden_line = _one_secret("### BEGIN HIDDEN TESTS")
    (tmp_path / "clean.md").write_text("# Nothing to see\n\nprint('hello')\n")
    (tmp_path / "page.html").write_text(f"<pre><span>{html.escape(hidden_line)}</span></pre>")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1\n    " + solution_line)])
    nbformat.write(notebook, tmp_path / "nb.ipynb")
    found = {(leak.path.name, leak.line) for leak in scan(tmp_path, secrets)}
    assert ("page.html", hidden_line) in found
    assert ("nb.ipynb", solution_line) in found
    assert not any(name == "clean.md" for name, _ in found)


def test_student_notebooks_and_book_pages_are_clean():
    from autograder.course import ROOT

    leaks = scan(ROOT / "notebooks", fingerprints()) + scan(ROOT / "book", fingerprints())
    assert not leaks, [(str(l.path), l.line) for l in leaks[:5]]
