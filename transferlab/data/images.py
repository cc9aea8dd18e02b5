"""Decode one image file into a fixed-size uint8 array, or say why it cannot be.

Every mode a folder of images may hold is converted the same way: 16-bit grayscale
(``I;16``, ``I``) scaled to 8 bits; grayscale, 1-bit, palette (transparency resolved),
RGBA/LA (alpha dropped, like torchvision's ``convert("RGB")``) and CMYK converted to RGB
(``channels: 3``) or to luminance (``channels: 1``). With an ``image_size`` the shorter side
is resized to it (bilinear, antialiased) and the centre cropped square, like torchvision's
``Resize(s)`` + ``CenterCrop(s)``; a JPEG at least twice that size is decoded at 1/2, 1/4
or 1/8 scale first (``Image.draft``), so a large photo never needs its full-size bitmap.

Bad files fail with a short reason code: ``empty_file`` (0 bytes), ``not_an_image``,
``truncated_image`` (``LOAD_TRUNCATED_IMAGES`` stays False, so nothing half-loads),
``too_large`` (more than ``max_pixels`` pixels, read from the header before decoding:
a decompression bomb never gets decoded) and ``unreadable_image`` (any other decoder error).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

EMPTY_FILE = "empty_file"
NOT_AN_IMAGE = "not_an_image"
TRUNCATED = "truncated_image"
TOO_LARGE = "too_large"
UNREADABLE = "unreadable_image"

DEFAULT_MAX_PIXELS = 89_478_485  # PIL's own Image.MAX_IMAGE_PIXELS default (about 1 GiB as 32-bit RGBA)


class BadImage(Exception):
    """A file that is not an image or cannot be decoded; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@contextlib.contextmanager
def pixel_limit_from_caller() -> Iterator[None]:
    """Switch off PIL's global decompression-bomb limit while :func:`decode_image` applies its own.

    ``decode_image`` checks ``max_pixels`` against the header size itself, so the params
    decide the limit (PIL's fixed one would block a legitimately raised ``max_pixels``).
    """
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


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


def _decode_error(err: Exception) -> BadImage:
    detail = str(err) or type(err).__name__
    if isinstance(err, Image.DecompressionBombError):
        return BadImage(TOO_LARGE, detail)
    return BadImage(TRUNCATED if "truncated" in detail.lower() else UNREADABLE, detail)


def decode_image(
    data: bytes,
    channels: int = 3,
    image_size: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """uint8 (H, W, channels) array from the bytes of an image file, or :class:`BadImage`."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must fail, not half-load
    if not data:
        raise BadImage(EMPTY_FILE, "the file is 0 bytes")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadImage(NOT_AN_IMAGE, "not a format PIL can read") from None
    except Exception as err:  # noqa: BLE001 - any decoder failure is a bad file
        raise _decode_error(err) from None
    w, h = img.size
    if w * h > max_pixels:
        raise BadImage(TOO_LARGE, f"{w}x{h} = {w * h} pixels, more than max_pixels {max_pixels}")
    try:
        if image_size is not None and img.format == "JPEG":
            img.draft(None, (image_size, image_size))  # DCT-domain downscale, both sides >= size
        img.load()
        img = _to_mode(img, channels)
        if image_size is not None:
            img = _resize_crop(img, image_size)
        arr = np.asarray(img, dtype=np.uint8)
    except Exception as err:  # noqa: BLE001 - truncated/corrupt data
        raise _decode_error(err) from None
    return arr[:, :, None] if arr.ndim == 2 else arr
