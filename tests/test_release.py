"""The student edition is what nbgrader makes of solutions/, and its setup cell is one setting."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import fork, grade, release
from autograder.course import NOTEBOOKS, ROOT, SOLUTIONS, assignments, nbgrader_metadata, notebook_names

CHAPTERS = assignments()


def test_every_chapter_has_a_page_a_solution_and_a_student_notebook():
    assert {"ch01_memory_math", "ch04_lora"} <= set(CHAPTERS)
    toc = (ROOT / "_toc.yml").read_text()
    for chapter in CHAPTERS:
        assert (ROOT / "book" / f"{chapter}.md").exists()
        for notebook in (SOLUTIONS / chapter).glob("*.ipynb"):
            assert (NOTEBOOKS / chapter / notebook.name).exists(), f"run `make release`: {chapter}/{notebook.name} missing"
            assert f"notebooks/{chapter}/{notebook.stem}" in toc


def test_notebooks_equal_a_fresh_generation(tmp_path):
    release.generate(CHAPTERS, SOLUTIONS, tmp_path)
    for chapter in CHAPTERS:
        fresh = sorted(p.name for p in (tmp_path / chapter).iterdir())
        committed = sorted(p.name for p in (NOTEBOOKS / chapter).iterdir())
        assert fresh == committed, f"notebooks/{chapter} has other files than a fresh release: run `make release`"
        for name in fresh:
            a = json.loads((tmp_path / chapter / name).read_text())
            b = json.loads((NOTEBOOKS / chapter / name).read_text())
            assert a == b, f"notebooks/{chapter}/{name} differs from a fresh `make release`"


@pytest.mark.parametrize("path", sorted(SOLUTIONS.glob("*/*.ipynb")), ids=lambda p: p.parent.name)
def test_solution_setup_cell_installs_from_the_configured_repository(path):
    notebook = nbformat.read(path, as_version=4)
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# "), "first cell: a # title"
    setup = notebook.cells[1]
    assert setup.metadata["nbgrader"]["grade_id"] == "setup"
    assert setup.source == release.setup_cell_source(), "setup cell is stale: run `make release`"
    assert release.course_repository() in setup.source
    assert "setup_notebook()" in notebook.cells[2].source


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*/*.ipynb")), ids=lambda p: p.parent.name)
def test_student_notebook_has_no_solution_and_no_hidden_test(path):
    text = path.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text
    notebook = nbformat.read(path, as_version=4)
    answers = [c for c in notebook.cells if nbgrader_metadata(c).get("solution")]
    assert answers and all("NotImplementedError" in c.source or "YOUR ANSWER HERE" in c.source for c in answers)
    tests = [c for c in notebook.cells if nbgrader_metadata(c).get("grade") and c.cell_type == "code"]
    assert len(tests) >= 5, "each chapter has at least five graded units"
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), "released notebooks carry no outputs"


def test_setup_cell_does_nothing_off_colab(tmp_path):
    result = subprocess.run([sys.executable, "-c", release.setup_cell_source()], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""
    assert list(tmp_path.iterdir()) == []


def test_fork_rewrites_the_one_repository_setting(tmp_path):
    config = tmp_path / "_config.yml"
    config.write_text((ROOT / "_config.yml").read_text())
    fork.set_repository("https://github.com/someone/my-fork", config)
    assert release.course_repository(config) == "https://github.com/someone/my-fork"
    assert "colab_url" in config.read_text()  # the rest is untouched
    with pytest.raises(SystemExit, match="not an https URL"):
        fork.set_repository("git@github.com:x/y", config)


# --- the grading front end: naming, zips and bad input (no notebook is executed here) ---

def test_grade_cli_refuses_bad_arguments(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = lambda *args: subprocess.run([sys.executable, "-m", "autograder.grade", *map(str, args)],
                                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    missing = run(tmp_path / "nothing-here", tmp_path / "out")
    assert missing.returncode != 0 and "does not exist" in missing.stderr + missing.stdout
    (tmp_path / "notes.txt").write_text("x")
    wrong = run(tmp_path / "notes.txt", tmp_path / "out")
    assert wrong.returncode != 0 and "neither a folder nor a .zip" in wrong.stderr + wrong.stdout
    inside = run(tmp_path, SOLUTIONS / "out")
    assert inside.returncode != 0 and "must not be inside" in inside.stderr
    assert not (SOLUTIONS / "out").exists()
