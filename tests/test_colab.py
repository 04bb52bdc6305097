"""An exercise notebook run as a student runs it on Google Colab, on this machine.

A fresh Python environment gets a Colab-like preinstalled set (a CPU torch from the range that
requirements.txt allows, numpy, transformers and matplotlib at other versions than the pins,
ipykernel) and a stand-in ``google.colab`` module that the kernel imports at start, as Colab's
does. The stand-in imports numpy, so that a package is already loaded when the setup cell runs.
The public edition (``python -m autograder.public``) is committed to a local git repository and
``COURSE_REPOSITORY`` (an environment variable the setup cell honours) points at it; the clone goes
to ``COURSE_HOME`` (the setup cell's other variable, ``/content`` by default) in the test's folder.
Then:

1. "Run all" on the released notebook: the setup cell clones and installs, finds that pip replaced
   a package the session had loaded, prints the one line that asks for a restart, and stops.
2. After the restart (a new kernel), "Run all" again: the setup cell does nothing more, the hardware
   cell reports, every import works, and each visible test fails with the expected
   NotImplementedError message.
3. The same with the solutions written in (an honest student): every cell passes.

Python: the version of this test's interpreter (3.11 here and in CI), not Colab's 3.12: the only
CPU build of torch on the machine is a cp311 wheel, and the package index's Linux torch is a CUDA
build of several GB with its CUDA libraries, more than a test may download. Without a local CPU
torch wheel for this Python the test skips and says so; it also skips when the package index
cannot be reached. Downloads are cached by pip (its usual cache); the preinstalled environment is
built once under ``.cache/colab/`` (git-ignored; ``PEFTLAB_COLAB_CACHE`` moves it) and copied
for each run.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from autograder.course import ROOT, nbgrader_metadata

# PEFTLAB_COLAB_CACHE moves it (e.g. out of a fresh clone, so that CI keeps it between runs).
CACHE = Path(os.environ.get("PEFTLAB_COLAB_CACHE", ROOT / ".cache" / "colab"))
CHAPTER, NOTEBOOK = "ch01_memory_math", "memory_math.ipynb"
# What a Colab runtime has before the course installs anything: versions other than the pins.
PREINSTALLED = ["numpy==2.0.2", "transformers==4.57.1", "matplotlib==3.10.0",
                "ipykernel==6.17.1"]
RESTART_LINE = "restart the runtime (Runtime → Restart session), then run this cell again"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
FAKE_COLAB = '''"""Stand-in for Colab's own module (the course's setup cell checks for it)."""
import numpy  # a package already loaded when the first cell runs
'''


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} failed:\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def local_torch_wheel() -> Path | None:
    """A CPU torch wheel for this Python in pip's find-links folders (or /opt/wheels)."""
    folders = os.environ.get("PIP_FIND_LINKS", "").split() + ["/opt/wheels"]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for folder in folders:
        found = sorted(glob.glob(f"{folder}/torch-2.*+cpu-{tag}-{tag}-*linux*x86_64.whl"))
        if found:
            return Path(found[-1])
    return None


