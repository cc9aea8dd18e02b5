"""The folder source: mixed image modes, bad files, layouts, sizes, the shared CIFAR tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transferlab.data.registry import prepare_dataset
from transferlab.errors import UserError

CIFAR_SMALL = Path(__file__).resolve().parents[2] / "shared/data/cifar10-small"


def _solid(mode: str, size: tuple[int, int], value) -> Image.Image:
    return Image.new(mode, size, value)


def _mixed_tree(root: Path) -> None:
    """Class a: L, RGBA, P, I;16 PNGs + notes.txt; class b: CMYK and RGB JPEGs + a truncated JPEG."""
    a, b = root / "a", root / "b"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    _solid("L", (20, 30), 100).save(a / "gray.png")
    _solid("RGBA", (24, 24), (255, 0, 0, 128)).save(a / "rgba.png")
    pal = _solid("P", (16, 40), 1)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    pal.save(a / "palette.png")
    Image.fromarray(np.full((18, 18), 65535, dtype=np.uint16)).save(a / "deep.png")
    _solid("LA", (16, 16), (50, 200)).save(a / "la.png")
    (a / "notes.txt").write_text("not an image\n")
    _solid("CMYK", (32, 20), (0, 0, 0, 0)).save(b / "cmyk.jpg")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(
        b / "rgb.jpg", quality=95
    )
    noisy = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(b / "whole.jpg", quality=95)
    data = (b / "whole.jpg").read_bytes()
    (b / "whole.jpg").unlink()
    (b / "broken.jpg").write_bytes(data[: len(data) // 2])


def test_mixed_modes_skip_bad_files(tmp_path):
    _mixed_tree(tmp_path / "tree")
    entry = {
        "source": "folder",
        "path": str(tmp_path / "tree"),
        "image_size": 16,
        "test_fraction": 0.25,
    }
    ds = prepare_dataset("mixed", entry, seed=0)
    assert ds.images.shape == (7, 16, 16, 3) and ds.images.dtype == np.uint8
    assert ds.classes == ("a", "b")
    assert list(np.bincount(ds.labels)) == [5, 2]
    skipped = ds.meta["skipped"]
    assert skipped["count"] == 2
    assert skipped["by_reason"] == {"extension": 1, "truncated_image": 1}
    assert {(s["file"], s["reason"]) for s in skipped["files"]} == {
        ("a/notes.txt", "extension"),  # not in ImageFolder's extensions: never decoded
        ("b/broken.jpg", "truncated_image"),
    }
    # file order within class a: deep, gray, la, palette, rgba (sorted names)
    deep, gray, la, palette, rgba = ds.images[:5]
    assert (deep == 255).all()  # 16-bit white scaled to 8-bit white
    assert (gray == 100).all()  # grayscale replicated to RGB
    assert (la == 50).all()  # alpha dropped
    assert (palette == [0, 255, 0]).all()  # palette index 1 = green
    assert (rgba == [255, 0, 0]).all()
    assert ds.meta["provenance"]["files_read"] == 8


def test_grayscale_channels(tmp_path):
    _mixed_tree(tmp_path / "tree")
    entry = {"source": "folder", "path": str(tmp_path / "tree"), "image_size": 8, "channels": 1}
    ds = prepare_dataset("mixed", entry, seed=0)
    assert ds.images.shape == (7, 8, 8, 1)
    assert (ds.images[1] == 100).all()


def test_on_bad_file_error_names_first_bad_file(tmp_path):
    _mixed_tree(tmp_path / "tree")
    entry = {
        "source": "folder",
        "path": str(tmp_path / "tree"),
        "image_size": 16,
        "on_bad_file": "error",
        "extensions": [".png", ".jpg", ".txt"],  # notes.txt is read, and is the first bad file
    }
    with pytest.raises(UserError) as err:
        prepare_dataset("mixed", entry, seed=0)
    msg = str(err.value)
    assert "\n" not in msg
    assert "notes.txt" in msg and "not_an_image" in msg and "on_bad_file" in msg and "broken.jpg" not in msg


def test_truncated_jpeg_alone_is_reported(tmp_path):
    _mixed_tree(tmp_path / "tree")  # notes.txt is skipped for its extension even with on_bad_file: error
    entry = {
        "source": "folder",
        "path": str(tmp_path / "tree"),
        "image_size": 16,
        "on_bad_file": "error",
    }
    with pytest.raises(UserError, match=r"broken\.jpg.*truncated_image"):
        prepare_dataset("mixed", entry, seed=0)


def _tree(root: Path, layout: dict[str, int], size=(12, 12)) -> None:
    for rel, n in layout.items():
        (root / rel).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", size, (i * 10, 0, 0)).save(root / rel / f"{i:03d}.png")


def test_train_test_layout(tmp_path):
    _tree(tmp_path, {"train/cat": 4, "train/dog": 3, "test/cat": 2, "test/dog": 1})
    (tmp_path / "README.md").write_text("top-level files are not class members\n")
    ds = prepare_dataset("pets", {"source": "folder", "path": str(tmp_path)}, seed=0)
    assert ds.classes == ("cat", "dog")
    assert ds.counts() == {"train": 7, "test": 3}
    assert ds.images.shape == (10, 12, 12, 3)  # native size kept (all agree)
    assert list(ds.labels[ds.is_test]) == [0, 0, 1]
    assert ds.meta["skipped"]["count"] == 0


def test_flat_layout_stratified_seeded_split(tmp_path):
    _tree(tmp_path, {"x": 8, "y": 12})
    entry = {"source": "folder", "path": str(tmp_path), "test_fraction": 0.25}
    first = prepare_dataset("flat", entry, seed=1)
    again = prepare_dataset("flat", entry, seed=1)
    other = prepare_dataset("flat", entry, seed=2)
    assert first.counts() == {"train": 15, "test": 5}
    assert list(np.bincount(first.labels[first.is_test])) == [2, 3]  # class proportions kept
    assert np.array_equal(first.is_test, again.is_test)
    assert not np.array_equal(first.is_test, other.is_test)


def test_train_per_class(tmp_path):
    _tree(tmp_path, {"x": 5, "y": 7})
    entry = {"source": "folder", "path": str(tmp_path), "train_per_class": 3}
    ds = prepare_dataset("flat", entry, seed=0)
    assert list(np.bincount(ds.labels[~ds.is_test])) == [3, 3]
    assert list(np.bincount(ds.labels[ds.is_test])) == [2, 4]


def test_mixed_native_sizes_need_image_size(tmp_path):
    _tree(tmp_path / "t", {"x": 2})
    _tree(tmp_path / "t", {"y": 2}, size=(10, 14))
    with pytest.raises(UserError, match="image_size"):
        prepare_dataset("sizes", {"source": "folder", "path": str(tmp_path / "t")}, seed=0)


def test_resize_keeps_centre(tmp_path):
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, 8:32] = 255  # white centre (wider than the crop), black bands at the sides
    for cls in ("c", "d"):  # two classes: a classifier needs two
        (tmp_path / cls).mkdir()
        Image.fromarray(arr).save(tmp_path / cls / "wide.png")
    ds = prepare_dataset(
        "crop", {"source": "folder", "path": str(tmp_path), "image_size": 10}, seed=0
    )
    assert ds.images.shape == (2, 10, 10, 3)
    assert ds.images.min() >= 250  # the centre crop holds only the white square


def test_missing_split_folder_and_missing_path(tmp_path):
    _tree(tmp_path, {"train/cat": 1})
    with pytest.raises(UserError, match="no test/"):
        prepare_dataset("half", {"source": "folder", "path": str(tmp_path)}, seed=0)
    with pytest.raises(UserError, match="not a directory"):
        prepare_dataset("gone", {"source": "folder", "path": str(tmp_path / "nope")}, seed=0)


@pytest.mark.parametrize("val", ["val", "valid", "validation"])
def test_train_val_layout_is_train_and_test_said_in_one_line(tmp_path, capsys, val):
    _tree(tmp_path, {"train/ants": 3, "train/bees": 4, f"{val}/ants": 2, f"{val}/bees": 1})
    ds = prepare_dataset("hym", {"source": "folder", "path": str(tmp_path)}, seed=0)
    assert ds.counts() == {"train": 7, "test": 3}
    assert list(ds.labels[ds.is_test]) == [0, 0, 1]
    assert ds.meta["provenance"]["split"] == f"folders train/ and {val}/"
    err = capsys.readouterr().err.splitlines()
    assert err == [f"note: datasets.hym: train/ + {val}/ layout: {val}/ is the test split "
                   "(set datasets.hym.test_dir to use another folder)"]


def test_test_dir_wins_over_val_and_an_explicit_test_dir_is_the_only_one(tmp_path, capsys):
    _tree(tmp_path, {"train/a": 2, "train/b": 2, "test/a": 1, "test/b": 1, "val/a": 3, "val/b": 3})
    ds = prepare_dataset("t", {"source": "folder", "path": str(tmp_path)}, seed=0)
    assert ds.counts() == {"train": 4, "test": 2} and capsys.readouterr().err == ""  # test/ first, no note
    ds = prepare_dataset("t", {"source": "folder", "path": str(tmp_path), "test_dir": "val"}, seed=0)
    assert ds.counts() == {"train": 4, "test": 6} and capsys.readouterr().err == ""  # asked for: no note
    with pytest.raises(UserError, match=r"has train/ but no holdout/; add it, or set datasets\.t\.train_dir/test_dir"):
        prepare_dataset("t", {"source": "folder", "path": str(tmp_path), "test_dir": "holdout"}, seed=0)


def test_train_without_any_test_folder_names_the_ones_tried(tmp_path):
    _tree(tmp_path, {"train/a": 2, "train/b": 2})
    with pytest.raises(UserError, match=r"has train/ but no test/ \(nor val, valid, validation\); add it"):
        prepare_dataset("t", {"source": "folder", "path": str(tmp_path)}, seed=0)


def _jpeg_class_tree(root: Path) -> None:
    """Two class folders of JPEG/PNG files (upper-case suffix included) plus a placeholder .gif and a .txt."""
    for cls, n in (("ants", 3), ("bees", 2)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (12, 12), (i * 40, 0, 0)).save(root / cls / f"{i}.jpg", quality=90)
    Image.new("RGB", (12, 12), (9, 9, 9)).save(root / "bees/big.PNG")
    Image.new("P", (12, 12)).save(root / "ants/placeholder.gif")  # a real image PIL decodes
    (root / "bees/LICENSE.txt").write_text("cc-by\n")


def test_only_imagefolder_extensions_are_read_and_the_rest_counted(tmp_path, capsys):
    from torchvision.datasets import ImageFolder

    _jpeg_class_tree(tmp_path)
    ds = prepare_dataset("pics", {"source": "folder", "path": str(tmp_path), "test_fraction": 0.25}, seed=0)
    assert len(ds.labels) == len(ImageFolder(str(tmp_path))) == 6  # the .gif and .txt are not images here
    assert list(np.bincount(ds.labels)) == [3, 3]
    skipped = ds.meta["skipped"]
    assert skipped["by_reason"] == {"extension": 2}
    assert [(f["file"], f["reason"]) for f in skipped["files"]] == [
        ("ants/placeholder.gif", "extension"), ("bees/LICENSE.txt", "extension")]
    assert "'.gif' is not among datasets.pics.extensions (.jpg, .jpeg, .png" in skipped["files"][0]["detail"]


def test_extensions_param_chooses_the_files_read(tmp_path):
    _jpeg_class_tree(tmp_path)
    entry = {"source": "folder", "path": str(tmp_path), "extensions": [".JPG", ".gif"]}
    ds = prepare_dataset("pics", entry, seed=0)
    assert list(np.bincount(ds.labels)) == [4, 2]  # 3 jpg + the gif, 2 jpg (case-insensitive)
    assert sorted(f["file"] for f in ds.meta["skipped"]["files"]) == ["bees/LICENSE.txt", "bees/big.PNG"]
    with pytest.raises(UserError, match=r"^params\.yaml: datasets\.pics\.extensions\[1\]: .*with its dot.*'png'"):
        prepare_dataset("pics", {**entry, "extensions": [".jpg", "png"]}, seed=0)


@pytest.mark.skipif(not CIFAR_SMALL.is_dir(), reason="shared/data/cifar10-small not present")
def test_cifar10_small_prepares():
    ds = prepare_dataset(
        "cifar10-small", {"source": "folder", "path": str(CIFAR_SMALL), "image_size": 32}, seed=0
    )
    assert ds.classes == (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    assert ds.counts() == {"train": 10000, "test": 2000}
    assert ds.images.shape == (12000, 32, 32, 3)
    assert ds.meta["skipped"]["count"] == 0
    assert list(np.bincount(ds.labels[ds.is_test])) == [200] * 10
