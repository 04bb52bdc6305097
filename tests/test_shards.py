"""Shards and merge through the real command lines, on a class that needs no kernel (files that are not notebooks)."""

import csv
import subprocess
import sys

import pytest

from autograder.course import ROOT, tool_environment

pytestmark = pytest.mark.slow  # nbgrader releases the assignment once per shard


def _run(*args):
    result = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=tool_environment(), capture_output=True,
                            text=True, timeout=600)
    return result


def test_shards_cover_the_class_once_and_merge(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    students = [f"s{i:02d}" for i in range(8)]
    for student in students:
        (folder / f"{student}_lora.ipynb").write_text("print('not a notebook')\n")
    for k in (1, 2):
        result = _run("autograder.grade", str(folder), str(tmp_path / f"shard{k}"), "--shard", f"{k}/2", "--workers", "1")
        assert result.returncode == 0, result.stdout + result.stderr
    result = _run("autograder.merge", str(tmp_path / "shard1"), str(tmp_path / "shard2"), "--out", str(tmp_path / "all"))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = list(csv.DictReader(open(tmp_path / "all" / "grades.csv")))
    assert sorted(r["student_id"] for r in rows) == students
    assert all(r["status"] == "unreadable" and "not JSON" in r["reason"] for r in rows)
    assert (tmp_path / "all" / "report.html").exists()
    overlap = _run("autograder.merge", str(tmp_path / "shard1"), str(tmp_path / "shard1"), "--out", str(tmp_path / "x"))
    assert overlap.returncode != 0 and "shards overlap" in overlap.stderr


@pytest.mark.parametrize("bad", ["0/2", "3/2", "x"])
def test_bad_shard_is_refused(tmp_path, bad):
    result = _run("autograder.grade", str(tmp_path), str(tmp_path / "out"), "--shard", bad)
    assert result.returncode == 2 and "--shard" in result.stderr
