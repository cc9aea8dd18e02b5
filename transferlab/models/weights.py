"""Where a backbone's weights come from: the torch hub cache (ImageNet) or a local file.

ImageNet weights are fetched through the torchvision weights enum's own
``get_state_dict`` (torch.hub: cached under ``$TORCH_HOME/hub/checkpoints``, downloaded
there when missing, the download checked against the sha256 prefix in the file name).
torch.hub checks that hash only when it downloads; a file someone copied into the
cache by hand (the offline route this module tells users to take) is not checked by
it, so :func:`load_imagenet_state_dict` hashes the cached file itself and rejects one
that does not match the published prefix. Every failure a user can cause is one
:class:`~transferlab.errors.UserError` line naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import urlparse

import torch
from torchvision.models import WeightsEnum

from transferlab.errors import UserError

# What can go wrong reading or fetching a weights file (as opposed to a bug in our code).
LOAD_ERRORS = (OSError, RuntimeError, ValueError, EOFError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile)


def one_line(err: BaseException, limit: int = 200) -> str:
    """An exception as a short single line (torch's messages span many lines)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hub_checkpoint_path(weights: WeightsEnum) -> Path:
    """Where torch.hub caches ``weights``: ``$TORCH_HOME/hub/checkpoints/<file name of its url>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def published_sha256_prefix(url: str) -> str | None:
    """The sha256 prefix torchvision publishes in a weights file name (``vgg16-397923af.pth``)."""
    match = torch.hub.HASH_REGEX.search(os.path.basename(urlparse(url).path))
    return match.group(1) if match else None


def _missing_hint(weights: WeightsEnum, path: Path, backbone: str) -> str:
    return (
        f"download {weights.url} into $TORCH_HOME/hub/checkpoints/ (here {path.parent}) on a machine "
        f"with internet, or set backbones.{backbone}.weights to a local .pt file"
    )


def load_imagenet_state_dict(weights: WeightsEnum, backbone: str = "<name>") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """State dict of torchvision ``weights`` from the hub cache (downloading it if online).

    Returns the state dict and its provenance (url, cached file, sha256). A missing file
    with no network, a corrupt cached file, or one whose sha256 does not match the
    published prefix each raise one :class:`UserError` line.
    """
    path = hub_checkpoint_path(weights)
    was_cached = path.is_file()
    if was_cached:
        _check_published_hash(weights, path)
    try:
        state = weights.get_state_dict(progress=False, check_hash=True, weights_only=True, map_location="cpu")
    except LOAD_ERRORS as err:
        if was_cached:
            raise UserError(
                f"cached ImageNet weights {path} are unreadable ({one_line(err)}); delete the file and "
                + _missing_hint(weights, path, backbone)
            ) from None
        reason = one_line(err.reason if isinstance(err, URLError) else err, 120)
        raise UserError(
            f"ImageNet weights file {path.name} is not in {path.parent} and downloading it failed "
            f"({reason}); " + _missing_hint(weights, path, backbone)
        ) from None
    sha = file_sha256(path)
    if not was_cached:  # torch.hub verified the prefix while downloading
        _check_published_hash(weights, path, sha)
    return state, {"url": weights.url, "file": str(path), "sha256": sha}


def _check_published_hash(weights: WeightsEnum, path: Path, sha: str | None = None) -> None:
    prefix = published_sha256_prefix(weights.url)
    if prefix is None:
        return
    sha = sha or file_sha256(path)
    if not sha.startswith(prefix):
        raise UserError(
            f"cached ImageNet weights {path} do not match torchvision's published sha256 prefix "
            f"{prefix} (file sha256 {sha[:16]}...); delete it and download {weights.url} again"
        )


def load_local_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """State dict from a local ``.pt``/``.pth`` file (a state dict, or a dict with ``state_dict``).

    Loaded with ``weights_only=True``. Also returns extras found next to ``state_dict``
    in a checkpoint dict (``categories``) plus the file's sha256. A missing or corrupt
    file is one :class:`UserError` line.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"weights file {str(path)!r} not found; set backbones.<name>.weights to imagenet, none, "
            "pretrain, or an existing .pt/.pth file"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as err:
        raise UserError(
            f"weights file {str(path)!r} is not a readable torch state dict ({one_line(err, 120)}); "
            "re-create it with torch.save(model.state_dict(), path)"
        ) from None
    extras: dict[str, Any] = {"file": str(path), "sha256": file_sha256(path)}
    if isinstance(obj, Mapping) and "state_dict" in obj:
        if isinstance(obj.get("categories"), list | tuple):
            extras["categories"] = tuple(str(c) for c in obj["categories"])
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(
            f"weights file {str(path)!r} holds no state dict (expected a dict of tensors or a dict "
            "with a 'state_dict' key); save it with torch.save(model.state_dict(), path)"
        )
    state = {str(k).removeprefix("module."): v for k, v in obj.items()}  # DataParallel checkpoints
    return state, extras


def describe_key_mismatch(missing: list[str], unexpected: list[str]) -> str:
    """Short summary of state-dict key differences for an error line."""
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    return "; ".join(parts)
