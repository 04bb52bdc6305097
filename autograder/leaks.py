"""Fingerprints of what students must not see, and scans of a tree for them.

Two kinds of secret:

* the lines of every solution region (``### BEGIN SOLUTION`` … ``### END SOLUTION``, and whole
  manually graded answer cells) and of every hidden-test region of ``solutions/``. Blank and trivial
  lines (short, or generic Python such as ``return out``) are skipped: they would match anywhere and
  reveal nothing. ``scan`` looks for them in every text file of a tree.
* the values each exercise expects, declared in ``autograder/answers/<id>.yml``: a chapter page
  teaches a method on one case and the exercise asks for another, so no page may print the
  exercise's answer. ``scan_answers`` looks for them in the book's pages (sources and HTML).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

import yaml

from .course import ANSWERS, SOLUTIONS, nbgrader_metadata

MIN_LENGTH = 20  # shorter lines ("return out", "else:") carry no solution
SOLUTION = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_TESTS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
# Idioms that any PyTorch code may contain; they reveal nothing about a solution.
GENERIC_LINES = {"for parameter in model.parameters():", "with torch.no_grad():", "model.requires_grad_(False)",
                 "compress_statistics=True)", "for name, module in model.named_modules()",
                 "for name, module in model.named_modules():"}
SCANNED_SUFFIXES = {".ipynb", ".md", ".py", ".html", ".txt", ".yml", ".yaml", ".json", ".js", ".cfg", ".toml"}


@dataclass(frozen=True)
class Leak:
    path: Path
    line: str
    origin: str  # notebook and region the line comes from


def _normalise(line: str) -> str:
    return re.sub(r"\s+", " ", line).strip()


def fingerprints(solutions: Path = SOLUTIONS, solutions_too: bool = True) -> dict[str, str]:
    """Map each significant secret line to where it comes from.

    ``solutions_too=False`` gives the hidden tests alone (what a student's feedback must not show,
    while it may show the student's own, correct, code).
    """
    kinds = [SOLUTION, HIDDEN_TESTS] if solutions_too else [HIDDEN_TESTS]
    secrets: dict[str, str] = {}
    shown: set[str] = set()  # lines the notebooks show students anyway (outside every secret region)
    for path in sorted(solutions.glob("*/*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            meta = nbgrader_metadata(cell)
            lines = cell.source.splitlines()
            if cell.cell_type == "markdown" and meta.get("solution") and SOLUTION[0] not in cell.source:
                regions = [("answer", lines)] if solutions_too else []  # nbgrader replaces the whole cell
                secret_lines = lines
            else:
                regions = [(begin, _region(lines, begin, end)) for begin, end in kinds]
                secret_lines = [l for pair in (SOLUTION, HIDDEN_TESTS) for l in _region(lines, *pair)]
            shown.update(_normalise(line) for line in set(lines) - set(secret_lines))
            for name, region in regions:
                for line in region:
                    text = _normalise(line)
                    if len(text) >= MIN_LENGTH and not text.startswith("###") and text not in GENERIC_LINES:
                        secrets.setdefault(text, f"{path.relative_to(solutions)} [{meta.get('grade_id')}: {name}]")
    return {line: origin for line, origin in secrets.items() if line not in shown}


def _region(lines: list[str], begin: str, end: str) -> list[str]:
    inside, found = False, []
    for line in lines:
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            found.append(line)
    return found


def scan(tree: Path, secrets: dict[str, str]) -> list[Leak]:
    """Every occurrence of a secret line in the text files under ``tree`` (HTML is unescaped first)."""
    leaks = []
    for path in sorted(p for p in tree.rglob("*") if p.is_file() and p.suffix in SCANNED_SUFFIXES):
        text = path.read_text(errors="replace")
        if path.suffix in {".html", ".ipynb", ".json", ".js"}:
            text = html.unescape(re.sub(r"<[^>]+>", "", text)) if path.suffix == ".html" else text
            text = text.replace("\\n", "\n").replace('\\"', '"')
        content = "\n".join(_normalise(line) for line in text.splitlines())
        for secret, origin in secrets.items():
            if secret in content:
                leaks.append(Leak(path, secret, origin))
    return leaks


@dataclass(frozen=True)
class Answer:
    """One expected value of an exercise, and the pattern that finds it printed on a page."""

    value: int | float | str
    origin: str  # the answers file it comes from
    pattern: re.Pattern


def _number_pattern(value: int | float) -> re.Pattern:
    """A number as a page may print it: ``16384``, ``16,384``, ``16_384``, ``16 384`` (also thin spaces)."""
    if isinstance(value, float) and not value.is_integer():
        text = re.escape(repr(value))
    else:
        digits = str(int(value))
        sign, digits = ("-", digits[1:]) if digits.startswith("-") else ("", digits)
        groups = [digits[max(0, i - 3):i] for i in range(len(digits), 0, -3)][::-1]
        text = re.escape(sign) + r"[,_ \u2009\u202f]?".join(groups)
    return re.compile(rf"(?<![\w.,]){text}(?![\w]|[.,]\d)")


def answers(folder: Path = ANSWERS) -> list[Answer]:
    """Every value listed in ``folder/<id>.yml`` (``values:``: numbers, or strings matched literally)."""
    found = []
    for path in sorted(folder.glob("*.yml")):
        spec = yaml.safe_load(path.read_text()) or {}
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise ValueError(f"{path}: expected a non-empty list under 'values:'")
        for value in values:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError(f"{path}: {value!r} is neither a number nor a string")
            pattern = (_number_pattern(value) if not isinstance(value, str)
                       else re.compile(re.escape(_normalise(value))))
            found.append(Answer(value, path.name, pattern))
    return found


def page_text(path: Path) -> str:
    """What a reader sees of a page: HTML without tags, whitespace normalised per line."""
    text = path.read_text(errors="replace")
    if path.suffix == ".html":
        text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return "\n".join(_normalise(line) for line in text.splitlines())


def scan_answers(pages: list[Path], expected: list[Answer]) -> list[Leak]:
    """Every page of ``pages`` that prints one of the ``expected`` values."""
    leaks = []
    for path in pages:
        content = page_text(path)
        for answer in expected:
            if answer.pattern.search(content):
                leaks.append(Leak(path, str(answer.value), f"expected value from answers/{answer.origin}"))
    return leaks


def book_pages(tree: Path) -> list[Path]:
    """The chapter pages of a course tree: ``book/*.md`` and, when built, their HTML."""
    pages = sorted((tree / "book").glob("*.md"))
    return pages + sorted((tree / "_build" / "html" / "book").glob("*.html"))
