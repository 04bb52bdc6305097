"""Export the public edition: what students and the website need, without solutions or hidden tests.

    python -m autograder.public DEST

DEST receives the book, the student notebooks, the peftlab library, the data and the configuration
(no ``solutions/``, ``autograder/``, ``bench/``, instructors' ``tests/``), with a README and tests
written for the public edition (``autograder/public_edition/``: the README names only what the
edition holds and the commands that work there; its ``tests/`` are what ``make test`` runs there).
The export is then scanned for every solution and hidden-test line of ``solutions/``; any hit removes
nothing silently: it fails.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from .course import ROOT
from .leaks import answers, book_pages, fingerprints, scan, scan_answers

PUBLIC = [
    "README.md", "LICENSE", "_config.yml", "_toc.yml", "environment.yml",
    "requirements.txt", "requirements-dev.txt", "requirements.lock", "pyproject.toml", "Makefile",
    ".gitignore", "book", "notebooks", "peftlab", "data",
]
# Written for the public edition (source here, path there); its README replaces the instructors' one.
EDITION = Path(__file__).resolve().parent / "public_edition"
WRITTEN_FOR_IT = [(EDITION / "README.md", "README.md"), (EDITION / "tests", "tests")]
IGNORE = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.egg-info", "_build")


def export(destination: Path) -> list[Path]:
    """Copy the public files into ``destination`` (which must be empty or absent); return them."""
    if destination.exists() and any(destination.iterdir()):
        raise SystemExit(f"error: {destination} is not empty; choose a new folder")
    destination.mkdir(parents=True, exist_ok=True)
    copied = []
    for source, name in [(ROOT / name, name) for name in PUBLIC] + WRITTEN_FOR_IT:
        if not source.exists():
            continue
        target = destination / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=IGNORE)
        else:
            shutil.copy2(source, target)
        copied.append(target)
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("destination", type=Path)
    args = parser.parse_args(argv)
    destination = args.destination.resolve()
    if destination == ROOT or destination.is_relative_to(ROOT / "solutions"):
        parser.error("DEST must be a new folder outside the course's sources")
    export(destination)
    leaks = scan(destination, fingerprints()) + scan_answers(book_pages(destination), answers())
    if leaks:
        for leak in leaks[:20]:
            print(f"LEAK {leak.path.relative_to(destination)}: {leak.line!r} (from {leak.origin})", file=sys.stderr)
        print(f"error: the public edition in {destination} reveals {len(leaks)} solution lines, hidden-test lines "
              "or exercise answers", file=sys.stderr)
        return 1
    print(f"public edition written to {destination} (leak scan: clean)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