def index_reachable(scratch: Path) -> bool:
    """Whether pip can download from its package index (one small file, no retries)."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--retries", "0",
         "--timeout", "15", "--dest", str(scratch), "tqdm==4.70.1"],
        capture_output=True, text=True, timeout=120)
    return result.returncode == 0


def base_python() -> str:
    """The interpreter this test runs on, outside any virtual environment."""
    for name in (f"python{PYTHON}", "python3"):
        candidate = Path(sys.base_prefix) / "bin" / name
        if candidate.exists():
            return str(candidate)
    pytest.skip(f"no base interpreter for Python {PYTHON} beside {sys.base_prefix}")


def colab_base(torch_wheel: Path) -> Path:
    """The preinstalled environment, built once (keyed by what goes into it)."""
    key = hashlib.sha256(json.dumps([PYTHON, torch_wheel.name, PREINSTALLED,
                                     FAKE_COLAB]).encode()).hexdigest()[:12]
    base = CACHE / f"base-{key}"
    if (base / ".complete").exists():
        return base
    shutil.rmtree(base, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    run([base_python(), "-m", "venv", str(base)])
    python = str(base / "bin" / "python")
    run([python, "-m", "pip", "install", "-q", str(torch_wheel), *PREINSTALLED], timeout=900)
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                    ).stdout.strip())
    (site / "google" / "colab").mkdir(parents=True)  # `google` stays a namespace package
    (site / "google" / "colab" / "__init__.py").write_text(FAKE_COLAB)
    (base / ".complete").touch()
    return base


def public_repository(tmp_path: Path) -> Path:
    """The public edition, committed to a fresh local git repository."""
    public = tmp_path / "peft-from-scratch"
    run([sys.executable, "-m", "autograder.public", str(public)], cwd=ROOT, timeout=600)
    git = ["git", "-C", str(public), "-c", "user.name=test", "-c", "user.email=test@example.org"]
    run(git[:3] + ["init", "-q", "-b", "main"])
    run(git + ["add", "-A"])
    run(git + ["commit", "-q", "-m", "public edition"])
    return public


def kernel_environment(monkeypatch, tmp_path: Path, colab: Path, repository: Path) -> None:
    """What the Colab kernel sees: its own Python first on PATH, no trace of this checkout."""
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PEFTLAB_DATA", "OMP_WAIT_POLICY",
                 "TOKENIZERS_PARALLELISM", "JUPYTER_PATH", "IPYTHONDIR"):
        monkeypatch.delenv(name, raising=False)
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep)
            if not p.startswith(str(ROOT))]
    monkeypatch.setenv("PATH", os.pathsep.join([str(colab / "bin"), *path]))
    monkeypatch.setenv("COURSE_REPOSITORY", repository.as_uri())
    monkeypatch.setenv("COURSE_HOME", str(tmp_path / "content"))  # Colab's /content
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the notebook needs no model from the Hub
    ipython = tmp_path / "ipython"
    startup = ipython / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab\n")  # as Colab's kernel does
    monkeypatch.setenv("IPYTHONDIR", str(ipython))
    spec = tmp_path / "jupyter" / "kernels" / "colab"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(colab / "bin" / "python"), "-m", "ipykernel_launcher", "-f",
                 "{connection_file}"],
        "display_name": "Colab-like", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))


def execute(notebook, content: Path, stop_at_error: bool):
    """Run every cell in a new kernel (a fresh runtime) from ``content``, Colab's /content."""
    client = NotebookClient(notebook, kernel_name="colab", timeout=900,
                            allow_errors=not stop_at_error,
                            resources={"metadata": {"path": str(content)}})
    try:
        client.execute()
    except CellExecutionError:
        return False
    return True


