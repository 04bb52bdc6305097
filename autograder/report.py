"""The class report: ``OUT/report.html`` with its figures as PNG beside it.

Per assignment: the distribution of scores, the pass rate of every autograded unit (the units most
students fail first), then the submissions that were repaired, those not graded and why, and the
integrity flags. Built from the results alone (``grades.csv`` and ``cells.csv`` hold the same).
"""

from __future__ import annotations

import csv
import html
from pathlib import Path

from .intake import Submission


def write_report(out: Path, results: list[Submission]) -> Path:
    """Write ``out/report.html`` (+ ``out/report_*.png``); return the page's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [f"<h1>Class report</h1><p>{len(results)} submissions; "
             f"{sum(s.status == 'graded' for s in results)} graded.</p>"]
    for assignment in sorted({s.assignment for s in results if s.assignment != "?"}):
        graded = [s for s in results if s.assignment == assignment and s.status == "graded"]
        parts.append(f"<h2>{html.escape(assignment)}</h2>")
        if not graded:
            parts.append("<p>No submission was graded.</p>")
            continue
        max_score = graded[0].max_score
        figure, axis = plt.subplots(figsize=(6, 3))
        axis.hist([s.score for s in graded], bins=min(20, max(1, int(max_score)) + 1), range=(0, max_score))
        axis.set_xlabel(f"score (of {max_score:g})")
        axis.set_ylabel("students")
        axis.set_title(f"{assignment}: scores of {len(graded)} graded submissions")
        figure.tight_layout()
        scores_png = f"report_{assignment}_scores.png"
        figure.savefig(out / scores_png, dpi=100)
        plt.close(figure)

        rates = _pass_rates(graded)
        figure, axis = plt.subplots(figsize=(6, 0.35 * len(rates) + 1))
        axis.barh([unit for unit, _ in rates], [100 * rate for _, rate in rates])
        axis.invert_yaxis()
        axis.set_xlim(0, 100)
        axis.set_xlabel("% of graded submissions with full points")
        figure.tight_layout()
        units_png = f"report_{assignment}_units.png"
        figure.savefig(out / units_png, dpi=100)
        plt.close(figure)
        rows = "".join(f"<tr><td>{html.escape(unit)}</td><td>{100 * rate:.0f}%</td></tr>" for unit, rate in rates)
        parts.append(f'<img src="{scores_png}" alt="score distribution"> <img src="{units_png}" alt="unit pass rates">'
                     f"<table><tr><th>unit (most failed first)</th><th>full points</th></tr>{rows}</table>")

    parts.append(_table("Not graded", [s for s in results if s.status != "graded"], lambda s: s.status + ": " + s.reason))
    parts.append(_table("Graded after repairs or with remarks", [s for s in results if s.status == "graded" and s.reasons],
                        lambda s: s.reason))
    parts.append(_table("Integrity flags", [s for s in results if s.flags], lambda s: "; ".join(s.flags)))
    page = out / "report.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Class report</title><style>"
                    "body{font-family:sans-serif;max-width:60em;margin:auto}td,th{padding:2px 8px;text-align:left;"
                    "vertical-align:top}tr:nth-child(even){background:#f4f4f4}</style></head><body>"
                    + "".join(parts) + "</body></html>")
    return page


def _pass_rates(graded: list[Submission]) -> list[tuple[str, float]]:
    """(unit, share of submissions with its full points) for every autograded test cell, lowest first."""
    units: dict[str, list[bool]] = {}
    for s in graded:
        for cell in s.cells:
            if cell["auto"] and cell["max_score"] > 0:
                units.setdefault(cell["grade_id"], []).append(cell["score"] >= cell["max_score"])
    return sorted(((unit, sum(v) / len(v)) for unit, v in units.items()), key=lambda item: (item[1], item[0]))


def _table(title: str, rows: list[Submission], text) -> str:
    if not rows:
        return f"<h2>{title}</h2><p>None.</p>"
    body = "".join(f"<tr><td>{html.escape(s.student)}</td><td>{html.escape(s.assignment)}</td>"
                   f"<td>{html.escape(s.source)}</td><td>{html.escape(text(s))}</td></tr>" for s in rows)
    return (f"<h2>{title} ({len(rows)})</h2><table><tr><th>student</th><th>assignment</th><th>file</th>"
            f"<th>why</th></tr>{body}</table>")


def results_from_csv(out: Path) -> list[Submission]:
    """Read a finished OUT folder back into results (to rebuild the report after a merge)."""
    cells: dict[tuple[str, str], list[dict]] = {}
    with open(out / "cells.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            cells.setdefault((row["student_id"], row["assignment"]), []).append({
                "grade_id": row["grade_id"], "score": float(row["score"]), "max_score": float(row["max_score"]),
                "auto": row["autograded"] == "True", "needs_manual_grade": False})
    results = []
    with open(out / "grades.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            s = Submission(row["student_id"], row["assignment"], row["notebook"], None, source=row["source_file"],
                           status=row["status"], reasons=[row["reason"]] if row["reason"] else [],
                           flags=[f for f in row["flags"].split(";") if f], seconds=float(row["grading_seconds"]),
                           score=float(row["score"]), max_score=float(row["max_score"]))
            s.cells = cells.get(s.key, [])
            if row["needs_manual_grade"] == "True" and s.cells:
                s.cells[0]["needs_manual_grade"] = True
            results.append(s)
    return results
