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
    assert lock["torch"] == "2.13.0"
    assert lock["jupyter-book"].startswith("1.")
    assert lock["nbgrader"].startswith("0.9.")


def test_environment_yml_installs_the_lock():
    text = (ROOT / "environment.yml").read_text()
    assert "-r requirements.lock" in text and "python=3.11" in text
