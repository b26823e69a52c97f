"""The results file in the scientific Python stack (docs/results-format.md): every axis named (format
version 2), xarray through h5netcdf on finished and live files, pandas, ``analyze --format``, the
version-1 fixture and ``gdchaos upgrade``.

``tests/fixtures/iris-format1.h5`` was written by gdchaos before format version 2 (Iris tanh, etas 0.5
and 10, 3 ICs, 2 replicas, 20 epochs, sharpness every 10 epochs, trajectories every 10 epochs).
"""
import asyncio
import csv
import dataclasses
import io
import json
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from gdchaos import presets, results, runner, store
from gdchaos.config import from_dict
from gdchaos.errors import GdchaosError
from gdchaos.store.format import build, datasets
from gdchaos.store.lock import Lock
from gdchaos.store.upgrade import upgrade
from gdchaos.store.verify import UntrustedFile, check_structure

pytest.importorskip("h5netcdf", reason="the xarray extra: pip install '.[test,cluster,xarray]'")
pd = pytest.importorskip("pandas", reason="the xarray extra: pip install '.[test,cluster,xarray]'")
xr = pytest.importorskip("xarray", reason="the xarray extra: pip install '.[test,cluster,xarray]'")

ROOT = Path(__file__).resolve().parents[2]
VERSION_1 = ROOT / "tests" / "fixtures" / "iris-format1.h5"
CONFIG = dict(etas=[0.5, 10.0], ics=2, replicas=2, epochs=20, tau_epochs=30, etas_per_unit=1, sharpness_every=10,
              save_trajectories=True, trajectory_every=10)


def tiny(path, **overrides):
    return from_dict({**CONFIG, **overrides, "output": str(path)}, presets.get("iris-tanh")).validate()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished Iris sweep with every optional dataset (sharpness, trajectories)."""
    path = tmp_path_factory.mktemp("xarray") / "iris-tanh.h5"
    runner.run(tiny(path))
    return path


def gdchaos(*arguments, cwd=None):
    return subprocess.run([sys.executable, "-m", "gdchaos", *map(str, arguments)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def assert_same(dataset, handle, prefix=""):
    """Every variable of the xarray ``dataset`` has the bits h5py reads at ``prefix + name`` (text: the
    same UTF-8 strings)."""
    for name, variable in dataset.variables.items():
        if name == "tensor_name":
            continue
        expected = handle[prefix + name][()]
        if expected.dtype.kind == "S":
            assert [text.encode() for text in variable.values.tolist()] == expected.tolist(), name
            continue
        assert variable.dtype == expected.dtype, name
        assert variable.values.tobytes() == expected.tobytes(), name


def test_every_axis_is_named_and_labelled(finished):
    """Each axis of each dataset is attached to the dimension scale its Spec names, and the scales
    hold the axis' labels; each dataset has a long_name, each number its units."""
    with store.open(finished) as run:
        specs = datasets(run.config, run.units, int(run.attrs["n_params"]), 4)
        handle = run.file
        assert run.attrs["format_version"] == store.FORMAT_VERSION == 2
        found = []
        handle.visititems(lambda name, item: found.append(name) if isinstance(item, h5py.Dataset) else None)
        assert sorted(found) == sorted(specs)
        for name, spec in specs.items():
            dataset = handle[name]
            assert len(spec.dims) == dataset.ndim, name
            assert dataset.attrs["long_name"], name
            assert dataset.attrs.get("units") or dataset.dtype.kind == "S", name
            if spec.is_coordinate(name):
                assert dataset.is_scale and len(dataset.dims[0]) == 0
                continue
            group = name.rpartition("/")[0]
            for axis, dim in zip(dataset.dims, spec.dims):
                assert [scale.name for scale in axis.values()] == [f"/{group}/{dim}" if group else f"/{dim}"], name
        np.testing.assert_array_equal(handle["epoch"][:], np.arange(21))
        np.testing.assert_array_equal(handle["replica"][:], [1, 2])
        np.testing.assert_array_equal(handle["network"][:], [0, 1, 2])
        np.testing.assert_array_equal(handle["sharpness_epoch"][:], [0, 10, 20])
        np.testing.assert_array_equal(handle["fit/eta"][:], handle["eta"][:])
        assert handle["summary/lambda_mean"].attrs["units"] == "1/epoch"
        assert handle["summary/rho"].attrs["units"] == "%"
        assert handle["reached_epoch"].attrs["units"] == "epochs"


