"""Grading must be earned: hostile and misbehaving submissions, graded through `python -m autograder.grade`.

Every hostile notebook below is the solution with one unit made WRONG, plus an attack on the tests
in an answer cell; it must score exactly what its honest code deserves (the wrong unit 0, the others
full) and be flagged for review. The misbehaving notebooks must be contained to their own row.
One small class, graded once.
"""

import csv
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from autograder.course import ROOT, SOLUTIONS, nbgrader_metadata, tool_environment
from autograder.integrity import flags
from autograder.mistakes import filled_notebook, strip_markers
from autograder.sandbox import UNPRIVILEGED_UID_BASE, available, sandbox_command

CH01, CH04 = ("ch01_memory_math", "memory_math"), ("ch04_lora", "lora")
# The wrong unit every ch01 attack hides: forward_flops forgets the factor 2 (test_training_flops catches it).
WRONG_FLOPS = ("training_flops", "return 2 * n_params * n_tokens", "return n_params * n_tokens", "test_training_flops")
# ch04: the forward pass drops the LoRA branch (only peft's comparison in the hidden tests catches it).
WRONG_FORWARD = ("lora_forward", "return self.base(x) + update * self.scaling", "return self.base(x)", "test_lora_forward")
SLEEP_SECONDS = "613"  # a child process the misbehaving notebook leaves behind, found by its command line

ATTACKS = {
    "rebind-expect": """
expect = lambda *args, **kwargs: None
expect_close = expect_equal = expect
import peftlab.checks
peftlab.checks.expect = peftlab.checks.expect_close = expect
""",
    "patch-builtins": """
import builtins
builtins.abs = lambda value: 0
isinstance = lambda *args: True
""",
    "redefine-assertionerror": """
import builtins, sys
class AssertionError(Warning):
    pass
builtins.AssertionError = AssertionError
get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)
sys.excepthook = lambda *args: None
""",
    "patch-showtraceback": """
shell = get_ipython()
shell.showtraceback = lambda *args, **kwargs: None
shell._showtraceback = lambda *args, **kwargs: None
type(shell).showtraceback = lambda *args, **kwargs: None
""",
    "transform-cells": """
def swallow_errors(lines):
    return ["try:\\n"] + ["    " + line for line in lines] + ["\\n    pass\\nexcept BaseException:\\n    pass\\n"]
get_ipython().input_transformers_cleanup.append(swallow_errors)
""",
}

# The reported exploit: a blank notebook whose first answer cell runs the reference solutions from disk.
READ_SOLUTIONS = """
import json, pathlib, peftlab
try:
    source = pathlib.Path(peftlab.__file__).parents[1] / "solutions" / "ch01_memory_math" / "memory_math.ipynb"
    for cell in json.loads(source.read_text())["cells"]:
        if cell["cell_type"] == "code" and cell["metadata"].get("nbgrader", {}).get("solution"):
            exec("".join(cell["source"]), globals())
    print("read the solutions")
except Exception as error:
    print(f"solutions: blocked ({type(error).__name__})")
"""


def probes(out: Path) -> str:
    """An answer-cell tail that tries the instructors' files, another student's folder and the network."""
    course = out / "course"
    return f"""
import os, socket
for what, path in [("gradebook", {str(course / 'gradebook.db')!r}),
                   ("source", {str(course / 'source' / CH01[0] / 'memory_math.ipynb')!r}),
                   ("solutions", {str(SOLUTIONS / CH01[0] / 'memory_math.ipynb')!r})]:
    try:
        open(path, "rb").read(16)
        print(f"{{what}}: READ")
    except OSError as error:
        print(f"{{what}}: blocked ({{type(error).__name__}})")
for what, path in [("other student", {str(course / 'submitted' / 'honest' / CH01[0] / 'pwned.txt')!r}),
                   ("repository", {str(ROOT / 'pwned.txt')!r})]:
    try:
        open(path, "w").write("pwned")
        print(f"{{what}}: WRITTEN")
    except OSError as error:
        print(f"{{what}}: blocked ({{type(error).__name__}})")
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    print("network: CONNECTED")
except OSError as error:
    print(f"network: blocked ({{type(error).__name__}})")
"""


