"""Repair without a kernel: damaged notebooks rebuilt on the released notebook, non-notebooks refused."""

import copy
import json

import nbformat
import pytest

from autograder.course import NOTEBOOKS, nbgrader_metadata
from autograder.mistakes import filled_notebook
from autograder.repair import NotANotebook, read_submission, rebuild

ASSIGNMENT, NOTEBOOK = "ch04_lora", "lora"
RELEASED = nbformat.read(NOTEBOOKS / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)


def _answers(notebook):
    return {nbgrader_metadata(c)["grade_id"]: c.source for c in notebook.cells if nbgrader_metadata(c).get("solution")}


def _stripped(notebook):
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        cell.metadata = {}
    return notebook


@pytest.fixture(scope="module")
def solved():
    return filled_notebook(ASSIGNMENT, NOTEBOOK)


def test_intact_notebook_is_left_as_it_is(solved):
    result = rebuild(solved, RELEASED)
    assert result.repairs == []
    assert [c.source for c in result.notebook.cells] == [c.source for c in solved.cells]


def test_stripped_metadata_is_matched_back(solved):
    result = rebuild(_stripped(solved), RELEASED)
    assert _answers(result.notebook) == _answers(solved)
    assert [c.metadata for c in result.notebook.cells] == [c.metadata for c in RELEASED.cells]
    assert "cell metadata missing" in result.repairs[0]


def test_split_duplicated_reordered_and_deleted_cells(solved):
    damaged = _stripped(solved)
    index = {nbgrader_metadata(c)["grade_id"]: i for i, c in enumerate(solved.cells)}
    init = damaged.cells[index["lora_init"]]
    head, tail = init.source.split("\n\n", 1)
    damaged.cells[index["lora_init"]] = nbformat.v4.new_code_cell(head)
    damaged.cells.insert(index["lora_init"] + 1, nbformat.v4.new_code_cell(tail))  # split in two
    del damaged.cells[index["test_lora_merge"] + 1]  # a test cell deleted
    result = rebuild(damaged, RELEASED)
    assert _answers(result.notebook) == {k: v.replace(tail, "\n\n" + tail).replace("\n\n\n\n", "\n\n") if k == "lora_init"
                                         else v for k, v in _answers(solved).items()}
    assert any("joined 2 cells into answer 'lora_init'" in r for r in result.repairs)
    assert any("'test_lora_merge'" in r and "restored" in r for r in result.repairs)

    moved = copy.deepcopy(solved)  # a unit (heading, answer, test) moved to the end, metadata intact
    block = moved.cells[index["md_lora_budget"]:index["test_lora_budget"] + 1]
    del moved.cells[index["md_lora_budget"]:index["test_lora_budget"] + 1]
    moved.cells += block + [copy.deepcopy(moved.cells[index["quiz"] - len(block)])]  # and the quiz cell twice
    result = rebuild(moved, RELEASED)
    assert _answers(result.notebook) == _answers(solved)
    assert [nbgrader_metadata(c).get("grade_id") for c in result.notebook.cells] == \
        [nbgrader_metadata(c).get("grade_id") for c in RELEASED.cells]
    assert any("reordered" in r for r in result.repairs) and any("appears 2 times" in r for r in result.repairs)


def test_student_helper_cells_are_kept_after_their_answer(solved):
    notebook = copy.deepcopy(solved)
    at = next(i for i, c in enumerate(notebook.cells) if nbgrader_metadata(c).get("grade_id") == "lora_forward")
    notebook.cells.insert(at + 1, nbformat.v4.new_code_cell("HELPER = 1"))
    cells = rebuild(notebook, RELEASED).notebook.cells
    assert cells[at + 1].source == "HELPER = 1" and not nbgrader_metadata(cells[at + 1])


@pytest.mark.parametrize("content,reason", [
    (b"", "empty"),
    (b'{"cells": [ {"cell_type": "code", "sour', "invalid JSON"),
    (b"import torch\nprint('hello')\n", "not JSON"),
    (json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": [{"cells": []}], "metadata": {}}).encode(),
     "notebook format 3"),
    (b"[1, 2, 3]", "not a notebook object"),
])
def test_not_a_notebook_says_why(tmp_path, content, reason):
    path = tmp_path / "x.ipynb"
    path.write_bytes(content)
    with pytest.raises(NotANotebook, match=reason):
        read_submission(path)


def test_huge_file_is_refused_unread(tmp_path):
    path = tmp_path / "huge.ipynb"
    with open(path, "wb") as handle:  # sparse: 200 MB on paper, nothing on disk
        handle.truncate(200 * 2**20)
    with pytest.raises(NotANotebook, match="over the 64 MB limit"):
        read_submission(path)


def test_huge_image_outputs_are_dropped(tmp_path, solved):
    notebook = copy.deepcopy(solved)
    image = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "A" * 20_000_000}}
    notebook.cells[2].outputs = [nbformat.from_dict(image)]
    path = tmp_path / "images.ipynb"
    nbformat.write(notebook, path)
    read = read_submission(path)
    assert all(not c.get("outputs") for c in read.cells)
