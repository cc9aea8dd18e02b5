"""Sources downloaded by torchvision (``mnist``, ``cifar10``, ``eurosat``) into the cache.

torchvision verifies its own md5 checksums. Without network (and nothing in the cache)
the error is one line saying where torchvision expects the files.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np

from transferlab.data.folder import FolderOptions, ImageItem, read_items
from transferlab.data.sampling import stratified_test_mask
from transferlab.data.source import (
    CommonOptions,
    Context,
    RawDataset,
    check_image_options,
    check_test_fraction,
)
from transferlab.errors import UserError


def _open(cls: Any, ctx: Context, **kwargs: Any) -> Any:
    """Instantiate a torchvision dataset with download=True, translating network failures."""
    ctx.cache_dir.mkdir(parents=True, exist_ok=True)
    before = set(ctx.cache_dir.iterdir())
    try:
        return cls(root=str(ctx.cache_dir), download=True, **kwargs)
    except Exception as err:  # noqa: BLE001 - URLError, RuntimeError, OSError from torchvision
        for path in set(ctx.cache_dir.iterdir()) - before:  # leave no partial download behind
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        detail = " ".join(str(err).split())[:160]
        raise UserError(
            f"{ctx.where}: torchvision.datasets.{cls.__name__} is not in {ctx.cache_dir} and could "
            f"not be downloaded ({type(err).__name__}: {detail}; no network?); run once "
            f"with network, or copy torchvision's {cls.__name__} files into {ctx.cache_dir}"
        ) from None


def _provenance(cls: Any, ctx: Context, **extra: Any) -> dict[str, Any]:
    import torchvision

    return {
        "torchvision_dataset": f"torchvision.datasets.{cls.__name__}",
        "torchvision_version": torchvision.__version__,
        "root": str(Path(ctx.cache_dir).resolve()),
        "checksums": "md5 verified by torchvision",
        **extra,
    }


@dataclasses.dataclass(frozen=True, kw_only=True)
class TorchvisionOptions(CommonOptions):
    """``source: mnist`` / ``cifar10`` options (standard train/test split)."""


def _standard_split(
    cls: Any, ctx: Context, to_array: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    parts = [_open(cls, ctx, train=train) for train in (True, False)]
    images = np.concatenate([to_array(p.data) for p in parts])
    labels = np.concatenate([np.asarray(p.targets, dtype=np.int64) for p in parts])
    is_test = np.arange(len(labels)) >= len(parts[0].targets)
    return images, labels, is_test, tuple(parts[0].classes)


def load_mnist(opts: TorchvisionOptions, ctx: Context) -> RawDataset:
    """MNIST 60000/10000, 28x28 grayscale."""
    from torchvision.datasets import MNIST

    images, labels, is_test, classes = _standard_split(MNIST, ctx, lambda t: t.numpy()[..., None])
    prov = _provenance(
        MNIST, ctx, files=[name for name, _ in MNIST.resources], mirrors=MNIST.mirrors
    )
    return RawDataset(images.astype(np.uint8), labels, is_test, classes, prov)


def load_cifar10(opts: TorchvisionOptions, ctx: Context) -> RawDataset:
    """CIFAR-10 50000/10000, 32x32 RGB."""
    from torchvision.datasets import CIFAR10

    images, labels, is_test, classes = _standard_split(CIFAR10, ctx, np.asarray)
    prov = _provenance(CIFAR10, ctx, url=CIFAR10.url, md5=CIFAR10.tgz_md5)
    return RawDataset(images.astype(np.uint8), labels, is_test, classes, prov)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EuroSatOptions(CommonOptions):
    """``source: eurosat`` options (no standard split: stratified, seeded)."""

    test_fraction: float = 0.2  # stratified, seeded test share
    image_size: int | None = None  # null = native 64x64
    channels: int = 3
    on_bad_file: Literal["skip", "error"] = "skip"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_test_fraction(self.test_fraction)
        check_image_options(self.image_size, self.channels)


def load_eurosat(opts: EuroSatOptions, ctx: Context) -> RawDataset:
    """EuroSAT RGB (27000 64x64 images, 10 classes) decoded with the folder logic."""
    from torchvision.datasets import EuroSAT

    ds = _open(EuroSAT, ctx)
    root = Path(ds.root)
    items = [
        ImageItem(Path(p), Path(p).relative_to(root).as_posix(), int(t), False) for p, t in ds.samples
    ]
    folder_opts = FolderOptions(
        source="folder",
        path=str(root),
        image_size=opts.image_size,
        channels=opts.channels,
        on_bad_file=opts.on_bad_file,
    )
    images, labels, _, skipped, tree_sha = read_items(items, folder_opts, ctx.where)
    is_test = stratified_test_mask(labels, opts.test_fraction, ctx.seed)
    prov = _provenance(
        EuroSAT,
        ctx,
        tree_sha256=tree_sha,
        split=f"stratified test_fraction {opts.test_fraction} drawn with the seed",
    )
    return RawDataset(images, labels, is_test, tuple(ds.classes), prov, skipped)
