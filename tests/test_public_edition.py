"""The public edition's README is true there: both of its commands pass from a clean copy.

`make book` is the `public` fixture's build of a fresh export (tests/conftest.py; the website tests
read the same build, so the book is built once). `make test` runs here in a clean copy of that
export (no `_build/`), with this interpreter's venv (VENV=..., STAMP=: no install step; the venv
bootstrap itself is tests/test_versions.py's). `make fork`, the README's command for a copy of
the edition, runs there too.
"""

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.course import tool_environment

pytestmark = pytest.mark.slow
VENV = Path(sys.executable).parent.parent


def test_readme_names_only_what_the_public_edition_has(public):
    dest, _, _ = public
    readme = (dest / "README.md").read_text()
    assert "public edition" in readme and "instructors' repository" in readme
    commands = re.findall(r"(?m)^make (\w+)", readme)
    assert commands == ["book", "test", "fork"], commands
    for absent in (".ci/", "autograder/", "bench/", "solutions/", "make grade", "make release", "make public"):
        assert absent not in readme, f"the public README names {absent!r}, which the edition lacks"
    for path in re.findall(r"`([\w./-]+/)`", readme):
        assert (dest / path).is_dir(), f"the README names {path}, which the edition lacks"


def test_both_readme_commands_pass_from_a_clean_copy(public, tmp_path):
    dest, build, _ = public
    assert build.returncode == 0, "make book failed on a fresh export:\n" + (build.stdout + build.stderr)[-4000:]
    clean = tmp_path / "peft-from-scratch"
    shutil.copytree(dest, clean, ignore=shutil.ignore_patterns("_build", ".pytest_cache", "__pycache__"))
    start = time.perf_counter()
    test = subprocess.run(["make", "test", f"VENV={VENV}", "STAMP="], cwd=clean, env=tool_environment(),
                          capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    log = test.stdout + test.stderr
    assert test.returncode == 0, f"make test failed in the public edition:\n{log[-4000:]}"
    summary = log.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", log) and not re.search(r"\d+ (failed|error|skipped)", log), summary
    print(f"public edition: make test in {seconds:.0f} s ({summary.strip('= ')})")
    fork = subprocess.run(["make", "fork", "REPO=https://github.com/someone/copy", f"VENV={VENV}", "STAMP="],
                          cwd=clean, env=tool_environment(), capture_output=True, text=True, timeout=120)
    assert fork.returncode == 0, fork.stdout + fork.stderr
    notebooks = sorted((clean / "notebooks").glob("*/*.ipynb"))
    assert notebooks and all("https://github.com/someone/copy" in p.read_text() for p in notebooks)
    assert "url: https://github.com/someone/copy" in (clean / "_config.yml").read_text()
