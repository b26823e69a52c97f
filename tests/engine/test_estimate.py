"""Run-time estimates (gdchaos.engine.estimate) are measured on this machine and scale with the work."""
import time

import numpy as np
import pytest

from gdchaos import data
from gdchaos.config import from_dict
from gdchaos.engine import estimate
from gdchaos.nn import MLP


def _config(**values):
    base = {"dataset": "iris", "etas": [0.1, 1.0], "ics": 4, "replicas": 2, "epochs": 20,
            "tau_epochs": 20, "model": {"hidden": [10]}}
    base.update(values)
    return from_dict(base)


def test_estimate_scales_with_learning_rates_ics_and_epochs():
    fixed = estimate.overhead_seconds(_config())
    one = estimate.estimate_seconds(_config()) - fixed
    assert one > 0
    longer = estimate.estimate_seconds(_config(epochs=41, tau_epochs=41)) - fixed  # 42 epochs, not 21
    assert abs(longer - one * 42 / 21) < 1e-9 * one
    assert estimate.overhead_seconds(_config(ics=8)) > fixed  # one fit per ball


@pytest.mark.slow  # compares two timings (one possibly stored earlier): only meaningful on a quiet machine
def test_calibration_is_of_the_order_of_a_real_evaluation():
    x, y, _, _ = data.load("iris")
    model = MLP((4, 10, 3))
    theta = model.init(np.random.default_rng(0), 24)
    model.evaluate(theta, x, y)
    times = []
    for _ in range(20):  # the fastest call: other processes on the machine only slow calls down
        start = time.perf_counter()
        model.evaluate(theta, x, y)
        times.append(time.perf_counter() - start)
    measured = min(times) / (24 * x.shape[0])
    predicted = estimate.seconds_per_network_sample(_config(etas=[0.1, 1.0, 2.0], ics=4, replicas=1))
    assert measured / 20 < predicted < measured * 20


def test_calibration_is_stored_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("GDCHAOS_CACHE", str(tmp_path))
    config = _config(model={"hidden": [7]})
    assert estimate.estimate_seconds(config, measure=False) is None and estimate.stale(config)
    measured = estimate.estimate_seconds(config)
    assert estimate.calibration_path().exists() and not estimate.stale(config)

    def no_measuring(*args):
        raise AssertionError("measured again")

    monkeypatch.setattr(estimate, "_timed_evaluation", no_measuring)
    assert estimate.estimate_seconds(config, measure=False) == measured == estimate.estimate_seconds(config)
    estimate.calibration_path().write_text("{not json")  # a damaged file is only a missing hint
    assert estimate.estimate_seconds(config, measure=False) is None
