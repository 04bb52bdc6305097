"""A course folder for nbgrader's exchange on a JupyterHub: ``python -m autograder.hub COURSE [ID ...]``.

    python -m autograder.hub ~/peft-course ch04_lora        (or: make hub-course COURSE=<folder> IDS=ch04_lora)

Writes an nbgrader course folder: ``source/<id>/`` (the solutions), ``release/<id>/`` (the student
edition, made by ``nbgrader generate_assignment`` with the course's settings: the notebooks of
``notebooks/<id>/``), ``gradebook.db`` and ``nbgrader_config.py``. From that folder nbgrader's own
commands take over: ``nbgrader release_assignment <id>``, the students' *Assignments* tab (fetch,
submit), ``nbgrader collect <id>``; ``COURSE/submitted`` is then a class folder for ``make grade``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .course import ROOT, SOLUTIONS, assignments
from .scoring import prepare_course


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("course", type=Path, help="the course folder (created; reused if it exists)")
    parser.add_argument("ids", nargs="*", help="assignment ids (default: all)")
    args = parser.parse_args(argv)
    known = assignments()
    unknown = [i for i in args.ids if i not in known]
    if unknown:
        parser.error(f"unknown assignment(s) {unknown}; known: {known}")
    course = args.course.resolve()
    if course == ROOT or course.is_relative_to(SOLUTIONS) or course.is_relative_to(ROOT / "notebooks"):
        parser.error("COURSE must be a folder outside the course's sources")
    ids = args.ids or known
    prepare_course(course, SOLUTIONS, ids)
    print(f"course folder {course}: release/{{{','.join(ids)}}} ready. Next, in {course}:")
    for assignment in ids:
        print(f"  nbgrader release_assignment {assignment}   # students fetch it in the Assignments tab")
    print(f"  nbgrader collect <id>   # then: make grade SUBMISSIONS={course / 'submitted'} OUT=<folder>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
