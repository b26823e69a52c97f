"""``gdchaos plot``: every figure renders from small real results files and draws the files' data (checked on
the figures' artists); overlays; errors are one line."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.image import imread  # noqa: E402

from gdchaos import plot, store  # noqa: E402
from gdchaos.cli import main  # noqa: E402
from gdchaos.store.cubic import read_cubic  # noqa: E402

MAX_PNG_BYTES = 200_000


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny Iris sweep, a relabelled copy (relu), a copy with sharpness data, and a cubic-map file."""
    root = tmp_path_factory.mktemp("plot")
    tanh = root / "iris-tanh.h5"
    assert main(["run", "--headless", "--quiet", "--etas", "0.05,1,10", "--ics", "3", "--replicas", "3",
                 "--epochs", "30", "--target", "0.7", "--tau-epochs", "60", "-o", str(tanh)]) == 0
    relu = root / "iris-relu.h5"  # same arrays, another label: enough to test the overlay
    shutil.copy(tanh, relu)
    with h5py.File(relu, "r+") as handle:
        config = json.loads(handle.attrs["config"])
        config["model"]["activation"] = "relu"
        handle.attrs["config"] = json.dumps(config)
    sharp = root / "iris-sharp.h5"
    shutil.copy(tanh, sharp)
    with h5py.File(sharp, "r+") as handle:  # the layout of the sharpness datasets: (n_eta, q, n_s), (n_s,)
        eta = handle["eta"][:]
        epochs = np.arange(0, 31, 5)
        rise = 1.0 - np.exp(-epochs / 10.0)
        values = (2.0 / eta)[:, None, None] * rise * (1.0 + 0.05 * np.arange(3))[None, :, None]
        values[0, :, 4:] = np.nan  # not computed yet
        handle["sharpness"] = values
        handle["sharpness_epochs"] = epochs
    cubic = root / "cubic.h5"
    assert main(["cubic", "--etas", "0.01:2.0:300", "--iterates", "50", "--orbit", "500", "-o", str(cubic)]) == 0
    return {"tanh": tanh, "relu": relu, "sharp": sharp, "cubic": cubic}


def assert_figure(path: Path) -> None:
    """The file exists, is small, and is not blank (pixel values vary)."""
    assert path.is_file(), path
    size = path.stat().st_size
    assert size > 5_000, (path, size)
    if path.suffix == ".png":
        assert size < MAX_PNG_BYTES, (path, size)
        pixels = imread(path)[..., :3]
        assert pixels.std() > 0.05, path
        assert (pixels < 0.5).mean() > 0.005, path  # some dark ink: lines and labels


def plot_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, list[Path], str]:
    code = main(["plot", *map(str, args)])
    out, err = capsys.readouterr()
    return code, [Path(line) for line in out.splitlines()], err


