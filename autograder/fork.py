"""Point the course at another repository (your fork): ``python -m autograder.fork URL``.

Rewrites ``repository.url`` in ``_config.yml`` (the website's launch buttons and "edit" links),
then regenerates the student edition so every notebook's setup cell installs from the same URL.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .course import ROOT
from .release import main as release


def set_repository(url: str, config: Path = ROOT / "_config.yml") -> None:
    """Write ``url`` as ``repository.url`` in ``config``."""
    if not re.match(r"^https://[^\s\"']+$", url):
        raise SystemExit(f"error: {url!r} is not an https URL of a repository")
    text = config.read_text()
    updated, count = re.subn(r"(?m)^(repository:\n(?:[ \t].*\n)*?[ \t]+url:[ \t]*).*$", rf"\g<1>{url}", text)
    if count != 1:
        raise SystemExit("error: _config.yml has no `repository:` block with a `url:` line")
    config.write_text(updated)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m autograder.fork https://github.com/<you>/<repo>")
    set_repository(args[0])
    print(f"_config.yml: repository.url = {args[0]}")
    return release([])


if __name__ == "__main__":
    sys.exit(main())