def test_every_dataset_must_name_its_axes_and_every_axis_needs_its_coordinate(finished, tmp_path):
    with store.open(finished) as run:
        layout = json.loads(run.attrs["layout"])
        specs = datasets(run.config, run.units, int(run.attrs["n_params"]), len(layout))
    unnamed = {**specs, "loss": dataclasses.replace(specs["loss"], dims=("eta", "ic"))}
    with pytest.raises(ValueError, match=r"dataset loss has 3 axes but names \('eta', 'ic'\)"):
        build(tmp_path / "a.h5", unnamed, {}, layout)
    orphan = {**specs, "loss": dataclasses.replace(specs["loss"], dims=("eta", "ic", "step"))}
    with pytest.raises(ValueError, match="dataset loss names dimension step, which has no coordinate"):
        build(tmp_path / "b.h5", orphan, {}, layout)


def test_a_coordinate_is_required_from_version_2_on(finished, tmp_path):
    path = Path(shutil.copy(finished, tmp_path / "copy.h5"))
    with h5py.File(path, "r+") as handle:
        del handle["epoch"]
    with h5py.File(path, "r") as handle, pytest.raises(UntrustedFile, match="dataset epoch is missing"):
        check_structure(handle, path)
    with h5py.File(VERSION_1, "r") as handle:  # version 1 had none but eta
        assert "epoch" not in handle and "loss" in check_structure(handle, VERSION_1)


def test_xarray_opens_a_finished_file_with_the_values_h5py_reads(finished):
    with xr.open_dataset(finished, engine="h5netcdf") as dataset, h5py.File(finished, "r") as handle:
        assert dataset["distances"].dims == ("eta", "ic", "replica", "epoch")
        assert dataset["trajectories"].dims == ("eta", "trajectory_ic", "network", "trajectory_epoch", "param")
        assert dataset["layer_distances"].dims == ("eta", "ic", "replica", "tensor", "epoch")
        assert dataset["initial_params"].dims == ("ic", "param")
        assert dataset["units"].dims == ("unit", "unit_bound")
        assert dataset["distances"].attrs["long_name"].startswith("L1 distance")
        assert dataset.attrs["format_version"] == 2
        assert set(dataset.variables) == {name for name in handle if isinstance(handle[name], h5py.Dataset)}
        assert_same(dataset, handle)
        # labelled selection: d_j(t) of replica 2 at eta = 10, IC 1, epoch 20
        assert dataset["distances"].sel(eta=10.0, ic=1, replica=2, epoch=20).item() == handle["distances"][1, 1, 1, 20]
        assert dataset["unit_host"].values[0] != ""
    for group, dims in (("summary", ("eta",)), ("fit", ("eta", "ic"))):
        with xr.open_dataset(finished, engine="h5netcdf", group=group) as dataset, h5py.File(finished, "r") as handle:
            assert {variable.dims for name, variable in dataset.data_vars.items()} == {dims}
            assert_same(dataset, handle, f"{group}/")
            assert dataset["eta"].values.tolist() == [0.5, 10.0]


