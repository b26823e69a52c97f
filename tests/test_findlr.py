"""find-lr (gdchaos.findlr): Wilson intervals, the bisection, the divergence ladder against ground truth;
small Iris probes end to end, their refusals and the stored result."""
import math
from dataclasses import replace

import numpy as np
import pytest

import gdchaos
from gdchaos import presets, store
from gdchaos.errors import GdchaosError
from gdchaos.findlr import (FindLRResult, Row, bisect_onset, centred_etas, centred_grid, divergence_by_doubling,
                            find_lr, first_at_least, not_monotone, stored_result, wilson_interval)
from gdchaos.grid import parse_etas

Z = 1.959963984540054


@pytest.mark.parametrize("k, n", [(0, 1), (0, 8), (3, 8), (8, 8), (17, 40), (1, 1000), (999, 1000)])
def test_wilson_interval_solves_its_defining_quadratic(k, n):
    # the Wilson bounds are the p with (k/n - p)^2 = z^2 p (1 - p) / n (both roots in [0, 1])
    p_hat = k / n
    roots = np.sort(np.roots([1 + Z * Z / n, -(2 * p_hat + Z * Z / n), p_hat * p_hat]).real)
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(100 * max(roots[0], 0.0), abs=1e-9)
    assert high == pytest.approx(100 * min(roots[1], 1.0), abs=1e-9)
    assert low <= 100 * p_hat <= high


def test_wilson_interval_closed_forms_at_the_ends():
    assert wilson_interval(0, 10)[1] == pytest.approx(100 * Z * Z / (10 + Z * Z))
    assert wilson_interval(10, 10)[0] == pytest.approx(100 * 10 / (10 + Z * Z))
    with pytest.raises(GdchaosError, match="successes"):
        wilson_interval(3, 2)


def _row(eta, rho, diverged=0.0, ics=8, round_=0):
    chaotic = round(rho * ics / 100)
    return Row(eta=eta, ics=ics, chaotic=chaotic, rho=rho, rho_low=0.0, rho_high=100.0, lambda_mean=None,
               lambda_std=None, diverged=diverged, round=round_)


@pytest.mark.parametrize("critical", [0.13, 0.5, 0.99, 1.0])
def test_bisection_brackets_the_crossing_of_a_monotone_rho(critical):
    # rho(eta) = 100 / (1 + (critical / eta)^8): increasing, 50% exactly at eta = critical
    def measure(eta, k):
        rho = 100 / (1 + (critical / eta) ** 8)
        return _row(eta, rho, round_=k), rho >= 50

    low, high, rounds = 0.1, 1.6, 6
    onset, rows = bisect_onset(measure, low, high, rounds)
    width = (high / low) ** (2.0 ** -rounds)  # the bracket's ratio after the rounds
    assert critical <= onset < critical * width * (1 + 1e-12)
    assert [row.round for row in rows] == list(range(1, rounds + 1))
    assert all(low < row.eta < high for row in rows)


def test_first_crossing_and_non_monotone_rho():
    rows = [_row(0.1, 0), _row(0.2, 25), _row(0.4, 75), _row(0.8, 25), _row(1.6, 100), _row(3.2, 0, diverged=1.0)]
    assert first_at_least(rows, 0.5) == 2
    assert first_at_least(rows, 1.0) == 4
    assert first_at_least(rows[:2], 0.5) is None
    assert not_monotone(rows, 0.5) == [0.8]  # 3.2 falls because everything diverged there, not a window
    assert not_monotone(rows, 1.0) == []


@pytest.mark.parametrize("threshold, eos, expected", [(1.0, 0.3, 1.2), (1.0, 3.0, 1.5), (0.3, 0.3, 0.3),
                                                      (1e9, 1.0, None)])
def test_divergence_ladder(threshold, eos, expected):
    seen = []

    def all_diverge(eta):
        seen.append(eta)
        return eta >= threshold

    found = divergence_by_doubling(all_diverge, eos)
    assert found == (None if expected is None else pytest.approx(expected))
    if found is not None:  # the smallest rung of the ladder eos 2^k that diverges
        assert found >= threshold and found / 2 < threshold
    assert sum(eta < threshold for eta in seen) == 1  # one rung trains in full, the others stop early


def test_every_learning_rate_diverging_is_refused():
    with pytest.raises(GdchaosError, match="every learning rate down to .* diverges"):
        divergence_by_doubling(lambda eta: True, 1.0)


