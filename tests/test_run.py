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


def test_an_interrupted_class_run_leaves_no_kernel_and_no_grades_then_reruns(tmp_path):
    """SIGTERM (a TA's Ctrl-C, a scheduler's pre-emption) mid-class: every kernel goes with the grader,
    no grades.csv a later step could take for the result, and a re-run into the same folder finishes."""
    import csv
    import signal
    import subprocess
    import sys
    import time

    from autograder.course import ROOT, tool_environment

    (tmp_path / "class").mkdir()
    for student in ("s1", "s2", "s3"):
        nbformat.write(filled_notebook("ch04_lora", "lora"), tmp_path / "class" / f"{student}_lora.ipynb")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "autograder.grade", str(tmp_path / "class"), str(out), "--workers", "2"]
    grader = psutil.Popen(command, cwd=ROOT, env=tool_environment(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not any("ipykernel" in " ".join(p.cmdline())
                                             for p in grader.children(recursive=True) if p.is_running()):
        time.sleep(0.5)
    kernels = [p for p in grader.children(recursive=True) if p.is_running()]
    assert kernels, "no kernel started within 120 s"
    grader.send_signal(signal.SIGTERM)
    grader.wait(60)
    gone, alive = psutil.wait_procs(kernels, timeout=30)
    assert not alive, f"left behind after SIGTERM: {[p.cmdline()[:3] for p in alive]}"
    assert not (out / "grades.csv").exists()
    rerun = subprocess.run(command, cwd=ROOT, env=tool_environment(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    rows = list(csv.DictReader(open(out / "grades.csv")))
    assert len(rows) == 3 and all(r["status"] == "graded" and float(r["score"]) > 0 for r in rows), rows