def test_results_to_xarray_and_summary_frame(finished):
    with results.open(finished) as run:
        dataset = run.to_xarray()
        assert dataset["tensor_name"].values.tolist() == ["W1", "b1", "W2", "b2"]
        np.testing.assert_array_equal(dataset["loss"].values, run["loss"])
        fits = run.to_xarray("fit")
        np.testing.assert_array_equal(fits["lyapunov"].values, run.fits()["lyapunov"])
        dataset.close(), fits.close()
        frame = run.summary_frame()
        stored = run.summary()
    listed = json.loads(gdchaos("analyze", finished, "--format", "json").stdout)
    assert list(frame.index) == [0.5, 10.0] and frame.index.name == "eta"
    for row, (eta, line) in zip(listed, frame.iterrows()):
        assert row["eta"] == eta
        assert [line["lambda_ci_low"], line["lambda_ci_high"]] == row["lambda_ci"]
        for key, value in row.items():
            if key not in ("eta", "file", "source", "lambda_ci", "rho_ci"):
                assert line[key] == value or (value is None and np.isnan(line[key])), key
    # the run's stored analysis, refitted with the same parameters, gives the same numbers
    for name in ("lambda_mean", "lambda_std", "rho", "n_chaotic", "sharpness_late_median"):
        np.testing.assert_array_equal(frame[name].to_numpy(dtype=float), stored[name])
    assert frame["tau_mean"].dtype == np.float64 and frame["estimator"].tolist() == ["eq3", "eq3"]


def test_analyze_formats(finished):
    listed = json.loads(gdchaos("analyze", finished, "--format", "json").stdout)
    assert json.loads(gdchaos("analyze", finished, "--json").stdout) == listed
    table = gdchaos("analyze", finished)
    assert table.returncode == 0 and "0.5" in table.stdout
    done = gdchaos("analyze", finished, "--format", "csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [float(row["eta"]) for row in rows] == [0.5, 10.0]
    for row, expected in zip(rows, listed):
        assert float(row["lambda_mean"]) == expected["lambda_mean"]
        assert [float(row["rho_ci_low"]), float(row["rho_ci_high"])] == expected["rho_ci"]
        assert row["file"] == str(finished) and row["complete"] == "True"
    frame = pd.read_csv(io.StringIO(done.stdout), index_col="eta")
    with results.open(finished) as run:
        np.testing.assert_array_equal(frame["lambda_mean"], run.summary_frame()["lambda_mean"])
    bad = gdchaos("analyze", finished, "--format", "xml")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "gdchaos: error: --format: must be one of table, json, csv; got 'xml'"]
    both = gdchaos("analyze", finished, "--json", "--format", "csv")
    assert both.returncode == 2 and "--json" in both.stderr and "Traceback" not in both.stderr


@pytest.mark.parametrize("module, call", [("xarray", "to_xarray"), ("h5netcdf", "to_xarray"),
                                          ("pandas", "summary_frame")])
def test_without_the_extra_the_calls_name_it(finished, monkeypatch, module, call):
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with results.open(finished) as run, pytest.raises(GdchaosError) as error:
        getattr(run, call)()
    assert str(error.value) == f"{call} needs {module}: pip install 'gdchaos[xarray]'"


