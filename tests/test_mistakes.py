"""Packing the wrong-submission fixtures: every mistake graded once, never two in one unit."""

import pytest

from autograder.course import MISTAKES, assignments, nbgrader_metadata
from autograder.mistakes import load_mistakes, pack, with_mistakes

CHAPTERS = [a for a in assignments() if (MISTAKES / f"{a}.yml").exists()]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_packs_hold_every_mistake_once_and_never_two_of_one_unit(chapter):
    mistakes = load_mistakes(chapter)
    groups = pack(mistakes)
    assert sorted(m.name for g in groups for m in g) == sorted(m.name for m in mistakes)
    for group in groups:
        assert len({m.cell for m in group}) == len(group), [m.name for m in group]
        lost = [g for m in group for g in m.loses]
        assert len(lost) == len(set(lost)), [m.name for m in group]
    assert len(groups) < len(mistakes), "packing saves nothing for this chapter"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_packed_notebook_carries_each_of_its_mistakes(chapter):
    for group in pack(load_mistakes(chapter)):
        cells = {nbgrader_metadata(c).get("grade_id"): c.source for c in with_mistakes(group).cells}
        for mistake in group:
            assert mistake.with_ in cells[mistake.cell], mistake.name
