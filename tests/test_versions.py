"""One set of versions: every direct pin agrees with the lock, and the lock is fully pinned."""

import re

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from autograder.course import ROOT


def _requirements(name):
    lines = (ROOT / name).read_text().splitlines()
    return [Requirement(l) for l in lines if l.strip() and not l.startswith(("#", "-r"))]


def _lock():
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==(\S+)", line.strip()).groups()
            pins[canonicalize_name(name)] = version
    return pins


def test_direct_requirements_agree_with_the_lock():
    lock = _lock()
    for requirement in _requirements("requirements.txt") + _requirements("requirements-dev.txt"):
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement.name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(lock[name]), f"{requirement} disagrees with the lock's {lock[name]}"


def test_lock_pins_cpu_torch_and_jupyter_book_1():
    lock = _lock()
    assert lock["torch"] == "2.13.0+cpu", "the CPU build (the index's plain 2.13.0 is the CUDA build)"
    assert not [name for name in lock if name.startswith("nvidia-")], "CUDA libraries in the lock"
    assert lock["jupyter-book"].startswith("1.")
    assert lock["nbgrader"].startswith("0.9.")


def test_environment_yml_installs_the_lock():
    text = (ROOT / "environment.yml").read_text()
    assert "-r requirements.lock" in text and "python=3.11" in text


def test_the_venv_recipe_installs_the_locked_cpu_torch(tmp_path):
    """`make venv` installs the lock's torch==...+cpu alone first, from PyTorch's CPU index when it
    answers, else from pip's find-links (this machine's local wheel); pip resolves it here."""
    import json
    import subprocess
    import sys

    recipe = subprocess.run(["make", "-n", "venv", f"VENV={tmp_path / 'venv'}", "TORCH_INDEX=http://127.0.0.1:9"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    torch_line = next(line for line in recipe.splitlines() if "--no-deps" in line and "torch==" in line)
    assert '"torch==2.13.0+cpu"' in torch_line and "--extra-index-url" in torch_line
    assert recipe.index(torch_line) < recipe.index("-r requirements.lock")
    report = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed",
                             "--quiet", "--report", "-", "torch==2.13.0+cpu"],
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    [item] = json.loads(report.stdout)["install"]
    assert item["metadata"]["version"] == "2.13.0+cpu", item["download_info"]["url"]
