"""Fixture submissions: the solution with one classic mistake each, built from ``mistakes/<id>.yml``.

    python -m autograder.mistakes OUT [IDS...]         # one submission per mistake
    python -m autograder.mistakes OUT --pack [IDS...]  # mistakes of different units share a notebook

Each fixture is a *student edition* notebook filled in with the solution code (as a student who
got everything right would hand it in), then one answer cell edited by the mistake's ``replace`` →
``with``. Besides the mistakes every class gets ``solution`` (all right) and ``blank`` (the
student edition untouched).

Packing: a test cell grades its own unit only (CONTRIBUTING.md), so mistakes in *different* answer
cells that lose *disjoint* test cells can share one submission, which then loses exactly the union
of their cells. The test suite grades packed fixtures (about a quarter of the notebooks to run);
every mistake is still checked against its own cells. A mistake that leaked into another mistake's
unit would go unseen only while both share a notebook: the one-per-mistake class (no ``--pack``)
is the instructor's way to look at each alone.
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
    return with_mistakes([mistake])


def with_mistakes(mistakes: list[Mistake]) -> nbformat.NotebookNode:
    """The filled notebook with every one of ``mistakes`` (one assignment) applied."""
    notebook = filled_notebook(mistakes[0].assignment, mistakes[0].notebook)
    for mistake in mistakes:
        cells = [c for c in notebook.cells if nbgrader_metadata(c).get("grade_id") == mistake.cell]
        if len(cells) != 1:
            raise ValueError(f"mistake {mistake.name}: no single answer cell {mistake.cell!r}")
        count = cells[0].source.count(mistake.replace)
        if count != 1:
            raise ValueError(f"mistake {mistake.name}: {mistake.replace!r} occurs {count} times in cell {mistake.cell!r}")
        cells[0].source = cells[0].source.replace(mistake.replace, mistake.with_)
    return notebook


def pack(mistakes: list[Mistake]) -> list[list[Mistake]]:
    """Group ``mistakes`` (in order, greedily) so that no group has two in one answer cell or two
    that lose a common test cell: each group can be graded as one submission."""
    groups: list[list[Mistake]] = []
    for mistake in mistakes:
        for group in groups:
            if all(m.cell != mistake.cell and not set(m.loses) & set(mistake.loses) for m in group):
                group.append(mistake)
                break
        else:
            groups.append([mistake])
    return groups


def student_name(mistakes: list[Mistake]) -> str:
    """The fixture student who hands in ``mistakes``: the mistake's name, or ``pack-<first one's>``."""
    return mistakes[0].name.replace("_", "-") if len(mistakes) == 1 else f"pack-{mistakes[0].name.replace('_', '-')}"


def write_class(out: Path, assignment_ids: list[str],
                packed: bool = False) -> dict[tuple[str, str], list[Mistake]]:
    """Write fixture submissions for ``assignment_ids`` as a class folder; map (student, assignment)
    → the mistakes that student made (``[]`` for ``solution`` and ``blank``). ``packed``: see
    :func:`pack`."""
    students: dict[tuple[str, str], list[Mistake]] = {}
    for assignment in assignment_ids:
        mistakes = load_mistakes(assignment)
        notebook = mistakes[0].notebook if mistakes else next((SOLUTIONS / assignment).glob("*.ipynb")).stem
        submissions = {"solution": (filled_notebook(assignment, notebook), []),
                       "blank": (nbformat.read(NOTEBOOKS / assignment / f"{notebook}.ipynb", as_version=4), [])}
        for group in pack(mistakes) if packed else [[m] for m in mistakes]:
            submissions[student_name(group)] = (with_mistakes(group), group)
        for student, (nb, made) in submissions.items():
            path = out / student / assignment / f"{notebook}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
            students[(student, assignment)] = made
    return students


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("ids", nargs="*")
    parser.add_argument("--pack", action="store_true",
                        help="put mistakes of different units into one submission (as the tests grade them)")
    args = parser.parse_args(argv)
    from .course import assignments

    students = write_class(args.out, args.ids or [a for a in assignments() if (MISTAKES / f"{a}.yml").exists()],
                           packed=args.pack)
    print(f"wrote {len(students)} fixture submissions to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
