"""Checks for test cells: each failure tells the student what was expected, what came, and why.

A bare ``assert`` fails with an empty ``AssertionError``; these raise one whose message a student
can act on. They never print to stderr (nbgrader scores a test cell that does so 0).
"""

from __future__ import annotations

from typing import Any

import torch


def expect(condition: bool, message: str) -> None:
    """Fail with ``message`` unless ``condition`` holds."""
    if not condition:
        raise AssertionError(message)


def expect_equal(actual: Any, expected: Any, what: str, hint: str = "") -> None:
    """Fail unless ``actual == expected``; the message names ``what`` and the likely mistake."""
    if not actual == expected:
        raise AssertionError(_message(what, f"expected {expected!r}, got {actual!r}", hint))


def expect_close(actual: float, expected: float, what: str, hint: str = "", rel: float = 1e-6) -> None:
    """Fail unless two numbers agree to a relative tolerance ``rel``."""
    ok = abs(actual - expected) <= rel * max(abs(expected), 1e-300)
    if not ok:
        raise AssertionError(_message(what, f"expected {expected:.6g}, got {actual:.6g}", hint))


def expect_tensor_close(
    actual: torch.Tensor, expected: torch.Tensor, what: str, hint: str = "", atol: float = 1e-6, rtol: float = 1e-5
) -> None:
    """Fail unless two tensors have the same shape and agree elementwise to ``atol``/``rtol``."""
    if tuple(actual.shape) != tuple(expected.shape):
        found = f"expected shape {tuple(expected.shape)}, got {tuple(actual.shape)}"
        raise AssertionError(_message(what, found, hint))
    if not torch.allclose(actual.detach().float(), expected.detach().float(), atol=atol, rtol=rtol):
        worst = (actual.detach().float() - expected.detach().float()).abs().max().item()
        raise AssertionError(_message(what, f"largest difference {worst:.3g} (tolerance {atol:g})", hint))


def _message(what: str, found: str, hint: str) -> str:
    return f"{what}: {found}." + (f" Likely mistake: {hint}" if hint else "")
