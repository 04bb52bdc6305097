"""Intake without a kernel: names as they arrive from Colab, browsers, Jupyter and the LMSs, versions, zips."""

import os
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.course import notebook_names
from autograder.intake import MAX_NOTEBOOK_BYTES, find_submissions, identify, in_shard, unpack

STEMS = ["lora", "memory_math"]
NAMES = {"lora": "ch04_lora", "memory_math": "ch01_memory_math"}


@pytest.mark.parametrize("relative,student,notebook", [
    ("s123_lora.ipynb", "s123", "lora"),
    ("s123_memory_math.ipynb", "s123", "memory_math"),
    ("s123_Copy of lora.ipynb", "s123", "lora"),
    ("s123_lora (1).ipynb", "s123", "lora"),
    ("s123_lora-Copy1.ipynb", "s123", "lora"),
    ("s123_lora-2.ipynb", "s123", "lora"),
    ("s123/lora.ipynb", "s123", "lora"),
    ("s123/Copy of lora.ipynb", "s123", "lora"),
    ("s123/ch04_lora/lora.ipynb", "s123", "lora"),
    ("export/week 4/s123/ch04_lora/lora (2).ipynb", "s123", "lora"),
    ("export/s123/lora.ipynb", "s123", "lora"),
    ("s123+ch04_lora+2026-11-20 10:00:00.000000 UTC+ab12/lora.ipynb", "s123", "lora"),
    ("doejane_48213_5512890_lora.ipynb", "48213", "lora"),
    ("doejane_LATE_48213_5512890_lora-1.ipynb", "48213", "lora"),
    ("Jane Doe_48213_assignsubmission_file_/lora.ipynb", "48213", "lora"),
    ("Jane Doe_48213_assignsubmission_file_/Copy of lora.ipynb", "48213", "lora"),
    ("PS4_jdoe_attempt_2026-11-20-10-00-00_lora.ipynb", "jdoe", "lora"),
])
def test_names_as_they_arrive(relative, student, notebook):
    found = identify(relative, STEMS, set(NAMES.values()))
    assert not isinstance(found, str), found
    assert found[:2] == (student, notebook)


def test_unknown_names_say_why():
    assert "cannot tell student and notebook" in identify("homework.ipynb", STEMS)
    assert "not one of the course's notebooks" in identify("PS4_jdoe_attempt_2026-11-20-10-00-00_essay.ipynb", STEMS)


def _touch(path, text="{}", mtime=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime:
        os.utime(path, (mtime, mtime))


def test_latest_version_counts_and_the_reason_says_which(tmp_path):
    _touch(tmp_path / "a_lora.ipynb", mtime=1000)
    _touch(tmp_path / "a_lora-1.ipynb", mtime=900)  # LMS resubmission number beats the file time
    _touch(tmp_path / "b_lora.ipynb", mtime=2000)  # no LMS number: the newer file wins
    _touch(tmp_path / "b_Copy of lora.ipynb", mtime=1000)
    _touch(tmp_path / "PS4_c_attempt_2026-11-20-10-00-00_lora.ipynb", mtime=3000)
    _touch(tmp_path / "PS4_c_attempt_2026-11-21-09-00-00_lora.ipynb", mtime=1000)
    _touch(tmp_path / "notes.ipynb")
    found, unmatched = find_submissions(tmp_path, NAMES)
    chosen = {s.student: s for s in found}
    assert chosen["a"].source == "a_lora-1.ipynb" and "ignored 'a_lora.ipynb'" in chosen["a"].reason
    assert chosen["b"].source == "b_lora.ipynb" and "file time" in chosen["b"].reason
    assert chosen["c"].source.startswith("PS4_c_attempt_2026-11-21") and "LMS attempt" in chosen["c"].reason
    assert [s.source for s in unmatched] == ["notes.ipynb"]


def test_zip_refuses_unsafe_paths_and_never_loads_a_huge_member(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../escape_lora.ipynb", "{}")
    with pytest.raises(SystemExit, match="unsafe path"):
        unpack(evil, tmp_path / "in1")
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("s1_lora.ipynb", "w", force_zip64=True) as member:
            block = b" " * 2**20
            for _ in range(MAX_NOTEBOOK_BYTES // 2**20 + 8):
                member.write(block)
    folder = unpack(bomb, tmp_path / "in2")
    assert (folder / "s1_lora.ipynb").stat().st_size == MAX_NOTEBOOK_BYTES + 1


def test_shards_split_the_class_deterministically():
    students = [f"s{i}" for i in range(200)]
    shares = [[s for s in students if in_shard(s, (k, 3))] for k in (1, 2, 3)]
    assert sorted(sum(shares, [])) == sorted(students)
    assert all(40 < len(share) < 90 for share in shares)


def _notebook(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(), path)
    return path


def test_submission_names_nested_flat_and_resubmitted(tmp_path):
    names = notebook_names()
    _notebook(tmp_path / "s001" / "ch04_lora" / "lora.ipynb")
    _notebook(tmp_path / "s002" / "memory_math.ipynb")
    _notebook(tmp_path / "s003_lora.ipynb")
    _notebook(tmp_path / "s003_lora-2.ipynb")
    _notebook(tmp_path / "s004_lora-1.ipynb")
    _notebook(tmp_path / "homework.ipynb")
    _notebook(tmp_path / ".ipynb_checkpoints" / "s009_lora-checkpoint.ipynb")
    found, unmatched = find_submissions(tmp_path, names)
    got = {(s.student, s.assignment, s.path.name) for s in found}
    assert got == {("s001", "ch04_lora", "lora.ipynb"), ("s002", "ch01_memory_math", "memory_math.ipynb"),
                   ("s003", "ch04_lora", "s003_lora-2.ipynb"), ("s004", "ch04_lora", "s004_lora-1.ipynb")}
    assert [u.path.name for u in unmatched] == ["homework.ipynb"]
    assert "cannot tell student and notebook" in unmatched[0].reason
