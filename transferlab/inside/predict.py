"""Top-k predictions with softmax probabilities: held-out test images and a folder of photos.

Two inputs, shown separately:

* held-out images of a prepared dataset whose classes are the backbone's (offline:
  Fashion-MNIST with ``vgg_mini``): a seeded draw that deliberately includes images
  the backbone gets wrong, each titled with its top-1 class and probability and the
  true class;
* a folder of photos (default: scikit-image's bundled photos, written to a temporary
  folder first so they go through exactly the same loader as a user's folder). Photos
  are read with the folder source's own loader (:mod:`transferlab.data.folder`), so the
  folder-dataset rules hold: hidden files ignored, non-image and unreadable files
  skipped-and-counted or an error per ``on_bad_file``, grayscale / palette / RGBA /
  CMYK converted to RGB. A backbone without ImageNet weights (``vgg_mini``) still
  predicts its own classes on them; those predictions are marked out-of-domain
  (``in_domain: false`` and in the figure title): a classifier always answers, even
  when the question makes no sense for it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferlab.data.folder import FolderOptions, ImageItem, class_files, read_items
from transferlab.data.prepared import PreparedDataset
from transferlab.errors import UserError
from transferlab.inside.params import PredictParams
from transferlab.models.backbone import Backbone
from transferlab.models.registry import head_classes
from transferlab.training.loop import predict_logits

SKIMAGE_PHOTOS = ("astronaut", "cat", "coffee", "rocket", "horse", "camera", "logo")


def class_names(backbone: Backbone) -> tuple[str, ...]:
    """The backbone's class names (its categories, else ``class 0 ..``)."""
    n = head_classes(backbone)
    cats = backbone.categories
    return tuple(cats) if cats and len(cats) == n else tuple(f"class {i}" for i in range(n))


def top_k(logits: torch.Tensor, k: int, names: tuple[str, ...]) -> list[list[dict[str, Any]]]:
    """Per row of ``logits``: the k most probable classes as {class, index, prob}, best first."""
    probs = torch.softmax(logits.float(), dim=1)
    k = min(k, probs.shape[1])
    values, indices = probs.topk(k, dim=1)
    return [
        [{"class": names[int(i)], "index": int(i), "prob": round(float(p), 6)} for p, i in zip(vs, ix, strict=True)]
        for vs, ix in zip(values, indices, strict=True)
    ]


def select_heldout(pred: np.ndarray, labels: np.ndarray, n: int, n_wrong: int, seed: int) -> np.ndarray:
    """Seeded draw of ``n`` test positions of which ``n_wrong`` (or all there are) are mistakes."""
    rng = np.random.default_rng(seed)
    wrong = np.flatnonzero(pred != labels)
    right = np.flatnonzero(pred == labels)
    k_wrong = min(n_wrong, len(wrong))
    k_right = min(n - k_wrong, len(right))
    k_wrong = min(len(wrong), n - k_right)  # top up with mistakes when too few are right
    chosen = np.concatenate([rng.choice(wrong, k_wrong, replace=False), rng.choice(right, k_right, replace=False)])
    return np.sort(chosen)


def write_skimage_photos(folder: Path) -> None:
    """Write scikit-image's bundled photos as PNG files (RGB, grayscale, 1-bit and RGBA ones)."""
    import skimage.data
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for name in SKIMAGE_PHOTOS:
        Image.fromarray(getattr(skimage.data, name)()).save(folder / f"{name}.png")