MISBEHAVING = {  # answer cell → code appended after the (correct) answer
    "training_time": f"""
import subprocess
subprocess.Popen(["sleep", "{SLEEP_SECONDS}"])
hog = None
try:
    hog = bytearray(30 * 2**30)
except MemoryError:
    print("30 GB: MemoryError")
""",
    "quick_math": """
for _ in range(500_000):
    print("x" * 99)
while True:
    pass
""",
    "quiz": """
import sys
sys.exit()
""",
}
# Forks until the process limit stops it; the children sleep. They also use up the kernel's own
# thread budget, so only the last unit (after the bomb) may suffer.
FORK_BOMB = """
import os, time
children = 0
try:
    for _ in range(100_000):
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
        children += 1
except OSError as error:
    print(f"fork stopped after {children} children")
"""


def _answer_cell(notebook, grade_id):
    return next(c for c in notebook.cells if nbgrader_metadata(c).get("grade_id") == grade_id)


def _with(chapter, wrong=None, appended=None):
    """The filled notebook of ``chapter`` with the ``wrong`` unit and ``appended`` code per answer cell."""
    notebook = filled_notebook(*chapter)
    if wrong:
        cell = _answer_cell(notebook, wrong[0])
        assert cell.source.count(wrong[1]) == 1
        cell.source = cell.source.replace(wrong[1], wrong[2])
    for grade_id, code in (appended or {}).items():
        _answer_cell(notebook, grade_id).source += "\n" + code
    return notebook