def test_xarray_reads_a_live_file_as_h5py_does(tmp_path):
    """A writer holds the file in SWMR mode with one unit of two written: xarray, as a SWMR reader
    without file locking, sees the same values as h5py, and the writer goes on unharmed."""
    path = tmp_path / "live.h5"
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        import numpy as np
        from gdchaos import presets
        from gdchaos.config import from_dict
        from gdchaos.engine.units import Unit
        from gdchaos.store import Writer
        config = from_dict({{**{CONFIG!r}, "output": {str(path)!r}}}, presets.get("iris-tanh")).validate()
        units = [Unit(0, 0, 1, 0, 2), Unit(1, 1, 2, 0, 2)]
        layout = [{{"name": "W1", "shape": [4, 10], "offset": 0}}, {{"name": "b1", "shape": [10], "offset": 40}},
                  {{"name": "W2", "shape": [10, 3], "offset": 50}}, {{"name": "b2", "shape": [3], "offset": 80}}]
        with Writer.create_or_resume(config.output, config, units, n_params=83, layout=layout,
                                     fingerprint="0" * 16) as writer:
            distances = np.arange(1 * 2 * 2 * 21, dtype=float).reshape(1, 2, 2, 21)
            writer.write_unit(units[0], {{"distances": distances}}, 21, done=True)
            print("written", flush=True)
            sys.stdin.readline()
            writer.write_unit(units[1], {{"distances": -distances}}, 21, done=True)
        print("closed", flush=True)
    """))
    process = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "written\n", process.stderr.read()
        with pytest.raises(OSError, match="already open for write"):  # hence the SWMR reader below
            xr.open_dataset(path, engine="h5netcdf")
        options = {"swmr": True, "libver": "latest", "locking": False}
        with xr.open_dataset(path, engine="h5netcdf", driver_kwds=options) as dataset, \
                h5py.File(path, "r", **options) as handle:
            assert_same(dataset, handle)
            assert dataset["unit_done"].values.tolist() == [1, 0]
            assert np.all(np.isnan(dataset["distances"].sel(eta=10.0).values))
            assert dataset["distances"].sel(eta=0.5, ic=1, replica=2, epoch=3).item() == 21 * 3 + 3
        with results.open(path) as run:
            assert run.file.swmr_mode
            with run.to_xarray("summary") as summary:
                assert np.all(np.isnan(summary["lambda_mean"].values))
            with run.to_xarray() as dataset:
                np.testing.assert_array_equal(dataset["distances"].values, run["distances"])
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.stdout.readline() == "closed\n", process.stderr.read()
    finally:
        process.stdin.close()
        process.wait(timeout=60)
        process.stdout.close(), process.stderr.close()
    with xr.open_dataset(path, engine="h5netcdf") as dataset:
        assert dataset["unit_done"].values.tolist() == [1, 1]
        assert dataset["distances"].sel(eta=10.0, ic=1, replica=2, epoch=3).item() == -(21 * 3 + 3)


# ----------------------------------------------------------------------------- format version 1
def test_version_1_files_still_open(tmp_path):
    path = Path(shutil.copy(VERSION_1, tmp_path / "old.h5"))
    with results.open(path) as run:
        assert run.attrs["format_version"] == 1
        frame = run.summary_frame()
        assert frame.index.tolist() == [0.5, 10.0] and frame["complete"].all()
        np.testing.assert_array_equal(frame["lambda_mean"].to_numpy(), run.summary()["lambda_mean"])
        with pytest.raises(GdchaosError, match=re.escape(f"`gdchaos upgrade {path}` rewrites it as version 2")):
            run.to_xarray()
    listed = gdchaos("analyze", path, "--format", "csv")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 3
    plotted = gdchaos("plot", path, "-o", tmp_path / "figures")
    assert plotted.returncode == 0, plotted.stderr
    assert len(list((tmp_path / "figures").glob("*.png"))) >= 3
    with pytest.raises(ValueError, match="labeled and unlabeled"):
        xr.open_dataset(path, engine="h5netcdf")  # why version 2 names every axis


def test_the_tui_shows_a_version_1_file(tmp_path):
    from textual.widgets import DataTable

    from gdchaos_tui.app import GdchaosTui
    from gdchaos_tui.screens.results import ResultsScreen

    path = Path(shutil.copy(VERSION_1, tmp_path / "old.h5"))
    with results.open(path) as run:
        lam = run.summary()["lambda_mean"]

    async def check():
        app = GdchaosTui(path)
        async with app.run_test(size=(80, 24)) as pilot:
            deadline = time.monotonic() + 60
            while not (isinstance(app.screen, ResultsScreen) and app.screen.query_one("#summary", DataTable).row_count):
                assert time.monotonic() < deadline, "the results screen did not show"
                await pilot.pause(0.1)
            table = app.screen.query_one("#summary", DataTable)
            assert table.row_count == 2
            assert [table.get_row_at(e)[1].split(" ±")[0] for e in range(2)] == [f"{value:.3g}" for value in lam]

    asyncio.run(check())


def test_upgrade_rewrites_a_version_1_file_in_place(tmp_path):
    path = Path(shutil.copy(VERSION_1, tmp_path / "old.h5"))
    with h5py.File(VERSION_1, "r") as old:
        before = {}
        old.visititems(lambda name, item: before.__setitem__(name, item[()].tobytes())
                       if isinstance(item, h5py.Dataset) else None)
        old_attrs = dict(old.attrs)
    done = gdchaos("upgrade", path)
    assert done.returncode == 0 and done.stdout == f"{path}: format version 1 -> 2\n", done.stderr
    assert sorted(item.name for item in tmp_path.iterdir()) == ["old.h5"]  # nothing left aside, no lock file
    with h5py.File(path, "r") as new:
        assert new.attrs["format_version"] == 2
        assert {key: new.attrs[key] for key in old_attrs if key != "format_version"} == \
            {key: value for key, value in old_attrs.items() if key != "format_version"}
        assert [name for name, data in before.items() if new[name][()].tobytes() != data] == []
    with xr.open_dataset(path, engine="h5netcdf") as dataset:
        assert dataset["distances"].dims == ("eta", "ic", "replica", "epoch")
        assert dataset["sharpness"].dims == ("eta", "ic", "sharpness_epoch")
    again = gdchaos("upgrade", path)
    assert again.returncode == 0 and again.stdout == f"{path}: format version 2 already\n"


def test_upgrade_computes_the_analysis_an_older_file_lacks(tmp_path):
    path = Path(shutil.copy(VERSION_1, tmp_path / "old.h5"))
    with results.open(VERSION_1) as run:
        expected = run.summary()
    with h5py.File(path, "r+") as handle:  # as written by a gdchaos that stored no analysis
        del handle["summary"], handle["fit"], handle["unit_host"]
    assert upgrade(path) == 1
    with h5py.File(path, "r") as handle:
        np.testing.assert_array_equal(handle["summary/lambda_mean"][:], expected["lambda_mean"])
        np.testing.assert_array_equal(handle["summary/rho"][:], expected["rho"])
        assert handle["unit_host"][:].tolist() == [b""]


def test_upgrade_refuses_a_file_a_run_is_writing(tmp_path):
    path = Path(shutil.copy(VERSION_1, tmp_path / "old.h5"))
    original = path.read_bytes()
    lock = Lock.acquire(path)
    try:
        refused = gdchaos("upgrade", path)
    finally:
        lock.release()
    assert refused.returncode == 2
    assert refused.stderr == f"gdchaos: error: upgrade: {path} is being written by another gdchaos run\n"
    assert path.read_bytes() == original
    link = tmp_path / "link.h5"
    link.symlink_to(path)
    linked = gdchaos("upgrade", link)
    assert linked.returncode == 2 and linked.stderr == (f"gdchaos: error: upgrade: {link} is a symlink; upgrade the "
                                                        "results file itself\n")
    missing = gdchaos("upgrade", tmp_path / "missing.h5")
    assert missing.returncode == 2 and "No such file" in missing.stderr
    not_ours = tmp_path / "other.h5"
    with h5py.File(not_ours, "w") as handle:
        handle["x"] = [1]
    other = gdchaos("upgrade", not_ours)
    assert other.returncode == 2 and other.stderr == f"gdchaos: error: upgrade: {not_ours} is not a gdchaos results file\n"


def test_a_version_1_file_resumes_as_version_1(tmp_path):
    """A run continues a version-1 file in its own format (upgrade it when no run writes it)."""
    path = Path(shutil.copy(VERSION_1, tmp_path / "old.h5"))
    with h5py.File(path, "r+") as handle:
        handle["unit_done"][0] = 0  # one unit left to compute
    with results.open(VERSION_1) as run:
        config = from_dict({"output": str(path)}, run.config)
        expected = run["distances"]
    runner.run(config)
    with results.open(path) as run:
        assert run.attrs["format_version"] == 1 and run.progress() == (1, 1)
        # recomputed (on another machine the last bits may differ, amplified by the chaos at eta = 10)
        np.testing.assert_allclose(run["distances"], expected, rtol=1e-6)


# ----------------------------------------------------------------------------- the documented snippets
def snippets(section: str) -> list[str]:
    """The ```python blocks of a section of docs/results-format.md."""
    text = (ROOT / "docs" / "results-format.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


def test_the_documented_xarray_pandas_and_h5py_snippets_run(finished, tmp_path, monkeypatch):
    shutil.copy(finished, tmp_path / "iris-tanh.h5")
    monkeypatch.chdir(tmp_path)
    blocks = snippets("Open it with xarray / pandas / h5py / MATLAB")
    assert len(blocks) >= 3
    for block in blocks:
        exec(compile(block, "docs/results-format.md", "exec"), {})
