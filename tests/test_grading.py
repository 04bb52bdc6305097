"""The autograder end to end on real notebooks: one class, graded once through `python -m autograder.grade`.

The class (an LMS-style zip, graded with 2 workers) holds, for every chapter: the solution, the
untouched student edition, the classic mistakes of `autograder/mistakes/<id>.yml` packed into as few
submissions as their units allow (`autograder.mistakes.pack`: one mistake per answer cell, disjoint
lost cells; about a quarter of the notebooks one submission per mistake would need);
then a resubmission, files that are not notebooks, two students who tampered with the tests (one
replaced a test cell by `pass` and made the mistake it catches, one deleted a test cell), names as
Colab, browsers, Jupyter, Canvas, Moodle and Blackboard give them, damaged notebooks (metadata
stripped, cells split, duplicated, reordered), and code that loops, exits or prints without end.
"""

import copy
import csv
import hashlib
import json
import time
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
    students = write_class(work / "class", CHAPTERS, packed=True)
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
        for path, content, when in _arrivals():
            z.writestr(zipfile.ZipInfo(path, time.localtime(when)[:6]), content)
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as z:  # 200 MB that compress to almost nothing
        with z.open(f"huge_{TAMPER.notebook}.ipynb", "w", force_zip64=True) as member:
            for _ in range(200):
                member.write(b" " * 2**20)
    before = {folder: _digest(folder) for folder in (SOLUTIONS, NOTEBOOKS)}
    out = work / "out"
    result = subprocess.run([sys.executable, "-m", "autograder.grade", str(archive), str(out), "--workers", "2",
                             "--cell-timeout", str(CELL_TIMEOUT)], cwd=ROOT,
                            env=tool_environment(), capture_output=True, text=True, timeout=3000)
    assert result.returncode == 0, result.stdout + result.stderr
    assert before == {folder: _digest(folder) for folder in (SOLUTIONS, NOTEBOOKS)}, "grading wrote into solutions/ or notebooks/"
    grades = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(open(out / "grades.csv"))}
    cells: dict = {}
    for r in csv.DictReader(open(out / "cells.csv")):
        cells.setdefault((r["student_id"], r["assignment"]), {})[r["grade_id"]] = r
    return out, grades, cells, students


TAMPER = load_mistakes("ch04_lora")[0]  # the naming, repair and misbehaving cases below use its cells
CELL_TIMEOUT = 60  # the solution's slowest cell takes a fraction of it; the endless loop costs it once
NB = TAMPER.notebook  # the notebook the arrival cases below use
# student -> (file name in the zip, what the row must say); all hold the solution unless said otherwise
ARRIVALS = {
    "colab": f"colab_Copy of {NB}.ipynb",  # Colab's name, and every cell's metadata stripped
    "48213": f"doejane_LATE_48213_5512890_{NB}-1.ipynb",  # Canvas resubmission (beats the first, blank one)
    "48214": f"Jane Doe_48214_assignsubmission_file_/{NB} (1).ipynb",  # Moodle; cells split and duplicated
    "bbuser": f"PS4_bbuser_attempt_2026-11-21-09-00-00_{NB}.ipynb",  # Blackboard; a unit moved to the end
    "nested": f"export/week 4/nested/{TAMPER.assignment}/{NB}-Copy1.ipynb",  # nested; 20 MB image output
    "mtime": f"mtime_{NB}.ipynb",  # newer than the blank "mtime_<nb> (1).ipynb"
}


