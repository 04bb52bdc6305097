"""The autograder end to end on real notebooks: one class, graded once through `python -m autograder.grade`.

The class (an LMS-style zip) holds, for every chapter: the solution, the untouched student edition,
one submission per classic mistake of `autograder/mistakes/<id>.yml`, a resubmission, a file
that is not a notebook, and two students who tampered with the tests: one replaced a test cell by
`pass` (and made the mistake it catches), one deleted a test cell.
"""

import csv
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.course import MISTAKES, NOTEBOOKS, ROOT, SOLUTIONS, assignments, nbgrader_metadata, tool_environment
from autograder.leaks import fingerprints
from autograder.mistakes import filled_notebook, load_mistakes, with_mistake, write_class

pytestmark = pytest.mark.slow
CHAPTERS = [a for a in assignments() if (MISTAKES / f"{a}.yml").exists()]
SECONDS_PER_SUBMISSION = 60


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the fixture class once; return (OUT folder, rows of grades.csv, rows of cells.csv, students)."""
    work = tmp_path_factory.mktemp("class")
    students = write_class(work / "class", CHAPTERS)
    archive = work / "class.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted((work / "class").rglob("*.ipynb")):
            student, assignment, name = path.relative_to(work / "class").parts
            if student in ("solution", "blank"):  # nbgrader exchange layout
                z.write(path, f"{student}/{assignment}/{name}")
            else:  # LMS layout: <student>_<notebook>.ipynb
                z.write(path, f"{student}_{name}")
        first = CHAPTERS[0]
        name = next((NOTEBOOKS / first).glob("*.ipynb")).name
        z.write(NOTEBOOKS / first / name, f"late_{name}")  # first attempt: blank
        z.write(work / "class" / "solution" / first / name, f"late_{Path(name).stem}-2.ipynb")  # resubmission wins
        z.writestr(f"broken_{name}", '{"cells": [ this is not json')
        tampered, deleted = _tampered_submissions()
        z.writestr(f"tampered_{TAMPER.notebook}.ipynb", nbformat.writes(tampered))
        z.writestr(f"deleted_{TAMPER.notebook}.ipynb", nbformat.writes(deleted))
    before = {folder: _digest(folder) for folder in (SOLUTIONS, NOTEBOOKS)}
    out = work / "out"
    result = subprocess.run([sys.executable, "-m", "autograder.grade", str(archive), str(out)], cwd=ROOT,
                            env=tool_environment(), capture_output=True, text=True, timeout=3000)
    assert result.returncode == 0, result.stdout + result.stderr
    assert before == {folder: _digest(folder) for folder in (SOLUTIONS, NOTEBOOKS)}, "grading wrote into solutions/ or notebooks/"
    grades = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(open(out / "grades.csv"))}
    cells: dict = {}
    for r in csv.DictReader(open(out / "cells.csv")):
        cells.setdefault((r["student_id"], r["assignment"]), {})[r["grade_id"]] = r
    return out, grades, cells, students


TAMPER = load_mistakes(CHAPTERS[-1])[0]


def _tampered_submissions():
    """(a notebook with TAMPER's mistake whose catching tests are replaced by `pass`,
    the solution with TAMPER's first lost test cell deleted)."""
    tampered = with_mistake(TAMPER)
    for cell in tampered.cells:
        if nbgrader_metadata(cell).get("grade_id") in TAMPER.loses:
            cell.source = "pass"
    deleted = filled_notebook(TAMPER.assignment, TAMPER.notebook)
    deleted.cells = [c for c in deleted.cells if nbgrader_metadata(c).get("grade_id") != TAMPER.loses[0]]
    return tampered, deleted


def test_tampering_with_tests_does_not_pay(graded):
    _, grades, cells, _ = graded
    chapter = TAMPER.assignment
    tampered = _autograded_test_cells(cells[("tampered", chapter)])
    assert all(float(tampered[g]["score"]) == 0 for g in TAMPER.loses), "nbgrader must restore the original tests"
    deleted = cells[("deleted", chapter)]
    assert float(deleted[TAMPER.loses[0]]["score"]) == 0, "a deleted test cell scores nothing"
    assert grades[("deleted", chapter)]["needs_manual_grade"] == "True", "a deleted test cell is flagged for a grader"
    kept = {k for k, v in _autograded_test_cells(deleted).items() if v["score"] != v["max_score"]}
    assert not kept, f"the other units keep their points: {kept}"


def _autograded_test_cells(cells):
    """Test cells scored by the autograder (not the manually graded answers)."""
    return {k: v for k, v in cells.items() if v["autograded"] == "True" and k.startswith("test_")}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solution_gets_full_marks(graded, chapter):
    _, grades, cells, _ = graded
    row = grades[("solution", chapter)]
    assert row["status"] == "graded", row["reason"]
    tests = _autograded_test_cells(cells[("solution", chapter)])
    assert len(tests) >= 5
    lost = {k: v["score"] for k, v in tests.items() if v["score"] != v["max_score"]}
    assert not lost, f"the solution loses points in {lost}"
    manual = {k for k, v in cells[("solution", chapter)].items() if not k.startswith("test_")}
    assert manual, "each chapter has a manually graded discussion question"
    assert row["needs_manual_grade"] == "True"
    assert float(row["grading_seconds"]) <= SECONDS_PER_SUBMISSION


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_blank_student_edition_scores_zero_and_is_graded(graded, chapter):
    _, grades, _, _ = graded
    row = grades[("blank", chapter)]
    assert row["status"] == "graded", row["reason"]
    assert float(row["score"]) == 0 and float(row["max_score"]) > 0


MISTAKE_CASES = [(m.assignment, m) for chapter in CHAPTERS for m in load_mistakes(chapter)]


def test_each_chapter_has_at_least_six_classic_mistakes():
    for chapter in CHAPTERS:
        assert len(load_mistakes(chapter)) >= 6, chapter
    assert {"ch01_memory_math", "ch04_lora"} <= set(CHAPTERS)


@pytest.mark.parametrize("chapter,mistake", MISTAKE_CASES, ids=[f"{c}:{m.name}" for c, m in MISTAKE_CASES])
def test_mistake_loses_its_unit_and_only_its_unit(graded, chapter, mistake):
    out, grades, cells, _ = graded
    student = mistake.name.replace("_", "-")
    row = grades[(student, chapter)]
    assert row["status"] == "graded", row["reason"]
    tests = _autograded_test_cells(cells[(student, chapter)])
    for grade_id in mistake.loses:
        assert float(tests[grade_id]["score"]) == 0, f"{mistake.name} should lose {grade_id}"
    kept = {k: v["score"] for k, v in tests.items() if k not in mistake.loses and v["score"] != v["max_score"]}
    assert not kept, f"{mistake.name} also lost points in {kept}"
    # The failing test says what is wrong, in words (not a bare AssertionError or a crash).
    notebook = nbformat.read(next((out / "course" / "autograded" / student / chapter).glob("*.ipynb")), as_version=4)
    for cell in notebook.cells:
        if nbgrader_metadata(cell).get("grade_id") in mistake.loses:
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert errors and errors[0].ename == "AssertionError", f"{mistake.name}: {errors[:1]}"
            assert len(errors[0].evalue) >= 30, f"{mistake.name}: message too terse: {errors[0].evalue!r}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_test_cell_writes_to_stderr(graded, chapter):
    out, _, _, _ = graded
    for path in (out / "course" / "autograded" / "solution" / chapter).glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if nbgrader_metadata(cell).get("grade") and cell.cell_type == "code":
                streams = [o for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
                assert not streams, f"{cell.metadata['nbgrader']['grade_id']} writes to stderr: {streams[0].text[:200]}"


def test_feedback_never_shows_hidden_tests(graded):
    out, grades, _, _ = graded
    hidden = fingerprints(solutions_too=False)
    assert hidden
    pages = list((out / "feedback").rglob("*.html"))
    assert len(pages) == sum(r["status"] == "graded" for r in grades.values())
    for page in pages:
        text = page.read_text()
        shown = [line for line in hidden if line in text]
        assert not shown, f"{page.relative_to(out)} shows hidden test lines: {shown[:3]}"
        assert "HIDDEN TESTS" not in text


def test_resubmission_and_unreadable_file(graded):
    _, grades, _, _ = graded
    first = CHAPTERS[0]
    late = grades[("late", first)]
    assert late["status"] == "graded" and late["score"] == grades[("solution", first)]["score"]
    broken = grades[("broken", first)]
    assert broken["status"] == "unreadable" and float(broken["score"]) == 0
    assert "not a readable notebook" in broken["reason"]
    assert len(grades) == len(graded[3]) + 4, "one row per student and assignment"
