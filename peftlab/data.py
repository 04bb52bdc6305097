"""Data sets: small JSON Lines files shipped in ``data/``, or, online, any Hugging Face Hub data set."""

from __future__ import annotations

import os
from pathlib import Path

from datasets import DatasetDict, load_dataset

from .environment import offline


def data_dir() -> Path:
    """The course's ``data/`` folder (``PEFTLAB_DATA`` overrides; default: beside the package)."""
    folder = Path(os.environ.get("PEFTLAB_DATA", Path(__file__).resolve().parent.parent / "data"))
    if not folder.is_dir():
        raise FileNotFoundError(
            f"No data folder at {folder}. Install the course with `pip install -e <course checkout>` "
            "(the notebooks' setup cell does this on Colab) or set PEFTLAB_DATA to the folder."
        )
    return folder


def load_course_dataset(name: str, **hub_kwargs) -> DatasetDict:
    """Load a data set as a ``DatasetDict`` with one entry per split.

    ``name`` is a folder of the course's ``data/`` (``data/<name>/{train,test}.jsonl``, offline), or,
    with internet access, a Hugging Face Hub id such as ``"stanfordnlp/sst2"`` (``hub_kwargs`` go to
    ``datasets.load_dataset``). The course's own sets are always preferred, so notebooks run offline.
    """
    folder = data_dir() / name
    splits = {path.stem: str(path) for path in sorted(folder.glob("*.jsonl"))} if folder.is_dir() else {}
    if splits:
        return load_dataset("json", data_files=splits)
    shipped = sorted(p.name for p in data_dir().iterdir() if p.is_dir())
    if "/" not in name:
        raise FileNotFoundError(f"No data set {name!r} in {data_dir()}; shipped data sets: {shipped}")
    if offline():
        raise FileNotFoundError(
            f"{name!r} is not shipped with the course and HF_HUB_OFFLINE is set, so the Hub is not asked; "
            f"shipped data sets: {shipped}"
        )
    return load_dataset(name, **hub_kwargs)
