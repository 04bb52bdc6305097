"""Autograde a class: a folder or an LMS zip of notebooks → ``OUT/grades.csv`` + feedback HTML.

    python -m autograder.grade SUBMISSIONS OUT

Accepted naming (both may be mixed; a ``.zip`` is unpacked first):
  * ``<student_id>/<assignment>/<notebook>.ipynb``  (nbgrader's exchange layout)
  * ``<student_id>/<notebook>.ipynb``
  * ``<student_id>_<notebook>.ipynb``, optionally with an LMS resubmission suffix ``-1``, ``-2`` …
    (e.g. ``s1234567_lora.ipynb``, ``s1234567_lora-2.ipynb``; the highest suffix wins)
Notebook names are those of ``solutions/`` (``memory_math``, ``lora`` …); the assignment follows from them.

Everything is written under OUT (nothing into ``solutions/`` or ``notebooks/``):
  OUT/grades.csv          one row per student and assignment: score, max_score, status, reason
  OUT/cells.csv           one row per graded cell: the score of every test
  OUT/feedback/<student>/<assignment>/<notebook>.html   (no hidden tests in it)
  OUT/course/             the nbgrader course folder (gradebook.db, autograded notebooks)
A submission that cannot be read or graded gets a row with score 0 and the reason; the rest of the
class is graded anyway.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from .course import SOLUTIONS, nbgrader, notebook_names

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class Submission:
    """One student's notebook for one assignment, and what became of it."""

    student: str
    assignment: str
    notebook: str  # the notebook's stem, as in solutions/
    path: Path | None
    status: str = "pending"
    reason: str = ""
    seconds: float = 0.0  # autograding time
    score: float = 0.0
    max_score: float = 0.0
    cells: list[dict] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # integrity flags for the instructor (autograder/integrity.py)


def unpack(submissions: Path, incoming: Path) -> Path:
    """Return a folder of submissions: ``submissions`` itself, or the zip unpacked into ``incoming``."""
    if submissions.is_dir():
        return submissions
    if submissions.suffix.lower() == ".zip":
        if not zipfile.is_zipfile(submissions):
            raise SystemExit(f"error: {submissions} is not a readable zip file")
        incoming.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(submissions) as archive:
            for member in archive.infolist():
                target = (incoming / member.filename).resolve()
                if not target.is_relative_to(incoming.resolve()):
                    raise SystemExit(f"error: {submissions} holds an unsafe path {member.filename!r}")
            archive.extractall(incoming)
        return incoming
    raise SystemExit(f"error: {submissions} is neither a folder nor a .zip file")


def find_submissions(folder: Path, names: dict[str, str]) -> tuple[list[Submission], list[Submission]]:
    """Match every ``.ipynb`` under ``folder`` to (student, assignment, notebook).

    Returns the submissions to grade and the files that could not be matched (with a reason).
    """
    chosen: dict[tuple[str, str], tuple[int, Submission]] = {}
    unmatched: list[Submission] = []
    stems = sorted(names, key=len, reverse=True)
    for path in sorted(folder.rglob("*.ipynb")):
        relative = path.relative_to(folder)
        if any(part.startswith((".", "__MACOSX")) for part in relative.parts):
            continue
        student, stem, attempt = _parse(relative, stems)
        if student is None:
            unmatched.append(Submission(relative.stem, "?", relative.stem, path, "unmatched",
                                        f"cannot tell student and notebook from the name {str(relative)!r}; "
                                        f"expected <student_id>_<notebook>.ipynb with notebook one of {sorted(names)}"))
            continue
        if not STUDENT_ID.match(student):
            unmatched.append(Submission(student, names[stem], stem, path, "unmatched",
                                        f"student id {student!r} has characters other than letters, digits, '.', '_' and '-'"))
            continue
        key = (student, stem)
        if key not in chosen or attempt > chosen[key][0]:
            chosen[key] = (attempt, Submission(student, names[stem], stem, path))
    return [submission for _, submission in chosen.values()], unmatched


def _parse(relative: Path, stems: list[str]) -> tuple[str | None, str | None, int]:
    parts = relative.parts
    stem, attempt = relative.stem, 0
    match = re.match(r"^(.*?)(?:[-_ ]\(?(\d+)\)?)?$", stem)
    if len(parts) >= 2:  # <student>/<notebook>.ipynb or <student>/<assignment>/<notebook>.ipynb
        for candidate in (stem, match.group(1)):
            if candidate in stems:
                return parts[0], candidate, int(match.group(2) or 0) if candidate != stem else 0
    for candidate in stems:  # <student>_<notebook>[-N].ipynb
        for base, number in ((stem, 0), (match.group(1), int(match.group(2) or 0))):
            if base.endswith("_" + candidate) and len(base) > len(candidate) + 1:
                return base[: -len(candidate) - 1], candidate, number
    return None, None, attempt


