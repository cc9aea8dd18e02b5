"""Memory of the classify stage (issue 8, item 5), measured on the real stage in a child process.

A feature cache in the real format (``transferlab.transfer.features.save_features``: float16 .npy
per layer) is written with one wide layer of ``--mem-rows`` x ``--mem-dims`` (a low-rank
signal plus noise, ``--mem-classes`` classes, so PCA(0.95) and the SVMs have work to do),
or an existing cache is given with ``--mem-features`` (its widest layer is used). Then
``python -m stages.classify`` runs on it and its peak RSS is read from ``getrusage`` (its
own ``ru_maxrss``: anonymous memory plus the resident pages of any mapped file; the stage
reads feature rows with file reads (``transfer.rows.Rows``), so the kernel's page cache,
which then holds the file, shared and reclaimable, is not part of it).
Target: peak RSS <= 2 x the float32 size of the feature matrix. The stage's start-up alone
(same interpreter: ``import stages.classify`` and reading the same params.yaml, whose
whole-file check imports more) is measured too, so both the raw ratio and the increment
over that baseline are shown.

The default shape is the widest layer the coursework classifies: 15-Scene (4485 images,
15 classes) through VGG16 pool5 at 224 px (512 x 7 x 7 = 25,088 dims), split as the
``15scene`` source splits it (``train_per_class: 100``: 1500 train, 2985 test). The rows
are in the order a real extract writes them: the prepared data's, i.e. sorted by class
(a folder tree is read class by class), with the train rows drawn per class by the same
``per_class_train_mask`` the source uses, so train and test rows interleave and neither
split is a contiguous slice of the cache. ``--mem-rows 4000 --mem-dims 16000`` is the
earlier, arbitrary default shape (it used ~3000 train rows of 10 classes: add
``--mem-train 3000 --mem-classes 10`` for that split).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from benchmarks.figures import Figure, at_most
from transferlab.data.prepared import load_prepared
from transferlab.data.sampling import per_class_train_mask
from transferlab.io import read_json
from transferlab.transfer.classify import PIXELS
from transferlab.transfer.features import load_features, save_features

ROOT = Path(__file__).resolve().parents[1]
RSS_TARGET = 2.0  # peak RSS <= this x the float32 size of the largest feature matrix
LAYER = "pool1"  # a real vgg_mini cut name, so the params file passes the whole-file check
BACKBONE = "bench"  # the backbones: entry the benchmark adds to its params.yaml
MIB = 2**20
# A smaller grid than params.yaml's (peak memory depends on the matrix sizes, not on how
# many kernels x C are fitted on them); --mem-grid params uses the project's own.
SMALL_GRID = {"kernels": ["linear", "rbf"], "C": [1.0], "n_components": ["none", 0.95], "cv_folds": 2}


# The default shape: 15-Scene through VGG16 pool5 at 224 px, the widest layer the coursework
# classifies (see the module docstring).
SCENE15_ROWS, POOL5_DIMS, SCENE15_CLASSES, SCENE15_TRAIN = 4485, 512 * 7 * 7, 15, 1500


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "memory", "default shape: 15-Scene through VGG16 pool5 at 224 px (4485 x 25,088, 15 classes, "
        "1500 train = 100 per class), the coursework's widest classified layer; "
        "--mem-rows 4000 --mem-dims 16000 is the earlier default shape"
    )
    group.add_argument("--mem-rows", type=int, default=SCENE15_ROWS, help="images in the synthetic feature cache")
    group.add_argument("--mem-dims", type=int, default=POOL5_DIMS,
                       help="dims of its one layer (float32 size = rows x dims x 4)")
    group.add_argument("--mem-classes", type=int, default=SCENE15_CLASSES, help="classes (rows sorted by class)")
    group.add_argument("--mem-train", type=int, default=SCENE15_TRAIN,
                       help="train images, drawn per class (train / classes each, like 15scene's train_per_class)")
    group.add_argument("--mem-features", type=Path, help="use this feature cache (its widest layer) instead")
    group.add_argument("--mem-grid", choices=("small", "params"), default="small",
                       help="classify grid: small (2 kernels, 1 C, PCA none/0.95, 2 folds) or params.yaml's")
    group.add_argument("--mem-only-folder", action="store_true", help="only the real-folder case")
    from benchmarks import memory_folder

    memory_folder.add_arguments(group)


def synthetic_cache(
    dest: Path, rows: int, dims: int, seed: int = 0, classes: int = SCENE15_CLASSES, train: int = SCENE15_TRAIN,
    rank: int = 64,
) -> Path:
    """Write a feature cache of one (rows, dims) float16 layer: class signal in ``rank`` dims + noise.

    Rows sorted by class (near-equal class sizes), ``train // classes`` train rows per class
    drawn by ``per_class_train_mask``: the order and split of a real 15-Scene extract.
    """
    per_class, smallest = train // classes, rows // classes
    if classes < 2 or per_class < 1 or per_class >= smallest:
        raise ValueError(f"{train} train rows over {classes} classes of >= {smallest} rows leave no train or no test")
    labels = np.repeat(np.arange(classes), [len(part) for part in np.array_split(np.arange(rows), classes)])
    is_test = per_class_train_mask(labels, per_class, seed)
    rng = np.random.default_rng(seed)
    basis = rng.normal(0, 1 / np.sqrt(rank), (rank, dims)).astype(np.float32)
    centres = rng.normal(0, 1, (classes, rank)).astype(np.float32)
    feats = np.empty((rows, dims), dtype=np.float16)
    for lo in range(0, rows, 512):  # in chunks, so this process stays small too
        hi = min(rows, lo + 512)
        latent = centres[labels[lo:hi]] + rng.normal(0, 0.7, (hi - lo, rank)).astype(np.float32)
        feats[lo:hi] = latent @ basis + rng.normal(0, 0.3, (hi - lo, dims)).astype(np.float32)
    meta = {"dataset": "synthetic", "backbone": "vgg_mini", "classes": [str(c) for c in range(classes)]}
    save_features(dest, {LAYER: feats}, labels, is_test, meta)
    return dest


def widest_layer(cache: Path) -> tuple[str, int, int]:
    """(layer, rows, dims) of the cache's widest layer, from meta.json."""
    meta = read_json(cache / "meta.json")
    layer = max(meta["layers"], key=lambda name: meta["layers"][name]["dim"])
    return layer, int(meta["images"]), int(meta["layers"][layer]["dim"])


