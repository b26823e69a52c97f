"""gdchaos merge: shards of one sweep join into the file one run writes; anything else is refused."""
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from gdchaos import presets, runner
from gdchaos.config import from_dict
from gdchaos.errors import GdchaosError
from gdchaos.store.merge import merge


def sweep(path, **overrides):
    values = dict(etas=[0.5, 10.0], ics=2, replicas=2, epochs=12, tau_epochs=30, ics_per_unit=1, etas_per_unit=1,
                  output=str(path))
    values.update(overrides)
    return from_dict(values, presets.get("iris-tanh")).validate()


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """The 4 units of a sweep as shards 1/2 and 2/2, and the same sweep run whole."""
    folder = tmp_path_factory.mktemp("shards")
    parts = [runner.run(sweep(folder / f"part-{k}.h5"), shard=(k, 2)).path for k in (1, 2)]
    whole = runner.run(sweep(folder / "whole.h5")).path
    return folder, parts, whole


def same_datasets(a, b):
    with h5py.File(a, "r", locking=False) as x, h5py.File(b, "r", locking=False) as y:
        names = []
        x.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        return all(x[name][()].tobytes() == y[name][()].tobytes() for name in names)


def test_an_incomplete_merge_keeps_missing_units_pending_and_a_rerun_finishes_them(shards, tmp_path):
    _, parts, whole = shards
    merged = merge(parts[:1], tmp_path / "half.h5")
    assert (merged.units_copied, merged.units_total, merged.complete) == (2, 4, False)
    with h5py.File(merged.path, "r", locking=False) as handle:
        assert handle["unit_done"][:].tolist() == [1, 0, 1, 0]
        assert np.isnan(handle["distances"][0, 1]).all()  # unit 1: eta 0.5, IC 1
    outcome = runner.run(sweep(merged.path))
    assert outcome.units_run == 2 and outcome.complete
    assert same_datasets(whole, merged.path)


def test_merge_refuses_another_sweep(shards, tmp_path):
    _, parts, _ = shards
    other = runner.run(sweep(tmp_path / "seed1.h5", seed=1), shard=(2, 2)).path
    with pytest.raises(GdchaosError, match=r"seed1.h5 is another sweep than .*part-1.h5 \(seed differ\)"):
        merge([parts[0], other], tmp_path / "out.h5")


def test_merge_refuses_other_data(shards, tmp_path):
    _, parts, _ = shards
    copy = tmp_path / "other-data.h5"
    shutil.copy(parts[1], copy)
    with h5py.File(copy, "r+", locking=False) as handle:
        handle.attrs["dataset_fingerprint"] = "0123456789abcdef"
    with pytest.raises(GdchaosError, match=r"other-data.h5 was computed on other data .*0123456789abcdef"):
        merge([parts[0], copy], tmp_path / "out.h5")


def test_merge_refuses_overlapping_shards(shards, tmp_path):
    _, parts, whole = shards
    with pytest.raises(GdchaosError, match=r"part-1.h5 and .*whole.h5 both hold unit 0; shards must be disjoint"):
        merge([parts[0], whole], tmp_path / "out.h5")


def test_merge_refuses_files_that_are_not_gdchaos_results(shards, tmp_path):
    _, parts, _ = shards
    text, plain = tmp_path / "notes.h5", tmp_path / "plain.h5"
    text.write_text("not HDF5")
    with h5py.File(plain, "w") as handle:
        handle["x"] = np.arange(3)
    for path, ending in ((text, r" \(not HDF5\)"), (plain, "")):
        with pytest.raises(GdchaosError, match=rf"^merge: .*{path.name} is not a gdchaos results file{ending}$"):
            merge([parts[0], path], tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_merge_command_line(shards, tmp_path):
    _, parts, whole = shards
    output = tmp_path / "full.h5"
    command = [sys.executable, "-m", "gdchaos", "merge", *map(str, parts), "-o", str(output), "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(output) and same_datasets(whole, output)
    again = subprocess.run(command, capture_output=True, text=True)  # an existing output is kept
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0
    assert again.stderr.startswith(f"gdchaos: error: output: {output} exists; use --overwrite")


def _flip(path, dataset, chunk):
    with h5py.File(path, "r") as handle:
        info = handle[dataset].id.get_chunk_info(chunk)
    with open(path, "r+b") as raw:
        raw.seek(info.byte_offset + 7)
        byte = raw.read(1)
        raw.seek(info.byte_offset + 7)
        raw.write(bytes([byte[0] ^ 1]))


@pytest.mark.parametrize("damage, copied", [("flip", 3), ("tail", 4), ("half", 0)])
def test_merge_salvages_the_intact_units_of_a_damaged_file(shards, tmp_path, damage, copied):
    folder, _, whole = shards
    damaged = tmp_path / "damaged.h5"
    shutil.copy(whole, damaged)
    size = damaged.stat().st_size
    if damage == "flip":
        _flip(damaged, "distances", 2)  # the chunk of (eta 1, IC 0): unit 2
    else:
        with h5py.File(damaged, "r") as handle:
            data = handle["eta"].id.get_chunk_info(0).byte_offset  # the data follow the file's description
            analysis = handle["summary/lambda_mean"].id.get_chunk_info(0).byte_offset  # summary/ and fit/ last
        os.truncate(damaged, analysis + 10 if damage == "tail" else (data + size) // 2)
    rescued = tmp_path / "whole.h5"  # the clean file's name: the configs then agree
    merged = merge([damaged], rescued)
    assert merged.units_copied == copied and len(merged.damaged) == 4 - copied
    with h5py.File(rescued, "r") as handle:
        assert handle["unit_done"][:].sum() == copied
    runner.run(sweep(rescued))  # computes what the damage lost
    assert same_datasets(whole, rescued)


def test_merge_refuses_a_file_cut_within_its_own_description(shards, tmp_path):
    _, _, whole = shards
    damaged = tmp_path / "damaged.h5"
    shutil.copy(whole, damaged)
    os.truncate(damaged, 5000)
    with pytest.raises(GdchaosError, match="damaged.h5 is truncated within its own description"):
        merge([damaged], tmp_path / "whole.h5")
    assert not (tmp_path / "whole.h5").exists()


def test_shards_with_tangents_merge_into_the_whole_run(tmp_path):
    extra = dict(tangent=True, tangent_k=2)
    parts = [runner.run(sweep(tmp_path / f"part-{k}.h5", **extra), shard=(k, 2)).path for k in (1, 2)]
    whole = runner.run(sweep(tmp_path / "whole.h5", **extra)).path
    merge(parts, tmp_path / "full.h5")
    assert same_datasets(whole, tmp_path / "full.h5")
    with h5py.File(tmp_path / "full.h5", "r", locking=False) as handle:
        assert np.isfinite(handle["tangent_log_distance"][()]).all()
        assert np.isfinite(handle["summary/lambda_tangent_mean"][()]).all()