def _arrivals():
    """(path in the zip, content, modification time) of the naming, repair and misbehaving cases."""
    solution = filled_notebook(TAMPER.assignment, NB)
    blank = nbformat.read(NOTEBOOKS / TAMPER.assignment / f"{NB}.ipynb", as_version=4)
    now = time.time()

    def cells_of(notebook):
        return {nbgrader_metadata(c).get("grade_id"): i for i, c in enumerate(notebook.cells)}

    stripped = copy.deepcopy(solution)
    for cell in stripped.cells:
        cell.metadata = {}
    split = copy.deepcopy(stripped)
    at = cells_of(solution)["lora_forward"]
    head, tail = split.cells[at].source.split("\n\n", 1)
    split.cells[at:at + 1] = [nbformat.v4.new_code_cell(head), nbformat.v4.new_code_cell(tail)]
    duplicate = copy.deepcopy(split.cells[cells_of(solution)["quiz"] + 1])
    duplicate["id"] = "duplicated-cell"
    split.cells.insert(cells_of(solution)["quiz"] + 1, duplicate)
    moved = copy.deepcopy(solution)
    index = cells_of(solution)
    block = moved.cells[index["md_lora_budget"]:index["test_lora_budget"] + 1]
    del moved.cells[index["md_lora_budget"]:index["test_lora_budget"] + 1]
    moved.cells += block
    images = copy.deepcopy(solution)
    images.cells[index["imports"]].outputs = [nbformat.from_dict(
        {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBORw0KGgo" * 2_000_000}})]

    def misbehaving(cell, code, before=True):
        notebook = copy.deepcopy(solution)
        target = notebook.cells[index[cell]]
        target.source = f"{code}\n{target.source}" if before else f"{target.source}\n{code}"
        return notebook

    exits = misbehaving("lora_budget", "import sys\nsys.exit()", before=False)
    exits.cells[index["count_trainable"]].source += "\nfor i in range(100_000):\n    print('spam', i)"
    yield from [
        (ARRIVALS["colab"], nbformat.writes(stripped), now),
        (f"doejane_48213_5512890_{NB}.ipynb", nbformat.writes(blank), now),
        (ARRIVALS["48213"], nbformat.writes(solution), now - 3600),
        (ARRIVALS["48214"], nbformat.writes(split), now),
        (f"PS4_bbuser_attempt_2026-11-20-09-00-00_{NB}.ipynb", nbformat.writes(blank), now),
        (ARRIVALS["bbuser"], nbformat.writes(moved), now - 3600),
        (ARRIVALS["nested"], nbformat.writes(images), now),
        (ARRIVALS["mtime"], nbformat.writes(solution), now),
        (f"mtime_{NB} (1).ipynb", nbformat.writes(blank), now - 3600),
        (f"loop_{NB}.ipynb", nbformat.writes(misbehaving("lora_budget", "while True:\n    pass")), now),
        (f"osexit_{NB}.ipynb", nbformat.writes(misbehaving("lora_budget", "import os\nos._exit(3)")), now),
        (f"exits_{NB}.ipynb", nbformat.writes(exits), now),
        (f"empty_{NB}.ipynb", "", now),
        (f"script_{NB}.ipynb", "import torch\nprint(torch.__version__)\n", now),
        (f"old_{NB}.ipynb", json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {},
                                        "worksheets": [{"cells": []}]}), now),
    ]


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
    assert "restored from the source" in grades[("tampered", chapter)]["reason"]
    tampered = _autograded_test_cells(cells[("tampered", chapter)])
    assert all(float(tampered[g]["score"]) == 0 for g in TAMPER.loses), "nbgrader must restore the original tests"
    deleted = cells[("deleted", chapter)]  # a deleted test cell is restored from the source and graded
    assert "restored from the source" in grades[("deleted", chapter)]["reason"]
    lost = {k for k, v in _autograded_test_cells(deleted).items() if v["score"] != v["max_score"]}
    assert not lost, f"the solution beneath the deleted test keeps its points: {lost}"


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
    out, grades, cells, students = graded
    student, made = next((s, made) for (s, a), made in students.items() if a == chapter and mistake in made)
    row = grades[(student, chapter)]
    assert row["status"] == "graded", row["reason"]
    tests = _autograded_test_cells(cells[(student, chapter)])
    for grade_id in mistake.loses:
        assert float(tests[grade_id]["score"]) == 0, f"{mistake.name} should lose {grade_id}"
    lost_by_pack = {g for m in made for g in m.loses}
    kept = {k: v["score"] for k, v in tests.items() if k not in lost_by_pack and v["score"] != v["max_score"]}
    others = f" (handed in with {[m.name for m in made if m != mistake]})" if len(made) > 1 else ""
    assert not kept, f"{mistake.name}{others} also lost points in {kept}"
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


@pytest.mark.parametrize("chapter, cells", [
    ("ch04_lora", ["finetune"]),
    ("ch08_capstone", ["run_load", "run_format", "run_train", "run_memory", "run_adapter",
                       "run_compare"]),
])
def test_demonstrations_skip_themselves_under_the_grader(graded, chapter, cells):
    """nbgrader's NBGRADER_EXECUTION reaches the sandboxed kernel: no fine-tune ran, no model loaded."""
    out, _, _, _ = graded
    path = next((out / "course" / "autograded" / "solution" / chapter).glob("*.ipynb"))
    outputs = {nbgrader_metadata(c).get("grade_id"): c.outputs
               for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"}
    for grade_id in cells:
        printed = "".join(o.get("text", "") for o in outputs[grade_id])
        assert "Skipped while autograding" in printed, f"{chapter}/{grade_id}: {printed[:300]}"


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
    assert "took 'late_" in late["reason"] and "ignored 'late_" in late["reason"]


@pytest.mark.parametrize("student", ARRIVALS)
def test_names_as_they_arrive_and_damaged_notebooks_get_full_marks(graded, student):
    _, grades, cells, _ = graded
    row = grades[(student, TAMPER.assignment)]
    assert row["status"] == "graded", row["reason"]
    assert row["source_file"] == ARRIVALS[student], row["reason"]
    lost = {k for k, v in _autograded_test_cells(cells[(student, TAMPER.assignment)]).items() if v["score"] != v["max_score"]}
    assert not lost, f"{student} loses {lost} ({row['reason']})"
    expected = {"colab": "cell metadata missing", "48213": "latest by LMS attempt", "48214": "joined 2 cells",
                "bbuser": "reordered", "mtime": "latest by file time"}
    assert expected.get(student, "") in row["reason"]


def test_misbehaving_code_is_contained_with_a_reason(graded):
    _, grades, cells, _ = graded
    chapter = TAMPER.assignment
    loop = grades[("loop", chapter)]
    assert f"cell lora_budget ran past {CELL_TIMEOUT} s" in loop["reason"]
    lost = {k for k, v in _autograded_test_cells(cells[("loop", chapter)]).items() if v["score"] != v["max_score"]}
    assert lost == {"test_lora_budget"}, "an endless loop costs its own unit only"
    dead = grades[("osexit", chapter)]
    assert dead["status"] == "error" and float(dead["score"]) == 0 and "kernel died" in dead["reason"]
    exits = grades[("exits", chapter)]
    assert exits["status"] == "graded" and "sys.exit()" in exits["reason"]
    assert exits["score"] == grades[("solution", chapter)]["score"], "code before sys.exit() and long prints count"


@pytest.mark.parametrize("student,reason", [("broken", "invalid JSON"), ("empty", "file is empty"),
                                            ("script", "not JSON"), ("old", "notebook format 3"),
                                            ("huge", "over the 64 MB limit")])
def test_not_a_notebook_gets_a_zero_and_a_reason(graded, student, reason):
    _, grades, _, _ = graded
    row = grades[(student, CHAPTERS[0] if student == "broken" else TAMPER.assignment)]
    assert row["status"] == "unreadable" and float(row["score"]) == 0 and float(row["max_score"]) > 0
    assert reason in row["reason"]


def test_one_row_per_student_and_assignment_and_a_class_report(graded):
    out, grades, _, students = graded
    assert len(grades) == len(students) + 4 + len(ARRIVALS) + 3 + 4
    page = (out / "report.html").read_text()
    for chapter in CHAPTERS:
        assert (out / f"report_{chapter}_scores.png").stat().st_size > 0
        assert f"report_{chapter}_units.png" in page
    assert "Not graded" in page and "osexit" in page and "cell metadata missing" in page


def test_merge_rebuilds_one_gradebook_with_every_score(graded, tmp_path):
    from nbgrader.api import Gradebook

    from autograder.merge import merge

    out, grades, _, _ = graded
    merge([out], tmp_path / "merged")
    assert (tmp_path / "merged" / "grades.csv").read_text() == (out / "grades.csv").read_text()
    with Gradebook(f"sqlite:///{tmp_path / 'merged' / 'course' / 'gradebook.db'}") as gradebook:
        for (student, assignment), row in grades.items():
            if row["status"] == "graded":
                notebook = gradebook.find_submission_notebook(row["notebook"], assignment, student)
                assert float(notebook.score) == float(row["score"]), (student, assignment)


def test_export_puts_formgraders_manual_scores_into_grades_csv(graded, tmp_path):
    """A score given by hand (as formgrader stores it: manual_score, needs_manual_grade False) reaches the
    CSV for the LMS through `python -m autograder.export OUT`; the other rows keep their scores."""
    import shutil

    from nbgrader.api import Gradebook

    from autograder.export import main as export

    out, grades, cells, _ = graded
    copy = tmp_path / "out"
    (copy / "course").mkdir(parents=True)
    for name in ("grades.csv", "cells.csv", "course/gradebook.db"):
        shutil.copyfile(out / name, copy / name)
    chapter = TAMPER.assignment
    row = grades[("solution", chapter)]
    [manual] = [k for k, v in cells[("solution", chapter)].items() if v["autograded"] == "False"]
    given = float(cells[("solution", chapter)][manual]["max_score"]) / 2
    with Gradebook(f"sqlite:///{copy / 'course' / 'gradebook.db'}") as gradebook:
        grade = gradebook.find_grade(manual, row["notebook"], chapter, "solution")
        grade.manual_score, grade.needs_manual_grade = given, False
        gradebook.db.commit()
    assert export([str(copy)]) == 0
    exported = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(open(copy / "grades.csv"))}
    mine = exported[("solution", chapter)]
    assert float(mine["score"]) == float(row["score"]) + given and float(mine["manual_score"]) == given
    assert mine["needs_manual_grade"] == "False" and row["needs_manual_grade"] == "True"
    assert exported.keys() == grades.keys()
    for key, before in grades.items():
        if key != ("solution", chapter):
            assert exported[key]["score"] == before["score"], key
    cell = next(r for r in csv.DictReader(open(copy / "cells.csv"))
                if (r["student_id"], r["assignment"], r["grade_id"]) == ("solution", chapter, manual))
    assert float(cell["score"]) == given


def test_the_jupyterhub_route_releases_collects_and_hands_the_grader_a_class_folder(graded, tmp_path):
    """The hub route of the instructors' page on a copy of the class's course folder (what
    `python -m autograder.hub` writes: source/, release/ from generate_assignment, the gradebook):
    nbgrader's exchange releases, a student fetches and submits, the instructor collects, and the
    grader's intake reads `COURSE/submitted` as a class folder. In process (no nbgrader start-up)."""
    import os
    import shutil

    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default import (ExchangeCollect, ExchangeFetchAssignment,
                                           ExchangeReleaseAssignment, ExchangeSubmit)
    from traitlets.config import Config

    from autograder import intake
    from autograder.course import notebook_names

    out, _, _, _ = graded
    chapter, course, exchange, home = TAMPER.assignment, tmp_path / "course", tmp_path / "exchange", tmp_path / "home"
    shutil.copytree(out / "course" / "release" / chapter, course / "release" / chapter)
    shutil.copyfile(out / "course" / "gradebook.db", course / "gradebook.db")
    released = sorted(p.name for p in (course / "release" / chapter).glob("*.ipynb"))
    assert released == sorted(p.name for p in (NOTEBOOKS / chapter).glob("*.ipynb"))
    for name in released:  # release/ is the student edition of notebooks/
        assert nbformat.read(course / "release" / chapter / name, as_version=4).cells == \
            nbformat.read(NOTEBOOKS / chapter / name, as_version=4).cells
    exchange.mkdir()
    os.chmod(exchange, 0o777)  # nbgrader's exchange wants a world-writable root
    home.mkdir()
    config = Config()
    config.CourseDirectory.root, config.CourseDirectory.course_id = str(course), "peft-from-scratch"
    config.CourseDirectory.assignment_id = chapter
    config.Exchange.root, config.Exchange.assignment_dir = str(exchange), str(home)
    coursedir = CourseDirectory(config=config)
    for step in (ExchangeReleaseAssignment, ExchangeFetchAssignment, ExchangeSubmit, ExchangeCollect):
        step(coursedir=coursedir, authenticator=Authenticator(config=config), config=config).start()
    found, unmatched = intake.find_submissions(course / "submitted", notebook_names())
    assert not unmatched and [(s.assignment, s.notebook + ".ipynb") for s in found] == \
        [(chapter, name) for name in released]
