"""The data layer: IDX and CIFAR parsing, checksums, fetching, loading, and the ``gdchaos data`` command."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import gdchaos.data
from gdchaos.data import cache, checksum, cifar, download, limits, loader
from gdchaos.data.idx import parse_idx, read_idx
from gdchaos.data.registry import DatasetSpec, FileSpec
from gdchaos.errors import DataError, GdchaosError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_MEAN_PIXEL = 33.3184 / 255


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test writes parsed arrays and checksum records to its own folder, not the user's."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("GDCHAOS_CACHE", str(folder))
    return folder


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_gz(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data, mtime=0))
    return path


# A tiny MNIST-like dataset: 6 training and 4 test images of 2x3 pixels.
TINY_X_TRAIN = np.arange(36, dtype=np.uint8).reshape(6, 2, 3) * 7
TINY_Y_TRAIN = np.array([0, 1, 2, 0, 1, 2], dtype=np.uint8)
TINY_X_TEST = np.full((4, 2, 3), 255, dtype=np.uint8)
TINY_Y_TEST = np.array([2, 1, 0, 1], dtype=np.uint8)
TINY_FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", TINY_X_TRAIN),
    "train_labels": ("train-labels-idx1-ubyte.gz", TINY_Y_TRAIN),
    "test_images": ("t10k-images-idx3-ubyte.gz", TINY_X_TEST),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", TINY_Y_TEST),
}


def tiny_spec(mirrors: tuple[str, ...] = ()) -> DatasetSpec:
    files = {role: FileSpec(name, {"sha256_decompressed": hashlib.sha256(idx_bytes(a)).hexdigest()})
             for role, (name, a) in TINY_FILES.items()}
    return DatasetSpec(name="tiny", description="test", format="idx", train=6, test=4, features=6,
                       classes=3, scale=255, mirrors=mirrors, files=files, loader=None,
                       split_seed=None)


def write_tiny(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in TINY_FILES.values():
        write_gz(folder / name, idx_bytes(array))
    return folder


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> DatasetSpec:
    """Make ``tiny`` a known dataset for load and fetch."""
    spec = tiny_spec()
    known = gdchaos.data.registry.dataset_spec

    def lookup(name: str) -> DatasetSpec:
        return spec if name == "tiny" else known(name)

    monkeypatch.setattr(loader, "dataset_spec", lookup)
    monkeypatch.setattr(download, "dataset_spec", lookup)
    return spec


# --- manifests and folders ---------------------------------------------------------------------

def test_names_and_manifests() -> None:
    assert gdchaos.data.names() == ["cifar10", "digits", "fashion-mnist", "iris", "mnist"]
    for name in gdchaos.data.names():
        spec = gdchaos.data.dataset_spec(name)
        if not spec.bundled:
            assert spec.mirrors and spec.files
            assert all(file.checksums for file in spec.files.values())
    mnist = gdchaos.data.dataset_spec("mnist")
    assert (mnist.train, mnist.test, mnist.features, mnist.classes) == (60000, 10000, 784, 10)
    with pytest.raises(DataError, match="unknown dataset 'nope'; choose one of: cifar10, digits"):
        gdchaos.data.dataset_spec("nope")


def test_folder_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GDCHAOS_DATA", raising=False)
    monkeypatch.delenv("GDCHAOS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert gdchaos.data.data_root() == tmp_path / "xdg" / "gdchaos"
    assert gdchaos.data.cache_root() == tmp_path / "xdg" / "gdchaos" / "parsed"
    monkeypatch.setenv("GDCHAOS_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("GDCHAOS_CACHE", str(tmp_path / "cache"))
    assert gdchaos.data.dataset_dir("mnist") == tmp_path / "env" / "mnist"
    assert gdchaos.data.cache_root() == tmp_path / "cache"
    assert gdchaos.data.dataset_dir("mnist", tmp_path / "arg") == tmp_path / "arg" / "mnist"


# --- IDX -----------------------------------------------------------------------------------------

def test_idx_reads_gzip_and_plain_files(tmp_path: Path) -> None:
    images = read_idx(write_gz(tmp_path / "images.gz", idx_bytes(TINY_X_TRAIN)), 3)
    assert images.dtype == np.uint8 and np.array_equal(images, TINY_X_TRAIN)
    (tmp_path / "labels").write_bytes(idx_bytes(TINY_Y_TRAIN))
    assert np.array_equal(read_idx(tmp_path / "labels", 1), TINY_Y_TRAIN)


def test_idx_rejects_wrong_magic(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"magic number 0x00000801, expected 0x00000803"):
        read_idx(write_gz(tmp_path / "labels.gz", idx_bytes(TINY_Y_TRAIN)), 3)
    with pytest.raises(DataError, match="not an IDX file"):
        parse_idx(b"PK\x03\x04 not idx", 1, "zip")


def test_idx_rejects_truncation(tmp_path: Path) -> None:
    data = idx_bytes(TINY_X_TRAIN)
    short = write_gz(tmp_path / "short.gz", data[:-5])  # a valid gzip of too few pixels
    with pytest.raises(DataError, match=r"short.gz is truncated: its header \(6, 2, 3\) needs 36"):
        read_idx(short, 3)
    with pytest.raises(DataError, match="shorter than its IDX header"):
        parse_idx(data[:10], 3, "head")
    with pytest.raises(DataError, match="too long"):
        parse_idx(data + b"\0", 3, "long")
    cut = tmp_path / "cut.gz"
    cut.write_bytes(gzip.compress(data)[:-12])  # the gzip stream itself ends early
    with pytest.raises(DataError, match="cut.gz is corrupted or truncated"):
        read_idx(cut, 3)


# --- checksums -----------------------------------------------------------------------------------

def test_file_digests(tmp_path: Path) -> None:
    content = os.urandom(3000)
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(content[:1000]) + gzip.compress(content[1000:]))  # two members
    digests = checksum.file_digests(path, ["md5", "sha256", "sha256_decompressed"])
    assert digests == {"md5": hashlib.md5(path.read_bytes()).hexdigest(),
                       "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                       "sha256_decompressed": hashlib.sha256(content).hexdigest()}
    path.write_bytes(path.read_bytes()[:-20])
    assert checksum.file_digests(path, ["sha256_decompressed"]) == {"sha256_decompressed": None}


def test_checksum_match_either_kind(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "x.gz", b"payload")
    inner = hashlib.sha256(b"payload").hexdigest()
    outer = hashlib.md5(path.read_bytes()).hexdigest()
    assert checksum.matching_checksum(path, FileSpec("x.gz", {"sha256_decompressed": inner,
                                                              "md5": "0" * 32})) \
        == f"sha256_decompressed:{inner}"
    assert checksum.matching_checksum(path, FileSpec("x.gz", {"sha256_decompressed": "0" * 64,
                                                              "md5": outer})) == f"md5:{outer}"
    assert checksum.matching_checksum(path, FileSpec("x.gz", {"md5": "0" * 32})) is None


def test_verify_remembers_and_detects_corruption(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_gz(tmp_path / "x.gz", b"payload")
    spec = FileSpec("x.gz", {"sha256_decompressed": hashlib.sha256(b"payload").hexdigest()})
    checksum.verify(path, spec, "tiny")
    hashed = []
    real = checksum.matching_checksum
    monkeypatch.setattr(checksum, "matching_checksum", lambda *a: hashed.append(a) or real(*a))
    checksum.verify(path, spec, "tiny")
    assert hashed == []  # the record answered
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(DataError) as error:
        checksum.verify(path, spec, "tiny")
    assert str(error.value) == (f"{path} is corrupted or truncated (checksum mismatch); "
                                "delete it and run 'gdchaos data fetch tiny'")


def test_fingerprint() -> None:
    a, b = np.zeros((2, 3)), np.arange(2)
    assert gdchaos.data.fingerprint(a, b) == gdchaos.data.fingerprint(a.copy(), b.copy())
    assert len(gdchaos.data.fingerprint(a, b)) == 16
    assert gdchaos.data.fingerprint(a, b) != gdchaos.data.fingerprint(a.reshape(3, 2), b)
    assert gdchaos.data.fingerprint(a, b) != gdchaos.data.fingerprint(a, b.astype(np.int32))
    assert gdchaos.data.fingerprint(a, b) != gdchaos.data.fingerprint(a, b + 1)


def test_fingerprint_definition_is_stable() -> None:
    """The documented definition, computed from struct-packed bytes: results files compare by it."""
    x = np.array([[0.5, -1.0], [2.0, 3.25]])[:, ::-1]  # not contiguous: hashed in C order
    y = np.array([1, 0], dtype=np.int64)
    message = (b"<f8(2, 2);" + struct.pack("<4d", -1.0, 0.5, 3.25, 2.0)
               + b"<i8(2,);" + struct.pack("<2q", 1, 0))
    assert gdchaos.data.fingerprint(x, y) == hashlib.sha256(message).hexdigest()[:16]


# --- load ----------------------------------------------------------------------------------------

def test_load_idx_dataset_then_from_cache(tiny: DatasetSpec, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    write_tiny(tmp_path / "tiny")
    x_train, y_train, x_test, y_test = gdchaos.data.load("tiny", tmp_path)
    assert x_train.shape == (6, 6) and x_test.shape == (4, 6)
    assert x_train.dtype == np.float64 and x_train.flags.c_contiguous and x_train.flags.writeable
    assert y_train.dtype == np.int64 and np.array_equal(y_test, TINY_Y_TEST)
    assert np.array_equal(x_train, TINY_X_TRAIN.reshape(6, 6) / 255) and np.all(x_test == 1.0)
    monkeypatch.setattr(loader, "read_idx", lambda *a: pytest.fail("parsed again"))
    again = gdchaos.data.load("tiny", tmp_path)
    assert gdchaos.data.fingerprint(*again) == gdchaos.data.fingerprint(x_train, y_train, x_test,
                                                                        y_test)


def test_load_recovers_from_a_damaged_cache(tiny: DatasetSpec, tmp_path: Path,
                                            private_cache: Path) -> None:
    write_tiny(tmp_path / "tiny")
    first = gdchaos.data.fingerprint(*gdchaos.data.load("tiny", tmp_path))
    (cached,) = private_cache.glob("tiny-*/x_train.npy")
    cached.write_bytes(cached.read_bytes()[:-7])
    assert gdchaos.data.fingerprint(*gdchaos.data.load("tiny", tmp_path)) == first
    assert gdchaos.data.fingerprint(*gdchaos.data.load("tiny", tmp_path)) == first


def test_load_reports_missing_incomplete_and_corrupted(tiny: DatasetSpec, tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        gdchaos.data.load("tiny", tmp_path)
    assert str(error.value) == (f"tiny not found in {tmp_path / 'tiny'}; "
                                "run 'gdchaos data fetch tiny' or set GDCHAOS_DATA")
    folder = write_tiny(tmp_path / "tiny")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"incomplete .* \(missing t10k-labels-idx1-ubyte.gz\)"):
        gdchaos.data.load("tiny", tmp_path)
    write_tiny(folder)
    images = folder / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:-9])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz is corrupted or truncated"):
        gdchaos.data.load("tiny", tmp_path)


def cifar_batch(rows: int, first_label: int) -> bytes:
    data = np.arange(rows * 3072, dtype=np.int64).reshape(rows, 3072) % 256
    batch = {b"data": data.astype(np.uint8), b"labels": [(first_label + i) % 10 for i in range(rows)]}
    return pickle.dumps(batch, protocol=4)


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_cifar10_reader(tmp_path: Path) -> None:
    members = {f"data_batch_{i}": cifar_batch(2, i) for i in range(1, 6)}
    members["test_batch"] = cifar_batch(3, 7)
    x_train, y_train, x_test, y_test = cifar.read_cifar10(write_tar(tmp_path / "c.tar.gz", members))
    assert x_train.shape == (10, 3072) and x_train.dtype == np.uint8 and x_test.shape == (3, 3072)
    assert y_train.tolist() == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6] and y_test.tolist() == [7, 8, 9]
    del members["data_batch_3"]
    with pytest.raises(DataError, match="lacks the CIFAR-10 batches data_batch_3"):
        cifar.read_cifar10(write_tar(tmp_path / "c.tar.gz", members))
    members["data_batch_3"] = pickle.dumps({b"data": os.system}, protocol=4)
    with pytest.raises(DataError, match="data_batch_3 is not a CIFAR-10 batch"):
        cifar.read_cifar10(write_tar(tmp_path / "c.tar.gz", members))
    (tmp_path / "bad.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(DataError, match="bad.tar.gz is corrupted or truncated"):
        cifar.read_cifar10(tmp_path / "bad.tar.gz")


def test_load_cifar10_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             private_cache: Path) -> None:
    members = {f"data_batch_{i}": cifar_batch(2, i) for i in range(1, 6)}
    members["test_batch"] = cifar_batch(3, 7)
    archive = write_tar(tmp_path / "tinycifar" / "cifar-10-python.tar.gz", members)
    spec = DatasetSpec(name="tinycifar", description="test", format="cifar10-python", train=10,
                       test=3, features=3072, classes=10, scale=255, mirrors=(),
                       files={"archive": FileSpec(archive.name, {"sha256": hashlib.sha256(
                           archive.read_bytes()).hexdigest()})}, loader=None, split_seed=None)
    monkeypatch.setattr(loader, "dataset_spec", lambda name: spec)
    x_train, y_train, x_test, y_test = gdchaos.data.load("tinycifar", tmp_path)
    assert x_train.shape == (10, 3072) and x_test.shape == (3, 3072) and y_test.tolist() == [7, 8, 9]
    assert x_train[0, :3].tolist() == [0, 1 / 255, 2 / 255] and x_train.max() == 1.0
    (cached,) = private_cache.glob("tinycifar-*/x_train.npy")
    flipped = bytearray(cached.read_bytes())
    flipped[200] ^= 0x10  # a pixel
    cached.write_bytes(flipped)
    assert_same_arrays(gdchaos.data.load("tinycifar", tmp_path), (x_train, y_train, x_test, y_test))


def test_iris_split_is_stratified() -> None:
    x_train, y_train, x_test, y_test = gdchaos.data.load("iris")
    assert x_train.shape == (120, 4) and x_test.shape == (30, 4)
    assert x_train.dtype == np.float64 and y_train.dtype == np.int64 and x_train.flags.c_contiguous
    assert np.bincount(y_train).tolist() == [40, 40, 40]
    assert np.bincount(y_test).tolist() == [10, 10, 10]
    assert x_train.max() > 1  # raw measurements in cm
    assert np.array_equal(gdchaos.data.load("iris")[0], x_train)  # the split is fixed


def test_bundled_split_is_cached_so_a_run_child_never_imports_scikit_learn(private_cache: Path) -> None:
    first = gdchaos.data.load("iris")
    assert len(list(private_cache.glob("iris-*/x_train.npy"))) == 1
    again = gdchaos.data.load("iris")
    assert all(a.flags.writeable and a.flags.c_contiguous and type(a) is np.ndarray for a in again)
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(first, again))
    code = ("import sys; from gdchaos import cli, data, runner; from gdchaos.cli import progress, table; cli.build_parser(); "
            "print(data.fingerprint(*data.load('iris')), 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == [gdchaos.data.fingerprint(*first), "False"]


def test_digits() -> None:
    x_train, y_train, x_test, y_test = gdchaos.data.load("digits")
    assert x_train.shape == (1437, 64) and x_test.shape == (360, 64)
    assert x_train.min() == 0 and x_train.max() == 1 and y_test.dtype == np.int64
    assert np.bincount(y_test, minlength=10).min() >= 35  # stratified: ~36 per class


# --- the parsed-array cache: checksummed, rebuilt when damaged, written atomically ---------------

def cache_entry(cache: Path, name: str = "tiny") -> dict[str, bytes]:
    """The files of the one cache entry of ``name``, by file name."""
    (folder,) = cache.glob(f"{name}-*")
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def assert_same_arrays(got: tuple[np.ndarray, ...], expected: tuple[np.ndarray, ...]) -> None:
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(got, expected))
    assert gdchaos.data.fingerprint(*got) == gdchaos.data.fingerprint(*expected)


def test_every_flipped_byte_of_the_cache_is_detected_and_rebuilt(
        tiny: DatasetSpec, tmp_path: Path, private_cache: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    write_tiny(tmp_path / "tiny")
    fresh = gdchaos.data.load("tiny", tmp_path)  # parsed from the files
    entry = cache_entry(private_cache)
    assert sorted(entry) == ["sha256.json", "x_test.npy", "x_train.npy", "y_test.npy", "y_train.npy"]
    (folder,) = private_cache.glob("tiny-*")
    capsys.readouterr()
    for name, content in entry.items():
        for position in [*range(0, len(content), 7), len(content) - 1]:  # headers, data, last byte
            flipped = bytearray(content)
            flipped[position] ^= 0x01
            (folder / name).write_bytes(flipped)
            assert_same_arrays(gdchaos.data.load("tiny", tmp_path), fresh)
            assert cache_entry(private_cache) == entry, (name, position)  # rebuilt as it was
            notice = capsys.readouterr().err
            assert notice.count("\n") == 1 and "cached arrays of tiny" in notice and "damaged" in notice
    assert [p.name for p in private_cache.iterdir() if p.name.startswith(".tiny")] == []


def test_truncated_missing_or_unreadable_cache_files_are_rebuilt(
        tiny: DatasetSpec, tmp_path: Path, private_cache: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    write_tiny(tmp_path / "tiny")
    fresh = gdchaos.data.load("tiny", tmp_path)
    entry = cache_entry(private_cache)
    (folder,) = private_cache.glob("tiny-*")
    for name, content in entry.items():
        for length in (0, 1, len(content) // 2, len(content) - 1):
            (folder / name).write_bytes(content[:length])
            assert_same_arrays(gdchaos.data.load("tiny", tmp_path), fresh)
            assert cache_entry(private_cache) == entry, (name, length)
    (folder / "x_test.npy").unlink()
    (folder / "x_test.npy").mkdir()  # unreadable as a file
    assert_same_arrays(gdchaos.data.load("tiny", tmp_path), fresh)
    (folder / "y_test.npy").unlink()
    assert_same_arrays(gdchaos.data.load("tiny", tmp_path), fresh)
    assert cache_entry(private_cache) == entry
    assert capsys.readouterr().err.count("damaged") == len(entry) * 4 + 2
    (folder / "sha256.json").unlink()  # an entry from before checksums: rebuilt without a notice
    assert_same_arrays(gdchaos.data.load("tiny", tmp_path), fresh)
    assert cache_entry(private_cache) == entry and capsys.readouterr().err == ""


def test_a_cache_entry_of_wrong_shapes_is_rebuilt(tiny: DatasetSpec, tmp_path: Path,
                                                  private_cache: Path) -> None:
    write_tiny(tmp_path / "tiny")
    fresh = gdchaos.data.load("tiny", tmp_path)
    entry = cache_entry(private_cache)
    forged = (np.zeros((5, 6), np.uint8), np.zeros(5, np.int64), np.zeros((4, 6), np.uint8),
              np.zeros(4, np.int64))
    cache.store(tiny, forged)  # consistent checksums, wrong content
    assert cache_entry(private_cache) != entry
    assert_same_arrays(gdchaos.data.load("tiny", tmp_path), fresh)
    assert cache_entry(private_cache) == entry


def test_an_interrupted_cache_write_leaves_nothing_trusted(
        tiny: DatasetSpec, tmp_path: Path, private_cache: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    write_tiny(tmp_path / "tiny")
    real_save = np.save
    saved = []

    def killed_midway(path: Path, array: np.ndarray, **kwargs: object) -> None:
        if len(saved) == 2:
            Path(path).write_bytes(b"\x93NUMPY half")
            raise KeyboardInterrupt
        saved.append(path)
        real_save(path, array, **kwargs)

    monkeypatch.setattr(np, "save", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        gdchaos.data.load("tiny", tmp_path)
    monkeypatch.setattr(np, "save", real_save)
    assert list(private_cache.glob("tiny-*")) == [] and list(private_cache.glob(".tiny-*")) == []
    # a staging folder left by a killed process: never read, removed once it is old
    stale = private_cache / f".{cache.cache_dir(tiny).name}.killed"
    stale.mkdir()
    (stale / "x_train.npy").write_bytes(b"half")
    young = private_cache / f".{cache.cache_dir(tiny).name}.working"
    young.mkdir()
    os.utime(stale, (time.time() - 2 * limits.STALE_S,) * 2)
    fresh = gdchaos.data.load("tiny", tmp_path)
    assert np.array_equal(fresh[0], TINY_X_TRAIN.reshape(6, 6) / 255)
    assert not stale.exists() and young.exists()
    assert sorted(cache_entry(private_cache)) == ["sha256.json", "x_test.npy", "x_train.npy",
                                                  "y_test.npy", "y_train.npy"]


def test_a_damaged_bundled_split_is_rebuilt(private_cache: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    first = gdchaos.data.load("iris")
    (cached,) = private_cache.glob("iris-*/x_train.npy")
    flipped = bytearray(cached.read_bytes())
    flipped[-3] ^= 0x40  # a bit of a measurement's exponent
    cached.write_bytes(flipped)
    assert_same_arrays(gdchaos.data.load("iris"), first)
    assert "cached arrays of iris" in capsys.readouterr().err


# --- fetch ---------------------------------------------------------------------------------------

def test_fetch_from_file_mirror(tiny: DatasetSpec, tmp_path: Path) -> None:
    mirror = write_tiny(tmp_path / "mirror")
    calls = []
    folder = gdchaos.data.fetch("tiny", tmp_path / "data",
                                mirrors=[(tmp_path / "absent").as_uri(), mirror.as_uri()],
                                progress=lambda *a: calls.append(a))
    assert folder == tmp_path / "data" / "tiny"
    assert sorted(p.name for p in folder.iterdir()) == sorted(n for n, _ in TINY_FILES.values())
    assert {name for name, _, _ in calls} == {n for n, _ in TINY_FILES.values()}
    assert all(total == (mirror / name).stat().st_size for name, done, total in calls if done)
    assert calls[0] == (TINY_FILES["train_images"][0], 0, None)  # shown while connecting
    for path in mirror.iterdir():
        path.unlink()  # present files are kept, not fetched again
    gdchaos.data.fetch("tiny", tmp_path / "data", mirrors=[mirror.as_uri()])
    assert gdchaos.data.load("tiny", tmp_path / "data")[0].shape == (6, 6)


def test_fetch_checksum_mismatch_leaves_no_file(tiny: DatasetSpec, tmp_path: Path) -> None:
    mirror = write_tiny(tmp_path / "mirror")
    write_gz(mirror / "train-images-idx3-ubyte.gz", idx_bytes(TINY_X_TEST[:3]))
    with pytest.raises(DataError, match="could not fetch train-images-idx3-ubyte.gz: .*checksum "
                                        "mismatch"):
        gdchaos.data.fetch("tiny", tmp_path / "data", mirrors=[mirror.as_uri()])
    assert list((tmp_path / "data" / "tiny").iterdir()) == []  # no partial or temporary file


def test_fetch_refuses_bundled() -> None:
    with pytest.raises(DataError, match="iris ships with scikit-learn"):
        gdchaos.data.fetch("iris")


# --- fetch over HTTP: time limit, wrong bytes, interruption --------------------------------------

class MirrorHandler(http.server.BaseHTTPRequestHandler):
    """``/good/NAME`` serves a file, ``/wrong/NAME`` as many zero bytes, ``/trickle/NAME`` the
    file one byte every 50 ms, ``/silent/NAME`` its headers and then nothing."""

    def do_GET(self) -> None:
        mode, _, name = self.path.strip("/").partition("/")
        data = self.server.files.get(name)
        if data is None:
            self.send_error(404)
            return
        if mode == "wrong":
            data = bytes(len(data))
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            if mode == "trickle":
                for i in range(len(data)):
                    if self.server.stop.wait(0.05):
                        return
                    self.wfile.write(data[i:i + 1])
            elif mode == "silent":
                self.server.stop.wait(5)
            else:
                self.wfile.write(data)
        except OSError:
            pass  # the client gave up

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_mirror(tmp_path: Path) -> Iterator[str]:
    """The URL of a local HTTP server holding the tiny dataset's files (see MirrorHandler)."""
    mirror = write_tiny(tmp_path / "served")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    server.files = {path.name: path.read_bytes() for path in mirror.iterdir()}
    server.stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.stop.set()
    server.shutdown()
    server.server_close()


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_fetch_over_http_falls_back_from_wrong_bytes(tiny: DatasetSpec, tmp_path: Path,
                                                     http_mirror: str) -> None:
    folder = gdchaos.data.fetch("tiny", tmp_path / "data",
                                mirrors=[f"{http_mirror}/absent", f"{http_mirror}/wrong",
                                         f"{http_mirror}/good"])
    assert files_in(folder) == sorted(name for name, _ in TINY_FILES.values())
    assert np.array_equal(gdchaos.data.load("tiny", tmp_path / "data")[1], TINY_Y_TRAIN)