SMALL = dict(method="ball", ics=4, epochs=40, points=5, refine=2)


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    path = tmp_path_factory.mktemp("find-lr") / "probe.h5"
    config = replace(presets.get("iris-tanh"), replicas=2)
    return find_lr(config, output=path, **SMALL), path


def test_probe_rows_suggestions_and_stored_file(probe):
    result, path = probe
    scan = [row for row in result.rows if row.round == 0]
    assert len(scan) == 5 and [row.ics for row in scan] == [4] * 5
    assert [row.eta for row in scan] == pytest.approx(np.geomspace(*result.bracket, 5))
    refined = [row for row in result.rows if row.round]
    assert [row.ics for row in refined] == [8, 12]  # more ICs each round
    s = result.suggestions
    assert s.eos_init == pytest.approx(2 / np.median(result.sharpness_init))
    assert result.bracket[0] == pytest.approx(s.eos_init / 4)
    assert s.onset is not None  # this probe crosses 50% between two scanned learning rates
    above = [row for row in result.rows if row.rho >= 50]
    assert s.onset == min(row.eta for row in above)  # the first eta known with rho >= target
    assert s.first_chaos == min(row.eta for row in result.rows if row.chaotic) <= s.onset
    crossing = first_at_least(scan, 0.5)
    assert scan[crossing - 1].eta < s.onset <= scan[crossing].eta
    for row in result.rows:
        assert row.rho == pytest.approx(100 * row.chaotic / row.ics)
        assert row.rho_low <= row.rho <= row.rho_high
    # the scan is a results file the readers know; the result is its note
    with store.open(path) as results:
        assert results.eta == pytest.approx([row.eta for row in scan])
        assert results.config.ics == 4 and results.config.tau_epochs == results.config.epochs == 40
    back = stored_result(path)
    assert back.to_dict() == result.to_dict()
    assert isinstance(FindLRResult.from_dict(result.to_dict()).rows[0], Row)


def test_centred_etas(probe):
    result, _ = probe
    etas = centred_etas(result, 5)
    assert etas[2] == pytest.approx(result.suggestions.onset)
    assert etas[0] == pytest.approx(result.suggestions.onset / 4) and etas[-1] == pytest.approx(4 * etas[2])
    onset = result.suggestions.onset  # the grid's text (the TUI's eta field) gives these very bits
    assert centred_grid(result, 5) == f"log:{onset / 4!r}:{onset * 4!r}:5"
    assert parse_etas(centred_grid(result, 5)) == etas == tuple(np.geomspace(onset / 4, onset * 4, 5))


def test_no_onset_is_said_plainly_never_made_up():
    nothing = replace(presets.get("iris-tanh"), replicas=2, analysis={"lambda_min": 100.0})
    result = find_lr(nothing, **SMALL)
    assert result.suggestions.onset is None and result.suggestions.first_chaos is None
    assert all(row.chaotic == 0 for row in result.rows) and [row.round for row in result.rows] == [0] * 5
    assert any(note.startswith("no onset found") for note in result.notes)
    with pytest.raises(GdchaosError, match="auto needs a find-lr onset"):
        centred_etas(result, 5)
    everything = replace(nothing, analysis={"lambda_min": -100.0, "r2_min": 0.0})
    result = find_lr(everything, **SMALL)
    assert result.suggestions.onset is None and result.suggestions.first_chaos is not None
    assert any("below the bracket" in note for note in result.notes)


def test_tangent_probe_and_package_api():
    assert gdchaos.find_lr is find_lr
    result = gdchaos.find_lr(presets.get("iris-tanh"), method="tangent", ics=3, epochs=30, points=4, refine=1)
    assert result.method == "tangent" and len(result.rows) in (4, 5)
    assert all(row.diverged == 0 for row in result.rows)  # tanh Iris does not diverge here
    assert all(row.lambda_mean is not None and math.isfinite(row.lambda_mean) for row in result.rows)


@pytest.mark.parametrize("option, value, field", [("method", "fft", "method"), ("target_rho", 0.0, "target_rho"),
                                                 ("ics", 0, "ics"), ("refine", -1, "refine"), ("points", 2, "points")])
def test_bad_options_are_one_line(option, value, field):
    with pytest.raises(GdchaosError, match=f"^{field}: must be"):
        find_lr(presets.get("iris-tanh"), **{**SMALL, option: value})


def test_plot(probe):
    pytest.importorskip("matplotlib")
    figure = probe[0].plot()
    assert len(figure.axes) == 2
