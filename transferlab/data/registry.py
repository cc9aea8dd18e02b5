"""The dataset registry: ``source`` name -> source, and ``prepare_dataset`` for one entry.

An entry of ``datasets:`` in params.yaml names its ``source`` plus that source's
options; :func:`prepare_dataset` validates them (unknown keys and bad ranges are one-line
errors), loads the data, applies the common ``max_train``/``max_test`` limits
(stratified, seeded) and returns a :class:`~transferlab.data.prepared.PreparedDataset`
whose meta records name, source, options, provenance and skipped files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transferlab.config import from_mapping, to_dict
from transferlab.data import folder, offline, photos, torchvision_sources, web
from transferlab.data.prepared import PreparedDataset
from transferlab.data.sampling import limit_split
from transferlab.data.source import Context, RawDataset, Source
from transferlab.errors import UserError, unknown_name

DEFAULT_CACHE_DIR = Path("data/downloads")

SOURCES: dict[str, Source] = {
    "fashion-mnist": Source(
        offline.FashionMnistOptions,
        offline.load_fashion_mnist,
        "Fashion-MNIST idx files (Debian package, $FASHION_MNIST_DIR, path) or torchvision download",
    ),
    "digits": Source(
        offline.DigitsOptions, offline.load_digits, "scikit-learn's bundled 8x8 digits"
    ),
    "photos": Source(
        photos.PhotosOptions, photos.load_photos, "scikit-image's bundled photos and crops of them (test only)"
    ),
    "folder": Source(folder.FolderOptions, folder.load, "a directory of class subfolders"),
    "mnist": Source(
        torchvision_sources.TorchvisionOptions,
        torchvision_sources.load_mnist,
        "torchvision MNIST (download)",
    ),
    "cifar10": Source(
        torchvision_sources.TorchvisionOptions,
        torchvision_sources.load_cifar10,
        "torchvision CIFAR-10 (download)",
    ),
    "eurosat": Source(
        torchvision_sources.EuroSatOptions,
        torchvision_sources.load_eurosat,
        "torchvision EuroSAT RGB (download)",
    ),
    "hymenoptera": Source(web.WebOptions, web.load_hymenoptera, "ants vs bees zip (download)"),
    "15scene": Source(web.Scene15Options, web.load_15scene, "15-Scene archive (download)"),
}


def dataset_entry(params: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The ``datasets.<name>`` entry of params, or an error listing the known names."""
    datasets = params.get("datasets")
    if not isinstance(datasets, Mapping):
        raise UserError("params.yaml: missing section 'datasets' (the dataset registry)")
    if name not in datasets:
        raise UserError(
            f"params.yaml: {unknown_name('dataset', name, datasets)} (keys of `datasets:`)"
        )
    return datasets[name]


def parse_entry(name: str, entry: Any) -> tuple[Source, Any]:
    """Validate an entry: (source, options) or a one-line error naming the bad key."""
    where = f"datasets.{name}"
    if not isinstance(entry, Mapping) or "source" not in entry:
        raise UserError(
            f"params.yaml: {where}: missing key 'source'; valid sources: {', '.join(sorted(SOURCES))}"
        )
    source_name = entry["source"]
    if source_name not in SOURCES:
        raise UserError(
            f"params.yaml: {where}.source: {unknown_name('source', str(source_name), SOURCES)}"
        )
    source = SOURCES[source_name]
    return source, from_mapping(source.options, entry, where)


def prepare_dataset(
    name: str, entry: Mapping[str, Any], *, seed: int, cache_dir: Path = DEFAULT_CACHE_DIR
) -> PreparedDataset:
    """Prepare dataset ``name`` from its params entry (see module docstring)."""
    source, opts = parse_entry(name, entry)
    raw: RawDataset = source.load(opts, Context(name=name, seed=seed, cache_dir=Path(cache_dir)))
    before = {"train": int((~raw.is_test).sum()), "test": int(raw.is_test.sum())}
    keep = limit_split(raw.labels, raw.is_test, opts.max_train, opts.max_test, seed)
    by_reason: dict[str, int] = {}
    for item in raw.skipped:
        by_reason[item["reason"]] = by_reason.get(item["reason"], 0) + 1
    meta = {
        "name": name,
        "source": opts.source,
        "options": to_dict(opts),
        "seed": seed,
        "provenance": raw.provenance,
        "counts_before_limits": before,
        "skipped": {
            "count": len(raw.skipped),
            "by_reason": by_reason,
            "files": raw.skipped,
            "classes": raw.skipped_classes,
        },
    }
    return PreparedDataset(
        images=raw.images[keep],
        labels=raw.labels[keep],
        is_test=raw.is_test[keep],
        classes=tuple(raw.classes),
        meta=meta,
    )


def skipped_warning(ds: PreparedDataset, meta_path: Path) -> str | None:
    """One line counting the skipped files and classes (listed in ``meta_path``), or None."""
    skipped = ds.meta.get("skipped", {})
    parts = []
    if skipped.get("count"):
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(skipped["by_reason"].items()))
        parts.append(f"{skipped['count']} bad files ({reasons})")
    if skipped.get("classes"):
        names = ", ".join(c["class"] for c in skipped["classes"])
        parts.append(f"{len(skipped['classes'])} empty classes ({names})")
    if not parts:
        return None
    return f"warning: datasets.{ds.name}: skipped {' and '.join(parts)}; listed in {meta_path}"


def prepare_metrics(ds: PreparedDataset, seconds: float) -> dict[str, Any]:
    """The small metrics JSON of ``prepare@<dataset>`` (counts, shape, skipped by reason)."""
    skipped = ds.meta.get("skipped", {})
    counts = ds.counts()
    return {
        "source": ds.meta.get("source", ""),
        "train": counts["train"],
        "test": counts["test"],
        "classes": len(ds.classes),
        "image_shape": list(ds.images.shape[1:]),
        "skipped": int(skipped.get("count", 0)),
        "skipped_by_reason": dict(skipped.get("by_reason", {})),
        "skipped_classes": len(skipped.get("classes", [])),
        "seconds": round(seconds, 3),
    }
