"""The ``folder`` source: any directory of class subfolders, like torchvision's ImageFolder.

Layouts::

    path/<class>/<image>                 split with `train_per_class` or `test_fraction`
    path/train/<class>/..., path/test/<class>/...   the given split (names: train_dir, test_dir)

With ``test_dir: null`` (the default) the test folder beside ``train/`` is the first of
``test/``, ``val/``, ``valid/``, ``validation/`` that exists (the PyTorch tutorial's and
ImageNet's ``train/`` + ``val/``), said in one line when it is not ``test/``.

Class names are the sorted subfolder names. Hidden files and folders (``.name``, e.g.
``.DS_Store``) are ignored. Like ImageFolder, only files whose extension is in
``extensions`` are read (default: torchvision's ``IMG_EXTENSIONS``, case-insensitive); the
others are skipped whatever ``on_bad_file`` says, counted and listed in the meta with reason
``extension`` (a placeholder ``.gif`` among JPEGs is not an image, as ImageFolder counts). Files that
are empty, not images, truncated, undecodable or larger than ``max_pixels`` are either
skipped (counted and listed in the meta, ``on_bad_file: skip``) or stop the run with one
line naming the first of them (``on_bad_file: error``). A class folder left with no usable
(train) images stops the run (``on_empty_class: error``) or is dropped with its label
(``skip``: the remaining classes are renumbered in sorted order and the dropped ones
listed); fewer than two classes is always an error. Images are decoded in a thread pool
(PIL releases the GIL while decoding).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np

from transferlab.config import require
from transferlab.data.images import (
    DEFAULT_MAX_PIXELS,
    BadImage,
    decode_image,
    pixel_limit_from_caller,
)
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
OnEmptyClass = Literal["skip", "error"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class FolderOptions(CommonOptions):
    """``source: folder`` options."""

    path: str  # the directory of class subfolders (relative to the project root or absolute)
    image_size: int | None = None  # square side after resize + centre crop; null = native size
    channels: int = 3  # 3 = RGB, 1 = grayscale
    on_bad_file: OnBadFile = "skip"  # skip = drop, count and list; error = stop at the first
    on_empty_class: OnEmptyClass = "error"  # a class with no usable images: error | skip (drop it)
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger images (width x height) are bad files
    test_fraction: float = 0.25  # flat layout: stratified, seeded test share
    train_per_class: int | None = None  # flat layout: this many train images per class instead
    train_dir: str = "train"  # split layout: the train subfolder
    test_dir: str | None = None  # split layout: the test subfolder; null = test/, val/, valid/ or validation/
    extensions: tuple[str, ...] | None = None  # files read (".jpg", ...); null = torchvision ImageFolder's

    def __post_init__(self) -> None:
        super().__post_init__()
        require(bool(self.path), "path must name a directory of class subfolders")
        check_image_options(self.image_size, self.channels)
        check_test_fraction(self.test_fraction)
        require(self.max_pixels >= 1, f"max_pixels must be >= 1, got {self.max_pixels}")
        require(
            self.train_per_class is None or self.train_per_class >= 1,
            f"train_per_class must be null or >= 1, got {self.train_per_class}",
        )
        for i, ext in enumerate(self.extensions or ()):
            require(
                ext.startswith(".") and len(ext) > 1,
                f"extensions[{i}]: expected a file extension with its dot (\".jpg\"), got {ext!r}",
                f"extensions[{i}]",
            )

    def accepted_extensions(self) -> tuple[str, ...]:
        """The lower-case extensions read: ``extensions``, or torchvision ImageFolder's list."""
        if self.extensions is None:
            # imported here: the params (and so the whole-file check) stay torch-free
            from torchvision.datasets.folder import IMG_EXTENSIONS

            return tuple(IMG_EXTENSIONS)
        return tuple(ext.lower() for ext in self.extensions)


# the test folder beside train/ when test_dir is null, in this order of preference
TEST_DIR_NAMES = ("test", "val", "valid", "validation")


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


def split_test_folder(root: Path, opts: FolderOptions, where: str) -> Path:
    """The split layout's test folder: ``test_dir``, or the first of TEST_DIR_NAMES that exists."""
    if opts.test_dir is not None:
        return root / opts.test_dir
    found = [root / name for name in TEST_DIR_NAMES if (root / name).is_dir()]
    if not found or not (root / opts.train_dir).is_dir():
        return root / TEST_DIR_NAMES[0]
    if found[0].name != TEST_DIR_NAMES[0]:
        print(f"note: {where}: {opts.train_dir}/ + {found[0].name}/ layout: {found[0].name}/ is the test split "
              f"(set {where}.test_dir to use another folder)", file=sys.stderr)
    return found[0]