# A forked child starts with its parent's RSS high-water mark (Linux keeps it across exec),
# so a child of this process (torch imported) could never report less. The command runs as
# the child of this small interpreter instead, which prints that grandchild's ru_maxrss.
_WRAPPER = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "print('maxrss-kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
)


def peak_rss(cmd: Sequence[str], cwd: Path) -> tuple[int, str]:
    """Run ``cmd``; (its own peak RSS in bytes, its output). Fails on a non-zero exit."""
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], cwd=cwd, capture_output=True, text=True)
    *lines, last = proc.stdout.rstrip("\n").split("\n")
    if proc.returncode != 0 or not last.startswith("maxrss-kib "):
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return int(last.split()[1]) * 1024, "\n".join(lines)  # Linux reports KiB


def stage_params(
    dest: Path, cache: Path, layer: str, grid: str, *, arch: str | None = None,
    layers: Sequence[str] | None = None, pixels: bool = False,
) -> Path:
    """params.yaml = the project's, plus a backbone entry (the cache's arch, or ``arch``) cutting at
    ``layer`` (or at every one of ``layers``); the pixel baseline only with ``pixels``."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if arch is None:
        arch = params["backbones"].get(read_json(cache / "meta.json").get("backbone"), {}).get("arch", "vgg_mini")
    params["backbones"][BACKBONE] = {"arch": arch, "weights": "none", "layers": list(layers or [layer])}
    params["classify"] = {**params["classify"], "pixels": pixels, **(SMALL_GRID if grid == "small" else {})}
    path = dest / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def measure(
    cache: Path, work: Path, grid: str, *, prepared: Path | None = None, arch: str | None = None,
) -> dict[str, float | int | str | bool]:
    """Peak RSS of the classify stage and of its imports alone.

    Without ``prepared``: on ``cache``'s widest layer only. With it (a real extract of that
    prepared dataset, by ``arch``): on every layer of the cache plus the raw-pixel baseline,
    as the stage runs in the pipeline; the bound is then the float32 size of the largest of
    them, pixels included.
    """
    layer, rows, dims = widest_layer(cache)
    every = list(read_json(cache / "meta.json")["layers"]) if prepared is not None else None
    if prepared is not None:
        pixel_dims = int(np.prod(load_prepared(prepared, mmap=True).images.shape[1:]))
        layer, dims = (PIXELS, pixel_dims) if pixel_dims > dims else (layer, dims)
    params = stage_params(work, cache, layer, grid, arch=arch, layers=every, pixels=prepared is not None)
    out = work / "out"
    cmd = [sys.executable, "-m", "stages.classify", "--features", str(cache), "--backbone", BACKBONE,
           "--metrics", str(out / "m.json"), "--rows", str(out / "rows.json"), "--figure", str(out / "c.png"),
           "--params", str(params), *(["--prepared", str(prepared)] if prepared is not None else [])]
    peak, log = peak_rss(cmd, ROOT)
    probe = ("import sys, stages.classify; from pathlib import Path; from transferlab.stage import read_checked_params; "
             f"read_checked_params(Path({str(params)!r})); print('torch' in sys.modules)")
    base, torch_flag = peak_rss([sys.executable, "-c", probe], ROOT)
    return {"layer": layer, "rows": rows, "dims": dims, "float32": rows * dims * 4, "peak": peak,
            "imports": base, "imports_torch": torch_flag.strip() == "True", "log": log.strip().splitlines()[-1],
            "layers": ",".join([*(every or [layer]), *([PIXELS] if prepared is not None else [])])}


def figures(m: dict, source: str = "synthetic") -> list[Figure]:
    """The raw ratio (the target), the increment over the imports, and the imports themselves."""
    f32, peak, base = m["float32"], m["peak"], m["imports"]
    case = f"{source}: largest {m['layer']} {m['rows']}x{m['dims']}"
    detail = (f"peak RSS {peak / MIB:.0f} MiB, float32 matrix {f32 / MIB:.0f} MiB, start-up alone {base / MIB:.0f} MiB "
              f"(torch loaded: {m['imports_torch']}); classified: {m.get('layers', m['layer'])}; stage said: {m['log']}")
    return [
        at_most(f"classify peak RSS / float32 size ({case})", peak / f32, RSS_TARGET, "x", detail),
        Figure(f"classify RSS above start-up / float32 size ({case})", (peak - base) / f32, "x", "-", None,
               f"{(peak - base) / MIB:.0f} MiB above the {base / MIB:.0f} MiB the start-up takes"),
        Figure("classify start-up alone (imports + params check)", base / MIB, "MiB", "-", None,
               "import stages.classify, then read_checked_params (the whole-file params check), no data; "
               f"torch loaded: {m['imports_torch']}"),
    ]


def run(args: argparse.Namespace) -> list[Figure]:
    from benchmarks import memory_folder  # the real-folder case (prepare + extract, torch)

    found = []
    if not args.mem_only_folder:
        with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp:
            work = Path(tmp)
            if args.mem_features is not None:
                load_features(args.mem_features)  # a clear error if it is not a feature cache
                cache = args.mem_features
            else:
                cache = synthetic_cache(work / "features", args.mem_rows, args.mem_dims,
                                        classes=args.mem_classes, train=args.mem_train)
            found += figures(measure(cache, work, args.mem_grid), "given cache" if args.mem_features else "synthetic")
    if args.mem_folder_images:
        found += memory_folder.run(args)
    return found
