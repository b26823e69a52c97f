"""The results file: one HDF5 file holds everything a sweep produces (layout: docs/results-format.md).

- :mod:`.format`: the datasets of a new file; :mod:`.writer`: create or resume, one writer at a time;
- :mod:`.reader`: :func:`open` a file, finished or live, as :class:`Results`;
- :mod:`.analysis`: a file's analysis by the one refit policy; :mod:`.recover`: reopen a file whose
  writer was killed; :mod:`.cubic`: the file ``gdchaos cubic -o`` writes.
"""
from gdchaos.store.format import FORMAT, FORMAT_VERSION
from gdchaos.store.reader import Results, open, open_handle
from gdchaos.store.writer import Writer

__all__ = ["FORMAT", "FORMAT_VERSION", "Results", "Writer", "open", "open_handle"]
