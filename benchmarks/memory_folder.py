"""The memory benchmark's real-folder case (issue 20.7): classify's peak RSS after a real prepare + extract.

The synthetic case (:mod:`benchmarks.memory`) times one wide float16 layer; this one builds
what a user runs: a 15-Scene-sized folder of class subfolders (``--mem-folder-images`` JPEGs,
``--mem-folder-classes`` classes, ``--mem-folder-size`` px), prepared by the ``folder``
source in 15-Scene's protocol (``train_per_class: 100``), extracted by a real untrained
backbone (default resnet18, ``weights: none``, layers layer3/layer4/avgpool, ``extract``'s
defaults: no pooling), then ``python -m stages.classify`` on every layer plus the raw-pixel
baseline, with its peak RSS against 2x the float32 size of the largest of them (raw pixels
included). The images are real CIFAR-10 photos (``--mem-folder-source``, the course's
cifar10-small) upscaled to the size, classes beyond its ten made of mirrored copies; where
that folder is absent, seeded smooth random images stand in (memory depends on the shapes,
not on what the pictures show).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.figures import Figure
from benchmarks.memory import figures, measure
from transferlab.data.prepared import save_prepared
from transferlab.data.registry import prepare_dataset
from transferlab.models.params import BackboneEntry, PretrainParams
from transferlab.models.pretrain import materialise_backbone
from transferlab.transfer.extraction import extract_dataset
from transferlab.transfer.params import ExtractParams

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10-small"  # shared/ lies beside the checkout
TRAIN_PER_CLASS = 100  # the 15scene source's protocol


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--mem-folder-images", type=int, default=4485,
                       help="real-folder case: images in the folder (0 = skip the case; 15-Scene has 4485)")
    group.add_argument("--mem-folder-classes", type=int, default=15, help="real-folder case: class subfolders")
    group.add_argument("--mem-folder-size", type=int, default=200, help="real-folder case: image side in px")
    group.add_argument("--mem-folder-channels", type=int, choices=(1, 3), default=3, help="real-folder case: channels")
    group.add_argument("--mem-folder-arch", default="resnet18", help="real-folder case: backbone arch (weights none)")
    group.add_argument("--mem-folder-layers", default="layer3,layer4,avgpool", help="real-folder case: cut layers")
    group.add_argument("--mem-folder-source", type=Path, default=CIFAR,
                       help="folder of class subfolders of photos to upscale (absent: random smooth images)")
    group.add_argument("--mem-folder-device", default="auto", help="real-folder case: extraction device")


def source_images(source: Path) -> list[list[Path]] | None:
    """Photos per source class (``train/`` and ``test/`` pooled, sorted), or None if ``source`` is absent."""
    if not source.is_dir():
        return None
    parts = [source / "train", source / "test"] if (source / "train").is_dir() else [source]
    classes = sorted(d.name for d in parts[0].iterdir() if d.is_dir())
    found = [sorted(f for part in parts for f in (part / c).glob("*") if f.suffix.lower() in {".jpg", ".png"})
             for c in classes]
    return found if found and all(found) else None


def write_folder(dest: Path, images: int, classes: int, size: int, source: Path, seed: int = 0) -> str:
    """``images`` JPEGs of ``size`` px in ``classes`` subfolders (near-equal sizes); what they were made from."""
    photos = source_images(source)
    rng = np.random.default_rng(seed)
    counts = [len(part) for part in np.array_split(np.arange(images), classes)]
    for k, count in enumerate(counts):
        folder = dest / f"class{k:02d}"
        folder.mkdir(parents=True)
        for i in range(count):
            if photos is not None:
                pool = photos[k % len(photos)]
                img = Image.open(pool[(i + count * (k // len(photos))) % len(pool)]).convert("RGB")
                if k >= len(photos):
                    img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            else:
                img = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
            img.resize((size, size), Image.Resampling.BICUBIC).save(folder / f"{i:04d}.jpg", quality=90)
    return f"CIFAR-10 photos from {source} upscaled" if photos is not None else "seeded random smooth images"


def run(args: argparse.Namespace) -> list[Figure]:
    layers = args.mem_folder_layers.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-mem-folder-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        made_of = write_folder(work / "folder", args.mem_folder_images, args.mem_folder_classes,
                               args.mem_folder_size, args.mem_folder_source)
        entry = {"source": "folder", "path": str(work / "folder"), "image_size": args.mem_folder_size,
                 "channels": args.mem_folder_channels, "train_per_class": TRAIN_PER_CLASS}
        ds = prepare_dataset("scene-sized", entry, seed=0)
        (work / "prepared").mkdir()
        save_prepared(ds, work / "prepared")
        print(f"  real folder: {len(ds.labels)} images ({made_of}), prepared in {time.perf_counter() - start:.1f} s",
              flush=True)
        model = work / "model"
        model.mkdir()
        materialise_backbone("bench", BackboneEntry(arch=args.mem_folder_arch, weights="none", layers=tuple(layers)),
                             PretrainParams(), None, model, seed=0)
        start = time.perf_counter()
        (work / "features").mkdir()
        extract_dataset(work / "prepared", model, layers, ExtractParams(), work / "features",
                        device_name=args.mem_folder_device)
        print(f"  real folder: extracted {args.mem_folder_arch} {','.join(layers)} in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
        start = time.perf_counter()
        m = measure(work / "features", work, args.mem_grid, prepared=work / "prepared", arch=args.mem_folder_arch)
        print(f"  real folder: classify measured in {time.perf_counter() - start:.1f} s", flush=True)
        source = (f"real folder {args.mem_folder_classes} classes {args.mem_folder_size} px "
                  f"{args.mem_folder_arch}")
        return figures(m, source)
