"""How the engine's kernels use the machine: the OpenMP wait policy of every process that runs them."""
import os
import subprocess
import sys

import pytest

SHOW = "import os, {module}; print(os.environ.get('OMP_WAIT_POLICY'))"


@pytest.mark.parametrize("module", ["gdchaos.backend.activations", "gdchaos.backend.cubic",
                                    "gdchaos.backend.dense", "gdchaos.nn"])
def test_kernels_are_loaded_with_passive_openmp_threads_unless_the_user_chose(module):
    """Any module of the backend (the package's import sets it) before any launch; a user's value stays."""
    env = {name: value for name, value in os.environ.items() if name != "OMP_WAIT_POLICY"}
    default = subprocess.run([sys.executable, "-c", SHOW.format(module=module)], env=env, capture_output=True,
                             text=True, check=True)
    assert default.stdout.strip() == "PASSIVE"
    chosen = subprocess.run([sys.executable, "-c", SHOW.format(module=module)],
                            env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, capture_output=True, text=True, check=True)
    assert chosen.stdout.strip() == "ACTIVE"
