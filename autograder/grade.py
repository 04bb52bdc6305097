"""Autograde a class: a folder or an LMS zip of notebooks → ``OUT/grades.csv``, feedback and a class report.

    python -m autograder.grade SUBMISSIONS OUT [--workers N] [--shard K/N]

The stages, each a module:

1. ``intake``  — unpack the zip safely, find every notebook, tell whose it is (LMS and Colab names),
   keep each student's latest version;
2. ``repair``  — read the file (refusing what is not a notebook), rebuild it on the released notebook
   (answers matched by grade id, content or position; test cells restored from the source);
3. ``run``     — autograde one student in a scratch course folder, with cell and notebook timeouts
   (``--workers`` students at a time);
4. ``scoring`` — copy each student's scores into the class gradebook, write grades.csv, cells.csv
   and the feedback;
5. ``report``  — OUT/report.html with figures.

Everything is written under OUT (nothing into ``solutions/`` or ``notebooks/``):
  OUT/grades.csv          one row per student and assignment: score, max_score, status, reason, flags
  OUT/cells.csv           one row per graded cell: the score of every test
  OUT/feedback/<student>/<assignment>/<notebook>.html   (no hidden tests in it)
  OUT/report.html         the class at a glance (score distribution, units most students fail, repairs)
  OUT/course/             the nbgrader course folder (gradebook.db, autograded notebooks) for formgrader
A submission that cannot be read or graded gets a row with score 0 and the reason; the rest of the
class is graded anyway.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from . import intake, integrity, repair, report, run, sandbox, scoring
from .course import NOTEBOOKS, SOLUTIONS, notebook_names
from .intake import Submission


def sandbox_settings(options: argparse.Namespace) -> dict[str, dict]:
    """nbgrader settings for the students' kernels (``autograder/sandbox.py``).

    Refuses to grade without a working bubblewrap unless the instructor said ``--no-sandbox``.
    """
    settings: dict[str, dict] = {"SandboxedKernelManager": {}}
    if options.no_sandbox:
        settings["SandboxedKernelManager"]["isolate"] = False
    else:
        works, why = sandbox.available()
        if not works:
            raise SystemExit(f"error: students' notebooks must run in a sandbox, but {why}.\n"
                             "Install bubblewrap (apt-get install bubblewrap), or grade without a sandbox "
                             "(students' code can then read and write everything you can, solutions/ included): "
                             "--no-sandbox, or make grade ... UNSANDBOXED=1")
    if options.memory_limit is not None:
        settings["SandboxedKernelManager"]["memory_limit_gib"] = options.memory_limit
    return settings


def grade_one(submission: Submission, work: Path, template: Path, options: argparse.Namespace,
              kernel_settings: dict[str, dict]) -> Path | None:
    """Repair and run one submission; fill its status and reasons. Returns its scratch folder when it ran."""
    scratch = work / f"{submission.student}-{submission.assignment}"
    target = run.prepare_scratch(scratch, template, submission.student, submission.assignment, submission.notebook)
    try:
        repairs = repair.repair(submission.path, NOTEBOOKS / submission.assignment / f"{submission.notebook}.ipynb",
                                target)
    except repair.NotANotebook as error:
        submission.status = "unreadable"
        submission.reasons.append(str(error))
        shutil.rmtree(scratch)
        return None
    submission.reasons.extend(repairs)
    submission.flags.extend(integrity.flags(nbformat.read(target, as_version=4)))
    threads = max(1, len(os.sched_getaffinity(0)) // options.workers)
    result = run.run_student(scratch, submission.student, submission.assignment, submission.notebook,
                             options.cell_timeout, options.notebook_timeout, threads, kernel_settings)
    submission.status, submission.seconds, submission.timings = result.status, result.seconds, result.timings
    submission.reasons.extend(result.reasons)
    if result.autograded is not None:  # the test results the guard had to overrule
        submission.flags.extend(integrity.runtime_flags(nbformat.read(result.autograded, as_version=4)))
    if result.status == "graded" and not scoring.read_scores(scratch / "gradebook.db", submission):
        submission.status = "error"
        submission.reasons.append("no grades were recorded")
    return scratch


def grade(submissions: Path, out: Path, options: argparse.Namespace, solutions: Path = SOLUTIONS) -> list[Submission]:
    """Grade every submission found in ``submissions`` (folder or zip) into ``out``; return the results."""
    if not submissions.exists():
        raise SystemExit(f"error: {submissions} does not exist")
    kernel_settings = sandbox_settings(options)  # refuses to go on without a sandbox unless told
    out.mkdir(parents=True, exist_ok=True)
    course, work = out / "course", out / "work"
    found, unmatched = intake.find_submissions(intake.unpack(submissions, out / "incoming"), notebook_names(solutions))
    if not found and not unmatched:
        raise SystemExit(f"error: no .ipynb files in {submissions}")
    found = [s for s in found if intake.in_shard(s.student, options.shard)]
    unmatched = [s for s in unmatched if intake.in_shard(s.source, options.shard)]

    needed = sorted({s.assignment for s in found})
    max_scores = scoring.prepare_course(course, solutions, needed) if needed else {}
    template = scoring.gradebook_template(course, work / "template.db") if needed else None
    for submission in found:
        submission.max_score = max_scores[submission.assignment]

    start = time.perf_counter()
    with ThreadPoolExecutor(options.workers) as pool:
        futures = {pool.submit(grade_one, s, work, template, options, kernel_settings): s for s in found}
        for future in tqdm(as_completed(futures), total=len(futures), desc="autograding", unit="student"):
            submission = futures[future]
            scratch = future.result()
            if submission.status == "graded":
                scoring.record(course, submission, scratch)
            if scratch is not None and submission.status == "graded":
                shutil.rmtree(scratch)  # kept for a failed run: its autograde.log says more
    elapsed = time.perf_counter() - start

    scoring.write_feedback(course, out, [s for s in found if s.status == "graded"])
    results = found + unmatched
    scoring.write_csv(out, results)
    report.write_report(out, results)
    ran = [s.seconds for s in found if s.seconds]
    if ran:
        print(f"autograded {len(ran)} notebooks in {elapsed:.0f} s with {options.workers} workers: "
              f"{60 * len(ran) / elapsed:.1f} notebooks/min, median {statistics.median(ran):.1f} s per notebook")
    return results


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes K/N (e.g. 2/8), not {text!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"--shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def parser() -> argparse.ArgumentParser:
    """The command line (kept in one place so that other stages can add their options)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("submissions", type=Path, help="folder or .zip of submitted notebooks")
    p.add_argument("out", type=Path, help="output folder (created; never solutions/ or notebooks/)")
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                   help="students graded at the same time (default: the cores available)")
    p.add_argument("--shard", type=parse_shard, default=None, metavar="K/N",
                   help="grade only the K-th of N deterministic shares of the students (join with autograder.merge)")
    p.add_argument("--cell-timeout", type=int, default=None, metavar="S",
                   help="seconds one cell may run before it is interrupted (default: Execute.timeout of "
                        "autograder/nbgrader_config.py)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run students' code without bubblewrap (it can then read solutions/ and the gradebook)")
    p.add_argument("--memory-limit", type=float, default=None, metavar="GIB",
                   help="GiB of address space for one student's kernel (default: autograder/nbgrader_config.py)")
    p.add_argument("--notebook-timeout", type=int, default=run.NOTEBOOK_TIMEOUT, metavar="S",
                   help=f"seconds one notebook may run before it is stopped (default {run.NOTEBOOK_TIMEOUT})")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    options = p.parse_args(argv)
    out = options.out.resolve()
    for protected in (SOLUTIONS, NOTEBOOKS):
        if out == protected or out.is_relative_to(protected):
            p.error(f"OUT must not be inside {protected}")
    if options.workers < 1:
        p.error("--workers must be at least 1")
    results = grade(options.submissions, out, options)
    graded = sum(s.status == "graded" for s in results)
    print(f"graded {graded} of {len(results)} submissions; grades: {out / 'grades.csv'}; "
          f"report: {out / 'report.html'}; feedback: {out / 'feedback'}")
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
