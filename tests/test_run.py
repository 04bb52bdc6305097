"""Running one student: a notebook that outlives its wall-clock budget is stopped, kernel and all."""

import copy

import nbformat
import psutil
import pytest

from autograder import run, scoring
from autograder.course import SOLUTIONS, nbgrader_metadata
from autograder.mistakes import filled_notebook

pytestmark = pytest.mark.slow


def test_notebook_timeout_stops_everything(tmp_path):
    scoring.prepare_course(tmp_path / "course", SOLUTIONS, ["ch04_lora"])
    template = scoring.gradebook_template(tmp_path / "course", tmp_path / "template.db")
    notebook = copy.deepcopy(filled_notebook("ch04_lora", "lora"))
    for cell in notebook.cells:  # a child process that would outlive the kernel, then a long wait
        if nbgrader_metadata(cell).get("grade_id") == "lora_init":
            cell.source = ("import subprocess, time\nsubprocess.Popen(['sleep', '1000'])\n"
                           "time.sleep(1000)\n") + cell.source
    scratch = tmp_path / "scratch"
    nbformat.write(notebook, run.prepare_scratch(scratch, template, "s1", "ch04_lora", "lora"))
    result = run.run_student(scratch, "s1", "ch04_lora", "lora", cell_timeout=600, notebook_timeout=25)
    assert result.status == "timeout" and "25 s limit" in result.reasons[0]
    left = [p for p in psutil.process_iter(["cmdline", "cwd"])
            if str(scratch) in (p.info["cwd"] or "") or any(str(scratch) in part for part in p.info["cmdline"] or [])]
    assert not left, f"processes left behind: {left}"
