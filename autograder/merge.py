"""Join the outputs of shards (``grade --shard K/N``) into one OUT folder.

    python -m autograder.merge OUT1 OUT2 ... --out OUT

Writes one ``grades.csv``, one ``cells.csv``, one feedback tree, one class report, and one nbgrader
course folder whose gradebook holds every shard's scores (formgrader works on it as on a single run).
A student graded in two shards is an error: the shards of one class never overlap.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

from . import report, scoring
from .course import SOLUTIONS
from .intake import Submission


def merge(shards: list[Path], out: Path) -> int:
    """Merge ``shards`` into ``out``; return the number of rows."""
    rows: dict[tuple[str, str, str], tuple[Path, dict]] = {}
    cells: list[dict] = []
    for shard in shards:
        if not (shard / "grades.csv").exists():
            raise SystemExit(f"error: {shard} has no grades.csv (is it a finished shard?)")
        with open(shard / "grades.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                key = (row["student_id"], row["assignment"], row["source_file"])
                if key in rows:
                    raise SystemExit(f"error: {key[0]} {key[1]} is in both {rows[key][0]} and {shard}: shards overlap")
                rows[key] = (shard, row)
        with open(shard / "cells.csv", newline="") as handle:
            cells.extend(csv.DictReader(handle))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "grades.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, scoring.GRADES_COLUMNS)
        writer.writeheader()
        writer.writerows(row for _, (_, row) in sorted(rows.items()))
    with open(out / "cells.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, scoring.CELLS_COLUMNS)
        writer.writeheader()
        writer.writerows(sorted(cells, key=lambda r: (r["student_id"], r["assignment"], r["grade_id"])))
    for shard in shards:
        if (shard / "feedback").exists():
            shutil.copytree(shard / "feedback", out / "feedback", dirs_exist_ok=True)
    _merge_gradebooks(out / "course", list(rows.values()))
    report.write_report(out, report.results_from_csv(out))
    return len(rows)


def _merge_gradebooks(course: Path, rows: list[tuple[Path, dict]]) -> None:
    """Release the assignments into ``course`` and copy every graded student's scores and notebooks in."""
    graded = [(shard, row) for shard, row in rows if row["status"] == "graded"]
    needed = sorted({row["assignment"] for _, row in graded})
    if not needed:
        return
    scoring.prepare_course(course, SOLUTIONS, needed)
    for shard, row in graded:
        shard_course = shard / "course"
        submission = Submission(row["student_id"], row["assignment"], row["notebook"], None)
        if scoring.read_scores(shard_course / "gradebook.db", submission):
            scoring.record(course, submission, shard_course)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shards", type=Path, nargs="+", help="the OUT folders of the shards")
    parser.add_argument("--out", type=Path, required=True, help="the merged output folder")
    args = parser.parse_args(argv)
    if args.out.resolve() in {s.resolve() for s in args.shards}:
        parser.error("--out must be a new folder, not one of the shards")
    count = merge(args.shards, args.out.resolve())
    print(f"merged {len(args.shards)} shards: {count} rows in {args.out / 'grades.csv'}; report: {args.out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
