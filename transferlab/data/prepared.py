"""The one prepared-dataset format every later stage reads.

``prepare@<dataset>`` writes a directory::

    images.npy   uint8 (N, H, W, C), C = 1 (grayscale) or 3 (RGB), one common H x W
    labels.npy   int64 (N,)
    is_test.npy  bool  (N,)  the standard split: False = train, True = test
    meta.json    name, classes, counts, source/provenance, skipped files, and ``sha256``:
                 the sha256 of each .npy file and of the rest of meta.json

so no later stage cares where the data came from. :func:`load_prepared` checks the sha256
manifest, so a prepared directory edited by hand after ``prepare`` (which DVC's ``dvc status``
also reports) fails with one line instead of feeding a stage silently changed data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from transferlab.data.download import sha256_file
from transferlab.errors import UserError
from transferlab.io import read_json, write_json

if TYPE_CHECKING:
    import torch

Split = Literal["train", "test"]
ARRAY_FILES = ("images.npy", "labels.npy", "is_test.npy")
MANIFEST_KEY = "sha256"  # in meta.json: file name -> sha256, plus "meta.json" for the rest of it


@dataclasses.dataclass(frozen=True)
class PreparedDataset:
    """Images, labels and standard split of one dataset, with its provenance."""

    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray  # int64 (N,)
    is_test: np.ndarray  # bool (N,)
    classes: tuple[str, ...]
    meta: dict[str, Any]

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[3] not in (1, 3):
            raise ValueError(f"images must be uint8 (N, H, W, 1|3), got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (n,) or self.is_test.shape != (n,):
            raise ValueError("labels and is_test must have one entry per image")

    @property
    def name(self) -> str:
        return str(self.meta.get("name", "?"))

    def split(self, which: Split) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of the ``train`` or ``test`` split."""
        mask = self.is_test if which == "test" else ~self.is_test
        return self.images[mask], self.labels[mask]

    def counts(self) -> dict[str, int]:
        return {"train": int((~self.is_test).sum()), "test": int(self.is_test.sum())}


def _meta_sha256(meta: dict[str, Any]) -> str:
    """sha256 of meta.json's content without the manifest itself (key-sorted JSON)."""
    rest = {k: v for k, v in meta.items() if k != MANIFEST_KEY}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def save_prepared(ds: PreparedDataset, out_dir: Path) -> None:
    """Write ``ds`` in the prepared format into ``out_dir`` (an existing, empty directory)."""
    out_dir = Path(out_dir)
    np.save(out_dir / "images.npy", ds.images)
    np.save(out_dir / "labels.npy", ds.labels.astype(np.int64))
    np.save(out_dir / "is_test.npy", ds.is_test.astype(bool))
    meta = dict(ds.meta)
    meta.pop(MANIFEST_KEY, None)
    meta["classes"] = list(ds.classes)
    meta["counts"] = ds.counts()
    meta["image_shape"] = list(ds.images.shape[1:])
    write_json(out_dir / "meta.json", meta)
    meta = read_json(out_dir / "meta.json")  # hash what a reader will see (tuples -> lists, ...)
    manifest = {name: sha256_file(out_dir / name) for name in ARRAY_FILES}
    manifest["meta.json"] = _meta_sha256(meta)
    write_json(out_dir / "meta.json", {**meta, MANIFEST_KEY: manifest})


def verify_prepared(path: Path, meta: dict[str, Any]) -> None:
    """Check the files against the sha256 manifest ``prepare`` recorded in meta.json."""
    redo = (
        f"re-run `dvc repro prepare@{meta.get('name', '<dataset>')}` "
        f"(or `dvc checkout {path}` to restore the version DVC cached)"
    )
    manifest = meta.get(MANIFEST_KEY)
    if not isinstance(manifest, dict):
        raise UserError(f"prepared dataset {str(path)!r} has no sha256 manifest in meta.json; {redo}")
    actual = {name: sha256_file(path / name) for name in ARRAY_FILES if (path / name).is_file()}
    actual["meta.json"] = _meta_sha256(meta)
    changed = [name for name in (*ARRAY_FILES, "meta.json") if actual.get(name) != manifest.get(name)]
    if changed:
        what = " and ".join(changed)
        raise UserError(
            f"prepared dataset {str(path)!r}: {what} changed or missing since prepare wrote it "
            f"(sha256 differs from meta.json); {redo}"
        )


def load_prepared(path: str | Path, mmap: bool = False) -> PreparedDataset:
    """Read a prepared dataset directory written by ``prepare``, after checking its sha256 manifest."""
    path = Path(path)
    if not (path / "meta.json").is_file():
        raise UserError(f"prepared dataset {str(path)!r} not found; run `dvc repro prepare@<dataset>` first")
    try:
        meta = read_json(path / "meta.json")
    except json.JSONDecodeError as err:
        raise UserError(
            f"prepared dataset {str(path)!r}: meta.json is not valid JSON ({err}); "
            "re-run `dvc repro prepare@<dataset>` or `dvc checkout` it"
        ) from None
    verify_prepared(path, meta)
    mode = "r" if mmap else None
    return PreparedDataset(
        images=np.load(path / "images.npy", mmap_mode=mode),
        labels=np.load(path / "labels.npy"),
        is_test=np.load(path / "is_test.npy"),
        classes=tuple(meta["classes"]),
        meta=meta,
    )


def to_nchw_uint8(images: np.ndarray, channels: int = 3) -> torch.Tensor:
    """uint8 (N, H, W, C) array to a uint8 (N, channels, H, W) tensor.

    Grayscale is replicated to 3 channels for RGB backbones (the study's convention);
    RGB is reduced to luminance when a 1-channel model asks for it.
    """
    import torch  # here, so that reading prepared data needs no torch

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    if c == 3 and channels == 1:
        w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (x.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    raise ValueError(f"cannot convert {c} channels to {channels}")
