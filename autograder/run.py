"""Running one student: nbgrader's autograde of one repaired notebook, in its own scratch course folder.

``run_student`` is the only place a student's code runs. It is called from worker threads, many at a
time; each call gets:

* its own scratch course folder (``scratch/``: a copy of the gradebook as it was right after
  ``generate_assignment``, ``submitted/<student>/<assignment>/<notebook>.ipynb``), so that parallel
  runs never share an sqlite gradebook; the scores are copied into the class gradebook afterwards
  (``scoring.record``);
* a fresh process forked from a server that has already imported nbgrader and its preprocessors
  (``multiprocessing``'s forkserver), which runs nbgrader's ``Autograde`` converter in-process: no
  interpreter and nbgrader start-up per student, no ``python -m nbgrader`` per student;
* a per-cell timeout (nbgrader's ``Execute.timeout``, set in ``nbgrader_config.py``: the cell is
  interrupted, the rest runs) and a wall-clock timeout for the whole notebook: past it, the process,
  the kernel and everything they started are killed and the row says so;
* a share of the cores for the kernel's math libraries (``threads``), so that parallel workers do
  not oversubscribe the machine.

The kernel is started by nbgrader's ``Execute`` preprocessor with the configuration of
``autograder/nbgrader_config.py``, loaded here for every run: the preprocessors listed in
``c.Autograde.autograde_preprocessors`` (an ``Execute`` subclass there may launch the kernel
differently; note that ``Execute`` passes ``kernel_manager_class`` as a keyword, which beats the
same setting in the configuration) and the kernel spec named by ``c.Execute.kernel_name``. The
kernel's working directory is ``scratch/autograded/<student>/<assignment>/``.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .course import CONFIG, nbgrader_metadata, tool_environment

NOTEBOOK_TIMEOUT = 900  # seconds for a whole notebook, kernel start included (then killed)


@dataclass
class RunResult:
    """What happened when one notebook ran: status ``graded`` / ``error`` / ``timeout`` and why."""

    status: str
    reasons: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    autograded: Path | None = None  # the executed notebook, when there is one


def prepare_scratch(scratch: Path, template_db: Path, student: str, assignment: str, notebook: str) -> Path:
    """Create the scratch course folder of one run; return where the submitted notebook goes."""
    if scratch.exists():
        shutil.rmtree(scratch)
    (scratch / "source" / assignment).mkdir(parents=True)  # nbgrader copies non-notebook files from here
    shutil.copyfile(template_db, scratch / "gradebook.db")
    target = scratch / "submitted" / student / assignment / f"{notebook}.ipynb"
    target.parent.mkdir(parents=True)
    return target


def run_student(scratch: Path, student: str, assignment: str, notebook: str, cell_timeout: int | None = None,
                notebook_timeout: int = NOTEBOOK_TIMEOUT, threads: int | None = None,
                settings: dict[str, dict] | None = None) -> RunResult:
    """Autograde ``scratch/submitted/<student>/<assignment>/<notebook>.ipynb`` into ``scratch``.

    ``cell_timeout`` overrides the configuration's ``Execute.timeout``; ``threads`` limits the
    kernel's math libraries (default: theirs); ``settings`` overrides other configuration values
    (``{"SandboxedKernelManager": {"memory_limit_gib": 4}}``). Never raises for anything the student's code does: a
    crash, an exit or a timeout is a status and a reason. The scores are in ``scratch/gradebook.db``
    when the status is ``graded``.
    """
    result_file = scratch / "run.json"
    start = time.perf_counter()
    process = _context().Process(target=_autograde, args=(str(scratch), student, assignment, cell_timeout,
                                                          threads, settings or {}, str(result_file)), daemon=False)
    process.start()
    process.join(notebook_timeout)
    timed_out = process.is_alive()
    _kill_tree(process.pid)
    process.join(5)
    seconds = time.perf_counter() - start
    autograded = scratch / "autograded" / student / assignment / f"{notebook}.ipynb"
    if timed_out:
        return RunResult("timeout", [f"the notebook ran past its {notebook_timeout} s limit and was stopped: "
                                     "no score (look for a loop that never ends)"], seconds)
    try:
        report = json.loads(result_file.read_text())
    except (OSError, json.JSONDecodeError):
        report = {"error": f"the grading process ended without a result (exit code {process.exitcode})"}
    result = RunResult("error" if report.get("error") else "graded", [], seconds, report.get("timings", {}),
                       autograded if autograded.exists() else None)
    if report.get("error"):
        result.reasons.append(report["error"])
    if result.autograded:
        result.reasons.extend(_cell_troubles(result.autograded, report.get("cell_timeout")))
    return result


def _cell_troubles(path: Path, cell_timeout: int | None) -> list[str]:
    """Reasons worth a row from the executed notebook: timed-out cells, a dead kernel, an exit."""
    import nbformat

    reasons = []
    notebook = nbformat.read(path, as_version=4)
    for number, cell in enumerate(notebook.cells, 1):
        name = nbgrader_metadata(cell).get("grade_id") or f"#{number}"
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            if output.get("ename") == "CellTimeoutError":
                reasons.append(f"cell {name} ran past {cell_timeout} s and was interrupted")
            elif output.get("ename") == "SystemExit":
                reasons.append(f"cell {name} called sys.exit(); the notebook went on")
            elif output.get("ename") == "DeadKernelError":
                reasons.append(f"the kernel died in cell {name} (os._exit, a crash or out of memory)")
    return reasons


def _explain(log: Path, error: BaseException) -> str:
    """A reason for the row when nbgrader gave up on a notebook, from its log."""
    text = log.read_text(errors="replace")
    if "DeadKernelError" in text or "Kernel died" in text:
        return ("the kernel died while running the notebook (os._exit(), a crash, or more memory than allowed): "
                "no score")
    if "CellTimeoutError" in text:
        return ("a cell went on running after it was interrupted at its time limit (does it catch "
                "KeyboardInterrupt?): the notebook was stopped, no score")
    errors = [line.strip() for line in text.splitlines() if "Error" in line or "[ERROR]" in line]
    last = errors[-1] if errors else [line for line in traceback.format_exception(error) if line.strip()][-1].strip()
    return f"nbgrader could not grade the notebook: {last[:300]}"


_CONTEXT = None


def _context():
    """A forkserver that imported nbgrader once: each run forks from it in milliseconds."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(["autograder.run", "nbgrader.converters.autograde", "nbgrader.api",
                                         "nbconvert", "nbclient", "jupyter_client", "autograder.feedback"])
    return _CONTEXT