def test_fetch_of_wrong_bytes_fails_with_one_line_and_no_part_file(
        tiny: DatasetSpec, tmp_path: Path, http_mirror: str) -> None:
    with pytest.raises(DataError) as error:
        gdchaos.data.fetch("tiny", tmp_path / "data", mirrors=[f"{http_mirror}/wrong"])
    message = str(error.value)
    assert message == (f"could not fetch train-images-idx3-ubyte.gz: {http_mirror}/wrong/"
                       "train-images-idx3-ubyte.gz: checksum mismatch (corrupted or truncated "
                       f"download); retry later, or put the file into {tmp_path / 'data' / 'tiny'}"
                       " by hand")
    assert files_in(tmp_path / "data" / "tiny") == []


@pytest.mark.parametrize("mode", ["trickle", "silent"])
def test_fetch_gives_up_at_its_time_limit_with_no_part_file(
        tiny: DatasetSpec, tmp_path: Path, http_mirror: str, mode: str) -> None:
    with pytest.raises(DataError) as error:
        gdchaos.data.fetch("tiny", tmp_path / "data", mirrors=[f"{http_mirror}/{mode}"],
                           timeout=0.3)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"could not fetch train-images-idx3-ubyte.gz: {http_mirror}/{mode}/")
    assert message.endswith("; retry with a longer time limit than 0.3 s (--timeout)")
    if mode == "trickle":
        assert "time limit reached after" in message and " bytes" in message
    assert files_in(tmp_path / "data" / "tiny") == []


