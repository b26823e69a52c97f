"""Divergence is data (issue 23, item 7): a sweep whose networks all blow up is counted as diverged by
every command, never fitted, and plotted; a learning rate that trains normally next to one that
diverges is analysed exactly as it is alone. Tiny Iris sweeps, the CLI as a subprocess."""
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

# eta = 1e307: the loss overflows at epoch 1 and the distances freeze near 1e301 (finite): only
# diverged_epoch tells; eta = 1.7e308: the parameters become NaN
DIVERGING = ["--etas", "1e307,1.7e308", "--ics", "2", "--replicas", "2", "--epochs", "10", "--quiet"]
NORMAL = ["--ics", "2", "--replicas", "2", "--epochs", "20", "--tau-epochs", "30", "--quiet"]


def gdchaos(*args, cwd):
    return subprocess.run([sys.executable, "-m", "gdchaos", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """Folder with diverged.h5 (every network diverges), mixed.h5 (eta 0.5 and 1e307), alone.h5 (eta 0.5),
    and the stdout of the diverged run."""
    root = tmp_path_factory.mktemp("divergence")
    runs = {"diverged": DIVERGING, "mixed": ["--etas", "0.5,1e307", *NORMAL], "alone": ["--etas", "0.5", *NORMAL]}
    out = {}
    for name, args in runs.items():
        result = gdchaos("run", "--headless", *args, "-o", f"{name}.h5", cwd=root)
        assert result.returncode == 0, result.stderr
        out[name] = result.stdout
    return root, out


def analyze_json(root, name):
    result = gdchaos("analyze", "--json", f"{name}.h5", cwd=root)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_every_network_diverged_is_counted_and_never_fitted(sweeps):
    root, out = sweeps
    with h5py.File(root / "diverged.h5", "r") as handle:
        diverged_epoch = handle["diverged_epoch"][()]
        assert (diverged_epoch >= 0).all()  # the premise: every reference and replica diverged
        stored = {name: handle[f"summary/{name}"][()] for name in ("n_diverged", "n_ic", "lambda_mean")}
        fit = handle["fit/lyapunov"][()]
    assert stored["n_diverged"].tolist() == stored["n_ic"].tolist() == [2, 2]  # what the run stored
    assert np.isnan(stored["lambda_mean"]).all() and np.isnan(fit).all()
    rows = analyze_json(root, "diverged")
    assert [(row["n_diverged"], row["n_ic"], row["n_fitted"]) for row in rows] == [(2, 2, 0)] * 2
    assert all(row["lambda_mean"] is None and row["lambda_ci"] is None and row["complete"] for row in rows)
    for text in (out["diverged"], gdchaos("analyze", "diverged.h5", cwd=root).stdout):
        assert "2 learning rate(s) diverged for every initial condition" in text
        assert "no learning rate" not in text


def test_plot_draws_a_diverged_sweep(sweeps):
    root, _ = sweeps
    result = gdchaos("plot", "diverged.h5", "-o", "figures", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "no learning rate finished" not in result.stderr
    written = result.stdout.split()
    assert "figures/diverged_sweep.png" in written and "figures/diverged_loss.png" in written
    for path in written:
        assert (root / path).stat().st_size > 5_000


def test_a_normal_learning_rate_next_to_a_diverged_one_is_analysed_as_alone(sweeps):
    root, _ = sweeps
    mixed, alone = analyze_json(root, "mixed"), analyze_json(root, "alone")
    assert mixed[1]["n_diverged"] == 2 and mixed[1]["lambda_mean"] is None
    normal = {key: value for key, value in mixed[0].items() if key != "file"}
    assert normal == {key: value for key, value in alone[0].items() if key != "file"}
    assert normal["n_diverged"] == 0 and normal["n_fitted"] == 2 and normal["lambda_mean"] is not None
    with h5py.File(root / "mixed.h5", "r") as m, h5py.File(root / "alone.h5", "r") as a:
        for name in ("lyapunov", "r2", "start", "end"):  # what the runs stored, bit for bit
            assert m[f"fit/{name}"][0].tobytes() == a[f"fit/{name}"][0].tobytes(), name
    result = gdchaos("plot", "mixed.h5", "--kind", "sweep,distances", "-o", "figures", cwd=root)
    assert result.returncode == 0 and "figures/mixed_distances_eta0.5.png" in result.stdout.split()


def test_sweep_figure_shades_the_diverged_learning_rates(sweeps):
    pytest.importorskip("matplotlib")
    from matplotlib.patches import Rectangle

    from gdchaos import plot, store

    root, _ = sweeps
    with store.open(root / "mixed.h5") as handle:
        run = plot.load_run(handle)
        assert run.all_diverged().tolist() == [False, True] and run.has_summary()
        assert not plot.log_eta_axis([run])  # 1e307 overflows a log axis: log10(eta) on a linear one
        figure = plot.sweep_figure([run])
        for ax in figure.axes[:3]:
            bands = [patch for patch in ax.patches if isinstance(patch, Rectangle)]
            assert len(bands) == 1  # eta 1e307 only
            low, high = bands[0].get_x(), bands[0].get_x() + bands[0].get_width()
            assert low < 307 < high and high < 320
        labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
        assert labels == ["every IC diverged"]
        lam = [line for line in figure.axes[0].lines if np.isfinite(line.get_ydata()).any()][0]
        np.testing.assert_allclose(lam.get_xdata(), np.log10(run.eta))
