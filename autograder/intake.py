"""Taking in a class: unpack a zip safely, find every notebook, tell whose it is and which, keep the latest.

Names are matched as they arrive from the usual routes (examples for the notebook ``lora``):

* nbgrader exchange: ``s123/ch04_lora/lora.ipynb`` (student ``s123``; outer folders are ignored);
  inbound ``s123+ch04_lora+<timestamp>+<random>/lora.ipynb``
* a folder per student: ``s123/lora.ipynb``
* plain: ``s123_lora.ipynb``; resubmissions ``s123_lora-1.ipynb``, ``s123_lora-2.ipynb``
* Canvas: ``doejane_48213_5512890_lora.ipynb`` (name, user id, submission id; student ``48213``),
  late ``doejane_LATE_48213_5512890_lora.ipynb``, resubmission ``..._lora-1.ipynb``
* Moodle: ``Jane Doe_48213_assignsubmission_file_/lora.ipynb`` (student ``48213``)
* Blackboard: ``PS4_jdoe_attempt_2026-11-20-10-00-00_lora.ipynb`` (student ``jdoe``)

The notebook part may carry the marks of a copy: ``Copy of lora.ipynb`` (Colab), ``lora (1).ipynb``
(a browser's second download), ``lora-Copy1.ipynb`` (Jupyter's "Make a copy"). Folders may be nested
(a zip inside a folder of the LMS export is not unpacked: unzip it first).

Several versions of one student's notebook: the latest counts — by the LMS attempt (Blackboard's
timestamp, nbgrader's timestamp, Canvas's resubmission number ``-N``), else by the file's modification
time (kept from the zip), else by the copy number. The reason column names the file taken and those
ignored.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

#: Larger files are refused unread (a notebook of this course, even with its outputs, is far smaller).
MAX_NOTEBOOK_BYTES = 64 * 2**20

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
# Each LMS pattern: a regular expression over the path; named groups student, rest (the notebook's
# file name as the student saved it), optional attempt (a sortable string).
_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("nbgrader inbound", re.compile(r"^(?P<student>[^/+]+)\+(?P<assignment>[^/+]+)\+(?P<attempt>[^/+]+)(?:\+[^/]*)?/(?:.*/)?(?P<rest>[^/]+)$")),
    ("Moodle", re.compile(r"^(?:.*/)?(?P<name>[^/]+)_(?P<student>\d+)_assignsubmission_file_/(?:.*/)?(?P<rest>[^/]+)$")),
    ("Blackboard", re.compile(r"^(?:.*/)?[^/]*?_(?P<student>[^/_]+)_attempt_(?P<attempt>\d{4}(?:-\d\d){5})_(?P<rest>[^/]+)$")),
    ("Canvas", re.compile(r"^(?:.*/)?(?P<name>[a-z][a-z-]*)_(?:(?P<late>LATE)_)?(?P<student>\d+)_(?P<submission>\d+)_(?P<rest>[^/]+)$")),
]
_COPY_MARKS = [  # regular expressions over a file stem; group "n" is a copy number
    re.compile(r"^Copy of (?P<stem>.+)$"),  # Colab's "Save a copy in Drive"
    re.compile(r"^(?P<stem>.+?) \((?P<n>\d+)\)$"),  # a browser's second download
    re.compile(r"^(?P<stem>.+?)-Copy(?P<n>\d*)$"),  # Jupyter's "Make a copy"
]


@dataclass
class Submission:
    """One student's notebook for one assignment, and what became of it along the pipeline."""

    student: str
    assignment: str
    notebook: str  # the notebook's stem, as in solutions/
    path: Path | None
    source: str = ""  # the file's name as handed in (relative to the class folder)
    status: str = "pending"
    reasons: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # integrity flags (autograder/integrity.py)
    seconds: float = 0.0  # time spent running this student's notebook
    timings: dict[str, float] = field(default_factory=dict)  # where that time went
    score: float = 0.0
    max_score: float = 0.0
    cells: list[dict] = field(default_factory=list)
    comments: dict[str, str] = field(default_factory=dict)  # nbgrader's automatic comments on answers

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    @property
    def key(self) -> tuple[str, str]:
        return (self.student, self.assignment)


@dataclass(frozen=True)
class Candidate:
    """A file that looks like a submission, with what its name says."""

    student: str
    notebook: str
    path: Path
    relative: str
    route: str
    attempt: str  # sortable LMS attempt ("" when the name carries none)
    mtime: float
    copy_number: int

    def order(self) -> tuple:
        return (self.attempt, self.mtime, self.copy_number, self.relative)


def unpack(submissions: Path, incoming: Path) -> Path:
    """Return a folder of submissions: ``submissions`` itself, or the zip unpacked into ``incoming``.

    Refuses a zip holding an absolute or ``..`` path. A member larger than ``MAX_NOTEBOOK_BYTES``
    (or a zip bomb that lies about its size) is written truncated to one byte over the limit, so
    that intake reports it as too large without ever holding it in memory.
    """
    if submissions.is_dir():
        return submissions
    if submissions.suffix.lower() != ".zip":
        raise SystemExit(f"error: {submissions} is neither a folder nor a .zip file")
    if not zipfile.is_zipfile(submissions):
        raise SystemExit(f"error: {submissions} is not a readable zip file")
    if incoming.exists():
        shutil.rmtree(incoming)
    incoming.mkdir(parents=True)
    root = incoming.resolve()
    with zipfile.ZipFile(submissions) as archive:
        members = archive.infolist()
        for member in members:
            target = (incoming / member.filename).resolve()
            if not target.is_relative_to(root) or member.filename.startswith(("/", "\\")):
                raise SystemExit(f"error: {submissions} holds an unsafe path {member.filename!r}")
        for member in members:
            target = incoming / member.filename
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, open(target, "wb") as sink:
                _copy_at_most(source, sink, MAX_NOTEBOOK_BYTES + 1)
            stamp = time.mktime((*member.date_time, 0, 0, -1))
            os.utime(target, (stamp, stamp))
    return incoming


