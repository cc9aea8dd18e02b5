"""Benchmark: all cut layers in ONE forward pass vs one pass per layer, side by side.

Prints images/s for both and their ratio, plus the size of the cached float16 features. Runs on random weights and random images, so it needs no data or network:

    python benchmarks/bench_extract.py --arch vgg_mini --images 2048
    python benchmarks/bench_extract.py --arch resnet18 --images 64 --layers layer2 layer3 layer4 avgpool
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from transferlab.device import resolve_device
from transferlab.features import extract_features
from transferlab.models.registry import build_backbone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="vgg_mini")
    parser.add_argument("--layers", nargs="*", default=None, help="default: every cut point")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--size", type=int, default=28, help="side of the random input images")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    device = resolve_device(args.device)
    backbone = build_backbone(args.arch, "none", seed=0)
    layers = list(args.layers or backbone.cut_points)
    images = np.random.default_rng(0).integers(0, 256, (args.images, args.size, args.size, 1), dtype=np.uint8)
    run = dict(batch_size=args.batch_size, device=device, progress=False)

    extract_features(backbone, images[: args.batch_size], layers, **run)  # warm-up
    start = time.perf_counter()
    one, _ = extract_features(backbone, images, layers, **run)
    t_one = time.perf_counter() - start
    start = time.perf_counter()
    sep = {layer: extract_features(backbone, images, [layer], **run)[0][layer] for layer in layers}
    t_sep = time.perf_counter() - start
    assert all(np.array_equal(one[k], sep[k]) for k in layers), "one-pass and per-layer features differ"

    f16 = sum(a.nbytes for a in one.values())
    print(f"arch={args.arch} device={device} images={args.images} layers={','.join(layers)} threads={torch.get_num_threads()}")
    print(f"one pass, all layers : {t_one:8.2f} s  {args.images / t_one:9.1f} img/s")
    print(f"one pass per layer   : {t_sep:8.2f} s  {args.images / t_sep:9.1f} img/s")
    print(f"speed-up of one pass : {t_sep / t_one:8.2f}x  (identical features: yes)")
    print(f"features on disk     : {f16 / 2**20:8.1f} MiB as float16 ({f16 // args.images:,} bytes/image)")


if __name__ == "__main__":
    main()
