"""Fixture submissions: the solution with one classic mistake each, built from ``mistakes/<id>.yml``.

    python -m autograder.mistakes OUT   # writes a class folder OUT/<student>/<assignment>/<nb>.ipynb

Each fixture is a *student edition* notebook filled in with the solution code (as a student who
got everything right would hand it in), then one answer cell edited by the mistake's ``replace`` →
``with``. Besides the mistakes every class gets ``solution`` (all right) and ``blank`` (the
student edition untouched).
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

from .course import MISTAKES, NOTEBOOKS, SOLUTIONS, nbgrader_metadata

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


@dataclass(frozen=True)
class Mistake:
    assignment: str
    notebook: str
    name: str
    cell: str
    replace: str
    with_: str
    loses: tuple[str, ...]


def load_mistakes(assignment: str, folder: Path = MISTAKES) -> list[Mistake]:
    """The mistakes listed for ``assignment`` (an error if a field is missing)."""
    path = folder / f"{assignment}.yml"
    spec = yaml.safe_load(path.read_text())
    mistakes = []
    for entry in spec["mistakes"]:
        missing = {"name", "cell", "replace", "with", "loses"} - set(entry)
        if missing:
            raise ValueError(f"{path}: mistake {entry.get('name')!r} lacks {sorted(missing)}")
        mistakes.append(Mistake(assignment, Path(spec["notebook"]).stem, entry["name"], entry["cell"],
                                entry["replace"], entry["with"], tuple(entry["loses"])))
    return mistakes


def strip_markers(source: str) -> str:
    """An answer cell as a student would write it (code or text): the solution markers removed."""
    return "\n".join(line for line in source.splitlines() if line.strip() not in (BEGIN, END))


def filled_notebook(assignment: str, notebook: str) -> nbformat.NotebookNode:
    """The student edition with every answer cell replaced by the solution's code or text."""
    released = nbformat.read(NOTEBOOKS / assignment / f"{notebook}.ipynb", as_version=4)
    solution = nbformat.read(SOLUTIONS / assignment / f"{notebook}.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in solution.cells
               if nbgrader_metadata(c).get("solution")}
    filled = copy.deepcopy(released)
    for cell in filled.cells:
        grade_id = nbgrader_metadata(cell).get("grade_id")
        if nbgrader_metadata(cell).get("solution") and grade_id in answers:
            cell.source = strip_markers(answers[grade_id])
    return filled


def with_mistake(mistake: Mistake) -> nbformat.NotebookNode:
    """The filled notebook with ``mistake`` applied (its text must occur exactly once in its cell)."""
    notebook = filled_notebook(mistake.assignment, mistake.notebook)
    cells = [c for c in notebook.cells if nbgrader_metadata(c).get("grade_id") == mistake.cell]
    if len(cells) != 1:
        raise ValueError(f"mistake {mistake.name}: no single answer cell {mistake.cell!r}")
    count = cells[0].source.count(mistake.replace)
    if count != 1:
        raise ValueError(f"mistake {mistake.name}: {mistake.replace!r} occurs {count} times in cell {mistake.cell!r}")
    cells[0].source = cells[0].source.replace(mistake.replace, mistake.with_)
    return notebook


def write_class(out: Path, assignment_ids: list[str]) -> dict[tuple[str, str], Mistake | None]:
    """Write fixture submissions for ``assignment_ids`` as a class folder; map (student, assignment) → mistake."""
    students: dict[tuple[str, str], Mistake | None] = {}
    for assignment in assignment_ids:
        mistakes = load_mistakes(assignment)
        notebook = mistakes[0].notebook if mistakes else next((SOLUTIONS / assignment).glob("*.ipynb")).stem
        submissions = {"solution": (filled_notebook(assignment, notebook), None),
                       "blank": (nbformat.read(NOTEBOOKS / assignment / f"{notebook}.ipynb", as_version=4), None)}
        for mistake in mistakes:
            submissions[mistake.name.replace("_", "-")] = (with_mistake(mistake), mistake)
        for student, (nb, mistake) in submissions.items():
            path = out / student / assignment / f"{notebook}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
            students[(student, assignment)] = mistake
    return students


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("ids", nargs="*")
    args = parser.parse_args(argv)
    from .course import assignments

    students = write_class(args.out, args.ids or [a for a in assignments() if (MISTAKES / f"{a}.yml").exists()])
    print(f"wrote {len(students)} fixture submissions to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
