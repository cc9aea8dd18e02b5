"""The ``folder`` source: any directory of class subfolders, like torchvision's ImageFolder.

Layouts::

    path/<class>/<image>                 split with `train_per_class` or `test_fraction`
    path/train/<class>/..., path/test/<class>/...   the given split (names: train_dir, test_dir)

Class names are the sorted subfolder names. Hidden files and folders (``.name``) are
ignored; every other file inside a class folder is decoded. Files that are not images
or cannot be decoded are either skipped (counted and listed in the meta, ``on_bad_file:
skip``) or stop the run with one line naming the first of them (``on_bad_file: error``).
Images are decoded in a thread pool (PIL releases the GIL while decoding).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np

from transferlab.config import require
from transferlab.data.images import BadImage, decode_image
from transferlab.data.sampling import per_class_train_mask, stratified_test_mask
from transferlab.data.source import (
    CommonOptions,
    Context,
    RawDataset,
    check_image_options,
    check_test_fraction,
)
from transferlab.errors import UserError

OnBadFile = Literal["skip", "error"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class FolderOptions(CommonOptions):
    """``source: folder`` options."""

    path: str  # the directory of class subfolders (relative to the project root or absolute)
    image_size: int | None = None  # square side after resize + centre crop; null = native size
    channels: int = 3  # 3 = RGB, 1 = grayscale
    on_bad_file: OnBadFile = "skip"  # skip = drop, count and list; error = stop at the first
    test_fraction: float = 0.25  # flat layout: stratified, seeded test share
    train_per_class: int | None = None  # flat layout: this many train images per class instead
    train_dir: str = "train"  # split layout: the train subfolder
    test_dir: str = "test"  # split layout: the test subfolder

    def __post_init__(self) -> None:
        super().__post_init__()
        require(bool(self.path), "path must name a directory of class subfolders")
        check_image_options(self.image_size, self.channels)
        check_test_fraction(self.test_fraction)
        require(
            self.train_per_class is None or self.train_per_class >= 1,
            f"train_per_class must be null or >= 1, got {self.train_per_class}",
        )


@dataclasses.dataclass(frozen=True)
class ImageItem:
    """One image file found in a folder tree, with its class and split."""

    path: Path
    rel: str  # path relative to the dataset root, for messages and meta
    label: int
    is_test: bool


def _visible_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def class_files(class_dir: Path) -> list[Path]:
    """Every file below one class folder (hidden ones skipped), in a stable sorted order."""
    files = []
    for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return files


def scan(root: Path, opts: FolderOptions, where: str) -> tuple[list[ImageItem], tuple[str, ...], bool]:
    """Items (file, label, split), class names, and whether the tree carried its own split."""
    if not root.is_dir():
        raise UserError(
            f"{where}.path: {str(root)!r} is not a directory; point it at a folder of class subfolders"
        )
    train, test = root / opts.train_dir, root / opts.test_dir
    if train.is_dir() != test.is_dir():
        have, missing = (train, test) if train.is_dir() else (test, train)
        raise UserError(
            f"{where}: {str(root)!r} has {have.name}/ but no {missing.name}/; "
            f"add it, or set {where}.train_dir/test_dir, or use a flat layout of class folders"
        )
    parts = [(train, False), (test, True)] if train.is_dir() else [(root, False)]
    classes = tuple(d.name for d in _visible_dirs(parts[0][0]))
    if not classes:
        raise UserError(
            f"{where}: no class subfolders in {str(parts[0][0])!r}; expected <class>/<image> files"
        )
    if len(parts) == 2:
        extra = sorted({d.name for d in _visible_dirs(test)} - set(classes))
        if extra:
            raise UserError(
                f"{where}: test classes {', '.join(extra)} have no folder in {str(train)!r}"
            )
    items = []
    for base, is_test in parts:
        for label, name in enumerate(classes):
            if (base / name).is_dir():
                items += [
                    ImageItem(f, f.relative_to(root).as_posix(), label, is_test)
                    for f in class_files(base / name)
                ]
    return items, classes, len(parts) == 2


def _load(item: ImageItem, channels: int, image_size: int | None) -> tuple[np.ndarray | BadImage, str]:
    try:
        data = item.path.read_bytes()
    except OSError as err:
        return BadImage("unreadable_file", str(err)), ""
    digest = hashlib.sha256(data).hexdigest()
    try:
        return decode_image(data, channels, image_size), digest
    except BadImage as bad:
        return bad, digest


def decode_all(
    items: Sequence[ImageItem], channels: int, image_size: int | None, workers: int | None = None
) -> list[tuple[np.ndarray | BadImage, str]]:
    """Decode every item in order, in a thread pool."""
    workers = workers or min(8, (os.cpu_count() or 1) + 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda it: _load(it, channels, image_size), items, chunksize=64))


def read_items(
    items: Sequence[ImageItem], opts: FolderOptions, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, str]], str]:
    """Decode items -> (images, labels, is_test, skipped, tree sha256), applying on_bad_file."""
    results = decode_all(items, opts.channels, opts.image_size)
    good, skipped = [], []
    tree = hashlib.sha256()
    for item, (result, digest) in zip(items, results, strict=True):
        if isinstance(result, BadImage):
            if opts.on_bad_file == "error":
                raise UserError(
                    f"{where}: bad file {str(item.path)!r} ({result.reason}: {result.detail}); "
                    f"remove or fix it, or set {where}.on_bad_file: skip"
                )
            skipped.append({"file": item.rel, "reason": result.reason, "detail": result.detail})
            continue
        tree.update(f"{item.rel}\0{digest}\n".encode())
        good.append((item, result))
    if not good:
        raise UserError(
            f"{where}: no readable images found ({len(skipped)} bad files); check {where}.path"
        )
    shapes = Counter(arr.shape for _, arr in good)
    if len(shapes) > 1:
        (a, _), (b, _) = shapes.most_common(2)
        raise UserError(
            f"{where}: images have different sizes ({a[1]}x{a[0]}, {b[1]}x{b[0]}, ...); "
            f"set {where}.image_size to resize them to one square size"
        )
    images = np.stack([arr for _, arr in good])
    labels = np.array([it.label for it, _ in good], dtype=np.int64)
    is_test = np.array([it.is_test for it, _ in good], dtype=bool)
    return images, labels, is_test, skipped, tree.hexdigest()


def read_folder(opts: FolderOptions, ctx: Context, root: Path | None = None) -> RawDataset:
    """Prepare a folder tree (``root`` overrides ``opts.path``, for extracted downloads)."""
    root = Path(opts.path if root is None else root)
    items, classes, has_split = scan(root, opts, ctx.where)
    images, labels, is_test, skipped, tree_sha = read_items(items, opts, ctx.where)
    if has_split:
        split = f"folders {opts.train_dir}/ and {opts.test_dir}/"
    elif opts.train_per_class is not None:
        is_test = per_class_train_mask(labels, opts.train_per_class, ctx.seed)
        split = f"{opts.train_per_class} train images per class drawn with the seed, rest test"
    else:
        is_test = stratified_test_mask(labels, opts.test_fraction, ctx.seed)
        split = f"stratified test_fraction {opts.test_fraction} drawn with the seed"
    provenance = {
        "path": str(root.resolve()),
        "files_read": len(items),
        "images": len(labels),
        "tree_sha256": tree_sha,  # over sorted (relative path, file sha256) of the images used
        "split": split,
    }
    return RawDataset(images, labels, is_test, classes, provenance, skipped)


def load(opts: FolderOptions, ctx: Context) -> RawDataset:
    """Source entry point for ``source: folder``."""
    return read_folder(opts, ctx)
