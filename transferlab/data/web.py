"""Sources downloaded as one archive from a URL: ``hymenoptera`` and ``15scene``.

Download (sha256 verified before extraction: pinned in the registry or the entry's
``sha256``, else the first download's sha256 is recorded in the provenance), safe
extraction into the cache, then the ``folder`` source reads the tree. A failure leaves
no download or extraction folder behind.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from transferlab.config import require
from transferlab.data.archives import dataset_root, extract_archive
from transferlab.data.download import fetch
from transferlab.data.folder import FolderOptions, read_folder
from transferlab.data.source import CommonOptions, Context, RawDataset, check_image_options
from transferlab.errors import UserError

HYMENOPTERA_URL = "https://download.pytorch.org/tutorial/hymenoptera_data.zip"
# The 15-Scene dataset (Lazebnik, Schmid, Ponce 2006), figshare copy (article 7007177,
# file 12855452, a RAR archive: needs bsdtar). The original UIUC zip URL is gone.
SCENE15_URL = "https://ndownloader.figshare.com/files/12855452"
KNOWN_SHA256: dict[str, str] = {}  # url -> sha256 where published; none known for these two


@dataclasses.dataclass(frozen=True, kw_only=True)
class WebOptions(CommonOptions):
    """Options shared by the archive-download sources."""

    url: str | None = None  # null = the registry's URL; override for a mirror (or a test server)
    sha256: str | None = None  # pin the archive's sha256; a mismatch fails before extraction
    image_size: int | None = (
        224  # square side after resize + centre crop; null = native (must agree)
    )
    channels: int = 3  # 3 = RGB, 1 = grayscale
    on_bad_file: Literal["skip", "error"] = "skip"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_image_options(self.image_size, self.channels)
        require(
            self.sha256 is None
            or (len(self.sha256) == 64 and all(c in "0123456789abcdefABCDEF" for c in self.sha256)),
            f"sha256 must be null or 64 hex digits, got {self.sha256!r}",
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Scene15Options(WebOptions):
    """``source: 15scene`` options."""

    train_per_class: int = 100  # training images per class drawn with the seed; the rest test

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            self.train_per_class >= 1, f"train_per_class must be >= 1, got {self.train_per_class}"
        )


def _download_tree(opts: WebOptions, ctx: Context, default_url: str) -> tuple[Any, dict[str, Any]]:
    url = opts.url or default_url
    pinned = opts.sha256 or KNOWN_SHA256.get(url)
    archive, digest = fetch(url, ctx.cache_dir, sha256=pinned, where=ctx.where)
    try:
        tree = extract_archive(archive, archive.with_name(archive.name + ".d"), where=ctx.where)
    except UserError:
        archive.unlink(missing_ok=True)  # an archive that cannot be extracted is not kept
        raise
    provenance = {
        "url": url,
        "sha256": digest,
        "sha256_pinned": pinned is not None,
        "archive": archive.name,
    }
    return dataset_root(tree), provenance


def _folder_options(opts: WebOptions, **kwargs: Any) -> FolderOptions:
    return FolderOptions(
        source="folder",
        path="(downloaded)",
        image_size=opts.image_size,
        channels=opts.channels,
        on_bad_file=opts.on_bad_file,
        **kwargs,
    )


def load_hymenoptera(opts: WebOptions, ctx: Context) -> RawDataset:
    """Ants vs bees (PyTorch transfer-learning tutorial): train/ and val/ -> train/test."""
    root, prov = _download_tree(opts, ctx, HYMENOPTERA_URL)
    raw = read_folder(_folder_options(opts, train_dir="train", test_dir="val"), ctx, root=root)
    raw.provenance = {**prov, **raw.provenance}
    return raw


def load_15scene(opts: Scene15Options, ctx: Context) -> RawDataset:
    """15-Scene: class folders; ``train_per_class`` per class for training, the rest test."""
    root, prov = _download_tree(opts, ctx, SCENE15_URL)
    folder_opts = _folder_options(opts, train_per_class=opts.train_per_class)
    raw = read_folder(folder_opts, ctx, root=root)
    raw.provenance = {**prov, **raw.provenance}
    return raw
