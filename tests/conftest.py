"""Fixtures shared by several test files."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.course import ROOT, tool_environment


@pytest.fixture(scope="session")
def public(tmp_path_factory):
    """Export the public edition with `make public`'s command, then build its website with `make book`.

    `make book` runs with this interpreter's venv (VENV=...) and no install step (STAMP=), so the
    test exercises the real recipe: jupyter-book with -W, then book/check_build.py.
    Returns (folder, finished `make book` process, seconds the build took).
    """
    dest = tmp_path_factory.mktemp("public") / "course"
    export = subprocess.run([sys.executable, "-m", "autograder.public", str(dest)], cwd=ROOT,
                            env=tool_environment(), capture_output=True, text=True, timeout=600)
    assert export.returncode == 0, export.stdout + export.stderr
    start = time.perf_counter()
    venv = Path(sys.executable).parent.parent
    build = subprocess.run(["make", "book", f"VENV={venv}", "STAMP="], cwd=dest, env=tool_environment(),
                           capture_output=True, text=True, timeout=1800)
    return dest, build, time.perf_counter() - start
