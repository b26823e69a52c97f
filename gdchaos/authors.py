"""Alias of :mod:`gdchaos.analysis.authors`, under the import path of gdchaos 0.1."""
from gdchaos.analysis.authors import AXES, DATASET, is_authors_file, read_authors_file

__all__ = ["AXES", "DATASET", "is_authors_file", "read_authors_file"]
