"""The public edition and its website: complete, warning-free, fast enough, and free of solutions."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.course import ROOT, tool_environment
from autograder.leaks import answers, book_pages, fingerprints, scan, scan_answers

pytestmark = pytest.mark.slow
SECONDS_PER_PAGE = 60


def test_public_edition_has_what_students_need_and_nothing_else(public):
    dest, _, _ = public
    for needed in ("README.md", "_config.yml", "_toc.yml", "environment.yml", "requirements.txt", "book/intro.md",
                   "peftlab/__init__.py", "data/reviews/README.md", "notebooks/ch04_lora/lora.ipynb"):
        assert (dest / needed).exists(), needed
    for secret in ("solutions", "autograder", ".ci", "bench", "CONTRIBUTING.md"):
        assert not (dest / secret).exists(), secret
    # its tests are its own (autograder/public_edition/tests), not the instructors'
    assert sorted(p.name for p in (dest / "tests").iterdir()) == ["test_edition.py"]


def test_public_edition_and_its_website_reveal_no_solution_hidden_test_or_answer(public):
    dest, build, _ = public
    secrets = fingerprints()
    assert len(secrets) > 50, "the fingerprints should cover every solution and hidden-test line"
    assert (dest / "_build" / "html" / "index.html").exists(), build.stdout[-3000:] + build.stderr[-3000:]
    leaks = scan(dest, secrets) + scan_answers(book_pages(dest), answers())
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


TINY_PAGE = """---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# Page

```{code-cell} ipython3
print("one")
```

```{code-cell} ipython3
CELL
```
"""


def test_a_failed_build_fails_again_until_the_page_is_fixed(tmp_path):
    """`make book` exits non-zero on a page that raises, leaves nothing a re-run trusts, and passes once fixed."""
    for name in ("Makefile", "requirements.lock", "pyproject.toml"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "check_build.py").write_bytes((ROOT / "book" / "check_build.py").read_bytes())
    (tmp_path / "_config.yml").write_text("title: tiny\nonly_build_toc_files: true\n"
                                          "execute:\n  execute_notebooks: force\n  allow_errors: false\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/page\n")
    (tmp_path / "book" / "intro.md").write_text("# Intro\n\nA tiny book.\n")
    page = tmp_path / "book" / "page.md"
    make = ["make", "book", f"VENV={Path(sys.executable).parent.parent}", "STAMP="]

    def build():
        return subprocess.run(make, cwd=tmp_path, env=tool_environment(), capture_output=True, text=True, timeout=600)

    page.write_text(TINY_PAGE.replace("CELL", 'raise ValueError("the page is broken")'))
    for attempt in ("first build", "re-run"):
        result = build()
        assert result.returncode != 0, f"{attempt} of a broken page succeeded: {result.stdout[-2000:]}"
        assert "the page is broken" in result.stderr, result.stderr[-2000:]
        assert not (tmp_path / "_build" / "html").exists(), f"{attempt} left HTML behind"
    page.write_text(TINY_PAGE.replace("CELL", 'print("two")'))
    result = build()
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (tmp_path / "_build" / "html" / "book" / "page.html").exists()


def test_build_check_finds_cells_that_never_ran(tmp_path):
    """A page whose execution was cut off (a cell without execution count) fails the check."""
    import json
    import pickle
    from types import SimpleNamespace

    sys.path.insert(0, str(ROOT / "book"))
    import check_build

    (tmp_path / ".doctrees").mkdir()
    (tmp_path / "jupyter_execute" / "book").mkdir(parents=True)
    env = SimpleNamespace(nb_metadata={"book/page": {"exec_data": {"succeeded": True}}, "notebooks/x/y": {}})
    (tmp_path / ".doctrees" / "environment.pickle").write_bytes(pickle.dumps(env))
    cells = [{"cell_type": "code", "source": ["print(1)"], "execution_count": 1, "outputs": []},
             {"cell_type": "code", "source": ["print(2)"], "execution_count": None, "outputs": []}]
    (tmp_path / "jupyter_execute" / "book" / "page.ipynb").write_text(json.dumps({"cells": cells}))
    assert check_build.problems(tmp_path) == ["book/page: code cell 2 never ran (missing output)"]
    cells[1]["execution_count"] = 2
    (tmp_path / "jupyter_execute" / "book" / "page.ipynb").write_text(json.dumps({"cells": cells}))
    assert check_build.problems(tmp_path) == []
