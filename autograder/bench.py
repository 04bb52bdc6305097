"""Benchmark the grader on a synthetic class of one chapter (not a test: it prints numbers).

    python -m autograder.bench OUT [--students 60] [--chapter ch04_lora] [--workers 2] [--cell-timeout 30]

The class cycles through: the solution, the blank student edition, every classic mistake of the
chapter, the solution with its metadata stripped, a notebook that is not JSON, an endless loop in an
answer, ``os._exit`` in an answer, and ``sys.exit()`` with a flood of prints. Prints the wall time,
the median seconds per notebook, the throughput, and where a run's time goes (startup: nbgrader's
bookkeeping before the kernel is ready plus the kernel's start; setup cells: the notebook's imports;
other cells; bookkeeping after the last cell: saving grades and the executed notebook).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import nbformat

from .course import NOTEBOOKS, nbgrader_metadata
from .mistakes import filled_notebook, load_mistakes, with_mistake


def synthetic_class(folder: Path, chapter: str, students: int) -> None:
    """Write ``students`` submissions of ``chapter`` as ``<student>_<notebook>.ipynb`` into ``folder``."""
    mistakes = load_mistakes(chapter)
    notebook = mistakes[0].notebook
    solution = filled_notebook(chapter, notebook)
    stripped = copy.deepcopy(solution)
    for cell in stripped.cells:
        cell.metadata = {}

    def misbehaving(code: str) -> nbformat.NotebookNode:
        broken = copy.deepcopy(solution)
        answer = next(c for c in reversed(broken.cells) if nbgrader_metadata(c).get("solution") and c.cell_type == "code")
        answer.source = code + "\n" + answer.source
        return broken

    kinds = [("solution", nbformat.writes(solution)),
             ("blank", nbformat.writes(nbformat.read(NOTEBOOKS / chapter / f"{notebook}.ipynb", as_version=4))),
             *[(m.name.replace("_", "-"), nbformat.writes(with_mistake(m))) for m in mistakes],
             ("stripped", nbformat.writes(stripped)),
             ("script", "import torch\n"),
             ("loop", nbformat.writes(misbehaving("while True:\n    pass"))),
             ("osexit", nbformat.writes(misbehaving("import os\nos._exit(1)"))),
             ("exits", nbformat.writes(misbehaving("for i in range(20_000):\n    print(i)\nimport sys\nsys.exit()")))]
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(students):
        kind, text = kinds[index % len(kinds)]
        (folder / f"{kind}{index:03d}_{notebook}.ipynb").write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--students", type=int, default=60)
    parser.add_argument("--chapter", default="ch04_lora")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cell-timeout", type=int, default=30)
    args = parser.parse_args(argv)
    from . import grade

    synthetic_class(args.out / "class", args.chapter, args.students)
    options = grade.parser().parse_args([str(args.out / "class"), str(args.out / "graded"), "--workers",
                                         str(args.workers), "--cell-timeout", str(args.cell_timeout)])
    start = time.perf_counter()
    results = grade.grade(options.submissions, options.out.resolve(), options)
    wall = time.perf_counter() - start
    ran = [r for r in results if r.seconds]
    print(f"{len(results)} submissions, {len(ran)} run, {args.workers} workers: wall {wall:.0f} s "
          f"(all stages), {60 * len(results) / wall:.1f} submissions/min")
    print(f"median {statistics.median(r.seconds for r in ran):.1f} s per notebook run")
    for phase in ("startup", "setup_cells", "other_cells", "bookkeeping"):
        values = [r.timings[phase] for r in ran if phase in r.timings]
        if values:
            print(f"  {phase:12s} median {statistics.median(values):5.1f} s   total {sum(values):6.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
