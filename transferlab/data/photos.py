"""``source: photos``: scikit-image's bundled photographs and crops of them (no download).

A test-only dataset for the ImageNet backbone's explain stages: each photo (RGB ones that
show an ImageNet object: the astronaut, Chelsea the cat, coffee, the rocket)
gives its largest centred square and, with ``crops``, the four corner squares and the
centre square of ``crop_fraction`` of its shorter side, each resized to ``image_size``.
The class of every view is its photo's name: the photos are not of the model's classes,
so the explain stages label them by the model's clean prediction.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from transferlab.config import require
from transferlab.data.source import CommonOptions, Context, RawDataset
from transferlab.errors import UserError

# scikit-image data function -> photo; bundled with the wheel (skimage/data/*.png|jpg)
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
VIEWS = ("full", "top_left", "top_right", "bottom_left", "bottom_right", "centre")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhotosOptions(CommonOptions):
    """``source: photos`` options."""

    names: tuple[str, ...] = PHOTOS  # scikit-image photos (skimage.data functions returning RGB)
    crops: bool = True  # also the four corners and the centre at crop_fraction of the shorter side
    crop_fraction: float = 0.6
    image_size: int = 256  # side of every view (the backbone's preprocessing then crops/resizes)

    def __post_init__(self) -> None:
        super().__post_init__()
        require(len(self.names) >= 1, "names must list at least one photo")
        require(0.1 <= self.crop_fraction < 1.0, f"crop_fraction must be in [0.1, 1), got {self.crop_fraction}")
        require(self.image_size >= 8, f"image_size must be >= 8, got {self.image_size}")


def square_views(photo: np.ndarray, crops: bool, fraction: float) -> list[tuple[str, np.ndarray]]:
    """(view name, square crop) of an (H, W, 3) photo: the largest centred square, then crops."""
    h, w = photo.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    views = [("full", photo[top : top + side, left : left + side])]
    if crops:
        s = max(1, int(round(side * fraction)))
        corners = {
            "top_left": (0, 0), "top_right": (0, w - s), "bottom_left": (h - s, 0),
            "bottom_right": (h - s, w - s), "centre": ((h - s) // 2, (w - s) // 2),
        }  # fmt: skip
        views += [(name, photo[y : y + s, x : x + s]) for name, (y, x) in corners.items()]
    return views


def load_photos(opts: PhotosOptions, ctx: Context) -> RawDataset:
    """Every view of every named photo, resized (bicubic, antialiased) to ``image_size``; all test."""
    import skimage
    import skimage.data
    from PIL import Image

    images, labels, files = [], [], []
    for label, name in enumerate(opts.names):
        loader = getattr(skimage.data, name, None)
        if loader is None or not callable(loader):
            raise UserError(
                f"{ctx.where}.names[{label}]: {name!r} is not a scikit-image photo; use skimage.data names "
                f"such as {', '.join(PHOTOS)}"
            )
        photo = np.asarray(loader())
        if photo.ndim != 3 or photo.shape[2] < 3:
            raise UserError(f"{ctx.where}.names[{label}]: {name!r} is not an RGB photo; use one of {', '.join(PHOTOS)}")
        for view, crop in square_views(photo[..., :3], opts.crops, opts.crop_fraction):
            img = Image.fromarray(np.ascontiguousarray(crop)).resize(
                (opts.image_size, opts.image_size), Image.Resampling.BICUBIC, reducing_gap=None
            )
            images.append(np.asarray(img, dtype=np.uint8))
            labels.append(label)
            files.append(f"{name}/{view}")
    provenance = {
        "package": f"scikit-image {skimage.__version__}",
        "views": files,
        "crops": f"largest centred square{' + corners and centre at ' + str(opts.crop_fraction) if opts.crops else ''}",
    }
    return RawDataset(
        np.stack(images), np.asarray(labels, dtype=np.int64), np.ones(len(labels), dtype=bool),
        tuple(opts.names), provenance,
    )  # fmt: skip
