"""Sweeps end to end: results file, resume after SIGKILL, live readers, determinism, divergence."""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import h5py
import numpy as np
import pytest

from gdchaos import presets, runner, store
from gdchaos.config import from_dict
from gdchaos.engine.units import initial_conditions, plan_units, unit_fractions
from gdchaos.errors import GdchaosError
from gdchaos.nn import MLP
from gdchaos.store import writer as writer_module

ARRAYS = ("distances", "loss", "train_accuracy", "test_accuracy", "reached_epoch", "diverged_epoch",
          "initial_params", "unit_done")
TANGENT_ARRAYS = ("tangent_log_distance", "lyapunov_spectrum", "tangent_condition")


def tiny(tmp_path, name="run.h5", **overrides):
    values = dict(etas=[0.5, 10.0], ics=3, replicas=2, epochs=30, tau_epochs=60, output=str(tmp_path / name))
    values.update(overrides)
    return from_dict(values, presets.get("iris-tanh")).validate()


def test_results_file_layout_and_contents(tmp_path):
    config = tiny(tmp_path)
    outcome = runner.run(config)
    with store.open(outcome.path) as run:
        assert run.attrs["format"] == "gdchaos-sweep" and run.attrs["format_version"] == store.FORMAT_VERSION
        assert run.config == config
        assert len(run.attrs["dataset_fingerprint"]) == 16
        np.testing.assert_array_equal(run.eta, [0.5, 10.0])
        d = run["distances"]
        assert d.shape == (2, 3, 2, 31)
        assert np.all(np.isfinite(d))
        model = MLP((4, 10, 3))
        n_weights = model.weight_mask().sum()
        # sanity from the protocol: d_j(0) ~ eps * N_weights / 2 (biases not perturbed)
        assert d[..., 0] == pytest.approx(1e-8 * n_weights / 2, rel=0.35)
        assert run["loss"].shape == (2, 3, 31) and np.all(np.isfinite(run["loss"]))
        assert np.all(run["reached_epoch"] >= -1) and np.all(run["diverged_epoch"] == -1)
        assert run.progress() == (len(run.units), len(run.units))
        # the same q initial conditions at every eta: identical losses at t = 0
        np.testing.assert_array_equal(run["loss"][0, :, 0], run["loss"][1, :, 0])
        params = run["initial_params"]
        assert params.shape == (3, model.n_params)
        np.testing.assert_array_equal(params, initial_conditions(model, config, 0, 3)[:, 0])
        summary = run.summary()
        assert np.all(np.isfinite(summary["lambda_mean"])) and np.all(summary["n_ic"] == 3)
        assert run.file["distances"].dims[0][0].name == "/eta"


def test_tau_is_first_epoch_at_target_and_censored_when_never_reached(tmp_path):
    config = tiny(tmp_path, etas=[0.0005, 0.5], target=0.9, epochs=20, tau_epochs=300)
    with store.open(runner.run(config).path) as run:
        reached, accuracy = run["reached_epoch"], run["test_accuracy"]
    assert np.all(reached[0] == -1)  # eta = 0.0005 cannot learn Iris in 300 epochs
    for ic in range(3):
        t = reached[1, ic]
        if 0 <= t <= 20:
            assert accuracy[1, ic, t] >= 0.9 and np.all(accuracy[1, ic, :t] < 0.9)


def test_unit_epochs_advance_while_references_train_towards_the_target(tmp_path, monkeypatch):
    written = []
    write_unit = store.Writer.write_unit

    def spy(self, unit, arrays, epochs_done, *, done):
        written.append((epochs_done, done))
        write_unit(self, unit, arrays, epochs_done, done=done)

    monkeypatch.setattr(store.Writer, "write_unit", spy)
    monkeypatch.setattr(runner, "PARTIAL_WRITE_SECONDS", 0.0)
    config = tiny(tmp_path, etas=[0.0005], epochs=5, tau_epochs=40)  # never reaches the target: tau to the budget
    with store.open(runner.run(config).path) as run:
        assert run["unit_epochs"].tolist() == [41]
    # every epoch of the ball phase, then the tau phase in calls that grow with its speed
    assert written[:6] == [(epochs, False) for epochs in range(1, 7)]
    assert written[-2:] == [(41, False), (41, True)] and not any(done for _, done in written[:-1])
    tau_epochs = [epochs for epochs, _ in written[6:-1]]
    assert np.all(np.diff(tau_epochs) > 0) and tau_epochs[0] == 7
    fractions = [unit_fractions(np.array([epochs]), np.array([done]), config)[0] for epochs, done in written]
    assert np.all(np.diff(fractions[:-1]) > 0) and fractions[5] == 6 * 3 / (6 * 3 + 35) and fractions[-1] == 1


def test_same_config_gives_bit_identical_files(tmp_path):
    first = runner.run(tiny(tmp_path, "a.h5")).path
    second = runner.run(tiny(tmp_path, "b.h5")).path
    with store.open(first) as a, store.open(second) as b:
        for name in ARRAYS:
            np.testing.assert_array_equal(a[name], b[name])


def test_units_are_independent_of_how_the_work_is_split(tmp_path):
    config = tiny(tmp_path, "whole.h5")
    split = replace(config, output=str(tmp_path / "split.h5"), ics_per_unit=1, etas_per_unit=1)
    model = MLP((4, 10, 3))
    assert len(plan_units(split, model, 120)) == 6 and len(plan_units(config, model, 120)) == 1
    with store.open(runner.run(config).path) as a, store.open(runner.run(split).path) as b:
        np.testing.assert_array_equal(a["initial_params"], b["initial_params"])
        np.testing.assert_allclose(a["distances"], b["distances"], rtol=1e-9)


def test_a_resumed_file_keeps_the_plan_it_was_created_with(tmp_path, monkeypatch):
    """A file begun under another planner (an older gdchaos) is finished with its own units."""
    config = tiny(tmp_path, "resumed.h5")
    with monkeypatch.context() as patch:
        patch.setattr("gdchaos.engine.units.unit_shape", lambda *args: (1, 1))
        runner.run(config, shard=(1, 2))
    notices = []
    outcome = runner.run(config, announce=notices.append)
    assert outcome.complete and notices == ["resuming with the file's plan of 6 units"]
    with store.open(outcome.path) as run, store.open(runner.run(tiny(tmp_path, "whole.h5")).path) as whole:
        assert len(run.units) == 6 and run["unit_done"].all()
        np.testing.assert_allclose(run["distances"], whole["distances"], rtol=1e-9)
        np.testing.assert_array_equal(run["reached_epoch"], whole["reached_epoch"])


def test_divergence_is_recorded_and_the_sweep_goes_on(tmp_path):
    config = tiny(tmp_path, etas=[0.5, 1e300], model={"activation": "relu"}, epochs=10, tau_epochs=10)
    with store.open(runner.run(config).path) as run:
        diverged = run["diverged_epoch"]
        assert np.all(diverged[0] == -1)
        blown = np.any(diverged[1] >= 0, axis=1)
        assert blown.sum() >= 2  # a relu net can also die (all units off) instead of blowing up
        assert np.all(np.isfinite(run["loss"][0]))
        assert not np.all(np.isfinite(run["loss"][1][blown]))
        assert run.summary()["n_diverged"][1] == blown.sum()


def test_existing_file_with_another_config_is_refused(tmp_path):
    runner.run(tiny(tmp_path))
    with pytest.raises(ValueError, match="different config.*epochs"):
        runner.run(tiny(tmp_path, epochs=31))
    runner.run(tiny(tmp_path, epochs=31), overwrite=True)


def _write_config(tmp_path, **extra):
    # 8 units of 121 Iris networks x 600 epochs, about 0.4 s each: a run lasts long enough to be read,
    # stopped and killed mid-sweep (the replicas set a unit's duration; more epochs would also make
    # the final fits slower)
    values = dict(etas="[0.5, 10.0]", ics=4, replicas=120, epochs=600, tau_epochs=600, ics_per_unit=1,
                  etas_per_unit=1, seed=3)
    values.update(extra)
    lines = [f"{key} = {value}" for key, value in values.items()]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run_command(config, output):
    return [sys.executable, "-m", "gdchaos", "run", "--headless", "--config", str(config), "-o", str(output),
            "--quiet"]


