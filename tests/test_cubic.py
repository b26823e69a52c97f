"""The cubic gradient map of Appendix A: known exponents, escape, bifurcation shape, CLI."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest

from gdchaos import cubic
from gdchaos.cli import main


def test_map_fixed_points_and_chebyshev_conjugacy() -> None:
    eta = np.array([0.3, 1.0, 1.7])
    np.testing.assert_allclose(cubic.cubic_map(1.0, eta), 1.0)
    np.testing.assert_allclose(cubic.cubic_map_derivative(-1.0, eta), 1.0 - 2.0 * eta)
    theta = np.linspace(0.0, np.pi, 101)  # eta = 2: f(sqrt2 cos t) = sqrt2 (-T_3(cos t)) = -sqrt2 cos 3t
    np.testing.assert_allclose(cubic.cubic_map(np.sqrt(2) * np.cos(theta), 2.0), -np.sqrt(2) * np.cos(3 * theta),
                               atol=1e-14)


def test_lyapunov_of_the_stable_minima() -> None:
    etas = np.array([0.1, 0.3, 0.7, 0.9])
    lyap, escaped = cubic.lyapunov(etas)
    assert not escaped.any()
    np.testing.assert_allclose(lyap, np.log(np.abs(1.0 - 2.0 * etas)), rtol=0, atol=1e-6)


def test_superstable_point_is_finite_and_very_negative() -> None:
    lyap, escaped = cubic.lyapunov(np.full(4, 0.5))
    assert not escaped.any()
    assert np.all(np.isfinite(lyap)) and np.all(lyap < -30) and np.all(lyap > cubic.LOG_FLOOR - 1e-9)


def test_lyapunov_is_ln3_at_eta_2() -> None:
    # In float64 orbits from |w0| ~ 0.1 stay in [-sqrt2, sqrt2] at eta = 2 (none of 2000 escaped
    # within 1e5 steps when checked); with 1e5 steps each estimate is within ~1e-4 of ln 3.
    lyap, escaped = cubic.lyapunov(np.full(8, 2.0), orbit=100_000)
    assert not escaped.any()
    np.testing.assert_allclose(lyap, np.log(3.0), rtol=0, atol=1e-3)


def test_sign_of_lyapunov_in_the_cascade() -> None:
    chaotic, esc_c = cubic.lyapunov([1.45, 1.6, 1.8, 1.9])
    periodic, esc_p = cubic.lyapunov([1.1, 1.2, 1.7])  # period 2, period 4, a periodic window
    assert not esc_c.any() and not esc_p.any()
    assert np.all(chaotic > 0.1)
    assert np.all(periodic < -0.1)


def test_escape_above_2_is_flagged_without_warnings() -> None:
    etas = [2.3, 3.0, 50.0, 1e300]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lyap, escaped, bif = cubic.orbits(etas)
    assert escaped.all()
    assert np.isnan(lyap).all() and np.isnan(bif).all()


def test_bifurcation_shape() -> None:
    bif = cubic.bifurcation([0.7, 1.1, 1.2], iterates=200)
    assert bif.shape == (3, 200)
    np.testing.assert_allclose(np.abs(bif[0]), 1.0, atol=1e-12)
    assert np.unique(bif[1]).size == 2
    assert np.unique(bif[2]).size == 4


def test_same_seed_is_bit_identical() -> None:
    etas = np.linspace(0.5, 2.0, 50)
    a = cubic.orbits(etas, seed=7)
    b = cubic.orbits(etas, seed=7)
    for x, y in zip(a, b):
        assert np.array_equal(x, y, equal_nan=True)
    assert not np.array_equal(cubic.bifurcation(etas, seed=8), a[2], equal_nan=True)


def test_cli_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cubic", "--etas", "1.1,1.9,2.3"]) == 0
    out = capsys.readouterr().out
    assert "3 etas" in out and "1 chaotic" in out and "1 escaped" in out


def _gdchaos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gdchaos", *args], capture_output=True, text=True, timeout=120)


def test_cli_json_and_hdf5(tmp_path) -> None:
    out = tmp_path / "cubic.h5"
    proc = _gdchaos("cubic", "--etas", "0.01:2.5:2000", "--iterates", "50", "--json", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert len(records) == 2000
    assert all(set(r) == {"eta", "lyapunov", "escaped"} for r in records)
    assert all((r["lyapunov"] is None) == r["escaped"] for r in records)
    assert records[-1]["escaped"] and not records[0]["escaped"]
    with h5py.File(out, "r") as h5:
        assert h5.attrs["kind"] == "gdchaos-cubic" and h5.attrs["format_version"] == 1
        assert {"gdchaos_version", "seed", "w0_std", "transient", "iterates", "orbit"} <= set(h5.attrs)
        assert h5["bifurcation"].shape == (2000, 50) and h5["escaped"].dtype == bool
        np.testing.assert_array_equal(h5["eta"][:], [r["eta"] for r in records])
        lyap = h5["lyapunov"][:]
    np.testing.assert_array_equal(lyap[~np.isnan(lyap)], [r["lyapunov"] for r in records if not r["escaped"]])


@pytest.mark.parametrize("etas", ["0:2:10", "1:2:0", "a,b", "1:2"])
def test_cli_bad_etas_is_one_line(etas: str) -> None:
    proc = _gdchaos("cubic", f"--etas={etas}")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "--etas" in proc.stderr
    assert "Traceback" not in proc.stderr
