"""What the tests say to a student who made a classic mistake: visible signal and hidden catch rates.

    python -m autograder.signals ch05_quantization [MORE_IDS...] [--json FILE]

For every mistake of ``mistakes/<id>.yml`` (the graded fixtures under ``mistakes:`` and the
measured-only ones under ``classic:``) it answers two questions:

* **visible**: does the unit's test cell, cut at ``### BEGIN HIDDEN TESTS`` (what the student runs
  before handing in), fail, and with which message?
* **hidden**: does the whole test cell (what the grader runs) fail?

One kernel per chapter runs the solution notebook once, top to bottom, as the grader would
(``NBGRADER_EXECUTION=autograde``: long demonstrations skip themselves). Then, for each mistake, it
runs the mistaken answer cell, the unit's test cell in both forms, and the correct answer cell again.
This is a measurement, in seconds rather than a class run: the end-to-end grading of the fixtures
(sandbox, integrity guard, nbgrader) is ``tests/test_grading.py``'s.

A mistake may declare ``visible: false``: the visible tests are not meant to flag it (say why in a
comment: it needs a reference comparison too slow for a visible test, say). The run fails (exit 1)
when the solution does not pass, when any mistake survives the hidden tests, or when a mistake's
visible signal differs from what it declares.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
import yaml
from jupyter_client.manager import start_new_kernel

from .course import MISTAKES, SOLUTIONS, nbgrader_metadata, tool_environment
from .mistakes import strip_markers

HIDDEN = "### BEGIN HIDDEN TESTS"
CELL_TIMEOUT = 300  # seconds; a cell that runs longer counts as failed


@dataclass(frozen=True)
class Classic:
    name: str
    cell: str
    replace: str
    with_: str
    test: str  # the test cell that grades ``cell``
    visible_expected: bool


@dataclass
class Signal:
    name: str
    unit: str
    visible: bool  # the visible tests fail
    hidden: bool  # the whole test cell fails
    visible_expected: bool
    message: str  # what the visible tests said (or the hidden ones, when the visible ones passed)


def load_classics(assignment: str, folder: Path = MISTAKES) -> tuple[str, list[Classic]]:
    """The notebook name and every mistake (graded fixtures and measured-only ones) of ``assignment``."""
    spec = yaml.safe_load((folder / f"{assignment}.yml").read_text())
    classics = []
    for entry in spec.get("mistakes", []) + spec.get("classic", []):
        missing = {"name", "cell", "replace", "with"} - set(entry)
        if missing:
            raise ValueError(f"{assignment}: mistake {entry.get('name')!r} lacks {sorted(missing)}")
        classics.append(Classic(entry["name"], entry["cell"], entry["replace"], entry["with"],
                                entry.get("test", f"test_{entry['cell']}"), bool(entry.get("visible", True))))
    return spec["notebook"], classics


class Kernel:
    """A kernel that runs code and reports whether it raised, and what it said."""

    def __init__(self, cwd: Path):
        env = tool_environment() | {"NBGRADER_EXECUTION": "autograde"}
        self.manager, self.client = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=env)

    def run(self, code: str) -> tuple[bool, str]:
        """(passed, message): message is the exception's ``name: value`` when it raised."""
        outcome = {}

        def keep(message):
            if message["msg_type"] == "error":
                content = message["content"]
                outcome["error"] = f"{content['ename']}: {content['evalue']}"

        try:
            reply = self.client.execute_interactive(code, timeout=CELL_TIMEOUT, output_hook=keep,
                                                    store_history=False)
        except (TimeoutError, queue.Empty):
            self.manager.interrupt_kernel()
            return False, f"TimeoutError: the cell ran longer than {CELL_TIMEOUT} s"
        if reply["content"]["status"] != "ok":
            return False, outcome.get("error", reply["content"].get("ename", "error"))
        return True, ""

    def close(self):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def measure(assignment: str, solutions: Path = SOLUTIONS, folder: Path = MISTAKES) -> list[Signal]:
    """Run ``assignment``'s solution once and every mistake of its yml against its unit's tests."""
    name, classics = load_classics(assignment, folder)
    path = solutions / assignment / name
    notebook = nbformat.read(path, as_version=4)
    cells = {nbgrader_metadata(c).get("grade_id"): c for c in notebook.cells}
    kernel = Kernel(path.parent)
    try:
        for cell in notebook.cells:
            if cell.cell_type != "code":
                continue
            passed, message = kernel.run(strip_markers(cell.source).replace("### END HIDDEN TESTS", ""))
            if not passed:
                grade_id = nbgrader_metadata(cell).get("grade_id")
                raise RuntimeError(f"{assignment}: the solution fails cell {grade_id!r}: {message}")
        signals = []
        for classic in classics:
            answer, test = cells.get(classic.cell), cells.get(classic.test)
            if answer is None or test is None:
                raise ValueError(f"{assignment}: mistake {classic.name}: no cell {classic.cell!r} or {classic.test!r}")
            source = strip_markers(answer.source)
            if source.count(classic.replace) != 1:
                raise ValueError(f"{assignment}: mistake {classic.name}: {classic.replace!r} must occur once in"
                                 f" {classic.cell!r}")
            visible_code = test.source.split(HIDDEN)[0]
            full_code = strip_markers(test.source).replace(HIDDEN, "").replace("### END HIDDEN TESTS", "")
            kernel.run(source.replace(classic.replace, classic.with_))
            visible_passed, visible_message = kernel.run(visible_code)
            full_passed, full_message = kernel.run(full_code)
            restored, message = kernel.run(source)
            if not restored:
                raise RuntimeError(f"{assignment}: restoring cell {classic.cell!r} failed: {message}")
            signals.append(Signal(classic.name, classic.cell, not visible_passed, not full_passed,
                                  classic.visible_expected, visible_message or full_message))
        return signals
    finally:
        kernel.close()


def report(assignment: str, signals: list[Signal]) -> tuple[str, list[str]]:
    """A table of the signals and the list of problems (empty when all is as declared)."""
    lines = [f"{assignment}: {len(signals)} classic mistakes", f"  {'mistake':<40} {'unit':<16} visible hidden  message"]
    problems = []
    for s in signals:
        lines.append(f"  {s.name:<40} {s.unit:<16} {'yes' if s.visible else 'no':<7} {'yes' if s.hidden else 'no':<7}"
                     f" {s.message[:150]}")
        if not s.hidden:
            problems.append(f"{assignment}: {s.name} survives the hidden tests")
        if s.visible != s.visible_expected:
            problems.append(f"{assignment}: {s.name} is {'' if s.visible else 'not '}flagged by the visible tests,"
                            f" but declares visible: {str(s.visible_expected).lower()}")
    if signals:
        visible = sum(s.visible for s in signals) / len(signals)
        hidden = sum(s.hidden for s in signals) / len(signals)
        lines.append(f"  visible tests flag {100 * visible:.0f} %, hidden tests catch {100 * hidden:.0f} %")
    return "\n".join(lines), problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ids", nargs="+", help="assignment ids, e.g. ch05_quantization")
    parser.add_argument("--json", type=Path, help="also write the signals as JSON")
    args = parser.parse_args(argv)
    everything, problems = {}, []
    for assignment in args.ids:
        if not (MISTAKES / f"{assignment}.yml").exists():
            parser.error(f"no {MISTAKES / (assignment + '.yml')}")
        signals = measure(assignment)
        text, found = report(assignment, signals)
        print(text, flush=True)
        problems += found
        everything[assignment] = [asdict(s) for s in signals]
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1))
    for problem in problems:
        print("error:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