def repair(notebook_path: Path, target: Path) -> None:
    """Read a submitted notebook, normalise it to nbformat 4 and write it where nbgrader expects it.

    Raises ``ValueError`` with a readable reason when the file is not a notebook.
    """
    try:
        notebook = nbformat.read(notebook_path, as_version=4)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"not a readable notebook (invalid JSON: {error})") from error
    except Exception as error:  # nbformat raises several types for malformed files
        raise ValueError(f"not a readable notebook ({type(error).__name__}: {error})") from error
    if not isinstance(notebook.get("cells"), list):
        raise ValueError("not a readable notebook (no cells)")
    for cell in notebook.cells:  # LMS and Colab round trips sometimes drop these fields
        cell.setdefault("metadata", {})
        if cell.get("cell_type") == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    notebook.metadata.pop("widgets", None)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)


def read_scores(course: Path, submission: Submission) -> None:
    """Fill score, max_score and per-cell scores from the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        try:
            notebook = gradebook.find_submission_notebook(submission.notebook, submission.assignment, submission.student)
        except MissingEntry:
            submission.status, submission.reason = "error", submission.reason or "no grades were recorded"
            return
        submission.score = float(notebook.score)
        submission.max_score = float(notebook.max_score)
        for grade in sorted(notebook.grades, key=lambda g: g.name):
            submission.cells.append({
                "grade_id": grade.name,
                "score": float(grade.score),
                "max_score": float(grade.max_score),
                "auto": grade.auto_score is not None,
                "needs_manual_grade": bool(grade.needs_manual_grade),
            })


def grade(submissions: Path, out: Path, solutions: Path = SOLUTIONS, run_options: tuple[str, ...] = ()) -> list[Submission]:
    """Grade every submission found in ``submissions`` (folder or zip) into ``out``; return the results.

    ``run_options`` are nbgrader settings for running the students' kernels (``integrity_options``).
    """
    if not submissions.exists():
        raise SystemExit(f"error: {submissions} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    course = out / "course"
    names = notebook_names(solutions)
    found, unmatched = find_submissions(unpack(submissions, out / "incoming"), names)
    if not found and not unmatched:
        raise SystemExit(f"error: no .ipynb files in {submissions}")

    needed = sorted({s.assignment for s in found})
    for assignment in needed:  # the gradebook learns each assignment from its source notebooks
        source = course / "source" / assignment
        if source.exists():
            shutil.rmtree(source)
        shutil.copytree(solutions / assignment, source, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        result = nbgrader(["generate_assignment", assignment, "--force"], course)
        if result.returncode != 0:
            raise SystemExit(f"error: nbgrader could not process solutions/{assignment}:\n{result.stderr[-2000:]}")
    max_scores = _max_scores(course, needed)

    for submission in tqdm(found, desc="autograding", unit="notebook"):
        submission.max_score = max_scores[submission.assignment]
        target = course / "submitted" / submission.student / submission.assignment / f"{submission.notebook}.ipynb"
        if target.parent.exists():
            shutil.rmtree(target.parent)
        try:
            repair(submission.path, target)
        except ValueError as error:
            submission.status, submission.reason = "unreadable", str(error)
            continue
        start = time.perf_counter()
        result = nbgrader(["autograde", submission.assignment, f"--student={submission.student}", "--force",
                           *run_options], course)
        submission.seconds = time.perf_counter() - start
        if result.returncode != 0:
            submission.status = "error"
            submission.reason = _last_error(result.stdout + result.stderr)
        else:
            submission.status = "graded"
        read_scores(course, submission)
        submission.flags = integrity_flags(course, submission)

    for assignment in needed:
        _feedback(course, out, [s for s in found if s.assignment == assignment and s.status == "graded"])
    results = found + unmatched
    _write_csv(out, results)
    return results


def integrity_flags(course: Path, submission: Submission) -> list[str]:
    """Static flags of the submitted notebook and what the guard overruled while grading it."""
    from .integrity import flags, runtime_flags

    found = []
    submitted = course / "submitted" / submission.student / submission.assignment / f"{submission.notebook}.ipynb"
    autograded = course / "autograded" / submission.student / submission.assignment / f"{submission.notebook}.ipynb"
    for path, check in ((submitted, flags), (autograded, runtime_flags)):
        if path.exists():
            found += check(nbformat.read(path, as_version=4))
    return found


def integrity_options(sandbox: bool, cell_timeout: int | None, memory_gib: float | None) -> tuple[str, ...]:
    """nbgrader settings for the students' kernels; refuses to run without bubblewrap unless told."""
    from .sandbox import available

    options = []
    if sandbox:
        works, why = available()
        if not works:
            raise SystemExit(f"error: students' notebooks must run in a sandbox, but {why}.\n"
                             "Install bubblewrap, or grade without a sandbox (students' code can then read and write "
                             "everything you can, including solutions/): --no-sandbox, or make grade ... UNSANDBOXED=1")
    else:
        options.append("--SandboxedKernelManager.isolate=False")
    if cell_timeout is not None:
        options.append(f"--Execute.timeout={cell_timeout}")
    if memory_gib is not None:
        options.append(f"--SandboxedKernelManager.memory_limit_gib={memory_gib}")
    return tuple(options)


