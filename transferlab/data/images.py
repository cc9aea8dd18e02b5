"""Decode one image file into a fixed-size uint8 array, or say why it cannot be.

Every mode a folder of images may hold is converted the same way: 16-bit grayscale
(``I;16``, ``I``) scaled to 8 bits; grayscale, palette, RGBA/LA (alpha dropped) and CMYK
converted to RGB (``channels: 3``) or to luminance (``channels: 1``). With an
``image_size`` the shorter side is resized to it (bilinear, antialiased) and the centre
cropped square, like torchvision's ``Resize(s)`` + ``CenterCrop(s)``.
Truncated files fail instead of half-loading (``LOAD_TRUNCATED_IMAGES`` stays False).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

NOT_AN_IMAGE = "not_an_image"
UNREADABLE = "unreadable_image"


class BadImage(Exception):
    """A file that is not an image or cannot be decoded; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _to_mode(img: Image.Image, channels: int) -> Image.Image:
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64) / 257.0  # 16-bit range -> 0..255
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    elif img.mode == "P":
        img = img.convert("RGBA")  # resolves palette transparency before dropping alpha
    target = "RGB" if channels == 3 else "L"
    if img.mode != target:
        img = img.convert("RGB")  # every mode PIL knows converts to RGB
        if target == "L":
            img = img.convert("L")
    return img


def _resize_crop(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    if (w, h) == (size, size):
        return img
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def decode_image(data: bytes, channels: int = 3, image_size: int | None = None) -> np.ndarray:
    """uint8 (H, W, channels) array from the bytes of an image file, or :class:`BadImage`."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must fail, not half-load
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadImage(NOT_AN_IMAGE, "not a format PIL can read") from None
    except Exception as err:  # noqa: BLE001 - any decoder failure is a bad file
        raise BadImage(UNREADABLE, str(err) or type(err).__name__) from None
    try:
        img.load()
        img = _to_mode(img, channels)
        if image_size is not None:
            img = _resize_crop(img, image_size)
        arr = np.asarray(img, dtype=np.uint8)
    except Exception as err:  # noqa: BLE001 - truncated/corrupt data, decompression bombs
        raise BadImage(UNREADABLE, str(err) or type(err).__name__) from None
    return arr[:, :, None] if arr.ndim == 2 else arr
