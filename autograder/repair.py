"""Repairing a submitted notebook: read it safely, then rebuild it on the released notebook's cells.

A submission's cells are matched to the released notebook (``notebooks/<id>/<name>.ipynb``):

1. by ``grade_id`` (the nbgrader metadata an intact notebook carries);
2. read-only cells (instructions, tests) by their content, when the metadata is gone;
3. answer cells by position: the cells that follow a matched read-only cell, up to the next matched
   one, fill the answer slot(s) that follow that cell in the released notebook (several cells in one
   slot — a split answer — are joined).

The notebook handed to nbgrader is the released notebook with the student's answers put in: every
read-only and test cell comes from the source (nbgrader then restores the hidden tests into them), so
a deleted, edited or moved test cell is graded as released. Cells the student added (helpers,
scratch work) are kept after the answer they followed. Each repair is logged for the reason column.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .course import nbgrader_metadata
from .intake import MAX_NOTEBOOK_BYTES


class NotANotebook(ValueError):
    """The file cannot be graded as a notebook; the message says why, for the reason column."""


@dataclass
class Repaired:
    notebook: nbformat.NotebookNode
    repairs: list[str] = field(default_factory=list)


def read_submission(path: Path) -> nbformat.NotebookNode:
    """Read a submitted file as an nbformat-4 notebook (outputs dropped), or raise ``NotANotebook``."""
    size = path.stat().st_size
    if size == 0:
        raise NotANotebook("not a notebook: the file is empty")
    if size > MAX_NOTEBOOK_BYTES:
        raise NotANotebook(f"not graded: the file is over the {MAX_NOTEBOOK_BYTES / 2**20:.0f} MB limit for a "
                           "notebook (images or data saved in it?)")
    try:
        raw = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        with open(path, "rb") as handle:
            head = handle.read(64).lstrip()
        if not head.startswith((b"{", b"[")):
            raise NotANotebook("not a notebook: the file is not JSON (a script or another file renamed .ipynb?)") from error
        raise NotANotebook(f"not a readable notebook (invalid JSON, truncated or damaged: {error})") from error
    if not isinstance(raw, dict):
        raise NotANotebook("not a notebook: the JSON is not a notebook object")
    version = raw.get("nbformat")
    if version != 4:
        if version is None and "worksheets" not in raw and "cells" not in raw:
            raise NotANotebook("not a notebook: JSON without cells")
        raise NotANotebook(f"not graded: notebook format {version} (from a very old Jupyter); open it in a current "
                           "Jupyter or Colab, save, and hand it in again")
    cells = raw.get("cells")
    if not isinstance(cells, list):
        raise NotANotebook("not a readable notebook (no list of cells)")
    clean = []
    for cell in cells:  # keep what grading needs; outputs (images and all) are dropped before running anyway
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        nbgrader = metadata.get("nbgrader") if isinstance(metadata.get("nbgrader"), dict) else None
        kept = {"nbgrader": nbgrader} if nbgrader else {}
        if cell["cell_type"] == "code":
            clean.append(nbformat.v4.new_code_cell(source, metadata=kept))
        elif cell["cell_type"] == "markdown":
            clean.append(nbformat.v4.new_markdown_cell(source, metadata=kept))
        else:
            clean.append(nbformat.v4.new_raw_cell(source, metadata=kept))
    return nbformat.v4.new_notebook(cells=clean)


def _normal(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def _is_answer(cell) -> bool:
    return bool(nbgrader_metadata(cell).get("solution"))


def rebuild(submitted: nbformat.NotebookNode, released: nbformat.NotebookNode) -> Repaired:
    """The released notebook with the answers of ``submitted`` matched into it (see the module doc)."""
    repairs: list[str] = []
    cells = submitted.cells
    released_ids = {nbgrader_metadata(c).get("grade_id"): i for i, c in enumerate(released.cells)}
    claimed: dict[int, int] = {}  # submitted index -> released index
    slots: dict[int, list[int]] = {}  # released answer index -> submitted indices
    by_id: dict[int, list[int]] = {}
    for index, cell in enumerate(cells):
        grade_id = nbgrader_metadata(cell).get("grade_id")
        if grade_id in released_ids and released.cells[released_ids[grade_id]].cell_type == cell.cell_type:
            by_id.setdefault(released_ids[grade_id], []).append(index)
    for target, indices in by_id.items():
        grade_id = nbgrader_metadata(released.cells[target]).get("grade_id")
        if len(indices) > 1:
            repairs.append(f"cell {grade_id!r} appears {len(indices)} times: kept the last")
        claimed[indices[-1]] = target
        for duplicate in indices[:-1]:
            claimed[duplicate] = -1  # dropped
        if _is_answer(released.cells[target]):
            slots[target] = [indices[-1]]
    matched_by_id = len(by_id)

    # Read-only cells whose metadata is gone: by content, each to the first unclaimed identical cell.
    by_content = 0
    for target, cell in enumerate(released.cells):
        if _is_answer(cell) or target in by_id:
            continue
        text = _normal(cell.source)
        for index, candidate in enumerate(cells):
            if index not in claimed and candidate.cell_type == cell.cell_type and _normal(candidate.source) == text:
                claimed[index] = target
                by_content += 1
                break

    # Answer slots without a grade_id match, taken a run of consecutive answer slots at a time: the
    # unclaimed cells after the matched cell that precedes the run, up to the next claimed cell.
    by_position = 0
    position_of = {target: index for index, target in claimed.items() if target >= 0}
    pending = [t for t, c in enumerate(released.cells) if _is_answer(c) and t not in slots]
    runs: list[list[int]] = []
    for target in pending:
        if runs and all(_is_answer(released.cells[u]) for u in range(runs[-1][-1], target + 1)):
            runs[-1].append(target)
        else:
            runs.append([target])
    for run in runs:
        anchor = run[0] - 1
        while anchor >= 0 and anchor not in position_of:
            anchor -= 1
        start = position_of[anchor] + 1 if anchor >= 0 else 0
        free = []
        for index in range(start, len(cells)):
            if index in claimed:
                break
            free.append(index)
        for kind in ("code", "markdown"):
            kind_slots = [t for t in run if released.cells[t].cell_type == kind]
            kind_free = [i for i in free if cells[i].cell_type == kind]
            for rank, target in enumerate(kind_slots):
                last = rank == len(kind_slots) - 1
                mine = kind_free[rank:] if last else kind_free[rank:rank + 1]  # the last slot takes the rest
                grade_id = nbgrader_metadata(released.cells[target]).get("grade_id")
                slots[target] = mine
                if not mine:
                    repairs.append(f"answer cell {grade_id!r} not found: graded as blank")
                    continue
                if len(mine) > 1:
                    repairs.append(f"joined {len(mine)} cells into answer {grade_id!r}")
                for index in mine:
                    claimed[index] = target
                by_position += 1

    rebuilt = copy.deepcopy(released)
    rebuilt.cells = []
    extras_after: dict[int, list] = {}
    last_target = -1
    for index, cell in enumerate(cells):  # the student's own cells follow the cell they followed
        target = claimed.get(index)
        if target is None:
            if cell.source.strip():
                extras_after.setdefault(last_target, []).append(cell)
        elif target >= 0:
            last_target = target
    for target, cell in enumerate(released.cells):
        new = copy.deepcopy(cell)
        if target in slots and slots[target]:
            new.source = "\n\n".join(cells[i].source for i in slots[target])
        rebuilt.cells.append(new)
        for extra in extras_after.get(target, []):
            rebuilt.cells.append(nbformat.v4.new_code_cell(extra.source) if extra.cell_type == "code"
                                 else nbformat.v4.new_markdown_cell(extra.source))
    for extra in extras_after.get(-1, []):
        rebuilt.cells.insert(0, nbformat.v4.new_code_cell(extra.source) if extra.cell_type == "code"
                             else nbformat.v4.new_markdown_cell(extra.source))

    answers = sum(_is_answer(c) for c in released.cells)
    if matched_by_id < answers and by_position:
        repairs.insert(0, f"cell metadata missing: matched {by_position} answer cell(s) by position"
                          + (f" and {by_content} read-only cell(s) by content" if by_content else ""))
    found = {t: i for i, t in claimed.items() if t >= 0}
    restored = [nbgrader_metadata(c).get("grade_id") for t, c in enumerate(released.cells)
                if not _is_answer(c) and nbgrader_metadata(c).get("grade")
                and (t not in found or _normal(cells[found[t]].source) != _normal(c.source))]
    if restored:
        repairs.append(f"test cell(s) {', '.join(map(repr, restored))} missing or edited: restored from the source")
    order = [t for _, t in sorted(claimed.items()) if t >= 0]
    if order != sorted(order):
        repairs.append("cells were reordered: graded in the released order")
    return Repaired(rebuilt, repairs)


def repair(path: Path, released_path: Path, target: Path) -> list[str]:
    """Read the submission at ``path``, rebuild it on ``released_path``, write it to ``target``.

    Returns the repairs made (empty for an intact notebook); raises ``NotANotebook``.
    """
    submitted = read_submission(path)
    released = nbformat.read(released_path, as_version=4)
    result = rebuild(submitted, released)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(result.notebook, target)
    return result.repairs