def scan(root: Path, opts: FolderOptions, where: str) -> tuple[list[ImageItem], tuple[str, ...], Path | None, list[dict[str, str]]]:
    """Items (file, label, split), class names, the test folder if the tree carried its own
    split, and the files skipped for their extension (meta ``skipped`` records)."""
    if not root.is_dir():
        raise UserError(
            f"{where}.path: {str(root)!r} is not a directory; point it at a folder of class subfolders"
        )
    train, test = root / opts.train_dir, split_test_folder(root, opts, where)
    if train.is_dir() != test.is_dir():
        have, missing = (train, test) if train.is_dir() else (test, train)
        tried = "" if opts.test_dir is not None or missing == train else f" (nor {', '.join(TEST_DIR_NAMES[1:])})"
        raise UserError(
            f"{where}: {str(root)!r} has {have.name}/ but no {missing.name}/{tried}; "
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
    accepted = opts.accepted_extensions()
    items, ignored = [], []
    for base, is_test in parts:
        for label, name in enumerate(classes):
            if not (base / name).is_dir():
                continue
            for f in class_files(base / name):
                rel = f.relative_to(root).as_posix()
                if f.suffix.lower() in accepted:
                    items.append(ImageItem(f, rel, label, is_test))
                else:
                    detail = f"{f.suffix or 'no extension'!r} is not among {where}.extensions ({', '.join(accepted)})"
                    ignored.append({"file": rel, "reason": "extension", "detail": detail})
    return items, classes, (test if len(parts) == 2 else None), ignored


def _load(
    item: ImageItem, channels: int, image_size: int | None, max_pixels: int
) -> tuple[np.ndarray | BadImage, str]:
    try:
        data = item.path.read_bytes()
    except OSError as err:
        return BadImage("unreadable_file", str(err)), ""
    digest = hashlib.sha256(data).hexdigest()
    try:
        return decode_image(data, channels, image_size, max_pixels), digest
    except BadImage as bad:
        return bad, digest


def decode_all(
    items: Sequence[ImageItem],
    channels: int,
    image_size: int | None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
) -> list[tuple[np.ndarray | BadImage, str]]:
    """Decode every item in order, in a thread pool; images over ``max_pixels`` are bad."""
    workers = workers or min(8, (os.cpu_count() or 1) + 2)
    with pixel_limit_from_caller(), ThreadPoolExecutor(max_workers=workers) as pool:
        return list(
            pool.map(lambda it: _load(it, channels, image_size, max_pixels), items, chunksize=64)
        )


def read_items(
    items: Sequence[ImageItem], opts: FolderOptions, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, str]], str]:
    """Decode items -> (images, labels, is_test, skipped, tree sha256), applying on_bad_file."""
    results = decode_all(items, opts.channels, opts.image_size, opts.max_pixels)
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


def empty_classes(
    train_counts: np.ndarray, classes: Sequence[str], base: Path, opts: FolderOptions, where: str
) -> list[int]:
    """Labels of the classes in ``base`` with no (train) images, per ``on_empty_class``.

    Fewer than two classes left is an error whatever the policy: a classifier needs two.
    """
    empty = [label for label, n in enumerate(train_counts) if n == 0]
    if empty and opts.on_empty_class == "error":
        raise UserError(
            f"{where}: class folder {str(base / classes[empty[0]])!r} has no usable images; "
            f"add images, remove the folder, or set {where}.on_empty_class: skip"
        )
    kept = [name for label, name in enumerate(classes) if label not in empty]
    if len(kept) < 2:
        found = f"1 class ({kept[0]})" if kept else "no class"
        raise UserError(
            f"{where}: {found} with images in {str(base)!r}; "
            "a classifier needs at least 2 classes, add another class folder"
        )
    return empty


def drop_classes(
    raw: tuple[np.ndarray, np.ndarray, np.ndarray], classes: Sequence[str], dropped: Sequence[int]
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[str, ...]]:
    """(images, labels, is_test) without the ``dropped`` labels, the rest renumbered in order."""
    images, labels, is_test = raw
    kept = ~np.isin(np.arange(len(classes)), dropped)
    new_label = np.cumsum(kept) - 1  # old label -> new label (for kept ones)
    rows = kept[labels]
    names = tuple(name for name, k in zip(classes, kept, strict=True) if k)
    return (images[rows], new_label[labels[rows]], is_test[rows]), names


def read_folder(opts: FolderOptions, ctx: Context, root: Path | None = None) -> RawDataset:
    """Prepare a folder tree (``root`` overrides ``opts.path``, for extracted downloads)."""
    root = Path(opts.path if root is None else root)
    items, classes, test_dir, ignored = scan(root, opts, ctx.where)
    has_split = test_dir is not None
    base, n = (root / opts.train_dir if has_split else root), len(classes)
    files = np.bincount([it.label for it in items if not it.is_test], minlength=n)
    empty_classes(files, classes, base, opts, ctx.where)  # folders without files: fail before decoding
    images, labels, is_test, skipped, tree_sha = read_items(items, opts, ctx.where)
    skipped = sorted(ignored + skipped, key=lambda bad: bad["file"])
    usable = np.bincount(labels[~is_test], minlength=n)
    dropped = empty_classes(usable, classes, base, opts, ctx.where)
    skipped_classes = [
        {"class": classes[label], "folder": (base / classes[label]).relative_to(root).as_posix()}
        for label in dropped
    ]
    (images, labels, is_test), classes = drop_classes((images, labels, is_test), classes, dropped)
    if has_split:
        split = f"folders {opts.train_dir}/ and {test_dir.name}/"
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
        "tree_sha256": tree_sha,  # over sorted (relative path, file sha256) of the readable images
        "split": split,
    }
    return RawDataset(images, labels, is_test, classes, provenance, skipped, skipped_classes)


def load(opts: FolderOptions, ctx: Context) -> RawDataset:
    """Source entry point for ``source: folder``."""
    return read_folder(opts, ctx)
