"""Sources that need no network: ``fashion-mnist`` (installed idx files) and ``digits``.

Fashion-MNIST is read from the first folder holding its four idx files: the entry's
``path``, ``$FASHION_MNIST_DIR``, the Debian package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``), a previous torchvision download in the cache;
only then does torchvision download it into the cache.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import numpy as np

from transferlab.data.download import sha256_file
from transferlab.data.idx import read_idx_pair
from transferlab.data.sampling import stratified_test_mask
from transferlab.data.source import CommonOptions, Context, RawDataset, check_test_fraction
from transferlab.errors import UserError

FASHION_MNIST_ENV = "FASHION_MNIST_DIR"
FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class FashionMnistOptions(CommonOptions):
    """``source: fashion-mnist`` options."""

    path: str | None = None  # folder with the four idx files (.gz or plain); null = search


def _find_idx(folder: Path) -> dict[str, Path] | None:
    """The four idx files in ``folder`` (gzipped preferred), or None if any is missing."""
    found = {}
    for key, stem in FASHION_MNIST_FILES.items():
        for name in (f"{stem}.gz", stem):
            if (folder / name).is_file():
                found[key] = folder / name
                break
        else:
            return None
    return found


def _download_fashion_mnist(cache_dir: Path, tried: list[str], where: str) -> Path:
    """Download with torchvision into the cache; return the folder of raw idx files."""
    from torchvision.datasets import FashionMNIST

    cache_dir.mkdir(parents=True, exist_ok=True)
    before = set(cache_dir.iterdir())
    try:
        for train in (True, False):
            FashionMNIST(root=str(cache_dir), train=train, download=True)
    except Exception as err:  # noqa: BLE001 - torchvision raises URLError/RuntimeError/OSError
        for path in set(cache_dir.iterdir()) - before:  # leave no partial download behind
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        raise UserError(
            f"{where}: Fashion-MNIST not found (tried {', '.join(tried)}) and the torchvision "
            f"download failed ({type(err).__name__}; no network?); install it with "
            f"`apt-get install dataset-fashion-mnist` or set {where}.path to a folder with the idx files"
        ) from None
    return cache_dir / "FashionMNIST" / "raw"


def load_fashion_mnist(opts: FashionMnistOptions, ctx: Context) -> RawDataset:
    """Standard 60000/10000 split, 28x28 grayscale, torchvision's class names."""
    from torchvision.datasets import FashionMNIST

    if opts.path is not None:
        candidates = [Path(opts.path)]
        if _find_idx(candidates[0]) is None:
            raise UserError(
                f"{ctx.where}.path: no Fashion-MNIST idx files ({', '.join(FASHION_MNIST_FILES.values())}, "
                f".gz or plain) in {opts.path!r}; fix the path or remove it to search the defaults"
            )
    else:
        candidates = (
            [Path(os.environ[FASHION_MNIST_ENV])] if os.environ.get(FASHION_MNIST_ENV) else []
        )
        candidates += [FASHION_MNIST_DEBIAN, ctx.cache_dir / "FashionMNIST" / "raw"]
    files = next((f for f in map(_find_idx, candidates) if f is not None), None)
    how = "installed files"
    if files is None:
        folder = _download_fashion_mnist(ctx.cache_dir, [str(c) for c in candidates], ctx.where)
        files = _find_idx(folder)
        how = "torchvision download"
        if files is None:
            raise UserError(f"{ctx.where}: torchvision download left no idx files in {folder}")
    train_images, train_labels = read_idx_pair(files["train_images"], files["train_labels"])
    test_images, test_labels = read_idx_pair(files["test_images"], files["test_labels"])
    images = np.concatenate([train_images, test_images])[..., None]
    labels = np.concatenate([train_labels, test_labels]).astype(np.int64)
    is_test = np.arange(len(labels)) >= len(train_labels)
    provenance = {
        "how": how,
        "files": {str(p.resolve()): sha256_file(p) for p in files.values()},
        "class_names_from": "torchvision.datasets.FashionMNIST.classes",
    }
    return RawDataset(
        images.astype(np.uint8), labels, is_test, tuple(FashionMNIST.classes), provenance
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class DigitsOptions(CommonOptions):
    """``source: digits`` options."""

    test_fraction: float = 0.25  # stratified, seeded test share

    def __post_init__(self) -> None:
        super().__post_init__()
        check_test_fraction(self.test_fraction)


def load_digits(opts: DigitsOptions, ctx: Context) -> RawDataset:
    """scikit-learn's bundled 8x8 digits, 0..16 scaled to uint8 0..255."""
    import sklearn
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    is_test = stratified_test_mask(labels, opts.test_fraction, ctx.seed)
    provenance = {
        "function": "sklearn.datasets.load_digits",
        "sklearn_version": sklearn.__version__,
        "split": f"stratified test_fraction {opts.test_fraction} drawn with the seed",
    }
    return RawDataset(
        images, labels, is_test, tuple(str(c) for c in bunch.target_names), provenance
    )
