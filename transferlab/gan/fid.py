"""Fréchet distance between feature sets, and FID on a domain classifier's features.

FID (Heusel et al. 2017) fits a Gaussian to each feature set and measures
``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``. The standard score uses
Inception-v3 pool features, which need a download; here the features come from a
classifier the pipeline trained on the same dataset (e.g. ``vgg_mini`` fc7), so the
numbers are comparable across variants and runs of this pipeline but NOT with
published Inception FIDs (different scale). The Inception FID is computed only when
torchmetrics can run it from weights already on disk.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from transferlab.device import autocast, prepare_batch
from transferlab.models.backbone import Backbone
from transferlab.models.cutpoints import create_extractor, resolve_layers

# torch-fidelity's Inception weights, as torchmetrics' FrechetInceptionDistance loads them
INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (rows = samples) of a (N, D) feature array, in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need a (N >= 2, D) feature array, got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Dimensions constant in both sets (dead ReLU units) are dropped from the trace
    term, which is exact (their covariance blocks are zero). If ``sqrtm`` still meets a
    singular product it is stabilised by adding ``eps`` to the diagonals (as pytorch-fid
    does); a tiny imaginary part from numerical error is dropped.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    diff = mu1 - mu2
    live = (np.diag(sigma1) > 0) | (np.diag(sigma2) > 0)
    s1, s2 = sigma1[np.ix_(live, live)], sigma2[np.ix_(live, live)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(s1 @ s2)
    if caught or not np.isfinite(covmean).all():
        offset = np.eye(len(s1)) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def fid_from_features(a: np.ndarray, b: np.ndarray) -> float:
    """FID between two (N, D) feature arrays."""
    return frechet_distance(*feature_stats(a), *feature_stats(b))


class ClassifierFeatures:
    """One forward pass of a domain classifier -> (cut-layer features, softmax probabilities).

    Images are uint8 (N, C, H, W) — generated images are quantised to uint8 first, so
    real and generated images go through exactly the same preprocessing.
    """

    def __init__(self, backbone: Backbone, layer: str, device: torch.device, batch_size: int = 256):
        (layer,) = resolve_layers(backbone, [layer])  # one-line UserError for a bad name
        self.backbone = backbone
        self.device = device
        self.batch_size = batch_size
        nodes = {backbone.cut_points[layer]: "features", backbone.head: "logits"}
        self.extractor = create_extractor(backbone.model, nodes).to(device).eval()

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        feats, preds = [], []
        for start in range(0, len(images), self.batch_size):
            x = prepare_batch(
                self.backbone.preprocess(images[start : start + self.batch_size]), self.device
            )
            with autocast(self.device):
                out = self.extractor(x)
            feats.append(out["features"].flatten(1).float().cpu())
            preds.append(out["logits"].float().softmax(1).cpu())
        return torch.cat(feats).numpy(), torch.cat(preds).numpy()


def inception_fid(real: torch.Tensor, fake: torch.Tensor) -> tuple[float | None, str]:
    """Standard Inception FID (torchmetrics) when its weights are on disk; else (None, reason).

    ``real``/``fake`` are uint8 (N, C, H, W). Never downloads: the pipeline runs offline.
    """
    try:
        import torch_fidelity  # noqa: F401
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError:
        return None, "torch-fidelity (torchmetrics' Inception backend) is not installed"
    weights = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS
    if not weights.is_file():
        return None, f"Inception weights not found at {weights} (never downloaded by the pipeline)"
    metric = FrechetInceptionDistance(feature=2048)
    for batch, is_real in ((real, True), (fake, False)):
        for start in range(0, len(batch), 128):
            x = batch[start : start + 128]
            metric.update(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x, real=is_real)
    return float(metric.compute()), "torchmetrics FrechetInceptionDistance (Inception-v3 pool3)"
