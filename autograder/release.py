"""Generate the student edition: ``solutions/<id>/*.ipynb`` → ``notebooks/<id>/*.ipynb`` with nbgrader.

    python -m autograder.release            # every assignment
    python -m autograder.release ch04_lora  # one

First every solution notebook's setup cell is rewritten from the template below and the course
repository URL in ``_config.yml`` (the one setting shared with the website's launch buttons).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
import yaml

from .course import NOTEBOOKS, ROOT, SOLUTIONS, assignments, nbgrader, nbgrader_metadata

SETUP_GRADE_ID = "setup"
SETUP_CELL = '''\
# Setup: on Google Colab, install the course (pinned packages, the peftlab
# library, the data sets); anywhere else this cell does nothing.
# Your fork? Change repository.url in _config.yml (`make fork`), or set the
# environment variable COURSE_REPOSITORY to any git URL (a local one too).
import os, subprocess, sys
DEFAULT_REPOSITORY = "{repository}"
COURSE_REPOSITORY = os.environ.get("COURSE_REPOSITORY", DEFAULT_REPOSITORY)
if "google.colab" in sys.modules:
    from importlib import metadata

    def installed() -> dict:
        return {{d.metadata["Name"].lower(): d.version for d in metadata.distributions()}}

    home = os.environ.get("COURSE_HOME", "/content")  # where the course is cloned
    course_dir = os.path.join(home, COURSE_REPOSITORY.rstrip("/").split("/")[-1])
    done = os.path.join(course_dir, ".course-installed")
    if not os.path.exists(done):
        if not os.path.isdir(course_dir):
            clone = ["git", "clone", "--depth", "1", COURSE_REPOSITORY, course_dir]
            subprocess.run(clone, check=True)
        before = installed()
        requirements = f"{{course_dir}}/requirements.txt"
        install = ["-m", "pip", "install", "-q", "-r", requirements, "-e", course_dir]
        subprocess.run([sys.executable, *install], check=True)
        open(done, "w").close()
        changed = {{n for n, v in installed().items() if before.get(n, v) != v}}
        # a package that this session had already imported was replaced on disk
        stale = [m for m, dists in metadata.packages_distributions().items()
                 if m in sys.modules and changed & {{d.lower() for d in dists}}]
        if stale:
            print("restart the runtime (Runtime → Restart session), "
                  "then run this cell again")
            raise SystemExit(f"replaced while loaded: {{', '.join(sorted(stale))}}")
    sys.path.insert(0, course_dir)'''


def course_repository(config: Path = ROOT / "_config.yml") -> str:
    """The course repository URL: ``repository.url`` in ``_config.yml``."""
    url = (yaml.safe_load(config.read_text()) or {}).get("repository", {}).get("url")
    if not url:
        raise ValueError(f"{config} has no repository.url: set it to the course's (public) repository")
    return url


def setup_cell_source(repository: str | None = None) -> str:
    """The setup cell every notebook starts with."""
    return SETUP_CELL.format(repository=repository or course_repository())


def render_setup_cells(solutions: Path = SOLUTIONS) -> list[Path]:
    """Rewrite the setup cell (``grade_id: setup``) of every solution notebook; return those changed."""
    source = setup_cell_source()
    changed = []
    for path in sorted(solutions.glob("*/*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        cells = [c for c in notebook.cells if nbgrader_metadata(c).get("grade_id") == SETUP_GRADE_ID]
        if len(cells) != 1:
            raise ValueError(f"{path}: expected one cell with grade_id 'setup', found {len(cells)}")
        if cells[0].source != source:
            cells[0].source = source
            nbformat.write(notebook, path)
            changed.append(path)
    return changed


def generate(ids: list[str], solutions: Path = SOLUTIONS, destination: Path = NOTEBOOKS) -> None:
    """Run ``nbgrader generate_assignment`` for ``ids`` in a scratch course and copy the result to
    ``destination/<id>/`` (replacing what was there). ``solutions`` is only read."""
    with tempfile.TemporaryDirectory(prefix="peftlab-release-") as scratch:
        course = Path(scratch)
        for assignment in ids:
            shutil.copytree(solutions / assignment, course / "source" / assignment,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
            result = nbgrader(["generate_assignment", assignment, "--force"], course)
            if result.returncode != 0:
                raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{result.stdout}\n{result.stderr}")
            target = destination / assignment
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(course / "release" / assignment, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ids", nargs="*", help="assignment ids (default: all)")
    args = parser.parse_args(argv)
    known = assignments()
    unknown = [i for i in args.ids if i not in known]
    if unknown:
        parser.error(f"unknown assignment(s) {unknown}; known: {known}")
    for path in render_setup_cells():
        print(f"setup cell updated: {path.relative_to(ROOT)}")
    ids = args.ids or known
    generate(ids)
    print(f"student edition written: {', '.join(f'notebooks/{i}' for i in ids)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
