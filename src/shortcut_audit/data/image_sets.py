"""Image sets for the ImageNet audit.

Two sources:

- :func:`sample_photo_items`: natural photographs shipped inside installed packages
  (scikit-image's data folder, matplotlib's sample data), read with Pillow. They
  carry no label, so they are explained for the model's predicted class.
- :func:`val_folder_items`: an ImageNet validation folder, either one sub-folder
  per class (named by class index, category name or WordNet id) or a flat folder
  with a label file, with class selection by category name and a number of images
  per class; targets are the true classes.

Class indices follow torchvision's order (the weights metadata's 1000 names).
"""

from __future__ import annotations

import csv
import difflib
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from shortcut_audit.models.imagenet import Preprocessing, imagenet_categories, preprocess

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_WNID = re.compile(r"^n\d{8}$")

# name -> (package, path inside the package). Only files that ship with the wheels;
# scikit-image data fetched at run time are deliberately absent.
SAMPLE_PHOTOS: dict[str, tuple[str, str]] = {
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    "motorcycle": ("skimage", "data/motorcycle_left.png"),
    "astronaut": ("skimage", "data/astronaut.png"),
}


@dataclass(frozen=True)
class ImageItem:
    """One image file and its true class index (-1 when unknown)."""

    image_id: str
    path: Path
    label: int = -1


@dataclass
class ImageBatch:
    """Preprocessed images (N, 3, S, S) in [0, 1], their ids and labels (-1 = unknown)."""

    images: torch.Tensor
    image_ids: list[str]
    labels: torch.Tensor

    @property
    def has_labels(self) -> bool:
        return bool((self.labels >= 0).all())


