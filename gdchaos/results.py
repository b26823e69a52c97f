"""Alias of :mod:`gdchaos.store` (and the record codes and field names), under the import path of gdchaos 0.1.

``gdchaos.results.open(FILE)`` is :func:`gdchaos.store.open`: a :class:`~gdchaos.store.Results`, with
``to_xarray()`` and ``summary_frame()`` for xarray and pandas (docs/results-format.md).
"""
from gdchaos.analysis.fields import FIT_FIELDS, NEVER, NOT_COMPUTED, SUMMARY_FIELDS
from gdchaos.engine.units import Unit, unit_fractions
from gdchaos.store import FORMAT, FORMAT_VERSION, Results, Writer, open, open_handle

__all__ = ["FIT_FIELDS", "FORMAT", "FORMAT_VERSION", "NEVER", "NOT_COMPUTED", "Results", "SUMMARY_FIELDS", "Unit",
           "Writer", "open", "open_handle", "unit_fractions"]