def _copy_at_most(source, sink, limit: int, chunk: int = 2**20) -> None:
    copied = 0
    while copied < limit:
        block = source.read(min(chunk, limit - copied))
        if not block:
            return
        sink.write(block)
        copied += len(block)


def notebook_stem(file_name: str, stems: list[str]) -> tuple[str | None, int, str]:
    """The course notebook a file name stands for: (stem or None, copy number, attempt from ``-N``)."""
    stem = file_name[: -len(".ipynb")] if file_name.lower().endswith(".ipynb") else file_name
    copy_number, attempt = 0, ""
    for _ in range(3):  # marks can stack: "Copy of lora (1).ipynb"
        for pattern in _COPY_MARKS:
            match = pattern.match(stem)
            if match:
                stem = match.group("stem")
                copy_number = max(copy_number, int(match.groupdict().get("n") or 1))
    if stem in stems:
        return stem, copy_number, attempt
    resubmission = re.match(r"^(?P<stem>.+?)[-_](?P<n>\d+)$", stem)  # Canvas and plain LMS: lora-2
    if resubmission and resubmission.group("stem") in stems:
        return resubmission.group("stem"), copy_number, f"{int(resubmission.group('n')):06d}"
    return None, copy_number, attempt


def identify(relative: str, stems: list[str], assignments: set[str] = frozenset()) -> tuple[str, str, str, str, int] | str:
    """(student, notebook stem, route, attempt, copy number) for a path, or a reason it cannot be matched.

    In a folder layout the student is the folder holding the notebook, or the one above it when that
    folder is named after the assignment (outer folders of an export are ignored).
    """
    for route, pattern in _PATTERNS:
        match = pattern.match(relative)
        if match:
            stem, copy_number, resubmission = notebook_stem(match.group("rest"), stems)
            if stem is None:
                return f"{route} file {relative!r} is not one of the course's notebooks {sorted(stems)}"
            attempt = (match.groupdict().get("attempt") or "") + resubmission
            return match.group("student"), stem, route, attempt, copy_number
    parts = relative.split("/")
    stem, copy_number, attempt = notebook_stem(parts[-1], stems)
    if stem is not None and len(parts) >= 2:  # .../<student>/[<assignment>/]<notebook>.ipynb
        folders = parts[:-1]
        if folders[-1] in assignments and len(folders) >= 2:
            folders = folders[:-1]
        return folders[-1], stem, "folder", attempt, copy_number
    base = parts[-1]
    for candidate in sorted(stems, key=len, reverse=True):  # <student>_<notebook variant>.ipynb
        for index in [m.start() for m in re.finditer("_", base)]:
            stem, copy_number, attempt = notebook_stem(base[index + 1:], stems)
            if stem == candidate and index > 0:
                route = "plain" if len(parts) == 1 else "plain in folder"
                return base[:index], stem, route, attempt, copy_number
    return (f"cannot tell student and notebook from the name {relative!r}; expected <student_id>_<notebook>.ipynb, "
            f"<student_id>/<notebook>.ipynb or an LMS download, with notebook one of {sorted(stems)}")


def find_submissions(folder: Path, names: dict[str, str]) -> tuple[list[Submission], list[Submission]]:
    """Match every ``.ipynb`` under ``folder`` to (student, assignment, notebook); keep each one's latest.

    Returns the submissions to grade and the files that could not be matched (each with a reason).
    """
    stems = sorted(names)
    versions: dict[tuple[str, str], list[Candidate]] = {}
    unmatched: list[Submission] = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or not path.name.lower().endswith(".ipynb"):
            continue
        relative = path.relative_to(folder).as_posix()
        if any(part.startswith((".", "__MACOSX")) for part in relative.split("/")):
            continue  # checkpoints, macOS resource forks
        found = identify(relative, stems, set(names.values()))
        if isinstance(found, str):
            unmatched.append(_unmatched(relative, path, found))
            continue
        student, stem, route, attempt, copy_number = found
        if not STUDENT_ID.match(student):
            unmatched.append(_unmatched(relative, path, f"student id {student!r} has characters other than "
                                                        "letters, digits, '.', '_', '@' and '-'"))
            continue
        versions.setdefault((student, stem), []).append(
            Candidate(student, stem, path, relative, route, attempt, path.stat().st_mtime, copy_number))
    chosen = []
    for (student, stem), candidates in sorted(versions.items()):
        candidates.sort(key=Candidate.order)
        latest = candidates[-1]
        submission = Submission(student, names[stem], stem, latest.path, source=latest.relative)
        if len(candidates) > 1:
            ignored = ", ".join(repr(c.relative) for c in candidates[:-1])
            basis = "LMS attempt" if latest.attempt != candidates[-2].attempt else (
                "file time" if latest.mtime != candidates[-2].mtime else "copy number")
            submission.reasons.append(f"took {latest.relative!r} (latest by {basis}); ignored {ignored}")
        chosen.append(submission)
    return chosen, unmatched


def _unmatched(relative: str, path: Path, reason: str) -> Submission:
    stem = Path(relative).stem
    return Submission(stem, "?", stem, path, source=relative, status="unmatched", reasons=[reason])


def in_shard(student: str, shard: tuple[int, int] | None) -> bool:
    """Whether ``student`` belongs to shard K of N (1-based; deterministic: a hash of the id)."""
    if shard is None:
        return True
    k, n = shard
    return int(hashlib.sha256(student.encode()).hexdigest(), 16) % n == k - 1