def _max_scores(course: Path, ids: list[str]) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {assignment: float(gradebook.find_assignment(assignment).max_score) for assignment in ids}


def _feedback(course: Path, out: Path, submissions: list[Submission]) -> None:
    """Write feedback HTML for the graded ``submissions`` of one assignment (one nbgrader run)."""
    if not submissions:
        return
    assignment = submissions[0].assignment
    others = _other_students(course, assignment, {s.student for s in submissions})
    result = nbgrader(["generate_feedback", assignment, "--force", f"--CourseDirectory.student_id_exclude={others}"], course)
    for submission in submissions:
        source = course / "feedback" / submission.student / assignment / f"{submission.notebook}.html"
        if not source.exists():
            submission.reason = "graded, but feedback could not be generated: " + _last_error(result.stdout + result.stderr)
            continue
        target = out / "feedback" / submission.student / assignment / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _other_students(course: Path, assignment: str, wanted: set[str]) -> str:
    """Students autograded for ``assignment`` in ``course`` but not ``wanted`` now (failed or earlier runs)."""
    folder = course / "autograded"
    present = {p.parent.name for p in folder.glob(f"*/{assignment}")} if folder.exists() else set()
    return ",".join(sorted(present - wanted))


def _last_error(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if "[ERROR]" in line or "Error" in line]
    return (lines[-1] if lines else log.strip().splitlines()[-1] if log.strip() else "nbgrader failed")[:300]


def _write_csv(out: Path, results: list[Submission]) -> None:
    with open(out / "grades.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "assignment", "notebook", "score", "max_score", "needs_manual_grade", "status", "reason",
                         "grading_seconds", "flags"])
        for s in sorted(results, key=lambda s: (s.student, s.assignment)):
            manual = any(cell["needs_manual_grade"] for cell in s.cells)
            writer.writerow([s.student, s.assignment, s.notebook, f"{s.score:g}", f"{s.max_score:g}", manual, s.status, s.reason,
                             f"{s.seconds:.1f}", "; ".join(s.flags)])
    with open(out / "cells.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "assignment", "notebook", "grade_id", "score", "max_score", "autograded"])
        for s in sorted(results, key=lambda s: (s.student, s.assignment)):
            for cell in s.cells:
                writer.writerow([s.student, s.assignment, s.notebook, cell["grade_id"], f"{cell['score']:g}",
                                 f"{cell['max_score']:g}", cell["auto"]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", type=Path, help="folder or .zip of submitted notebooks")
    parser.add_argument("out", type=Path, help="output folder (created; never solutions/ or notebooks/)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run students' code without bubblewrap (it can then read solutions/ and the gradebook)")
    parser.add_argument("--cell-timeout", type=int, help="seconds a cell may run (default: nbgrader_config.py)")
    parser.add_argument("--memory-limit", type=float, help="GiB of address space per student's kernel (default 6)")
    args = parser.parse_args(argv)
    run_options = integrity_options(not args.no_sandbox, args.cell_timeout, args.memory_limit)
    out = args.out.resolve()
    for protected in (SOLUTIONS, SOLUTIONS.parent / "notebooks"):
        if out == protected or out.is_relative_to(protected):
            parser.error(f"OUT must not be inside {protected}")
    results = grade(args.submissions, out, run_options=run_options)
    graded = sum(s.status == "graded" for s in results)
    print(f"graded {graded} of {len(results)} submissions; grades: {out / 'grades.csv'}; feedback: {out / 'feedback'}")
    for s in results:
        if s.status != "graded":
            print(f"  {s.student} {s.assignment}: {s.status}: {s.reason}")
    flagged = [s for s in results if s.flags]
    if flagged:
        print(f"{len(flagged)} submissions flagged for review (the flags column of grades.csv):")
        for s in flagged:
            print(f"  {s.student} {s.assignment}: {s.flags[0]}" + (f" (+{len(s.flags) - 1} more)" if len(s.flags) > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