def _package_file(package: str, relative: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.is_file() else None


def sample_photo_items(names: list[str] | None = None, max_images: int | None = None) -> list[ImageItem]:
    """The offline sample photos, in :data:`SAMPLE_PHOTOS` order (or ``names`` order).

    Photos whose package is not installed are left out; an unknown name raises.
    """
    names = list(SAMPLE_PHOTOS) if names is None else list(names)
    unknown = [n for n in names if n not in SAMPLE_PHOTOS]
    if unknown:
        raise ValueError(f"unknown sample photo(s) {unknown}; known: {', '.join(SAMPLE_PHOTOS)}")
    items = []
    for name in names:
        path = _package_file(*SAMPLE_PHOTOS[name])
        if path is not None:
            items.append(ImageItem(name, path))
    if not items:
        raise FileNotFoundError("none of the sample photos is installed (scikit-image or matplotlib needed)")
    return items[:max_images] if max_images else items


# --------------------------------------------------------------------------- class names


def _normalise_name(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


def class_indices(names: list[str], categories: list[str] | None = None) -> list[int]:
    """Map ImageNet category names (case, spaces and underscores ignored) to indices."""
    categories = categories or imagenet_categories()
    lookup = {_normalise_name(c): i for i, c in enumerate(categories)}
    indices = []
    for name in names:
        key = _normalise_name(str(name))
        if key not in lookup:
            close = difflib.get_close_matches(key, list(lookup), n=3)
            hint = f"; did you mean {', '.join(repr(categories[lookup[c]]) for c in close)}?" if close else ""
            raise ValueError(f"unknown ImageNet class {name!r}{hint}")
        indices.append(lookup[key])
    return indices


def read_synsets(path: str | os.PathLike) -> list[str]:
    """WordNet ids in class order from a synset file (``n01440764 tench, ...`` per line)."""
    wnids = [line.split()[0] for line in Path(path).read_text().splitlines() if line.strip()]
    bad = [w for w in wnids if not _WNID.match(w)]
    if bad or len(wnids) != 1000:
        raise ValueError(
            f"synset file {path}: expected 1000 lines starting with a WordNet id, "
            f"got {len(wnids)} lines ({len(bad)} without an id)"
        )
    return wnids


class _LabelResolver:
    """Resolve a folder name or label-file entry to a class index."""

    def __init__(self, categories: list[str], synsets: list[str] | None):
        self.by_name = {_normalise_name(c): i for i, c in enumerate(categories)}
        self.by_wnid = {w: i for i, w in enumerate(synsets)} if synsets else {}

    def __call__(self, token: str, where: str) -> int:
        token = token.strip()
        if token.isdigit() and int(token) < 1000:
            return int(token)
        if _WNID.match(token):
            if not self.by_wnid:
                raise ValueError(
                    f"{where}: WordNet id {token!r} needs imagenet.synset_file "
                    "(or all 1000 class folders, which fix the order)"
                )
            if token not in self.by_wnid:
                raise ValueError(f"{where}: WordNet id {token!r} is not in the synset file")
            return self.by_wnid[token]
        key = _normalise_name(token)
        if key in self.by_name:
            return self.by_name[key]
        raise ValueError(f"{where}: cannot read {token!r} as a class index, WordNet id or ImageNet category name")


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read_label_file(path: Path) -> list[tuple[str, str]]:
    """Rows ``filename label``, whitespace or comma separated; a header row is skipped.

    A label whose first word is a WordNet id keeps only that id, which reads the
    ``ImageId,PredictionString`` solution files that list boxes after the id.
    """
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if any("," in line for line in lines[:5]):
        rows = [[c.strip() for c in r] for r in csv.reader(lines)]
    else:
        rows = [line.split(None, 1) for line in lines]
    pairs = []
    for row in rows:
        if len(row) < 2 or not row[1].strip():
            raise ValueError(f"label file {path}: row {row!r} is not 'filename label'")
        label = row[1].strip()
        if _WNID.match(label.split()[0]):
            label = label.split()[0]
        pairs.append((row[0].strip(), label))
    if pairs and pairs[0][1].lower() in ("label", "class", "predictionstring"):
        pairs = pairs[1:]
    if not pairs:
        raise ValueError(f"label file {path}: no 'filename label' rows")
    return pairs


def val_folder_items(
    val_dir: str | os.PathLike,
    classes: list[str] | None = None,
    images_per_class: int = 20,
    label_file: str | os.PathLike | None = None,
    synset_file: str | os.PathLike | None = None,
    categories: list[str] | None = None,
) -> list[ImageItem]:
    """Images of an ImageNet validation folder with their true classes.

    Parameters
    ----------
    val_dir : path
        Either class sub-folders (named by index, category name or WordNet id) or a
        flat folder of images described by ``label_file``.
    classes : list of str, optional
        Category names to keep (e.g. the MoSIP set ``oscilloscope, brambling,
        grey fox, mobile home``); ``None`` keeps every class found.
    images_per_class : int
        The first images (sorted by file name) of each kept class.
    label_file : path, optional
        ``filename label`` rows for a flat folder; a relative path is read inside ``val_dir``.
    synset_file : path, optional
        1000 WordNet ids in class order, to read WordNet-id folder names or labels.
        Not needed when all 1000 WordNet-id class folders are present (sorted order).
    """
    root = Path(val_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"ImageNet folder {root} does not exist")
    if images_per_class < 1:
        raise ValueError("images_per_class must be at least 1")
    categories = categories or imagenet_categories()
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    synsets = read_synsets(synset_file) if synset_file else None
    if synsets is None and len(subdirs) == 1000 and all(_WNID.match(d.name) for d in subdirs):
        synsets = [d.name for d in subdirs]
    resolve = _LabelResolver(categories, synsets)

    by_class: dict[int, list[Path]] = {}
    if label_file is not None:
        label_path = Path(label_file) if Path(label_file).is_absolute() else root / label_file
        if not label_path.is_file():
            raise FileNotFoundError(f"label file {label_path} does not exist")
        by_stem = {p.stem: p for p in _images_in(root)}
        for filename, label in _read_label_file(label_path):
            # solution files name images without their extension
            path = root / filename if (root / filename).suffix else by_stem.get(filename, root / filename)
            by_class.setdefault(resolve(label, f"{label_path.name}: {filename}"), []).append(path)
    elif subdirs:
        for folder in subdirs:
            by_class.setdefault(resolve(folder.name, f"class folder {folder}"), []).extend(_images_in(folder))
    else:
        raise ValueError(f"{root} has no class sub-folders; give imagenet.label_file for a flat folder")

    wanted = class_indices(classes, categories) if classes else sorted(by_class)
    items: list[ImageItem] = []
    for index in wanted:
        paths = sorted(by_class.get(index, []))
        if not paths:
            raise ValueError(f"no images of class {categories[index]!r} (index {index}) in {root}")
        missing = [p for p in paths[:images_per_class] if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"label file names images that do not exist, e.g. {missing[0]}")
        items.extend(ImageItem(f"{index}/{p.stem}", p, index) for p in paths[:images_per_class])
    return items


def load_images(items: list[ImageItem], preprocessing: Preprocessing) -> ImageBatch:
    """Read ``items`` with Pillow and preprocess them into one batch."""
    from PIL import Image, UnidentifiedImageError

    tensors = []
    for item in items:
        try:
            with Image.open(item.path) as image:
                tensors.append(preprocess(image, preprocessing))
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"cannot read image {item.path}: {exc}") from exc
    return ImageBatch(
        images=torch.stack(tensors),
        image_ids=[item.image_id for item in items],
        labels=torch.tensor([item.label for item in items], dtype=torch.long),
    )