def text_of(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
        elif "text/plain" in output.get("data", {}):
            parts.append(output.data["text/plain"])
    return "".join(parts)


def errors(notebook) -> dict[str, str]:
    return {nbgrader_metadata(c).get("grade_id", f"cell {i}"): f"{o.ename}: {o.evalue}"
            for i, c in enumerate(notebook.cells) if c.cell_type == "code"
            for o in c.get("outputs", []) if o.output_type == "error"}


def todo_message(error: str) -> bool:
    """The message of a TODO not done: the answer cell's NotImplementedError, or a test saying so
    (an answer that is a variable the unfinished cell never defined)."""
    return "NotImplementedError" in error or error.startswith("AssertionError: define ")


def honest_copy(released):
    """The released notebook with every answer cell holding the solution's code."""
    solution = nbformat.read(ROOT / "solutions" / CHAPTER / NOTEBOOK, as_version=4)
    answers = {nbgrader_metadata(c).get("grade_id"): c.source for c in solution.cells
               if nbgrader_metadata(c).get("solution") and c.cell_type == "code"}
    copy = nbformat.from_dict(json.loads(json.dumps(released)))
    for cell in copy.cells:
        grade_id = nbgrader_metadata(cell).get("grade_id")
        if cell.cell_type == "code" and grade_id in answers:
            cell.source = re.sub(r"(?m)^\s*### (BEGIN|END) SOLUTION\n?", "", answers[grade_id])
    return copy


def test_a_student_on_colab_installs_restarts_once_and_runs_an_exercise(tmp_path, monkeypatch):
    torch_wheel = local_torch_wheel()
    if torch_wheel is None:
        pytest.skip(f"no CPU torch wheel for Python {PYTHON} on this machine (in PIP_FIND_LINKS "
                    "or /opt/wheels); the index only has multi-GB CUDA builds")
    if not index_reachable(tmp_path / "probe"):
        pytest.skip("the package index cannot be reached: the Colab install test needs it")
    base = colab_base(torch_wheel)
    colab = tmp_path / "colab"
    # a fresh runtime: hard links (instant) where the cache shares the file system, else a copy
    if subprocess.run(["cp", "-al", str(base), str(colab)], capture_output=True).returncode:
        shutil.rmtree(colab, ignore_errors=True)
        run(["cp", "-a", str(base), str(colab)])
    repository = public_repository(tmp_path)
    kernel_environment(monkeypatch, tmp_path, colab, repository)
    content = tmp_path / "content"
    content.mkdir()
    released = nbformat.read(repository / "notebooks" / CHAPTER / NOTEBOOK, as_version=4)

    # 1. Run all: clone, install, then the request to restart (numpy was loaded and replaced).
    first = nbformat.from_dict(json.loads(json.dumps(released)))
    finished = execute(first, content, stop_at_error=True)
    setup = first.cells[1]
    assert nbgrader_metadata(setup).get("grade_id") == "setup"
    printed = text_of(setup)
    assert (content / repository.name / "requirements.txt").exists(), printed
    assert not finished and RESTART_LINE in printed and "numpy" in printed, (
        f"the setup cell should ask for a restart after replacing the loaded numpy:\n{printed}")
    assert not any(text_of(c) for c in first.cells[2:] if c.cell_type == "code"), (
        "Run all should stop at the setup cell")

    # 2. After the restart: nothing more to install, hardware reported, the TODOs reported.
    second = nbformat.from_dict(json.loads(json.dumps(released)))
    execute(second, content, stop_at_error=False)
    assert RESTART_LINE not in text_of(second.cells[1]), "a second restart was asked for"
    report = text_of(second.cells[2])
    assert "python" in report and "torch" in report and "device" in report, report
    assert f"python       {PYTHON}" in report or re.search(rf"python\s+{PYTHON}\.", report)
    found = errors(second)
    graded = [nbgrader_metadata(c).get("grade_id") for c in second.cells
              if nbgrader_metadata(c).get("grade") and c.cell_type == "code"]
    broken = {k: v for k, v in found.items() if not todo_message(v)}
    assert not broken, f"cells failed for another reason than a TODO: {broken}"
    for grade_id in graded:
        assert todo_message(found.get(grade_id, "")), (
            f"{grade_id}: expected the not-implemented message, got {found.get(grade_id)!r}")
    versions = run([str(colab / "bin" / "python"), "-c",
                    "import numpy, transformers, peftlab; "
                    "print(numpy.__version__, transformers.__version__)"]).stdout.split()
    pins = dict(line.split("==") for line in (repository / "requirements.txt").read_text()
                .splitlines() if "==" in line and not line.startswith("#"))
    assert versions == [pins["numpy"], pins["transformers"]]

    # 3. An honest student's notebook passes every visible test.
    honest = honest_copy(released)
    assert execute(honest, content, stop_at_error=True), f"honest copy failed: {errors(honest)}"
