"""Image sets: offline sample photos and ImageNet validation folders (generated in tmp_path)."""

import pytest
import torch
from PIL import Image

from shortcut_audit.data import image_sets as S
from shortcut_audit.models.imagenet import Preprocessing, imagenet_categories

CATEGORIES = imagenet_categories()
OSCILLOSCOPE, BRAMBLING = CATEGORIES.index("oscilloscope"), CATEGORIES.index("brambling")


def _save(path, colour=(10, 20, 30), size=(48, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_sample_photos_load_offline():
    items = S.sample_photo_items(max_images=3)
    assert [i.image_id for i in items] == ["chelsea", "coffee", "rocket"]
    batch = S.load_images(items, Preprocessing(32, 36))
    assert batch.images.shape == (3, 3, 32, 32) and not batch.has_labels
    assert 0 <= batch.images.min() and batch.images.max() <= 1
    with pytest.raises(ValueError, match="unknown sample photo"):
        S.sample_photo_items(["lena"])


def test_class_folders_by_name_index_and_selection(tmp_path):
    for k in range(3):
        _save(tmp_path / "oscilloscope" / f"img_{k}.JPEG")
        _save(tmp_path / str(BRAMBLING) / f"b_{k}.png", colour=(200, 0, 0))
        _save(tmp_path / "grey_fox" / f"f_{k}.jpg")
    items = S.val_folder_items(
        tmp_path, classes=["brambling", "Oscilloscope"], images_per_class=2, categories=CATEGORIES
    )
    assert [i.label for i in items] == [BRAMBLING] * 2 + [OSCILLOSCOPE] * 2
    batch = S.load_images(items, Preprocessing(16, 18))
    assert batch.has_labels and batch.labels.tolist() == [BRAMBLING] * 2 + [OSCILLOSCOPE] * 2
    assert torch.allclose(batch.images[0, 0], torch.full((16, 16), 200 / 255))
    everything = S.val_folder_items(tmp_path, images_per_class=5, categories=CATEGORIES)
    assert len(everything) == 9


def test_flat_folder_with_label_file_and_wordnet_ids(tmp_path):
    for name in ("a", "b", "c"):
        _save(tmp_path / f"ILSVRC_{name}.JPEG")
    synsets = tmp_path / "synsets.txt"
    synsets.write_text("".join(f"n{k:08d} class {k}\n" for k in range(1000)))
    (tmp_path / "labels.csv").write_text(
        "ImageId,PredictionString\nILSVRC_a,n00000010 1 2 3 4\nILSVRC_b,oscilloscope\nILSVRC_c,10\n"
    )
    items = S.val_folder_items(
        tmp_path, images_per_class=5, label_file="labels.csv", synset_file=synsets, categories=CATEGORIES
    )
    assert sorted((i.path.name, i.label) for i in items) == [
        ("ILSVRC_a.JPEG", 10),
        ("ILSVRC_b.JPEG", OSCILLOSCOPE),
        ("ILSVRC_c.JPEG", 10),
    ]


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        S.val_folder_items(tmp_path / "absent", categories=CATEGORIES)
    _save(tmp_path / "flat.jpg")
    with pytest.raises(ValueError, match="label_file"):
        S.val_folder_items(tmp_path, categories=CATEGORIES)
    _save(tmp_path / "n01234567" / "x.jpg")
    with pytest.raises(ValueError, match="synset_file"):
        S.val_folder_items(tmp_path, categories=CATEGORIES)
    with pytest.raises(ValueError, match="did you mean 'grey fox'"):
        S.class_indices(["gray fox"], CATEGORIES)
    (tmp_path / "n01234567" / "x.jpg").unlink()
    (tmp_path / "n01234567").rmdir()
    _save(tmp_path / "oscilloscope" / "o.jpg")
    with pytest.raises(ValueError, match="no images of class 'brambling'"):
        S.val_folder_items(tmp_path, classes=["brambling"], categories=CATEGORIES)
    (tmp_path / "oscilloscope" / "o.jpg").write_bytes(b"not an image")
    items = S.val_folder_items(tmp_path, classes=["oscilloscope"], categories=CATEGORIES)
    with pytest.raises(ValueError, match="cannot read image"):
        S.load_images(items, Preprocessing(16, 18))
