"""The class report, on made-up results (no kernel)."""

from autograder.intake import Submission
from autograder.report import write_report


def _submission(student, score, status="graded", **kwargs):
    cells = [{"grade_id": "test_a", "score": 2.0 if score >= 2 else 0.0, "max_score": 2.0, "auto": True,
              "needs_manual_grade": False},
             {"grade_id": "test_b", "score": 1.0 if score in (1, 3) else 0.0, "max_score": 1.0, "auto": True,
              "needs_manual_grade": False}]
    return Submission(student, "ch04_lora", "lora", None, source=f"{student}_lora.ipynb", status=status, score=score,
                      max_score=3, cells=cells if status == "graded" else [], **kwargs)


def test_report_shows_distribution_unit_pass_rates_repairs_failures_and_flags(tmp_path):
    results = [_submission("s1", 3), _submission("s2", 2, reasons=["joined 2 cells into answer 'a'"]),
               _submission("s3", 0, flags=["reads files outside the notebook"]),
               _submission("s4", 0, status="unreadable", reasons=["not a notebook: the file is empty"])]
    page = write_report(tmp_path, results).read_text()
    assert (tmp_path / "report_ch04_lora_scores.png").stat().st_size > 1000
    assert page.index("test_b") < page.index("test_a"), "the unit most students fail comes first"
    for text in ("joined 2 cells", "the file is empty", "reads files outside the notebook", "33%", "67%"):
        assert text in page
