"""Where things are, and how nbgrader is called (one place for both)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"
CONFIG = Path(__file__).resolve().parent / "nbgrader_config.py"
MISTAKES = Path(__file__).resolve().parent / "mistakes"
ANSWERS = Path(__file__).resolve().parent / "answers"  # values each exercise expects (no page may print them)


def nbgrader_metadata(cell) -> dict:
    """A notebook cell's nbgrader metadata (``{}`` for a cell nbgrader does not know)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def assignments(solutions: Path = SOLUTIONS) -> list[str]:
    """Assignment ids: the folders of ``solutions/`` that hold notebooks, in course order."""
    return sorted(p.name for p in solutions.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def notebook_names(solutions: Path = SOLUTIONS) -> dict[str, str]:
    """Map each notebook's file stem to its assignment id (stems are unique across the course)."""
    names: dict[str, str] = {}
    for assignment in assignments(solutions):
        for notebook in sorted((solutions / assignment).glob("*.ipynb")):
            if notebook.stem in names:
                raise ValueError(f"notebook name {notebook.stem!r} is used by two assignments; names must be unique")
            names[notebook.stem] = assignment
    return names


def tool_environment() -> dict[str, str]:
    """The environment for nbgrader and its kernels: this interpreter's ``bin/`` first on ``PATH``.

    nbgrader runs ``alembic`` from ``PATH`` when it creates a gradebook, and the ``python3`` kernel
    starts ``python`` from ``PATH``: both must be the course's own, also when nobody activated it.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("PYTHONWARNINGS", "ignore")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see the Makefile: spinning OpenMP threads starve parallel kernels
    # bitsandbytes wraps its CPU fallbacks in torch.compile; in a fresh sandbox every kernel would compile
    # them again from a cold cache (a 165-value dequantisation measured 13.5 s instead of 1.6 s with a
    # warm cache). Grading runs them eagerly: the same operations, in a fraction of the time.
    env.setdefault("TORCHDYNAMO_DISABLE", "1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    return env


def nbgrader(args: list[str], course_root: Path, capture: bool = True) -> subprocess.CompletedProcess:
    """Run ``nbgrader <args>`` in ``course_root`` with the course's configuration."""
    course_root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CONFIG, course_root / "nbgrader_config.py")
    command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course_root}"]
    return subprocess.run(command, cwd=course_root, env=tool_environment(), capture_output=capture, text=True)