def test_an_interrupted_fetch_leaves_no_part_file(tiny: DatasetSpec, tmp_path: Path,
                                                  http_mirror: str) -> None:
    def interrupt(name: str, done: int, total: int | None) -> None:
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gdchaos.data.fetch("tiny", tmp_path / "data", mirrors=[f"{http_mirror}/trickle"],
                           progress=interrupt)
    assert files_in(tmp_path / "data" / "tiny") == []


def test_fetch_removes_part_files_left_by_killed_processes(tiny: DatasetSpec, tmp_path: Path) -> None:
    mirror = write_tiny(tmp_path / "mirror")
    folder = tmp_path / "data" / "tiny"
    folder.mkdir(parents=True)
    old, young = folder / ".t10k-labels-idx1-ubyte.gz.x1.part", folder / ".other.x2.part"
    old.write_bytes(b"half")
    young.write_bytes(b"in progress elsewhere")
    os.utime(old, (time.time() - 2 * limits.STALE_S,) * 2)
    gdchaos.data.fetch("tiny", tmp_path / "data", mirrors=[mirror.as_uri()])
    assert files_in(folder) == sorted([young.name, *(name for name, _ in TINY_FILES.values())])


def test_fetch_time_limit_is_checked(tiny: DatasetSpec, tmp_path: Path) -> None:
    for bad in (0, -1, float("nan")):
        with pytest.raises(GdchaosError, match=r"^timeout: must be a finite number > 0; got"):
            gdchaos.data.fetch("tiny", tmp_path, mirrors=["file:///nowhere"], timeout=bad)