def test_every_figure_renders(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, written, err = plot_cli(capsys, files["sharp"], files["cubic"], "-o", tmp_path)
    assert code == 0, err
    with store.open(files["sharp"]) as handle:
        eta = handle.eta[np.nanargmax(handle.summary()["lambda_mean"])]  # the default: largest lambda_nMLE
    assert sorted(p.name for p in written) == sorted([
        "cubic_cubic.png", f"iris-sharp_distances_eta{eta:g}.png", "iris-sharp_loss.png",
        "iris-sharp_sharpness.png", "iris-sharp_sweep.png"])
    for path in written:
        assert_figure(path)


def test_defaults_and_notes(files: dict[str, Path]) -> None:
    with store.open(files["tanh"]) as handle:
        run = plot.load_run(handle)
        assert plot.pick_distance_eta(run) == int(np.nanargmax(run.summary["lambda_mean"]))
        assert plot.pick_loss_etas(run) == [0, 1, 2]
        assert not run.has_sharpness
    with store.open(files["sharp"]) as handle:
        assert plot.pick_sharpness_etas(plot.load_run(handle)) == [0, 1, 2]


def test_file_without_sharpness_is_skipped_with_a_note(files: dict[str, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    code, written, err = plot_cli(capsys, files["tanh"], "--kind", "loss,sharpness", "-o", tmp_path)
    assert code == 0 and [p.name for p in written] == ["iris-tanh_loss.png"]
    assert "no sharpness data" in err
    code, written, err = plot_cli(capsys, files["tanh"], "--kind", "sharpness", "-o", tmp_path)
    assert code == 2 and written == []
    assert err.splitlines()[-1].startswith("gdchaos: error: nothing to plot")


def test_overlay_of_several_files(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, written, err = plot_cli(capsys, files["tanh"], files["relu"], "--kind", "sweep", "-o", tmp_path)
    assert code == 0, err
    assert [p.name for p in written] == ["sweep_overlay.png"]
    assert_figure(written[0])
    with store.open(files["tanh"]) as a, store.open(files["relu"]) as b:
        runs = [plot.load_run(a), plot.load_run(b)]
        assert plot.legend_labels(runs) == (["tanh", "relu"], "iris, 10 hidden")
        figure = plot.sweep_figure(runs)
        assert [t.get_text() for t in figure.legends[0].get_texts()] == ["tanh", "relu"]


def test_censored_tau_is_marked(files: dict[str, Path]) -> None:
    with store.open(files["tanh"]) as handle:
        run = plot.load_run(handle)
        s = run.summary
        censored = np.isfinite(s["tau_mean"]) & (s["n_reached"] < s["n_ic"])
        none = s["n_reached"] == 0
        assert censored.any() or none.any()  # the fixture must exercise the marking
        tau_axes = plot.sweep_figure([run]).axes[2]
        notes = {t.get_text() for t in tau_axes.texts}
        for e in np.flatnonzero(censored):
            assert f"{int(s['n_reached'][e])}/{int(s['n_ic'][e])}" in notes
        hollow = [line for line in tau_axes.lines if line.get_markerfacecolor() == "white"]
        assert len(hollow) >= 1


def test_choices_of_etas_and_ics(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, written, err = plot_cli(capsys, files["tanh"], "--kind", "distances", "--etas", "0.05,10",
                                  "--ics", "0,2", "-o", tmp_path)
    assert code == 0, err
    assert [p.name for p in written] == ["iris-tanh_distances_eta0.05.png", "iris-tanh_distances_eta10.png"]
    for path in written:
        assert_figure(path)
    with store.open(files["tanh"]) as handle:
        figure = plot.loss_figure(plot.load_run(handle), [0, 2], np.array([0, 2]))
        assert [ax.get_title() for ax in figure.axes] == [r"$\eta$ = 0.05", r"$\eta$ = 10"]
        assert all(len(ax.lines) == 2 for ax in figure.axes)  # IC 0 bold, IC 2 faint


@pytest.mark.parametrize("fmt, magic", [("pdf", b"%PDF"), ("svg", b"<?xml")])
def test_vector_formats(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture, fmt: str,
                        magic: bytes) -> None:
    code, written, err = plot_cli(capsys, files["tanh"], "--kind", "loss", "--format", fmt, "-o", tmp_path)
    assert code == 0, err
    assert [p.name for p in written] == [f"iris-tanh_loss.{fmt}"]
    assert_figure(written[0])
    assert written[0].read_bytes().startswith(magic)


def test_live_file_is_analysed_on_the_fly(files: dict[str, Path], tmp_path: Path) -> None:
    live = tmp_path / "live.h5"
    shutil.copy(files["tanh"], live)
    with h5py.File(live, "r+") as handle:  # as before the run's end: no summary, no fits
        for group in ("summary", "fit"):
            for dataset in handle[group].values():
                dataset[...] = np.nan
    with store.open(files["tanh"]) as done, store.open(live) as handle:
        expected, run = done.summary(), plot.load_run(handle)
        np.testing.assert_allclose(run.summary["lambda_mean"], expected["lambda_mean"])
        np.testing.assert_allclose(run.fits["start"], done.fits()["start"])


@pytest.mark.parametrize("args, message", [
    (["{bad}"], "not a readable HDF5 file"),
    (["{other}"], "not a gdchaos results file"),
    (["{missing}"], "no such file"),
    (["{tanh}", "--etas", "7.5"], "--etas: eta 7.5 is not in"),
    (["{tanh}", "--etas", "x"], "--etas: every learning rate must be a number"),
    (["{tanh}", "--ics", "5"], "--ics: must be an integer in [0, 2]; got 5"),
    (["{tanh}", "--ics", "2:1"], "--ics: '2:1' selects no initial condition"),
    (["{tanh}", "--ics", "a"], "--ics: must be indices such as 0,3,7"),
    (["{tanh}", "--kind", "histogram"], "--kind: unknown histogram"),
])
def test_bad_input_exits_2_with_one_line(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture,
                                         args: list[str], message: str) -> None:
    (tmp_path / "bad.h5").write_text("not hdf5")
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle["x"] = 1
    paths = {"bad": tmp_path / "bad.h5", "other": tmp_path / "other.h5", "missing": tmp_path / "nope.h5", **files}
    code, written, err = plot_cli(capsys, *(a.format(**paths) for a in args), "-o", tmp_path)
    assert code == 2 and written == []
    assert len(err.splitlines()) == 1 and err.startswith("gdchaos: error: ") and message in err, err


def test_without_matplotlib_one_line_and_exit_2(files: dict[str, Path], tmp_path: Path) -> None:
    script = ("import sys; sys.modules['matplotlib'] = None\n"
              "from gdchaos.cli import main\n"
              f"sys.exit(main(['plot', {str(files['tanh'])!r}, '-o', {str(tmp_path)!r}]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == "gdchaos: error: plotting needs matplotlib: pip install 'gdchaos[plot]'\n"
    assert done.stdout == ""


def test_help_does_not_import_matplotlib() -> None:
    script = ("import sys, contextlib, io\nfrom gdchaos.cli import main\n"
              "with contextlib.redirect_stdout(io.StringIO()):\n"
              "    try:\n        main(['plot', '--help'])\n    except SystemExit:\n        pass\n"
              "print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


# ----------------------------------------------------------------------- the plotted data
def _line_with_y(lines, y: np.ndarray):
    """The first line whose y data equal ``y`` (NaN where ``y`` is NaN)."""
    for line in lines:
        data = np.asarray(line.get_ydata(), dtype=float)
        if data.shape == y.shape and np.array_equal(data, y, equal_nan=True):
            return line
    raise AssertionError(f"no line plots {y}")


def test_sweep_figure_plots_the_summary(files: dict[str, Path]) -> None:
    with store.open(files["tanh"]) as handle:
        run = plot.load_run(handle)
        s = run.summary
        ax_lam, ax_rho, ax_tau = plot.sweep_figure([run]).axes[:3]
        lam = _line_with_y(ax_lam.lines, s["lambda_mean"])
        np.testing.assert_array_equal(lam.get_xdata(), run.eta)  # one run: not dodged
        bars = np.array([segment[:, 1] for segment in ax_lam.collections[0].get_segments()])
        finite = np.isfinite(s["lambda_std"])
        np.testing.assert_allclose(bars[:, 0], (s["lambda_mean"] - s["lambda_std"])[finite])
        np.testing.assert_allclose(bars[:, 1], (s["lambda_mean"] + s["lambda_std"])[finite])
        _line_with_y(ax_rho.lines, s["rho"])
        _line_with_y(ax_tau.lines, s["tau_mean"])
        assert ax_lam.get_xscale() == "log" and ax_tau.get_yscale() == "log"


def test_distances_figure_plots_each_balls_mean_and_its_fit(files: dict[str, Path]) -> None:
    with store.open(files["tanh"]) as handle:
        run = plot.load_run(handle)
        e, ics = 2, np.array([0, 2])
        ax = plot.distances_figure(run, e, ics).axes[0]
        d = handle["distances"][e][ics]
        for k, ic in enumerate(ics):
            mean = d[k].mean(axis=0)
            _line_with_y(ax.lines, np.where(mean > 0, mean, np.nan))
            for replica in d[k]:
                _line_with_y(ax.lines, np.where(replica > 0, replica, np.nan))
            start, end, slope = (int(run.fits["start"][e, ic]), int(run.fits["end"][e, ic]), run.fits["slope"][e, ic])
            fit = [line for line in ax.lines if line.get_color() == "k" and len(line.get_xdata()) == end - start + 1
                   and line.get_xdata()[0] == start]
            assert fit, (ic, start, end)
            y = np.log(fit[0].get_ydata())
            assert np.allclose(np.diff(y), slope)  # a straight line of the fitted slope in ln d


def test_loss_and_sharpness_figures_plot_the_records(files: dict[str, Path]) -> None:
    with store.open(files["sharp"]) as handle:
        run = plot.load_run(handle)
        ics = np.array([1, 0, 2])
        for ax, e in zip(plot.loss_figure(run, [0, 2], ics).axes, [0, 2]):
            assert ax.lines[-1].get_linewidth() == 1.0  # the first chosen IC, bold, drawn last
            np.testing.assert_array_equal(ax.lines[-1].get_ydata(), handle["loss"][e, 1])
        epochs, sharpness = handle["sharpness_epochs"][()], handle["sharpness"][()]
        for ax, e in zip(plot.sharpness_figure(run, [0, 1], np.arange(3)).axes, [0, 1]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN epochs: not computed yet
                median = np.nanmedian(sharpness[e], axis=0)
            median_line = _line_with_y(ax.lines, median)
            np.testing.assert_array_equal(median_line.get_xdata(), epochs)
            _line_with_y(ax.lines, np.full(2, 2.0 / run.eta[e]))  # the edge of stability


def test_cubic_figure_plots_the_orbits_and_the_exponent(files: dict[str, Path]) -> None:
    with store.open_handle(files["cubic"]) as handle:
        cubic = read_cubic(handle, files["cubic"])
    ax_bif, ax_lam = plot.cubic_figure(cubic).axes
    points = ax_bif.lines[0]
    np.testing.assert_array_equal(points.get_xdata(), np.repeat(cubic.eta, cubic.bifurcation.shape[1]))
    np.testing.assert_array_equal(points.get_ydata(), cubic.bifurcation.ravel())
    _line_with_y(ax_lam.lines, cubic.lyapunov)
    _line_with_y(ax_lam.lines, np.where(cubic.lyapunov > 0, cubic.lyapunov, np.nan))  # the chaotic part


def test_tangent_curve_and_exponent_are_drawn_beside_the_ball(tmp_path: Path) -> None:
    path = tmp_path / "tangent.h5"
    assert main(["run", "--headless", "--quiet", "--etas", "0.05,1", "--ics", "3", "--replicas", "2",
                 "--epochs", "30", "--tau-epochs", "30", "--tangent", "-o", str(path)]) == 0
    with store.open(path) as handle:
        run = plot.load_run(handle)
        ax = plot.distances_figure(run, 1, np.array([0, 1])).axes[0]
        for curve in handle["tangent_log_distance"][1][[0, 1]]:
            _line_with_y(ax.lines, np.exp(curve))  # on the axis of d(t)
        ax_lam = plot.sweep_figure([run]).axes[0]
        _line_with_y(ax_lam.lines, run.summary["lambda_tangent_mean"])
        _line_with_y(ax_lam.lines, run.summary["lambda_mean"])
