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


def test_answer_scan_finds_expected_values_in_any_common_format(tmp_path):
    from autograder.leaks import answers, scan_answers

    folder = tmp_path / "answers"
    folder.mkdir()
    (folder / "ch99.yml").write_text('values:\n  - 18874368\n  - 37.7\n  - "r * (in + out)"\n')
    expected = answers(folder)
    pages = {
        "plain.md": "the budget is 18874368 parameters",
        "commas.html": "<p>the budget is <b>18,874,368</b></p>",
        "python.md": "budget = 18_874_368",
        "thin.html": "<p>18\u202f874\u202f368 parameters</p>",
        "float.md": "about 37.7 MB",
        "formula.html": "<code>r&nbsp;*  (in + out)</code>",
        "clean.md": "118874368 and 18874368.5 and 137.7 and 37.75 and r * in",
    }
    for name, text in pages.items():
        (tmp_path / name).write_text(text)
    found = {leak.path.name for leak in scan_answers(sorted(tmp_path.glob("*.*")), expected)}
    assert found == set(pages) - {"clean.md"}


def test_every_chapter_declares_its_expected_values():
    from autograder.course import ANSWERS, assignments
    from autograder.leaks import answers

    missing = [a for a in assignments() if not (ANSWERS / f"{a}.yml").exists()]
    assert not missing, f"declare the values each exercise expects in autograder/answers/<id>.yml: {missing}"
    assert answers()


def test_book_pages_print_no_expected_value():
    """The page sources (their executed HTML is scanned on a fresh build of the public edition: test_book)."""
    from autograder.course import ROOT
    from autograder.leaks import answers, scan_answers

    leaks = scan_answers(sorted((ROOT / "book").glob("*.md")), answers())
    assert not leaks, [(str(l.path.relative_to(ROOT)), l.line, l.origin) for l in leaks[:10]]
