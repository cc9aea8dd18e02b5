"""Where a metrics file came from: the seed, the device and the library versions.

Every metrics JSON carries this block (see :func:`transferlab.metrics.write_metrics`), so a
number can always be traced to the run that produced it. Versions are read from the
installed package metadata, so nothing is imported just to learn its version.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

PACKAGES = ("torch", "torchvision", "scikit-learn", "numpy", "transferlab")


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (None when it is not installed)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Python and the versions of the libraries that decide the numbers."""
    return {"python": platform.python_version(), **{name: package_version(name) for name in PACKAGES}}


def describe_device(device: Any) -> str:
    """The device a stage computed on: ``cpu``, ``mps`` or ``cuda:<index> (<GPU name>)``.

    ``device`` is a ``torch.device`` or its string form, already resolved (never ``auto``).
    """
    name = str(device)
    if not name.startswith("cuda"):
        return name
    import torch  # only for a CUDA device, where the stage has imported it already

    index = torch.device(name).index
    index = torch.cuda.current_device() if index is None else index
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def provenance(seed: int, device: Any) -> dict[str, Any]:
    """The ``provenance`` block of a metrics file."""
    return {"seed": seed, "device": describe_device(device), "versions": versions()}
