"""Feedback preprocessing: a failed test shows its message, not the hidden test code that raised it."""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from .course import nbgrader_metadata


class ShortenTestTracebacks(Preprocessor):
    """Replace the traceback of every error in a graded test cell by its last line.

    A traceback quotes the lines of the hidden test that failed; the message alone
    (``AssertionError: output is scaled by r/alpha ...``) is what the student needs.
    """

    enabled = Bool(True)  # nbconvert preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and nbgrader_metadata(cell).get("grade"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources
