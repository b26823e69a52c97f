"""Nothing lost, nothing trusted blindly (docs/reliability.md): full disks, interrupted creation, damaged
and crafted files, the lock file, --overwrite."""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from gdchaos import presets, runner, store
from gdchaos.config import from_dict
from gdchaos.errors import GdchaosError
from gdchaos.store import writer as writer_module
from gdchaos.store.lock import Lock

CONFIG = dict(etas=[0.5, 10.0], ics=2, replicas=2, epochs=20, tau_epochs=30, ics_per_unit=1, etas_per_unit=1)


def tiny(path, **overrides):
    return from_dict({**CONFIG, **overrides, "output": str(path)}, presets.get("iris-tanh")).validate()


def datasets_of(path):
    """Every dataset's bytes, by name."""
    found = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: found.__setitem__(name, item[()].tobytes())
                          if isinstance(item, h5py.Dataset) else None)
    return found


def assert_same_datasets(a, b):
    first, second = datasets_of(a), datasets_of(b)
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A finished run of the tiny sweep; other runs use the same file name in other folders."""
    path = tmp_path_factory.mktemp("clean") / "run.h5"
    runner.run(tiny(path))
    return path


def copy_of(clean, tmp_path):
    path = tmp_path / "run.h5"
    shutil.copy(clean, path)
    return path


def run_script(tmp_path, body, output):
    """Run ``body`` (Python, with ``config`` the tiny sweep into ``output``) in a child process."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        import h5py
        from gdchaos import presets, runner
        from gdchaos.config import from_dict
        config = from_dict({{**{CONFIG!r}, "output": {str(output)!r}}}, presets.get("iris-tanh")).validate()
    """) + textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)


# ----------------------------------------------------------------------------- disk full
def test_a_failing_write_stops_the_run_and_the_rerun_gives_the_same_bits(clean, tmp_path, monkeypatch):
    path = tmp_path / "run.h5"
    marked = []
    setitem = h5py.Dataset.__setitem__

    def failing(self, key, value):  # the disk fills up once two units are done
        if self.name == "/unit_done":
            marked.append(key)
        elif self.name == "/distances" and len(marked) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        setitem(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", failing)
    with pytest.raises(GdchaosError, match="disk full: .* free space and rerun the same command"):
        runner.run(tiny(path))
    monkeypatch.setattr(h5py.Dataset, "__setitem__", setitem)
    with store.open(path) as partial:
        assert partial.file["unit_done"][:].tolist() == [1, 1, 0, 0]
    assert not (tmp_path / "run.h5.lock").exists()
    runner.run(tiny(path))
    assert_same_datasets(path, clean)


def test_hdf5_write_errors_are_read_as_disk_full_or_as_the_system_error():
    path = writer_module.Path("out.h5")
    full = RuntimeError("Unable to synchronously flush file (unable to extend file properly, errno = 28, "
                        "error message = 'No space left on device')")
    assert isinstance(writer_module.write_error(path, full), writer_module.DiskFull)
    assert isinstance(writer_module.write_error(path, OSError(errno.EDQUOT, "quota")), writer_module.DiskFull)
    other = writer_module.write_error(path, OSError(errno.EIO, "Input/output error"))
    assert not isinstance(other, writer_module.DiskFull) and "Input/output error" in str(other)


def test_a_file_size_limit_at_creation_leaves_no_file_and_exits_2(tmp_path):
    output = tmp_path / "limited.h5"
    (tmp_path / "c.toml").write_text(tiny(output).to_toml())
    result = run_script(tmp_path, """
        import resource
        from gdchaos.cli import main
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))
        sys.exit(main(["run", "--headless", "--quiet", "--config", %r, "-o", config.output]))
    """ % str(tmp_path / "c.toml"), output)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "disk full" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "child.py"]


def test_a_new_file_larger_than_the_free_space_is_refused_before_it_is_written(tmp_path, monkeypatch):
    class Full:
        free = 1000

    monkeypatch.setattr(writer_module.shutil, "disk_usage", lambda folder: Full)
    with pytest.raises(GdchaosError, match=r"disk full: run.h5 needs [\d.]+ MB but .* has 0.0 MB free"):
        runner.run(tiny(tmp_path / "run.h5"))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- interrupted creation
@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_a_signal_at_any_step_of_creation_leaves_nothing_half_made(clean, tmp_path, how):
    output = tmp_path / "run.h5"
    steps = []
    for step in (1, 6, 12, 25, "rename"):
        result = run_script(tmp_path, f"""
            calls = [0]
            def stop():
                if {how!r} == "SIGKILL":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise KeyboardInterrupt
            create = h5py.Group.create_dataset
            def counting(self, *args, **kwargs):
                calls[0] += 1
                if calls[0] == {step!r}:
                    stop()
                return create(self, *args, **kwargs)
            h5py.Group.create_dataset = counting
            replace = os.replace
            def renaming(*args):
                if {step!r} == "rename":
                    stop()
                return replace(*args)
            os.replace = renaming
            try:
                runner.run(config)
            except KeyboardInterrupt:
                sys.exit(130)
        """, output)
        assert result.returncode in (130, -signal.SIGKILL), result.stderr
        assert not output.exists(), step  # the final name appears only complete
        steps.append(step)
        if how == "SIGINT":
            assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".h5") or "creating" in p.name] == []
    assert not (tmp_path / "run.h5.lock").exists() or how == "SIGKILL"
    runner.run(tiny(output))  # removes what a killed creation left aside, and runs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child.py", "run.h5"]
    assert_same_datasets(output, clean)


def test_a_file_whose_creation_an_older_gdchaos_left_unfinished_is_made_again(clean, tmp_path):
    output = tmp_path / "run.h5"
    with h5py.File(output, "w") as handle:  # stopped after its attributes, before the unit table
        handle.attrs["format"] = "gdchaos-sweep"
        handle.create_dataset("eta", data=[0.5, 10.0])
    runner.run(tiny(output))
    assert_same_datasets(output, clean)
    h5py.File(output, "w").close()  # stopped before anything was written
    runner.run(tiny(output))
    assert_same_datasets(output, clean)


def test_ctrl_c_says_consistent_only_of_a_checked_file(tmp_path):
    from gdchaos.cli.run import _state_after_stop

    assert "was not created yet" in _state_after_stop(str(tmp_path / "none.h5"))
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    assert _state_after_stop(str(tmp_path / "junk.h5")).endswith("junk.h5: not a readable HDF5 file")


# ------------------------------------------------------------------- damaged and crafted files
def test_a_truncated_file_is_reported_and_its_units_can_be_salvaged_not_discarded(clean, tmp_path):
    path = copy_of(clean, tmp_path)
    size = os.path.getsize(path)
    os.truncate(path, size // 2)
    with pytest.raises(GdchaosError, match=f"truncated: {size // 2:,} of its {size:,} bytes"):
        store.open(path)
    with pytest.raises(GdchaosError, match="gdchaos merge") as refused:
        runner.run(tiny(path))
    assert "--overwrite" not in str(refused.value)
    assert os.path.getsize(path) == size // 2  # untouched


def test_a_flipped_byte_in_a_data_chunk_is_detected_not_averaged_in(clean, tmp_path):
    path = copy_of(clean, tmp_path)
    with h5py.File(path, "r") as handle:
        chunk = handle["distances"].id.get_chunk_info(1)
    with open(path, "r+b") as raw:
        raw.seek(chunk.byte_offset + 100)
        byte = raw.read(1)
        raw.seek(chunk.byte_offset + 100)
        raw.write(bytes([byte[0] ^ 0x10]))
    with store.open(path) as run:
        with pytest.raises(GdchaosError, match="damaged data .*gdchaos merge"):
            run["distances"]
        with pytest.raises(GdchaosError, match="damaged data"):
            run.analysis(refit=True)


def _craft(clean, tmp_path, edit):
    path = copy_of(clean, tmp_path)
    with h5py.File(path, "r+") as handle:
        handle["unit_done"][:] = 0
        edit(handle, tmp_path)
    return path


def _external_loss(handle, folder):
    shape = handle["loss"].shape
    del handle["loss"]
    handle.create_dataset("loss", shape=shape, dtype="f8", external=[(str(folder / "victim"), 0, 1 << 20)])


def _virtual_distances(handle, folder):
    shape = handle["distances"].shape
    with h5py.File(folder / "other.h5", "w") as other:
        other.create_dataset("d", shape=shape, dtype="f8")
    layout = h5py.VirtualLayout(shape=shape, dtype="f8")
    layout[...] = h5py.VirtualSource(str(folder / "other.h5"), "d", shape=shape)
    del handle["distances"]
    handle.create_virtual_dataset("distances", layout)


def _external_link(handle, folder):
    with h5py.File(folder / "other.h5", "w") as other:
        other.create_dataset("x", data=[1.0])
    handle["summary/elsewhere"] = h5py.ExternalLink(str(folder / "other.h5"), "x")


def _wrong_shape(handle, folder):
    del handle["reached_epoch"]
    handle.create_dataset("reached_epoch", shape=(2, 3), dtype="i4")


def _wrong_dtype(handle, folder):
    data = handle["distances"][()]
    del handle["distances"]
    handle.create_dataset("distances", data=data.astype("f4"))


@pytest.mark.parametrize("edit, fragment", [
    (_external_loss, "loss stores its data outside the file"),
    (_virtual_distances, "distances stores its data outside the file"),
    (_external_link, "summary/elsewhere is a link to elsewhere"),
    (_wrong_shape, re.escape("reached_epoch is int32[2, 3]; its config implies int32[2, 2]")),
    (_wrong_dtype, "distances is float32"),
])
def test_crafted_files_are_refused_before_anything_is_read_or_written(clean, tmp_path, edit, fragment):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious" * 1000)
    path = _craft(clean, tmp_path, edit)
    with pytest.raises(GdchaosError, match=fragment):
        runner.run(tiny(path))
    with pytest.raises(GdchaosError, match=fragment):
        store.open(path)
    assert victim.read_bytes() == b"precious" * 1000


def test_resume_refuses_other_data(clean, tmp_path):
    path = copy_of(clean, tmp_path)
    with h5py.File(path, "r+") as handle:
        handle.attrs["dataset_fingerprint"] = "0" * 16
        handle["unit_done"][-1] = 0
    with pytest.raises(GdchaosError, match="made with other data for iris .*--data-dir"):
        runner.run(tiny(path))


# ------------------------------------------------------------------------- lock and overwrite
def test_the_lock_file_never_follows_a_symlink_and_only_its_owner_removes_it(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "out.h5.lock").symlink_to(victim)
    with pytest.raises(GdchaosError, match="lock file .* is a symlink"):
        Lock.acquire(tmp_path / "out.h5")
    assert victim.read_text() == "precious"
    os.unlink(tmp_path / "out.h5.lock")

    stale = tmp_path / "out.h5.lock"
    stale.write_text("left by a killed run")
    lock = Lock.acquire(tmp_path / "out.h5")
    assert stale.read_text() == "left by a killed run"  # opened, never truncated
    with pytest.raises(GdchaosError, match="being written by another gdchaos run"):
        Lock.acquire(tmp_path / "out.h5")
    assert stale.exists()  # the refused run does not remove it
    os.unlink(stale)  # someone removes the file while it is held ...
    other = Lock.acquire(tmp_path / "out.h5")  # ... so a new lock file can be taken
    lock.release()
    assert stale.exists()  # the first owner leaves the new owner's file alone
    other.release()
    assert not stale.exists()


@pytest.mark.parametrize("kind", ["text", "fifo", "symlink", "folder", "hdf5"])
def test_overwrite_replaces_only_gdchaos_results_files(tmp_path, kind):
    output = tmp_path / "out.h5"
    victim = tmp_path / "victim"
    victim.write_text("precious")
    if kind == "text":
        output.write_text("precious")
    elif kind == "fifo":
        os.mkfifo(output)
    elif kind == "symlink":
        output.symlink_to(victim)
    elif kind == "folder":
        output.mkdir()
    else:
        with h5py.File(output, "w") as handle:
            handle.attrs["format"] = "someone-else"
    with pytest.raises(GdchaosError, match="choose another -o"):
        runner.run(tiny(output), overwrite=True)
    assert os.path.lexists(output) and victim.read_text() == "precious"
    if kind == "text":
        assert output.read_text() == "precious"


def test_overwrite_replaces_a_results_file_of_another_config(clean, tmp_path):
    path = copy_of(clean, tmp_path)
    runner.run(tiny(path, epochs=10, tau_epochs=10), overwrite=True)
    with store.open(path) as run:
        assert run.config.epochs == 10 and run.progress() == (4, 4)
    assert json.loads(h5py.File(path, "r").attrs["config"])["epochs"] == 10


def test_a_results_file_never_grows_after_its_creation(tmp_path, monkeypatch):
    path = tmp_path / "run.h5"
    sizes = []
    original = writer_module.Writer.write_unit

    def recording(self, unit, *args, **kwargs):
        sizes.append(os.path.getsize(path))
        original(self, unit, *args, **kwargs)

    monkeypatch.setattr(writer_module.Writer, "write_unit", recording)
    runner.run(tiny(path, save_trajectories=True))
    assert len(set(sizes)) == 1 and os.path.getsize(path) == sizes[0]


def test_the_command_line_reports_a_truncated_file_in_one_line(clean, tmp_path):
    path = copy_of(clean, tmp_path)
    os.truncate(path, os.path.getsize(path) - 1000)
    for command in (["analyze", str(path)], ["plot", str(path), "-o", str(tmp_path / "fig")]):
        result = subprocess.run([sys.executable, "-m", "gdchaos", *command], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "truncated:" in result.stderr, result.stderr


def _read_everything(path):
    """What analyze, plot and the TUI read: the analysis by the refit policy and every dataset."""
    with store.open(path) as run:
        analysis = run.analysis(refit=True)
        arrays = {name: run[name] for name in ("distances", "layer_distances", "loss", "train_accuracy",
                                               "test_accuracy", "reached_epoch", "diverged_epoch", "unit_done")}
    return analysis.summary, arrays


def _flip(path, rng):
    """Flip one random bit of ``path``; its position."""
    position = int(rng.integers(os.path.getsize(path)))
    with open(path, "r+b") as raw:
        raw.seek(position)
        byte = raw.read(1)[0]
        raw.seek(position)
        raw.write(bytes([byte ^ (1 << int(rng.integers(8)))]))
    return position


def _partial_copy(clean, tmp_path):
    """The clean file with its last unit not done: a resume recomputes it and writes the analysis."""
    path = copy_of(clean, tmp_path)
    with h5py.File(path, "r+") as handle:
        handle["unit_done"][-1] = 0
    return path


def _assert_same_or_detected(path, clean):
    """Every dataset of ``path`` has the clean file's bytes, or fails its checksum when read: a flip in
    a chunk the resume neither read nor rewrote stays detected, never read as numbers."""
    expected = datasets_of(clean)
    with h5py.File(path, "r") as handle:
        names = []
        handle.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        assert sorted(names) == sorted(expected)
        for name in names:
            try:
                value = handle[name][()].tobytes()
            except OSError as exc:
                assert "filter returned failure" in str(exc), name
                continue
            assert value == expected[name], name


def _flip_campaign(clean, tmp_path, flips, seed, resume_every=5):
    """Each flip on a fresh copy: every reader gives the clean numbers or one line; every
    ``resume_every``-th flip, on a copy with a unit left to do, a resume gives the clean file's
    bits or one line. Each case within 10 s."""
    def too_slow(signum, frame):
        raise TimeoutError("a damaged file made a reader hang")

    expected = _read_everything(clean)
    rng = np.random.default_rng(seed)
    outcomes = {"same": 0, "refused": 0, "resumed": 0, "resume refused": 0}
    previous = signal.signal(signal.SIGALRM, too_slow)
    try:
        for flip in range(flips):
            resume = flip % resume_every == 0
            path = _partial_copy(clean, tmp_path) if resume else copy_of(clean, tmp_path)
            position = _flip(path, rng)
            signal.alarm(10)
            try:
                if resume:
                    runner.run(tiny(path))
                else:
                    got = _read_everything(path)
            except GdchaosError as exc:
                assert "\n" not in str(exc)
                outcomes["resume refused" if resume else "refused"] += 1
                continue
            finally:
                signal.alarm(0)
            if resume:
                _assert_same_or_detected(path, clean)
                outcomes["resumed"] += 1
                continue
            for a, b in zip((*expected[0].values(), *expected[1].values()), (*got[0].values(), *got[1].values())):
                np.testing.assert_array_equal(a, b, err_msg=f"flip at byte {position}")
            outcomes["same"] += 1
    finally:
        signal.signal(signal.SIGALRM, previous)
    return outcomes


def test_a_flipped_bit_anywhere_gives_the_same_numbers_or_one_line_never_a_hang(clean, tmp_path):
    outcomes = _flip_campaign(clean, tmp_path, 60, seed=3)
    assert sum(outcomes.values()) == 60 and outcomes["resumed"] > 0


def test_a_damaged_chunk_index_is_refused_at_once_not_retried_for_ever(clean, tmp_path):
    """A flipped bit in a chunk index (HDF5's fixed-array data blocks, signature FADB): with SWMR on,
    HDF5 retries metadata that fails its checksum with a doubling sleep, for ever in effect (the
    1,000-flip campaign hung there); the writer reads every index before SWMR, so a resume refuses
    in one line. In a child process: a hang ends in the timeout, not in a stuck test run."""
    path = _partial_copy(clean, tmp_path)
    data = bytearray(path.read_bytes())
    blocks = [match.start() for match in re.finditer(b"FADB", data)]
    assert blocks
    for start in blocks:
        data[start + 5] ^= 0x10
    path.write_bytes(bytes(data))
    child = run_script(tmp_path, """
        from gdchaos.errors import GdchaosError
        try:
            runner.run(config)
        except GdchaosError as exc:
            print(exc)
            sys.exit(2)
    """, path)
    assert child.returncode == 2, child.stderr
    assert "damaged metadata" in child.stdout and child.stdout.count("\n") == 1


@pytest.mark.slow
def test_a_thousand_flipped_bits(clean, tmp_path):
    outcomes = _flip_campaign(clean, tmp_path, 1000, seed=4)
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 1000


# ----------------------------------------------------------------------------- killed mid-write
_KILL_AT_WRITE = """
    writes, analysis = [0], [None]
    setitem = h5py.Dataset.__setitem__
    def counting(self, *args):
        writes[0] += 1
        if writes[0] == {kill}:
            os.kill(os.getpid(), signal.SIGKILL)
        return setitem(self, *args)
    h5py.Dataset.__setitem__ = counting
    from gdchaos.store import Writer
    write_analysis = Writer.write_analysis
    def noting(self, *args):
        analysis[0] = writes[0]
        return write_analysis(self, *args)
    Writer.write_analysis = noting
    runner.run(config)
    print(writes[0], analysis[0])
"""


def test_a_run_killed_in_any_write_resumes_bit_identically(clean, tmp_path):
    """SIGKILL inside the n-th array write: a unit's partial write, between the arrays of one unit,
    the write that marks it done, the final analysis; every resume gives the clean run's bits."""
    counted = run_script(tmp_path, _KILL_AT_WRITE.format(kill=-1), tmp_path / "count.h5")
    assert counted.returncode == 0, counted.stderr
    total, analysis = map(int, counted.stdout.split())
    assert 0 < analysis < total
    for kill in sorted({1, 2, total // 3, total // 2 + 1, analysis + 1, analysis + 3, total}):
        output = tmp_path / f"killed-{kill}.h5"
        killed = run_script(tmp_path, _KILL_AT_WRITE.format(kill=kill), output)
        assert killed.returncode == -signal.SIGKILL, (kill, killed.stderr)
        runner.run(tiny(output))
        assert_same_datasets(output, clean)


def test_a_run_killed_while_a_reader_holds_the_file_resumes_bit_identically(clean, tmp_path):
    output = tmp_path / "held.h5"
    killed = run_script(tmp_path, _KILL_AT_WRITE.format(kill=6), output)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    holder = subprocess.Popen(  # another process (the TUI, a notebook) holds the file across the resume
        [sys.executable, "-c", "import sys, time\nfrom gdchaos import store\nr = store.open(sys.argv[1])\n"
                               "print(r.progress()[0], flush=True)\ntime.sleep(120)", str(output)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert int(holder.stdout.readline()) < 4, holder.stderr.read() if holder.poll() is not None else ""
        runner.run(tiny(output))
        assert holder.poll() is None  # the reader was never disturbed
    finally:
        holder.kill()
        holder.wait()
    assert_same_datasets(output, clean)