@pytest.mark.parametrize("tangent", [False, True])
def test_sigkill_mid_sweep_then_resume_is_bit_identical(tmp_path, tangent):
    config = _write_config(tmp_path, **({"tangent": "true", "tangent_k": 2} if tangent else {}))
    killed, clean = tmp_path / "killed.h5", tmp_path / "clean.h5"
    process = subprocess.Popen(_run_command(config, killed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    done = 0
    seen_partial = False
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
        if not killed.exists():
            continue
        try:  # a second process reading while the run writes (SWMR)
            with store.open(killed) as live:
                done, total = live.progress()
                epochs = live.file["unit_epochs"][:]
                seen_partial |= bool(np.any((epochs > 0) & (live.file["unit_done"][:] == 0)))
        except ValueError:
            continue  # the file is being created
        if done >= 3:
            break
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 3 <= done < 8
    with store.open(killed) as partial:
        assert partial.progress()[0] < 8
    resumed = subprocess.run(_run_command(config, killed), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    reference = subprocess.run(_run_command(config, clean), capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    with store.open(killed) as a, store.open(clean) as b:
        for name in ARRAYS + (TANGENT_ARRAYS if tangent else ()):
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        for name in ("lambda_mean", "rho", "tau_mean"):
            np.testing.assert_array_equal(a.summary()[name], b.summary()[name])
    assert seen_partial, "a live reader never saw a unit in flight"
    assert not (tmp_path / "killed.h5.lock").exists()


def test_sigterm_stops_cleanly_and_resumes(tmp_path):
    config = _write_config(tmp_path, ics=12)  # 24 units: many left when the first is done, however loaded the machine
    output = tmp_path / "stopped.h5"
    process = subprocess.Popen(_run_command(config, output), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    done = 0
    while process.poll() is None and done < 1:
        time.sleep(0.05)
        try:
            with store.open(output) as live:
                done = live.progress()[0]
        except (ValueError, OSError):
            continue
    assert process.poll() is None, "the run finished before it could be stopped"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "rerun the same command to resume" in err and "Traceback" not in err
    with h5py.File(output, "r") as handle:  # closed cleanly: opens without SWMR or recovery
        assert handle["unit_done"][:].sum() < 24
    finished = subprocess.run(_run_command(config, output), capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    with store.open(output) as run:
        assert run.progress() == (24, 24)


class _SignalInFinalizer:
    """A reporter whose third progress event delivers SIGTERM while Python runs a finalizer."""

    def __init__(self):
        self.events = 0

    def start(self, *args):
        pass

    def progress(self, unit, event):
        self.events += 1
        if self.events == 3:
            _Finalized()  # dropped at once: its __del__ runs the handler, whose exception Python discards

    def unit_done(self, unit):
        pass

    def close(self):
        pass


class _Finalized:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # the handler runs here, inside __del__


def test_a_stop_swallowed_by_a_finalizer_still_stops_the_run(tmp_path):
    unraisable = []
    previous = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        config = tiny(tmp_path, ics=4, ics_per_unit=1, etas_per_unit=1)
        with pytest.raises(KeyboardInterrupt):
            runner.run(config, reporter=_SignalInFinalizer())
    finally:
        sys.unraisablehook = previous
    assert unraisable == []  # nothing printed for the discarded stop
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with store.open(config.output) as partial:
        assert partial.progress()[0] < partial.progress()[1]
    runner.run(config)
    with store.open(config.output) as finished:
        assert finished.progress()[0] == finished.progress()[1]


def test_a_second_writer_is_refused(tmp_path):
    config = _write_config(tmp_path)
    output = tmp_path / "busy.h5"
    process = subprocess.Popen(_run_command(config, output), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "busy.h5.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        second = subprocess.run(_run_command(config, output), capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert "being written by another gdchaos run" in second.stderr
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert os.path.exists(output)


def test_an_open_reader_does_not_block_resuming_or_overwriting(tmp_path):
    config = tiny(tmp_path, ics_per_unit=1, etas_per_unit=1)
    output = runner.run(config).path
    with h5py.File(output, "r+") as handle:  # as if the run had been stopped before its last unit
        handle["unit_done"][-1] = 0
    toml = tmp_path / "config.toml"
    toml.write_text(config.to_toml())
    with store.open(output) as reader:
        assert reader.progress() == (5, 6)
        resumed = subprocess.run(_run_command(toml, output), capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        replaced = subprocess.run([*_run_command(toml, output), "--epochs", "20", "--overwrite"],
                                  capture_output=True, text=True, timeout=120)
        assert replaced.returncode == 0, replaced.stderr
        assert reader["distances"].shape[-1] == 31  # still the file it opened, not a truncated one
    with store.open(output) as run:
        assert run.progress() == (6, 6) and run.config.epochs == 20


def test_sharpness_every_k_epochs_is_recorded_and_summarised(tmp_path):
    config = tiny(tmp_path, etas=[0.5], epochs=12, tau_epochs=12, sharpness_every=4)
    with store.open(runner.run(config).path) as run:
        np.testing.assert_array_equal(run["sharpness_epochs"], [0, 4, 8, 12])
        sharpness = run["sharpness"]
        assert sharpness.shape == (1, 3, 4) and np.all(np.isfinite(sharpness))
        params = run["initial_params"]
        model = MLP((4, 10, 3))
        from gdchaos import data
        from gdchaos.nn import top_eigenvalue

        x, y, _, _ = data.load("iris")
        exact = top_eigenvalue(model, params, x, y, tol=1e-10, max_iter=500).eigenvalue
        np.testing.assert_allclose(sharpness[0, :, 0], exact, rtol=1e-3)
        assert run.summary()["sharpness_late_median"][0] == np.median(sharpness[0, :, 2:])


def test_files_of_older_versions_without_summary_fields_still_open(tmp_path):
    from gdchaos.cli.table import rows_from_file

    path = runner.run(tiny(tmp_path, epochs=12, tau_epochs=12, sharpness_every=4)).path
    with store.open(path) as run:
        summary, fits = run.summary(), run.fits()
    assert np.all(np.isfinite(summary["sharpness_late_median"]))
    with h5py.File(path, "r+") as handle:
        del handle["summary/sharpness_late_median"]
    with store.open(path) as run:
        np.testing.assert_array_equal(run.summary()["sharpness_late_median"], summary["sharpness_late_median"])
    with h5py.File(path, "r+") as handle:
        del handle["summary"], handle["fit"]
    with store.open(path) as run:
        run.refresh()
        for name, values in run.summary().items():
            np.testing.assert_array_equal(values, summary[name], err_msg=name)
        for name, values in run.fits().items():
            np.testing.assert_array_equal(values, fits[name], err_msg=name)
    assert rows_from_file(path)[0]["n_ic"] == 3


def test_tangent_datasets_exist_only_when_asked_and_the_default_config_is_unchanged(tmp_path):
    plain = runner.run(tiny(tmp_path, "plain.h5")).path
    with store.open(plain) as run:
        assert not any(name in run.file for name in TANGENT_ARRAYS)
        stored = json.loads(run.attrs["config"])
        assert not {"tangent", "tangent_k", "tangent_qr_every"} & set(stored)  # as files made before them
    config = tiny(tmp_path, "tangent.h5", tangent=True, tangent_k=3, tangent_qr_every=2)
    with store.open(runner.run(config).path) as run:
        assert run.config == config
        assert run["tangent_log_distance"].shape == (2, 3, 31)
        assert run["lyapunov_spectrum"].shape == (2, 3, 3) and run["tangent_condition"].shape == (2, 3)
        assert np.isfinite(run["tangent_log_distance"]).all() and np.isfinite(run["lyapunov_spectrum"]).all()
        assert run.file["tangent_log_distance"].dims[0][0].name == "/eta"
        # d_1(0) is the L1 norm of the first replica's perturbation
        np.testing.assert_allclose(run["tangent_log_distance"][..., 0], np.log(run["distances"][:, :, 0, 0]),
                                   rtol=1e-14)
        curves = run["tangent_log_distance"]
        lam = (curves[..., -1] - curves[..., 0]) / 30
        np.testing.assert_allclose(run.file["fit/lambda_tangent"][()], lam, rtol=1e-12)
        np.testing.assert_allclose(run.file["summary/lambda_tangent_mean"][()], lam.mean(axis=1), rtol=1e-12)
        np.testing.assert_allclose(run.file["summary/rho_tangent"][()], 100 * (lam > 0.05).mean(axis=1))
        assert run.summary()["lambda_tangent_mean"] == pytest.approx(lam.mean(axis=1), rel=1e-12)
    shown = subprocess.run([sys.executable, "-m", "gdchaos", "analyze", str(config.output), "--json"],
                           capture_output=True, text=True)
    rows = json.loads(shown.stdout)
    assert [row["lambda_tangent_mean"] for row in rows] == pytest.approx(lam.mean(axis=1), rel=1e-12)
    assert all(row["rho_tangent_ci_low"] <= row["rho_tangent"] <= row["rho_tangent_ci_high"] for row in rows)
    table = subprocess.run([sys.executable, "-m", "gdchaos", "analyze", str(config.output)],
                           capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert table.returncode == 0 and "lambda_tangent" in table.stdout and "rho_t %" in table.stdout
    plain = subprocess.run([sys.executable, "-m", "gdchaos", "analyze", str(plain), "--json"],
                           capture_output=True, text=True)
    assert "lambda_tangent_mean" not in json.loads(plain.stdout)[0]
    with pytest.raises(GdchaosError, match="tangent_k: must be"):
        runner.run(tiny(tmp_path, "big.h5", tangent_k=84))  # more vectors than parameters (83)


def test_per_layer_distances_sum_to_the_total(tmp_path):
    config = tiny(tmp_path, model={"hidden": [6, 5]}, perturb_biases=True)
    with store.open(runner.run(config).path) as run:
        layers, total = run["layer_distances"], run["distances"]
        assert layers.shape == (2, 3, 2, 6, 31)
        assert run.file["layer_distances"].attrs["tensors"] == '["W1", "b1", "W2", "b2", "W3", "b3"]'
        np.testing.assert_allclose(layers.sum(axis=3), total, rtol=1e-12)
        # with biases perturbed every tensor starts apart: d_s(0) ~ eps * size_s / 2
        sizes = np.array([24, 6, 30, 5, 15, 3])
        np.testing.assert_allclose(layers[0, 0, 0, :, 0], 1e-8 * sizes / 2, rtol=0.9)


def test_trajectories_give_back_the_online_distances_and_load_lazily(tmp_path):
    import tracemalloc

    config = tiny(tmp_path, save_trajectories=True, epochs=25, tau_epochs=25)
    with store.open(runner.run(config).path) as run:
        trajectories = run.trajectories
        assert trajectories.shape == (2, 3, 3, 26, MLP((4, 10, 3)).n_params)
        np.testing.assert_array_equal(trajectories[0, 1, 0, 0], run["initial_params"][1])
        recomputed = run.recompute_distances("l1")
        np.testing.assert_allclose(recomputed, run["distances"], rtol=1e-13, atol=0)
        l2 = run.recompute_distances("l2")
        assert np.all(l2 <= recomputed) and np.all(l2 > 0)
        tracemalloc.start()
        one = run.trajectory(1, 2, network=1)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert one.shape == (26, trajectories.shape[-1])
        assert peak < 4 * one.nbytes + 200_000  # one network's trajectory, not the whole dataset


def test_trajectory_options_size_estimate_and_disk_refusal(tmp_path, monkeypatch):
    plain = runner.run(tiny(tmp_path, "plain.h5", epochs=60, tau_epochs=60)).path
    config = tiny(tmp_path, "traj.h5", epochs=60, tau_epochs=60, save_trajectories=True, trajectory_ics=[0, 2],
                  trajectory_every=2, trajectory_dtype="float32")
    notices = []
    path = runner.run(config, announce=notices.append).path
    assert "trajectories: 2 ICs x 31 epochs" in notices[0]
    estimate = config.trajectory_bytes(MLP((4, 10, 3)).n_params)
    growth = os.path.getsize(path) - os.path.getsize(plain)
    assert abs(growth - estimate) < 0.1 * estimate, (growth, estimate)
    with store.open(path) as run:
        assert run.trajectories.dtype == np.float32
        np.testing.assert_array_equal(run.file["trajectory_epochs"][:], np.arange(0, 61, 2))
        with pytest.raises(ValueError, match="not 1"):
            run.trajectory(0, 1)

    class Full:
        free = 10

    monkeypatch.setattr(writer_module.shutil, "disk_usage", lambda folder: Full)
    with pytest.raises(ValueError, match="disk full: full.h5 needs .* trajectories: choose fewer"):
        runner.run(replace(config, output=str(tmp_path / "full.h5")))


def test_cnn_sweep_runs_through_the_same_runner(tmp_path):
    config = from_dict({"dataset": "digits", "etas": [0.5, 5.0], "ics": 2, "replicas": 2, "epochs": 8,
                        "tau_epochs": 10, "output": str(tmp_path / "cnn.h5")}, presets.get("mnist-cnn")).validate()
    assert config.model.kind == "cnn" and config.target == 0.8 and presets.get("mnist-cnn").tau_epochs == 2000
    with store.open(runner.run(config).path) as run:
        assert run["distances"].shape == (2, 2, 2, 9) and np.all(np.isfinite(run["distances"]))
        names = [tensor["name"] for tensor in __import__("json").loads(run.attrs["layout"])]
        assert run["layer_distances"].shape[3] == len(names)
        np.testing.assert_allclose(run["layer_distances"].sum(axis=3), run["distances"], rtol=1e-12)


def test_cnn_sweep_records_sharpness(tmp_path):
    from gdchaos import data
    from gdchaos.engine.build import build_model
    from gdchaos.nn import top_eigenvalue

    config = from_dict({"dataset": "digits", "etas": [0.5], "ics": 2, "replicas": 1, "epochs": 4,
                        "tau_epochs": 4, "sharpness_every": 2, "sharpness_subset": 300,
                        "output": str(tmp_path / "cnn.h5")}, presets.get("mnist-cnn")).validate()
    with store.open(runner.run(config).path) as run:
        np.testing.assert_array_equal(run["sharpness_epochs"], [0, 2, 4])
        sharpness, params, units = run["sharpness"][()], run["initial_params"][()], run.units
        assert sharpness.shape == (1, 2, 3) and np.all(np.isfinite(sharpness)) and np.all(sharpness > 0)
        assert np.all(run["sharpness_iterations"][()] >= 2)
    x, y, _, _ = data.load("digits")
    model = build_model(config, x.shape[1], 10)
    # epoch 0 is a cold start with the sweep's settings on the references of each unit (the eigenvalue
    # itself is checked against numpy.linalg.eigvalsh in tests/test_hessian.py)
    for unit in units:
        expected = top_eigenvalue(model, params[unit.ic_start:unit.ic_stop], x, y, tol=config.sharpness_tol,
                                  max_iter=config.sharpness_max_iter, subset=config.sharpness_subset,
                                  seed=config.seed).eigenvalue
        np.testing.assert_allclose(sharpness[0, unit.ic_start:unit.ic_stop, 0], expected, rtol=1e-10)


def test_cnn_needs_an_image_dataset(tmp_path):
    config = from_dict({"dataset": "iris", "output": str(tmp_path / "x.h5")}, presets.get("mnist-cnn"))
    with pytest.raises(ValueError, match="model.kind: cnn needs an image dataset"):
        runner.run(config)
