"""Scoring: the class gradebook, the scores of each run copied into it, grades.csv, cells.csv, feedback.

The class course folder ``OUT/course`` is an ordinary nbgrader course (formgrader opens it for the
discussion questions): ``source/`` and the gradebook come from ``generate_assignment``; each student's
run happens in a scratch copy (``autograder/run.py``), and ``record`` copies its grades, comments and
executed notebook here, one student at a time (sqlite has one writer).
"""

from __future__ import annotations

import csv
import shutil
import warnings
from pathlib import Path

from .course import nbgrader
from .intake import Submission

GRADES_COLUMNS = ["student_id", "assignment", "notebook", "score", "max_score", "needs_manual_grade", "status",
                  "reason", "flags", "grading_seconds", "source_file"]
CELLS_COLUMNS = ["student_id", "assignment", "notebook", "grade_id", "score", "max_score", "autograded"]


def _gradebook(db: Path):
    from nbgrader.api import Gradebook

    return Gradebook(f"sqlite:///{db}")


def prepare_course(course: Path, solutions: Path, assignments: list[str]) -> dict[str, float]:
    """Release ``assignments`` into the class course folder (gradebook included); return their max scores."""
    for assignment in assignments:
        source = course / "source" / assignment
        if source.exists():
            shutil.rmtree(source)
        shutil.copytree(solutions / assignment, source, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        result = nbgrader(["generate_assignment", assignment, "--force"], course)
        if result.returncode != 0:
            raise SystemExit(f"error: nbgrader could not process solutions/{assignment}:\n{result.stderr[-2000:]}")
    with _gradebook(course / "gradebook.db") as gradebook:
        return {a: float(gradebook.find_assignment(a).max_score) for a in assignments}


def gradebook_template(course: Path, template: Path) -> Path:
    """A copy of the class gradebook to start each run from (assignments known, no other student in it)."""
    template.parent.mkdir(parents=True, exist_ok=True)
    from nbgrader.api import Gradebook

    shutil.copyfile(course / "gradebook.db", template)
    with Gradebook(f"sqlite:///{template}") as gradebook:
        for student in list(gradebook.students):
            gradebook.remove_student(student.id)
    return template


def read_scores(db: Path, submission: Submission) -> bool:
    """Fill the submission's score and cells from a (scratch) gradebook; False if nothing was recorded."""
    from nbgrader.api import MissingEntry

    with _gradebook(db) as gradebook:
        try:
            notebook = gradebook.find_submission_notebook(submission.notebook, submission.assignment, submission.student)
        except MissingEntry:
            return False
        submission.score = float(notebook.score)
        submission.max_score = float(notebook.max_score)
        submission.cells = [{
            "grade_id": grade.name,
            "score": float(grade.score),
            "max_score": float(grade.max_score),
            "auto": grade.auto_score is not None,
            "auto_score": grade.auto_score,
            "needs_manual_grade": bool(grade.needs_manual_grade),
        } for grade in sorted(notebook.grades, key=lambda g: g.name)]
        submission.comments = {c.name: c.auto_comment for c in notebook.comments}
    return True


def record(course: Path, submission: Submission, scratch: Path | None) -> None:
    """Copy one student's grades into the class gradebook and their notebooks into the course folder."""
    with _gradebook(course / "gradebook.db") as gradebook, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqlalchemy's autoflush notes from inside nbgrader.api
        gradebook.update_or_create_student(submission.student)
        gradebook.update_or_create_submission(submission.assignment, submission.student)
        for cell in submission.cells:
            grade = gradebook.find_grade(cell["grade_id"], submission.notebook, submission.assignment, submission.student)
            grade.auto_score = cell.get("auto_score")
            grade.manual_score = None
            grade.needs_manual_grade = cell["needs_manual_grade"]
        for name, text in submission.comments.items():
            comment = gradebook.find_comment(name, submission.notebook, submission.assignment, submission.student)
            comment.auto_comment = text
        gradebook.db.commit()
    if scratch is None:
        return
    for stage in ("submitted", "autograded"):
        source = scratch / stage / submission.student / submission.assignment
        target = course / stage / submission.student / submission.assignment
        if target.exists():
            shutil.rmtree(target)
        if source.exists():
            shutil.copytree(source, target)


def write_feedback(course: Path, out: Path, submissions: list[Submission]) -> None:
    """Feedback HTML for the graded ``submissions`` (one nbgrader run per assignment), into OUT/feedback."""
    for assignment in sorted({s.assignment for s in submissions}):
        mine = [s for s in submissions if s.assignment == assignment]
        others = _other_students(course, assignment, {s.student for s in mine})
        result = nbgrader(["generate_feedback", assignment, "--force",
                           f"--CourseDirectory.student_id_exclude={others}"], course)
        for submission in mine:
            source = course / "feedback" / submission.student / assignment / f"{submission.notebook}.html"
            if not source.exists():
                submission.reasons.append("graded, but feedback could not be generated: "
                                          + last_error(result.stdout + result.stderr))
                continue
            target = out / "feedback" / submission.student / assignment / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _other_students(course: Path, assignment: str, wanted: set[str]) -> str:
    """Students autograded for ``assignment`` in ``course`` but not ``wanted`` now (failed or earlier runs)."""
    folder = course / "autograded"
    present = {p.parent.name for p in folder.glob(f"*/{assignment}")} if folder.exists() else set()
    return ",".join(sorted(present - wanted))


def last_error(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if "[ERROR]" in line or "Error" in line]
    return (lines[-1] if lines else log.strip().splitlines()[-1] if log.strip() else "nbgrader failed")[:300]


def write_csv(out: Path, results: list[Submission]) -> None:
    """``OUT/grades.csv`` (one row per student and assignment) and ``OUT/cells.csv`` (one per graded cell)."""
    ordered = sorted(results, key=lambda s: (s.student, s.assignment, s.source))
    with open(out / "grades.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(GRADES_COLUMNS)
        for s in ordered:
            manual = any(cell["needs_manual_grade"] for cell in s.cells)
            writer.writerow([s.student, s.assignment, s.notebook, f"{s.score:g}", f"{s.max_score:g}", manual, s.status,
                             s.reason, ";".join(s.flags), f"{s.seconds:.1f}", s.source])
    with open(out / "cells.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CELLS_COLUMNS)
        for s in ordered:
            for cell in s.cells:
                writer.writerow([s.student, s.assignment, s.notebook, cell["grade_id"], f"{cell['score']:g}",
                                 f"{cell['max_score']:g}", cell["auto"]])
