"""What a student's tests say about the classic mistakes: `python -m autograder.signals`.

For each chapter whose exercise has been rewritten as contracts (issue 18), every classic mistake of its
`autograder/mistakes/<id>.yml` is run against the unit's test cell: the hidden tests must catch every
one, the visible tests must flag at least 80 % of them, and each mistake's visible signal must be the
one it declares (`visible: false` only with a reason). The chapters still to be rewritten join the list
as they are.
"""

import pytest

from autograder.signals import measure, report

pytestmark = pytest.mark.slow
REWRITTEN = ["ch05_quantization", "ch06_qlora", "ch07_dora", "ch09_beyond"]
VISIBLE_TARGET = 0.8


@pytest.mark.parametrize("chapter", REWRITTEN)
def test_visible_tests_flag_classic_mistakes_and_hidden_tests_catch_all(chapter):
    signals = measure(chapter)
    text, problems = report(chapter, signals)
    print(text)
    assert not problems, "\n".join(problems)
    visible = sum(s.visible for s in signals) / len(signals)
    assert visible >= VISIBLE_TARGET, f"visible tests flag {visible:.0%} of {chapter}'s classic mistakes"
    assert len(signals) >= 3 * len({s.unit for s in signals}), "fewer than three classic mistakes per unit"
