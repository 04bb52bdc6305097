"""The public edition's own tests (`make test` here): what this edition ships works.

- the helper library `peftlab` loads the course's model and data offline and its checks explain
  failures in words;
- every exercise notebook's setup cell does nothing off Colab;
- every exercise notebook, run top to bottom as released, reaches its first TODO and stops there
  with the visible test's message (every cell before it ran without an error). The notebooks share
  one kernel, their namespace emptied between them: the imports are paid once.

The website is the other command, `make book`: it executes every page and fails on any warning.
(The instructors' repository holds the solutions, the hidden tests and the grader, and tests those.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*/*.ipynb"))


def _graded(cell) -> str | None:
    """The grade id of a test cell (a graded, read-only code cell), else None."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade_id") if meta.get("grade") and cell.cell_type == "code" else None


def test_checks_name_the_likely_mistake():
    from peftlab import checks

    with pytest.raises(AssertionError, match=r"count: expected 3, got 4\. Likely mistake: counted the bias"):
        checks.expect_equal(4, 3, "count", hint="counted the bias")

    def todo():
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not implemented yet"):
        checks.expect_runs(todo, what="todo()")


def test_model_and_data_load_offline():
    from peftlab import data, models

    assert len(data.load_course_dataset("reviews")["train"]) > 0
    model, tokenizer = models.load_minilm_classifier(num_labels=2), models.load_minilm_tokenizer()
    assert models.count_parameters(model) > 20_000_000
    assert model(**tokenizer(["a fine test"], return_tensors="pt")).logits.shape == (1, 2)


def test_every_exercise_has_its_chapter_page_and_both_are_in_the_contents():
    toc = (ROOT / "_toc.yml").read_text()
    assert NOTEBOOKS
    for path in NOTEBOOKS:
        assert (ROOT / "book" / f"{path.parent.name}.md").exists(), path.parent.name
        assert f"book/{path.parent.name}" in toc and f"notebooks/{path.parent.name}/{path.stem}" in toc


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_setup_cell_does_nothing_off_colab(path, tmp_path):
    setup = nbformat.read(path, as_version=4).cells[1]
    result = subprocess.run([sys.executable, "-c", setup.source], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == result.stderr == "", result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def kernel():
    """One python3 kernel for every notebook (started once: the imports are paid once). Before each
    notebook its namespace is emptied (%reset -f) and it moves into the notebook's folder."""
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name="python3")
    manager.start_kernel()
    yield manager
    manager.shutdown_kernel(now=True)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_notebook_runs_to_its_first_todo(path, tmp_path, kernel):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    folder = tmp_path / path.parent.name
    shutil.copytree(path.parent, folder)
    notebook = nbformat.read(folder / path.name, as_version=4)
    fresh = nbformat.v4.new_code_cell(f"%reset -f\nimport os\nos.chdir({str(folder)!r})")
    notebook.cells.insert(0, fresh)
    client = NotebookClient(notebook, km=kernel, timeout=300, allow_errors=False)
    with pytest.raises(CellExecutionError):
        client.execute()
    failed = [(i, c) for i, c in enumerate(notebook.cells) if c.cell_type == "code"
              and any(o.output_type == "error" for o in c.get("outputs", []))]
    assert len(failed) == 1 and failed[0][0] > 0, f"cells that failed: {[i for i, _ in failed]}"
    index, cell = failed[0]
    error = next(o for o in cell.outputs if o.output_type == "error")
    assert _graded(cell), (f"cell {index - 1} is not a test cell but failed: {error.ename}: {error.evalue}")
    assert error.ename == "AssertionError" and "not implemented yet" in error.evalue, (
        f"{_graded(cell)}: expected the visible test's message, got {error.ename}: {error.evalue}")
    ran = [c for c in notebook.cells[:index] if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in ran), "a cell before the first TODO did not run"