# --- command line --------------------------------------------------------------------------------

def gdchaos_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gdchaos", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    env = {"GDCHAOS_DATA": str(tmp_path)}
    missing = gdchaos_cli("data", "check", "mnist", env=env)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr == (f"gdchaos: error: mnist not found in {tmp_path / 'mnist'}; "
                              "run 'gdchaos data fetch mnist' or set GDCHAOS_DATA\n")
    unknown = gdchaos_cli("data", "fetch", "nope", env=env)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert unknown.stderr.count("\n") == 1 and "choose one of: cifar10, digits" in unknown.stderr


def test_cli_path_list_and_bundled_fetch(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from gdchaos.cli import main

    monkeypatch.setenv("GDCHAOS_DATA", str(tmp_path))
    assert main(["data", "path"]) == 0
    assert main(["data", "path", "mnist", "--data-dir", str(tmp_path / "d")]) == 0
    assert capsys.readouterr().out == f"{tmp_path}\n{tmp_path / 'd' / 'mnist'}\n"
    assert main(["data", "fetch", "digits"]) == 0
    assert "ships with scikit-learn" in capsys.readouterr().out
    write_tiny(tmp_path / "mnist")
    assert main(["data", "list"]) == 0
    table = capsys.readouterr().out
    assert "fashion-mnist" in table and "bundled" in table
    assert next(line for line in table.splitlines() if line.startswith("mnist ")).rstrip().endswith("yes")


def test_cli_fetch_time_limit(tiny: DatasetSpec, tmp_path: Path, http_mirror: str,
                              monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    from gdchaos.cli import main

    spec = tiny_spec(mirrors=(f"{http_mirror}/trickle",))
    monkeypatch.setattr(download, "dataset_spec", lambda name: spec)
    monkeypatch.setattr(gdchaos.data, "dataset_spec", lambda name: spec)
    assert main(["data", "fetch", "tiny", "--data-dir", str(tmp_path), "--timeout", "0.25"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"gdchaos: error: could not fetch train-images-idx3-ubyte.gz: "
                          f"{http_mirror}/trickle/train-images-idx3-ubyte.gz: time limit reached")
    assert err.endswith("retry with a longer time limit than 0.25 s (--timeout)\n")
    assert files_in(tmp_path / "tiny") == []
    bad = gdchaos_cli("data", "fetch", "mnist", "--timeout", "0", "--data-dir", str(tmp_path), env={})
    assert bad.returncode == 2
    assert bad.stderr == "gdchaos: error: timeout: must be a finite number > 0; got 0.0\n"
    bad = gdchaos_cli("data", "fetch", "mnist", "--timeout", "soon", env={})
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "--timeout: must be a number; got 'soon'" in bad.stderr


# --- MNIST itself (from $GDCHAOS_DATA, as in CI) ------------------------------------------------

@pytest.fixture(scope="session")
def mnist_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mnist-cache")


def test_mnist(mnist_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (gdchaos.data.dataset_dir("mnist") / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("MNIST is not in $GDCHAOS_DATA")
    monkeypatch.setenv("GDCHAOS_CACHE", str(mnist_cache))
    x_train, y_train, x_test, y_test = gdchaos.data.load("mnist")
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert x_train.dtype == np.float64 and y_train.dtype == np.int64 and x_train.flags.c_contiguous
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == MNIST_TEST_COUNTS
    assert x_train.mean() == pytest.approx(MNIST_MEAN_PIXEL, abs=1e-6)
    first = gdchaos.data.fingerprint(x_train, y_train, x_test, y_test)
    del x_train, y_train, x_test, y_test
    start = time.perf_counter()
    again = gdchaos.data.load("mnist")
    assert time.perf_counter() - start < 1.0
    assert gdchaos.data.fingerprint(*again) == first
