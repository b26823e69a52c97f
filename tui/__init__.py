"""gdchaos-tui: configure learning-rate sweeps, run them and watch them live in the terminal.

Installed as the package ``gdchaos_tui``. It uses only the public API of :mod:`gdchaos` and the
results files a sweep writes; the sweep itself always runs as a separate ``gdchaos run --headless``
process, so watching your own run and attaching to one started elsewhere are the same code.
"""
