"""Check a finished Jupyter Book build: every executed page ran to the end, with no error.

    python book/check_build.py [BUILD_DIR] [--build-status N]   # default: _build, 0

``make book`` runs it after ``jupyter-book build`` and passes that command's exit status.

Sphinx can report "build succeeded" and still hold a page whose execution failed: an incremental
re-run after a failure skips the unchanged page and keeps its broken output. This check reads what
myst-nb recorded for every page (``exec_data`` in the build environment) and the executed notebooks
themselves (every code cell has run, none holds an error output). On any problem it prints what and
where (with the end of each failed page's traceback, which is kept in ``BUILD_DIR/reports``),
deletes the build's HTML, doctrees and executed notebooks (so that no later run mistakes them for an
up-to-date build) and exits 1.
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import sys
from pathlib import Path

STALE = ("html", ".doctrees", "jupyter_execute")  # what a later incremental build would trust


def problems(build: Path) -> list[str]:
    """Everything wrong with the executed pages of the build in ``build`` (empty when all is well)."""
    environment = build / ".doctrees" / "environment.pickle"
    if not environment.exists():
        return [f"no build environment at {environment}: the build did not finish"]
    with open(environment, "rb") as handle:
        env = pickle.load(handle)
    found = []
    for page, metadata in sorted(env.nb_metadata.items()):
        data = metadata.get("exec_data")
        if data is None:
            continue  # not executed by design (the exercise notebooks are shown as handed out)
        if not data.get("succeeded"):
            error = (data.get("error") or "unknown error").strip().splitlines()
            found.append(f"{page}: execution failed: {error[-1] if error else 'unknown error'}")
            continue
        executed = build / "jupyter_execute" / f"{page}.ipynb"
        if not executed.exists():
            found.append(f"{page}: no executed notebook at {executed}")
            continue
        cells = json.loads(executed.read_text())["cells"]
        for number, cell in enumerate(cells, 1):
            if cell["cell_type"] != "code" or not "".join(cell["source"]).strip():
                continue
            if cell.get("execution_count") is None:
                found.append(f"{page}: code cell {number} never ran (missing output)")
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    found.append(f"{page}: code cell {number} raised {output.get('ename')}: {output.get('evalue')}")
    return found


def discard(build: Path) -> None:
    """Keep the tracebacks of failed pages, remove what a later incremental build would take as up to date."""
    reports = build / "html" / "reports"
    if reports.is_dir():
        shutil.rmtree(build / "reports", ignore_errors=True)
        shutil.move(str(reports), build / "reports")
    for name in STALE:
        shutil.rmtree(build / name, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", nargs="?", type=Path, default=Path("_build"))
    parser.add_argument("--build-status", type=int, default=0, help="exit status of jupyter-book build")
    args = parser.parse_args(argv)
    build = args.build
    found = problems(build)
    if args.build_status != 0:
        found.append(f"jupyter-book build exited with status {args.build_status} (warnings count as errors)")
    if found:
        for problem in found:
            print(f"error: {problem}", file=sys.stderr)
        discard(build)
        for log in sorted((build / "reports").rglob("*.err.log")):
            tail = log.read_text(errors="replace").strip().splitlines()[-15:]
            print(f"--- end of {log} ---", *tail, sep="\n", file=sys.stderr)
        print(f"error: the book build failed ({len(found)} problem(s)); {build} was cleaned so that the next "
              "`make book` starts afresh", file=sys.stderr)
        return 1
    print(f"book check: every executed page ran to the end without error ({build})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
