"""Checks for test cells: each failure tells the student what was expected, what came, and why.

A bare ``assert`` fails with an empty ``AssertionError``; these raise one whose message a student
can act on. They never print to stderr (nbgrader scores a test cell that does so 0). Test cells
compare only through these functions, so that the grader has one place to harden: they hold their
own references to the functions they compare with (taken when this module is imported, before any
student code ran), and they refuse results whose comparison a notebook defined itself.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import torch

T = TypeVar("T")
NONE_HINT = "the function returned None: is a `return` statement missing?"
# Taken at import: a notebook that later replaces torch.allclose or Tensor.__ne__ does not change these.
_allclose, _tensor_ne, _tensor_any = torch.allclose, torch.Tensor.__ne__, torch.Tensor.any
_PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)


def _own_comparison(value: Any) -> bool:
    """True for an object of a class defined in the notebook itself (whose == could say anything)."""
    return type(value).__module__ == "__main__"


def expect(condition: bool, message: str) -> None:
    """Fail with ``message`` unless ``condition`` holds."""
    if not condition:
        raise AssertionError(message)


def expect_equal(actual: Any, expected: Any, what: str, hint: str = "") -> None:
    """Fail unless ``actual == expected``; the message names ``what`` and the likely mistake."""
    if actual is None and expected is not None:
        raise AssertionError(_message(what, f"expected {expected!r}, got None", NONE_HINT))
    if _own_comparison(actual):
        raise AssertionError(_message(what, f"expected {expected!r}, got an object of the notebook's own class "
                                            f"{type(actual).__name__}", "return a plain value (a number, string or tuple)"))
    if not actual == expected:
        raise AssertionError(_message(what, f"expected {expected!r}, got {actual!r}", hint))


def expect_close(actual: float, expected: float, what: str, hint: str = "", rel: float = 1e-6) -> None:
    """Fail unless two numbers agree to a relative tolerance ``rel``."""
    if not isinstance(actual, (int, float)) or isinstance(actual, bool) or _own_comparison(actual):
        if isinstance(actual, torch.Tensor) and actual.numel() == 1:
            actual = actual.item()
        else:
            hint = NONE_HINT if actual is None else f"return a number (int or float), not {type(actual).__name__}"
            raise AssertionError(_message(what, f"expected the number {expected:.6g}, got {actual!r}", hint))
    ok = abs(actual - expected) <= rel * max(abs(expected), 1e-300)
    if not ok:
        raise AssertionError(_message(what, f"expected {expected:.6g}, got {actual:.6g}", hint))


def _expect_tensor(actual: Any, expected: torch.Tensor, what: str, hint: str) -> None:
    """Fail with a readable message unless ``actual`` is a tensor of ``expected``'s shape."""
    if not isinstance(actual, torch.Tensor):
        hint = NONE_HINT if actual is None else f"return a torch.Tensor, not {type(actual).__name__}"
        raise AssertionError(_message(what, f"expected a tensor of shape {tuple(expected.shape)}, got {actual!r:.80}", hint))
    if type(actual) not in _PLAIN_TENSORS:
        raise AssertionError(_message(what, f"expected a plain torch.Tensor, got a {type(actual).__name__}",
                                      "return the result of torch operations, not a subclass of Tensor"))
    if tuple(actual.shape) != tuple(expected.shape):
        raise AssertionError(_message(what, f"expected shape {tuple(expected.shape)}, got {tuple(actual.shape)}", hint))


def expect_tensor_close(
    actual: torch.Tensor, expected: torch.Tensor, what: str, hint: str = "", atol: float = 1e-6, rtol: float = 1e-5
) -> None:
    """Fail unless two tensors have the same shape and agree elementwise to ``atol``/``rtol``."""
    _expect_tensor(actual, expected, what, hint)
    a, e = actual.detach().float(), expected.detach().float()
    if not _allclose(a, e, atol=atol, rtol=rtol):
        worst = (a - e).abs().max().item()
        raise AssertionError(_message(what, f"largest difference {worst:.3g} (tolerance {atol:g})", hint))


def expect_tensor_equal(actual: torch.Tensor, expected: torch.Tensor, what: str, hint: str = "") -> None:
    """Fail unless two tensors have the same shape, the same dtype and equal elements (bit for bit)."""
    _expect_tensor(actual, expected, what, hint)
    if actual.dtype != expected.dtype:
        raise AssertionError(_message(what, f"expected dtype {expected.dtype}, got {actual.dtype}", hint))
    differ = _tensor_ne(actual.detach(), expected.detach())
    if bool(_tensor_any(differ)):
        first = tuple(int(i) for i in differ.nonzero()[0])
        found = (f"{int(differ.sum())} of {differ.numel()} elements differ; the first at index {first}: "
                 f"expected {expected[first].item()!r}, got {actual[first].item()!r}")
        raise AssertionError(_message(what, found, hint))


def expect_runs(function: Callable[..., T], *args: Any, what: str, hint: str = "", **kwargs: Any) -> T:
    """Return ``function(*args, **kwargs)``; if it raises, fail with a message a student can act on.

    ``NotImplementedError`` (a ``RuntimeError``) means the TODO is not done yet; any other
    exception is reported with ``what`` was called and the likely mistake ``hint``.
    """
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise AssertionError(f"{what}: not implemented yet (it raised NotImplementedError); "
                             "replace `raise NotImplementedError()` by your code.") from None
    except Exception as error:  # a student's code may raise anything: report it, do not crash
        found = f"raised {type(error).__name__}: {str(error)[:200]}"
        raise AssertionError(_message(what, found, hint)) from None


def _message(what: str, found: str, hint: str) -> str:
    return f"{what}: {found}." + (f" Likely mistake: {hint}" if hint else "")
