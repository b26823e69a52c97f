"""Training and sweeps: full-batch GD on batches of networks, units of work, run-time estimates.

- :mod:`.train`: Eq. 1 for R networks at once, with per-epoch observables (and the fused calls of
  the whole-network kernel);
- :mod:`.units`: units of work, their seeds, their share of work done; :mod:`.build`: the network a
  config describes;
- :mod:`.sweep`: one unit, eps-balls then the tau phase, as a stream of arrays;
- :mod:`.estimate`: how long a sweep will take on this machine.

Nothing here writes files: :mod:`gdchaos.runner` puts units into the results file.
"""