def _class(folder: Path, out: Path) -> dict[str, tuple]:
    """Write the class; map student → (chapter, test cells it must lose or None for 'all')."""
    students = {"honest": (CH01, _with(CH01), ())}
    for name, attack in ATTACKS.items():
        students[name] = (CH01, _with(CH01, WRONG_FLOPS, {WRONG_FLOPS[0]: attack}), (WRONG_FLOPS[3],))
    torch_attack = "torch.allclose = torch.equal = lambda *args, **kwargs: True\ntorch.Tensor.allclose = torch.allclose\n"
    students["patch-torch"] = (CH04, _with(CH04, WRONG_FORWARD, {WRONG_FORWARD[0]: torch_attack}), (WRONG_FORWARD[3],))
    blank = nbformat.read(ROOT / "notebooks" / CH01[0] / f"{CH01[1]}.ipynb", as_version=4)
    _answer_cell(blank, "bytes_per_param").source = READ_SOLUTIONS
    students["read-solutions"] = (CH01, blank, None)
    students["probe-files-network"] = (CH01, _with(CH01, None, {"bytes_per_param": probes(out)}), ())
    students["misbehaving"] = (CH01, _with(CH01, None, MISBEHAVING), ())
    students["fork-bomb"] = (CH01, _with(CH01, None, {"quiz": FORK_BOMB}), ())
    students["os-exit"] = (CH01, _with(CH01, None, {"quick_math": "import os\nos._exit(0)"}), None)
    students["segfault"] = (CH01, _with(CH01, None, {"quick_math": "import ctypes\nctypes.string_at(0)"}), None)
    for student, (chapter, notebook, _) in students.items():
        path = folder / student / chapter[0] / f"{chapter[1]}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, path)
    return {student: (chapter, loses) for student, (chapter, _, loses) in students.items()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    ok, why = available()
    if not ok:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("integrity")
    out = work / "out"
    students = _class(work / "class", out)
    result = subprocess.run([sys.executable, "-m", "autograder.grade", str(work / "class"), str(out), "--cell-timeout", "60"],
                            cwd=ROOT, env=tool_environment(), capture_output=True, text=True, timeout=3000)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    grades = {r["student_id"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    cells: dict = {}
    for r in csv.DictReader(open(out / "cells.csv")):
        cells.setdefault(r["student_id"], {})[r["grade_id"]] = r
    return out, grades, cells, students


def _lost(cells: dict) -> set[str]:
    return {k for k, v in cells.items() if v["autograded"] == "True" and k.startswith("test_") and v["score"] != v["max_score"]}


def _outputs(out: Path, student: str, chapter, grade_id: str) -> str:
    path = out / "course" / "autograded" / student / chapter[0] / f"{chapter[1]}.ipynb"
    cell = _answer_cell(nbformat.read(path, as_version=4), grade_id)
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


HOSTILE = [*ATTACKS, "patch-torch"]


@pytest.mark.slow
def test_honest_submission_keeps_full_marks_and_no_flags(graded):
    _, grades, cells, _ = graded
    assert grades["honest"]["status"] == "graded" and not _lost(cells["honest"]), cells["honest"]
    assert grades["honest"]["flags"] == ""


@pytest.mark.slow
@pytest.mark.parametrize("student", HOSTILE)
def test_attack_on_the_tests_scores_only_the_honest_work_and_is_flagged(graded, student):
    _, grades, cells, students = graded
    row = grades[student]
    assert row["status"] == "graded", row["reason"]
    assert _lost(cells[student]) == set(students[student][1]), f"{student}: lost {_lost(cells[student])}"
    assert row["flags"], f"{student} is not flagged"


@pytest.mark.slow
def test_reading_the_solutions_from_disk_gets_nothing(graded):
    out, grades, _, _ = graded
    row = grades["read-solutions"]
    assert row["status"] == "graded" and float(row["score"]) == 0, row
    assert "solutions: blocked" in _outputs(out, "read-solutions", CH01, "bytes_per_param")
    assert "__file__" in row["flags"] and "exec" in row["flags"]


@pytest.mark.slow
def test_instructor_files_other_students_and_network_are_unreachable(graded):
    out, grades, cells, _ = graded
    printed = _outputs(out, "probe-files-network", CH01, "bytes_per_param")
    for what in ("gradebook", "source", "solutions", "other student", "repository", "network"):
        assert f"{what}: blocked" in printed, printed
    assert not list(out.rglob("pwned.txt"))
    assert not (ROOT / "pwned.txt").exists()
    assert not _lost(cells["probe-files-network"]) and grades["probe-files-network"]["flags"]


@pytest.mark.slow
def test_misbehaving_code_is_contained(graded):
    out, grades, cells, _ = graded
    row = grades["misbehaving"]
    assert row["status"] == "graded", row["reason"]
    assert "30 GB: MemoryError" in _outputs(out, "misbehaving", CH01, "training_time")
    assert not _lost(cells["misbehaving"]), "the cell timeout interrupts the loop; every unit keeps its points"
    bomb = grades["fork-bomb"]
    assert "fork stopped after" in _outputs(out, "fork-bomb", CH01, "quiz"), bomb
    assert bomb["status"] == "graded" and _lost(cells["fork-bomb"]) <= {"test_quiz"}, bomb
    sleeping = subprocess.run(["pgrep", "-f", f"^sleep {SLEEP_SECONDS}$"], capture_output=True, text=True).stdout
    assert not sleeping.strip(), "a child process of a student survived grading"
    if os.getuid() == 0:  # kernels run as UNPRIVILEGED_UID_BASE + pid: none may be left
        left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _uid(p) >= UNPRIVILEGED_UID_BASE]
        assert not left, f"processes of students' kernels survived grading: {left}"


def _uid(process: Path) -> int:
    try:
        return process.stat().st_uid
    except OSError:
        return -1


@pytest.mark.slow
@pytest.mark.parametrize("student", ["os-exit", "segfault"])
def test_a_dying_kernel_costs_only_its_student(graded, student):
    _, grades, _, _ = graded
    row = grades[student]
    assert row["reason"] or row["status"] != "graded", row
    assert float(row["score"]) < float(row["max_score"])
    assert grades["honest"]["status"] == "graded"


# --- fast checks (no grading) ------------------------------------------------------------------

@pytest.mark.parametrize("chapter", [CH01, CH04])
def test_honest_solutions_raise_no_flags(chapter):
    assert flags(filled_notebook(*chapter)) == []


def test_each_attack_is_flagged():
    for name, attack in {**ATTACKS, "read-solutions": READ_SOLUTIONS, "probes": probes(Path("/out"))}.items():
        notebook = _with(CH01)
        _answer_cell(notebook, "bytes_per_param").source += "\n" + attack
        assert flags(notebook), name


def test_sandbox_binds_nothing_of_the_repository_but_the_library_and_data(tmp_path):
    command = sandbox_command(["python"], tmp_path, 2**30, 64, UNPRIVILEGED_UID_BASE)
    bound = {command[i + 2] for i, arg in enumerate(command) if arg in ("--ro-bind", "--bind")}
    inside = {Path(p).relative_to(ROOT).parts[0] for p in bound if Path(p).is_relative_to(ROOT)}
    assert inside <= {"peftlab", "data", ".venv"}, inside
    assert "--unshare-net" in command and "--die-with-parent" in command and "--unshare-pid" in command


def test_a_kernel_in_the_sandbox_cannot_read_solutions(tmp_path):
    ok, why = available()
    if not ok:
        pytest.skip(why)
    tmp_path.chmod(0o777)
    probe = f"import os; print(os.path.exists({str(SOLUTIONS)!r}), os.path.exists({str(ROOT / 'peftlab')!r}))"
    command = sandbox_command([sys.executable, "-c", probe], tmp_path, 4 * 2**30, 64, UNPRIVILEGED_UID_BASE)
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False", "True"], result.stdout + result.stderr
    assert socket.gethostname() != "sandbox"


def _ordinary_user() -> str | None:
    """A user without privileges who can run this Python, when the tests run as root; else None."""
    if os.getuid() != 0 or not Path("/usr/sbin/runuser").exists():
        return None
    probe = subprocess.run(["runuser", "-u", "nobody", "--", sys.executable, "-c", "import nbgrader, torch"],
                           capture_output=True, text=True, timeout=120)
    return "nobody" if probe.returncode == 0 else None


def test_an_ordinary_user_grades_in_the_sandbox_too():
    """Without root, bwrap needs a user namespace (--unshare-user): the same isolation, the same grades."""
    ok, why = available()
    if not ok:
        pytest.skip(why)
    user = _ordinary_user()
    if user is None:
        pytest.skip("needs root (to become 'nobody') and a Python that 'nobody' can run")
    with tempfile.TemporaryDirectory(prefix="grade-as-nobody-") as folder:  # pytest's tmp is root's only
        _grade_as(user, Path(folder))


def _grade_as(user: str, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    honest = tmp_path / "class" / "honest" / CH04[0] / f"{CH04[1]}.ipynb"
    reader = tmp_path / "class" / "read-solutions" / CH01[0] / f"{CH01[1]}.ipynb"
    blank = nbformat.read(ROOT / "notebooks" / CH01[0] / f"{CH01[1]}.ipynb", as_version=4)
    _answer_cell(blank, "bytes_per_param").source = READ_SOLUTIONS
    for path, notebook in ((honest, _with(CH04)), (reader, blank)):
        path.parent.mkdir(parents=True)
        nbformat.write(notebook, path)
    subprocess.run(["chown", "-R", user, str(tmp_path)], check=True)
    out = tmp_path / "out"
    env = {**tool_environment(), "HOME": str(tmp_path)}
    result = subprocess.run(["runuser", "-u", user, "--", sys.executable, "-m", "autograder.grade",
                             str(tmp_path / "class"), str(out)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    grades = {r["student_id"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert grades["honest"]["score"] != "0" and grades["honest"]["status"] == "graded"
    cells = {r["grade_id"]: r for r in csv.DictReader(open(out / "cells.csv")) if r["student_id"] == "honest"}
    assert not _lost(cells), _lost(cells)
    assert float(grades["read-solutions"]["score"]) == 0
    assert "solutions: blocked" in _outputs(out, "read-solutions", CH01, "bytes_per_param")


def test_a_course_cloned_below_tmp_is_reachable_in_the_sandbox():
    """/tmp is a fresh tmpfs in the sandbox: folders above a bound /tmp/<clone>/.venv are made 0755
    (else the unprivileged kernel user cannot run the interpreter), /tmp itself is left 1777."""
    from autograder.sandbox import _parent_folders

    made = _parent_folders(["--ro-bind", "/tmp/clone/.venv", "/tmp/clone/.venv"])
    assert made == ["--perms", "0755", "--dir", "/tmp/clone"], made
