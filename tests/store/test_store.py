"""The results file through gdchaos.store: its analysis by the refit policy, live (incomplete) files, and the
``gdchaos cubic`` file."""
import shutil

import h5py
import numpy as np
import pytest

from gdchaos import presets, runner, store
from gdchaos.analysis import SUMMARY_FIELDS, FitParams
from gdchaos.config import from_dict
from gdchaos.errors import GdchaosError
from gdchaos.store.cubic import is_cubic, read_cubic, write_cubic


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A small finished Iris sweep: 3 learning rates in 3 units (one per eta) of 3 ICs."""
    path = tmp_path_factory.mktemp("store") / "run.h5"
    config = from_dict(dict(etas=[0.5, 5.0, 10.0], ics=3, replicas=2, epochs=40, tau_epochs=80, etas_per_unit=1,
                            output=str(path), analysis={"n_boot": 100}), presets.get("iris-tanh")).validate()
    runner.run(config)
    return path


def _copy(finished, tmp_path, edit):
    path = tmp_path / "copy.h5"
    shutil.copy(finished, path)
    with h5py.File(path, "r+") as handle:
        edit(handle)
    return path


def test_a_finished_file_reads_back_what_the_run_stored(finished):
    with store.open(finished) as run:
        analysis = run.analysis()
        for name in SUMMARY_FIELDS:
            np.testing.assert_array_equal(analysis.summary[name], run.file[f"summary/{name}"][:], err_msg=name)
        assert analysis.summaries == (None, None, None)  # nothing fitted: all read back
        assert analysis.complete.all()
        refit = run.analysis(refit=True)  # the same parameters fit the same numbers
        for name in SUMMARY_FIELDS:
            np.testing.assert_array_equal(refit.summary[name], analysis.summary[name], err_msg=name)
        assert all(summary is not None for summary in refit.summaries)
        np.testing.assert_array_equal(run.summary()["eta"], [0.5, 5.0, 10.0])


def test_a_complete_eta_the_run_has_not_analysed_yet_is_fitted_now(finished, tmp_path):
    def forget(handle):  # what a live run looks like before its final analysis
        for name in SUMMARY_FIELDS:
            handle[f"summary/{name}"][1] = np.nan
        handle["fit/lyapunov"][1] = np.nan
    path = _copy(finished, tmp_path, forget)
    with store.open(finished) as done, store.open(path) as live:
        expected, got = done.analysis(), live.analysis()
        assert got.summaries[1] is not None and got.summaries[0] is None
        for name in SUMMARY_FIELDS:
            np.testing.assert_array_equal(got.summary[name], expected.summary[name], err_msg=name)
        np.testing.assert_array_equal(live.fits()["lyapunov"], done.fits()["lyapunov"])


def test_an_unfinished_unit_leaves_its_etas_out(finished, tmp_path):
    path = _copy(finished, tmp_path, lambda handle: handle["unit_done"].__setitem__(2, 0))
    with store.open(path) as live:
        assert live.eta_complete().tolist() == [True, True, False]
        analysis = live.analysis()
        assert np.isnan(analysis.summary["lambda_mean"][2]) and np.isnan(analysis.fits["r2"][2]).all()
        assert np.isfinite(analysis.summary["lambda_mean"][:2]).all()
        assert np.isnan(live.summary()["rho"][2])


def test_other_parameters_fit_every_complete_eta_again(finished):
    with store.open(finished) as run:
        strict = run.analysis(FitParams(r2_min=1.0, n_boot=0))
        assert np.all(strict.summary["rho"] == 0.0)  # no fit has R^2 > 1
        assert all(summary is not None and summary.r2_min == 1.0 for summary in strict.summaries)
        stored = run.analysis()
        np.testing.assert_array_equal(strict.summary["lambda_mean"], stored.summary["lambda_mean"])


def test_files_that_are_not_results_files_are_refused(tmp_path):
    text = tmp_path / "a.h5"
    text.write_text("not hdf5")
    with pytest.raises(GdchaosError, match="not a readable HDF5 file"):
        store.open(text)
    with h5py.File(tmp_path / "b.h5", "w") as handle:
        handle.attrs["format"] = "something-else"
    with pytest.raises(GdchaosError, match="not a gdchaos results file"):
        store.open(tmp_path / "b.h5")


def test_cubic_file_round_trip(tmp_path):
    eta = np.linspace(0.1, 2.5, 5)
    lyapunov, escaped = np.array([-0.5, -0.1, 0.3, 1.0, np.nan]), np.array([False] * 4 + [True])
    bifurcation = np.arange(10.0).reshape(5, 2)
    path = tmp_path / "cubic.h5"
    write_cubic(path, eta, lyapunov, escaped, bifurcation, {"seed": 3})
    assert [p.name for p in tmp_path.iterdir()] == ["cubic.h5"]  # no temporary file left
    with store.open_handle(path) as handle:
        assert is_cubic(handle) and handle.attrs["seed"] == 3
        content = read_cubic(handle, path)
    np.testing.assert_array_equal(content.lyapunov, lyapunov)
    np.testing.assert_array_equal(content.escaped, escaped)
    np.testing.assert_array_equal(content.bifurcation, bifurcation)
    with pytest.raises(GdchaosError, match="-o: directory"):
        write_cubic(tmp_path / "missing" / "c.h5", eta, lyapunov, escaped, bifurcation, {})
