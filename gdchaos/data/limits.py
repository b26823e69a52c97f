"""How long downloads may take and when temporary files count as abandoned (plain Python, cheap to import)."""
from __future__ import annotations

FETCH_TIMEOUT_S = 1800.0
"""The default time limit of one ``fetch`` (all files, all mirrors), in seconds."""

READ_TIMEOUT_S = 30.0
"""The longest wait for a mirror to connect or to send the next bytes, in seconds."""

STALE_S = 3600.0
"""Age (seconds since last modified) after which a leftover temporary file or folder is removed."""
