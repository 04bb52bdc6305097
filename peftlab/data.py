"""Data sets: small JSON Lines files shipped in ``data/``, or, online, any Hugging Face Hub data set."""

from __future__ import annotations

import os
from pathlib import Path

from datasets import DatasetDict, load_dataset


def data_dir() -> Path:
    """The course's ``data/`` folder (``PEFTLAB_DATA`` overrides; default: beside the package)."""
    folder = Path(os.environ.get("PEFTLAB_DATA", Path(__file__).resolve().parent.parent / "data"))
    if not folder.is_dir():
        raise FileNotFoundError(
            f"No data folder at {folder}. Install the course with `pip install -e <course checkout>` "
            "(the notebooks' setup cell does this on Colab) or set PEFTLAB_DATA to the folder."
        )
    return folder


def load_course_dataset(name: str) -> DatasetDict:
    """Load ``data/<name>/{train,test}.jsonl`` as a ``DatasetDict`` (offline).

    To use a Hub data set instead, pass its id to :func:`load_hub_dataset`; both return the same type.
    """
    folder = data_dir() / name
    splits = {path.stem: str(path) for path in sorted(folder.glob("*.jsonl"))}
    if not splits:
        available = sorted(p.name for p in data_dir().iterdir() if p.is_dir())
        raise FileNotFoundError(f"No JSON Lines files in {folder}; shipped data sets: {available}")
    return load_dataset("json", data_files=splits)


def load_hub_dataset(hub_id: str, **kwargs) -> DatasetDict:
    """Load a data set from the Hugging Face Hub (needs the internet; e.g. ``"stanfordnlp/sst2"``)."""
    return load_dataset(hub_id, **kwargs)
