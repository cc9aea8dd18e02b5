"""One seeding helper for Python, NumPy, torch and cuDNN, always called by every stage."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed every RNG the pipeline touches and make torch deterministic on CPU.

    Returns a seeded ``torch.Generator`` for DataLoader shuffling, so the order of
    batches depends on the seed alone.
    """
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return torch_generator(seed)


def torch_generator(seed: int) -> torch.Generator:
    """A fresh CPU generator seeded with ``seed`` (for DataLoaders and samplers)."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
