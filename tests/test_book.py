"""The public edition and its website: complete, warning-free, fast enough, and free of solutions."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.course import ROOT, tool_environment
from autograder.leaks import fingerprints, scan

pytestmark = pytest.mark.slow
SECONDS_PER_PAGE = 60


@pytest.fixture(scope="module")
def public(tmp_path_factory):
    """Export the public edition with `make public`'s command, then build its website with -W."""
    dest = tmp_path_factory.mktemp("public") / "course"
    export = subprocess.run([sys.executable, "-m", "autograder.public", str(dest)], cwd=ROOT,
                            env=tool_environment(), capture_output=True, text=True, timeout=600)
    assert export.returncode == 0, export.stdout + export.stderr
    start = time.perf_counter()
    build = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(dest), "-W", "-n", "--keep-going"],
                           cwd=dest, env=tool_environment(), capture_output=True, text=True, timeout=1800)
    return dest, build, time.perf_counter() - start


def test_public_edition_has_what_students_need_and_nothing_else(public):
    dest, _, _ = public
    for needed in ("README.md", "_config.yml", "_toc.yml", "environment.yml", "requirements.txt", "book/intro.md",
                   "peftlab/__init__.py", "data/reviews/README.md", "notebooks/ch04_lora/lora.ipynb"):
        assert (dest / needed).exists(), needed
    for secret in ("solutions", "autograder", "tests", ".ci"):
        assert not (dest / secret).exists(), secret


def test_public_edition_and_its_website_reveal_no_solution_or_hidden_test(public):
    dest, build, _ = public
    secrets = fingerprints()
    assert len(secrets) > 50, "the fingerprints should cover every solution and hidden-test line"
    assert (dest / "_build" / "html" / "index.html").exists(), build.stdout[-3000:] + build.stderr[-3000:]
    leaks = scan(dest, secrets)
    assert not leaks, "\n".join(f"{l.path.relative_to(dest)}: {l.line!r} ({l.origin})" for l in leaks[:10])


def test_website_builds_without_warnings(public):
    _, build, seconds = public
    log = build.stdout + build.stderr
    assert build.returncode == 0, log[-4000:]
    # Sphinx's own warnings ("<file>:<line>: WARNING: ..."); a kernel's "[IPKernelApp] WARNING |" is not one
    warnings = [line for line in log.splitlines() if "WARNING:" in line or "ERROR:" in line]
    assert not warnings, "\n".join(warnings[:20])
    print(f"website built in {seconds:.0f} s")


def test_each_page_executes_within_budget(public):
    dest, build, _ = public
    html = dest / "_build" / "html"
    pages = sorted(p.stem for p in (dest / "book").glob("ch*.md"))
    assert pages
    times = {}
    for stem in pages:
        text = (html / "book" / f"{stem}.html").read_text()
        assert 'href="references.html#id' in text, f"{stem}: cites nothing (every number is computed or cited)"
        assert "<img" in text, f"{stem}: no figure"
        times[stem] = _execution_seconds(dest, stem)
    slow = {k: v for k, v in times.items() if v > SECONDS_PER_PAGE}
    assert not slow, f"pages over {SECONDS_PER_PAGE} s: {slow}"


def _execution_seconds(dest: Path, stem: str) -> float:
    """Execution time of a page as myst-nb recorded it in the build environment."""
    import pickle

    with open(dest / "_build" / ".doctrees" / "environment.pickle", "rb") as handle:
        env = pickle.load(handle)
    data = env.nb_metadata[f"book/{stem}"]["exec_data"]
    assert data["succeeded"], f"{stem} failed to execute: {data['error']}"
    return data["runtime"]


def test_exercise_pages_have_launch_buttons(public):
    dest, _, _ = public
    for notebook in sorted((dest / "notebooks").glob("*/*.ipynb")):
        page = dest / "_build" / "html" / "notebooks" / notebook.parent.name / f"{notebook.stem}.html"
        text = page.read_text()
        assert "colab.research.google.com/github/" in text, f"{page.name}: no Colab launch button"
        assert "hub/user-redirect/git-pull" in text, f"{page.name}: no JupyterHub launch button"