def load_photo_folder(
    folder: Path, image_size: int, on_bad_file: str, where: str = "predict.photos"
) -> tuple[np.ndarray, list[str], list[dict[str, str]]]:
    """(uint8 RGB images (N, S, S, 3), their file names, skipped files) of every file in ``folder``.

    Uses the folder source's loader, so bad files and image modes follow its rules.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{where}: {str(folder)!r} is not a directory; point it at a folder of images or use skimage")
    files = class_files(folder)
    if not files:
        raise UserError(f"{where}: no files in {str(folder)!r}; put images there or use skimage")
    items = [ImageItem(f, f.relative_to(folder).as_posix(), 0, True) for f in files]
    opts = FolderOptions(source="folder", path=str(folder), image_size=image_size, channels=3, on_bad_file=on_bad_file)
    images, _, _, skipped, _ = read_items(items, opts, where)
    bad = {s["file"] for s in skipped}
    names = [it.rel for it in items if it.rel not in bad]
    return images, names, skipped


def predict_heldout(
    backbone: Backbone, ds: PreparedDataset, cfg: PredictParams, seed: int, device: torch.device
) -> tuple[dict[str, Any], list[dict[str, Any]], np.ndarray, list[str]]:
    """(metrics, per-image records, shown images, titles) for the dataset's test split."""
    names = class_names(backbone)
    if len(ds.classes) != len(names):
        raise UserError(
            f"predict.dataset {ds.name!r} has {len(ds.classes)} classes but backbone {backbone.name!r} "
            f"predicts {len(names)}; use the dataset it was trained on or set predict.dataset: null"
        )
    images, labels = ds.split("test")
    pool = np.arange(len(labels))
    if cfg.candidates < len(pool):  # a seeded subset keeps the CPU budget; accuracy is over it
        pool = np.sort(np.random.default_rng(seed).choice(pool, cfg.candidates, replace=False))
    images, labels = images[pool], labels[pool]
    logits = predict_logits(backbone.model, images, backbone.preprocess, device)
    pred = logits.argmax(1).numpy()
    chosen = select_heldout(pred, labels, cfg.n_images, cfg.n_wrong, seed)
    tops = top_k(logits[chosen], cfg.top_k, names)
    records, titles = [], []
    for pos, top in zip(chosen, tops, strict=True):
        truth = ds.classes[int(labels[pos])]
        correct = top[0]["index"] == int(labels[pos])
        records.append({"test_index": int(pool[pos]), "true": truth, "correct": bool(correct), "top": top})
        mark = "" if correct else " ✗"
        titles.append(f"{top[0]['class']} {top[0]['prob']:.2f}{mark}\n(true: {truth})")
    metrics = {
        "heldout_images": int(len(labels)),  # the candidates scored
        "heldout_acc": round(float((pred == labels).mean()), 6),
        "shown": len(chosen),
        "shown_wrong": int(sum(not r["correct"] for r in records)),
        "shown_mean_top1_prob": round(float(np.mean([r["top"][0]["prob"] for r in records])), 6),
    }
    return metrics, records, images[chosen], titles


def predict_photos(
    backbone: Backbone, folder: Path, cfg: PredictParams, device: torch.device
) -> tuple[dict[str, Any], list[dict[str, Any]], np.ndarray, list[str]]:
    """(metrics, per-photo records, photos, titles) for every readable image in ``folder``."""
    images, files, skipped = load_photo_folder(folder, cfg.image_size, cfg.on_bad_file)
    in_domain = backbone.weights == "imagenet" and head_classes(backbone) == 1000
    logits = predict_logits(backbone.model, images, backbone.preprocess, device, batch_size=16)
    tops = top_k(logits, cfg.top_k, class_names(backbone))
    records = [{"file": f, "top": top} for f, top in zip(files, tops, strict=True)]
    titles = [f"{Path(f).stem}: {top[0]['class']} {top[0]['prob']:.2f}" for f, top in zip(files, tops, strict=True)]
    metrics = {
        "photos": len(files),
        "photos_skipped": len(skipped),
        "photos_in_domain": in_domain,
        "photos_mean_top1_prob": round(float(np.mean([r["top"][0]["prob"] for r in records])), 6),
    }
    return metrics, records, images, titles


def resolve_photos(photos: str, tmp: Path) -> Path:
    """The folder to read: scikit-image's photos written into ``tmp``, or the user's folder."""
    if photos == "skimage":
        write_skimage_photos(tmp)
        return tmp
    return Path(photos)


def run_predict(
    backbone: Backbone,
    ds: PreparedDataset | None,
    cfg: PredictParams,
    seed: int,
    device: torch.device,
    figures_dir: Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Predict, draw the figures into ``figures_dir``; returns (metrics, top-k lists)."""
    from transferlab.figures import image_grid, save_figure

    backbone.model.to(device).eval()
    metrics: dict[str, Any] = {"backbone": backbone.name, "top_k": cfg.top_k}
    lists: dict[str, Any] = {}
    if ds is not None:
        m, records, images, titles = predict_heldout(backbone, ds, cfg, seed, device)
        metrics.update(m)
        lists["heldout"] = records
        fig = image_grid(images, titles, ncols=8, cell_inches=1.5, fontsize=6)
        fig.suptitle(f"{backbone.name} on held-out {ds.name} test images (top-1 class, probability; ✗ = wrong)", fontsize=8, y=1.02)
        save_figure(fig, figures_dir / "heldout.png")
    if cfg.photos is not None:
        with tempfile.TemporaryDirectory() as tmp:
            folder = resolve_photos(cfg.photos, Path(tmp))
            m, records, images, titles = predict_photos(backbone, folder, cfg, device)
        metrics.update(m)
        lists["photos"] = records
        fig = image_grid(images, titles, ncols=4, cell_inches=2.2, fontsize=7)
        note = "" if m["photos_in_domain"] else " — OUT OF DOMAIN: these are not its classes"
        fig.suptitle(f"{backbone.name} top-1 on photos{note}", fontsize=9, y=1.02)
        save_figure(fig, figures_dir / "photos.png")
    return metrics, lists