def _kill_tree(pid: int | None) -> None:
    """Kill a process and every process it started (the kernel runs in a session of its own)."""
    import psutil

    if pid is None:
        return
    try:
        parent = psutil.Process(pid)
        family = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        return
    for process in family:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=5)


def _autograde(scratch: str, student: str, assignment: str, cell_timeout: int | None, threads: int | None,
               settings: dict[str, dict], result_file: str) -> None:
    """The forked process: run nbgrader's Autograde converter on one student; write ``run.json``."""
    os.environ.update(tool_environment())
    if threads:  # read by torch (OpenMP, MKL) when the kernel starts
        os.environ.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    log = open(Path(scratch) / "autograde.log", "w")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    os.chdir(scratch)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    cells: list[tuple[str, float]] = []

    def on_start(**_):
        timings["startup"] = time.perf_counter() - started  # nbgrader bookkeeping before + kernel start

    def on_cell(cell, **_):
        cells.append((nbgrader_metadata(cell).get("grade_id", ""), time.perf_counter()))

    report: dict = {}
    try:
        from nbgrader.converters import Autograde
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config.loader import PyFileConfigLoader

        config = PyFileConfigLoader(CONFIG.name, path=str(CONFIG.parent)).load_config()
        config.CourseDirectory.root = scratch
        config.CourseDirectory.student_id = student
        config.CourseDirectory.assignment_id = assignment
        if cell_timeout:
            config.Execute.timeout = cell_timeout
        for section, values in settings.items():
            for name, value in values.items():
                config[section][name] = value
        report["cell_timeout"] = config.Execute.get("timeout")
        config.Execute.on_notebook_start = on_start
        config.Execute.on_cell_execute = on_cell
        config.Execute.on_notebook_complete = lambda **_: cells.append(("", time.perf_counter()))
        logger = logging.getLogger("autograde")
        logger.addHandler(logging.StreamHandler(sys.stderr))  # into autograde.log
        logger.setLevel(logging.INFO)
        converter = Autograde(coursedir=CourseDirectory(config=config), config=config, log=logger)
        converter.force = True
        converter.start()
    except BaseException as error:  # noqa: BLE001 — whatever nbgrader raises becomes the row's reason
        sys.stderr.flush()
        report["error"] = _explain(Path(scratch) / "autograde.log", error)
    report["timings"] = _split_timings(timings, cells, started)
    Path(result_file).write_text(json.dumps(report))
    log.flush()
    os._exit(0)  # skip interpreter teardown (the forkserver's imports stay warm)


SETUP_CELLS = {"setup", "environment", "imports"}  # the read-only cells every notebook starts with


def _split_timings(timings: dict, cells: list[tuple[str, float]], started: float) -> dict:
    """Seconds spent in: startup (nbgrader + kernel start), setup cells (imports), other cells, bookkeeping."""
    end = time.perf_counter()
    out = {"startup": timings.get("startup", end - started)}
    if not cells:
        out["bookkeeping"] = end - started - out["startup"]
        return out
    completed = cells[-1][0] == ""  # the notebook-complete marker; absent when execution was cut short
    last = cells[-1][1] if completed else end
    first_other = next((t for name, t in cells if name not in SETUP_CELLS), last)
    out["setup_cells"] = first_other - cells[0][1]
    out["other_cells"] = last - first_other
    out["bookkeeping"] = (end - last) + (cells[0][1] - started - out["startup"])
    return out
