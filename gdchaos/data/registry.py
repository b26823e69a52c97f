"""Dataset manifests: what each dataset is, where it is mirrored and how its files are checked.

The manifests are the TOML files in the top-level ``datasets/`` folder, installed as the package data
of ``gdchaos.manifests``.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from gdchaos.errors import DataError

CHECKSUM_KINDS: tuple[str, ...] = ("sha256_decompressed", "sha256", "md5")
"""Checksums a manifest may give for a file, strongest first; ``sha256_decompressed`` hashes the
content of a ``.gz`` file, so it holds whichever way the file was compressed."""


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset: its name and the checksums (kind -> hex digest) it may match."""

    name: str
    checksums: dict[str, str]


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset as its manifest describes it."""

    name: str
    description: str
    format: str
    train: int
    test: int
    features: int
    classes: int
    scale: float | None
    mirrors: tuple[str, ...]
    files: dict[str, FileSpec]
    loader: str | None
    split_seed: int | None
    image_shape: tuple[int, int, int] | None = None  # (channels, height, width) of image datasets
    density: float = 1.0  # share of nonzero input values (estimates time on synthetic data)

    @property
    def bundled(self) -> bool:
        """Whether the dataset ships with scikit-learn (nothing to download)."""
        return self.format == "sklearn"


def _manifest_folder() -> Traversable:
    try:
        return resources.files("gdchaos.manifests")
    except ModuleNotFoundError:
        # Editable installs cannot import a package-dir-mapped namespace package (setuptools
        # issue #4943); the source tree then holds the manifests next to the gdchaos package.
        return Path(__file__).resolve().parents[2] / "datasets"


@cache
def _manifests() -> dict[str, Traversable]:
    found = {entry.name.removesuffix(".toml"): entry for entry in _manifest_folder().iterdir()
             if entry.name.endswith(".toml")}
    if not found:
        raise DataError("no dataset manifests found; the gdchaos installation is incomplete")
    return dict(sorted(found.items()))


def names() -> list[str]:
    """The names of all known datasets, sorted."""
    return list(_manifests())


def _file_spec(table: dict) -> FileSpec:
    checksums = {kind: table[kind].lower() for kind in CHECKSUM_KINDS if kind in table}
    return FileSpec(name=table["name"], checksums=checksums)


@cache
def dataset_spec(name: str) -> DatasetSpec:
    """The manifest of dataset ``name``; DataError for an unknown name."""
    manifests = _manifests()
    if name not in manifests:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(manifests)}")
    table = tomllib.loads(manifests[name].read_text(encoding="utf-8"))
    return DatasetSpec(
        name=name,
        description=table["description"],
        format=table["format"],
        train=table["train"],
        test=table["test"],
        features=table["features"],
        classes=table["classes"],
        scale=table.get("scale"),
        mirrors=tuple(table.get("mirrors", ())),
        files={role: _file_spec(entry) for role, entry in table.get("files", {}).items()},
        loader=table.get("loader"),
        split_seed=table.get("split_seed"),
        image_shape=tuple(table["image_shape"]) if "image_shape" in table else None,
        density=float(table.get("density", 1.0)),
    )
