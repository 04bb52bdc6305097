"""Merge the scores given by hand in formgrader into ``grades.csv``: the file you upload to the LMS.

    python -m autograder.export OUT          (or: make export OUT=<folder>)

``make grade`` writes ``OUT/grades.csv`` with the autograded scores; the discussion questions are
then graded by hand in nbgrader's formgrader on ``OUT/course``, which stores those scores in
``OUT/course/gradebook.db`` only. This command reads the gradebook back: for every graded row of
``OUT/grades.csv`` the score becomes the notebook's score in the gradebook (autograded cells plus
manual scores, formgrader's extra credit included), ``manual_score`` the points given by hand, and
``needs_manual_grade`` whether a cell still waits for a person. ``OUT/cells.csv`` gets the same
per-cell scores. Rows that were not graded (unreadable files, kernels that died) keep their 0.
Run it after hand grading, and again after any change in formgrader: it always starts from the
gradebook, so running it twice gives the same file.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from .scoring import CELLS_COLUMNS, GRADES_COLUMNS

EXPORT_COLUMNS = GRADES_COLUMNS[:5] + ["manual_score"] + GRADES_COLUMNS[5:]


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _write(path: Path, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)


def export(out: Path) -> tuple[int, int]:
    """Rewrite ``out/grades.csv`` and ``out/cells.csv`` from ``out/course/gradebook.db``.

    Returns (rows updated from the gradebook, rows that still need a manual grade).
    """
    from nbgrader.api import Gradebook, MissingEntry

    grades, cells, db = out / "grades.csv", out / "cells.csv", out / "course" / "gradebook.db"
    for needed in (grades, db):
        if not needed.exists():
            raise SystemExit(f"error: {needed} does not exist (is {out} the OUT of `make grade`?)")
    rows, cell_rows = _read(grades), _read(cells) if cells.exists() else []
    by_cell = {(r["student_id"], r["assignment"], r["notebook"], r["grade_id"]): r for r in cell_rows}
    updated = pending = 0
    with Gradebook(f"sqlite:///{db}") as gradebook:
        for row in rows:
            row.setdefault("manual_score", "")
            if row["status"] != "graded":
                row["manual_score"] = row["manual_score"] or "0"
                continue
            try:
                notebook = gradebook.find_submission_notebook(row["notebook"], row["assignment"],
                                                              row["student_id"])
            except MissingEntry:
                raise SystemExit(f"error: {row['student_id']} {row['assignment']} is in grades.csv but not in "
                                 f"the gradebook {db}") from None
            manual = 0.0
            for grade in notebook.grades:
                if grade.manual_score is not None:
                    manual += float(grade.manual_score)
                key = (row["student_id"], row["assignment"], row["notebook"], grade.name)
                if key in by_cell:
                    by_cell[key]["score"] = f"{float(grade.score):g}"
            row["score"] = f"{float(notebook.score):g}"
            row["max_score"] = f"{float(notebook.max_score):g}"
            row["manual_score"] = f"{manual:g}"
            row["needs_manual_grade"] = str(bool(notebook.needs_manual_grade))
            updated += 1
            pending += bool(notebook.needs_manual_grade)
    _write(grades, EXPORT_COLUMNS, rows)
    if cell_rows:
        _write(cells, CELLS_COLUMNS, cell_rows)
    return updated, pending


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the OUT folder of `make grade` (or of `make merge`)")
    args = parser.parse_args(argv)
    updated, pending = export(args.out.resolve())
    print(f"{args.out / 'grades.csv'}: {updated} rows with the gradebook's scores (manual grades included)")
    if pending:
        print(f"warning: {pending} submissions still have cells to grade by hand in formgrader "
              "(needs_manual_grade is True): their score lacks those points", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
