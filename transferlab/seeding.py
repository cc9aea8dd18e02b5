"""One seeding helper for Python, NumPy, torch and cuDNN, always called by every stage."""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def seed_everything(seed: int, *, with_torch: bool = True) -> torch.Generator | None:
    """Seed every RNG the pipeline touches and make torch deterministic on CPU.

    Returns a seeded ``torch.Generator`` for DataLoader shuffling, so the order of
    batches depends on the seed alone. A stage that never uses torch (classify, on
    cached features) passes ``with_torch=False``: seeding then does not import torch
    (~650 MB of RSS and seconds of start-up), and it gets ``None``.
    """
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    if not with_torch:
        return None
    import torch

    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return torch_generator(seed)


def torch_generator(seed: int) -> torch.Generator:
    """A fresh CPU generator seeded with ``seed`` (for DataLoaders and samplers)."""
    import torch

    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
