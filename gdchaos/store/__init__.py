"""The results file: one HDF5 file holds everything a sweep produces (layout: docs/results-format.md).

- :mod:`.format`: the datasets of a new file; :mod:`.writer`: create or resume, one writer at a time;
- :mod:`.reader`: :func:`open` a file, finished or live, as :class:`Results`;
- :mod:`.analysis`: a file's analysis by the one refit policy; :mod:`.recover`: reopen a file whose
  writer was killed; :mod:`.cubic`: the file ``gdchaos cubic -o`` writes;
- :mod:`.verify`: checks of an untrusted file (:class:`DamagedFile`, :class:`UntrustedFile`);
  :mod:`.lock`: the lock file against a second writer.
"""
from gdchaos.store.format import FORMAT, FORMAT_VERSION
from gdchaos.store.reader import Results, open, open_handle
from gdchaos.store.verify import DamagedFile, UntrustedFile
from gdchaos.store.writer import DiskFull, Writer

__all__ = ["FORMAT", "FORMAT_VERSION", "DamagedFile", "DiskFull", "Results", "UntrustedFile", "Writer", "open",
           "open_handle"]
