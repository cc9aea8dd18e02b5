"""The two prepared datasets the extraction benchmark runs on, made with the real prepare code.

* small: a Fashion-MNIST subset (28 px grayscale), via the ``fashion-mnist`` source;
* 224 px: a folder of JPEG photo crops (scikit-image's bundled photos, random crops of
  240-400 px, two classes), via the ``folder`` source with ``image_size: 224``.

Each returns the prepared directory and the seconds ``prepare`` took, or ``None`` and the
reason when its source is not available here (the benchmark prints it and skips).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from transferlab.data.prepared import save_prepared
from transferlab.data.registry import prepare_dataset
from transferlab.errors import UserError

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")  # bundled, no download


def _prepare(name: str, entry: dict, out_dir: Path) -> tuple[Path, float]:
    start = time.perf_counter()
    ds = prepare_dataset(name, entry, seed=0, cache_dir=out_dir / "downloads")
    seconds = time.perf_counter() - start
    target = out_dir / name
    target.mkdir(parents=True)
    save_prepared(ds, target)
    return target, seconds


def prepared_fashion_mnist(out_dir: Path, images: int) -> tuple[Path | None, float | str]:
    """A prepared Fashion-MNIST subset of ``images`` images (3/4 train, 1/4 test)."""
    test = max(1, images // 4)
    entry = {"source": "fashion-mnist", "max_train": images - test, "max_test": test}
    try:
        return _prepare("fashion-mnist", entry, out_dir)
    except UserError as err:
        return None, f"Fashion-MNIST not available ({err})"


def write_photo_crops(folder: Path, images: int, seed: int = 0) -> None:
    """``images`` JPEG crops of scikit-image's photos into ``folder/<class>/`` (two classes)."""
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(seed)
    photos = [np.asarray(getattr(data, name)()) for name in PHOTOS]
    photos = [p if p.ndim == 3 else np.stack([p] * 3, -1) for p in photos]
    for i in range(images):
        photo = photos[i % len(photos)][..., :3]
        side = int(rng.integers(240, min(401, *photo.shape[:2])))
        top = int(rng.integers(0, photo.shape[0] - side + 1))
        left = int(rng.integers(0, photo.shape[1] - side + 1))
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        target = folder / f"class{i % 2}" / f"{i:05d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        crop.save(target, quality=90)


PHOTO_SIDE = 256  # the 224 px archs' resize side (ImageNet eval: shorter side 256, centre crop 224)


def prepared_photo_folder(out_dir: Path, images: int) -> tuple[Path | None, float | str]:
    """A prepared folder dataset of ``images`` JPEG photo crops, decoded at ``PHOTO_SIDE``: prepare does
    the resize once (as the predict stage prepares its photos at 256), extract centre-crops 224 px."""
    try:
        write_photo_crops(out_dir / "photos", images)
    except (ImportError, AttributeError, OSError) as err:
        return None, f"scikit-image photos not available ({type(err).__name__}: {err})"
    entry = {"source": "folder", "path": str(out_dir / "photos"), "image_size": PHOTO_SIDE, "test_fraction": 0.25}
    return _prepare("photos256", entry, out_dir)
