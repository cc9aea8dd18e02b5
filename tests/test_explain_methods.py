"""Tests for the explain/attack methods on small models with fixed seeds.

Saliency is the true input gradient; the targeted attack reaches its target within a
stated L-inf bound; FGSM at epsilon 0 is the clean accuracy and its curve never rises on
a separable toy problem; every perturbed image stays in [0, 1]; class visualisation
raises the target probability; the pixel-space model equals backbone.preprocess + model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from transferlab.explain.adversarial import fgsm, fgsm_accuracy_curve, targeted_attack
from transferlab.explain.classvis import ClassVisParams, visualise_classes
from transferlab.explain.common import PixelModel, gaussian_blur, pixel_model, predict, to_pixels
from transferlab.explain.robustness import add_noise, confident_mistakes, corruption_curve
from transferlab.explain.saliency import (
    randomised_copy,
    rank_correlation,
    saliency_maps,
    saliency_mass,
)
from transferlab.models.registry import build_backbone

torch.set_num_threads(1)

SIDE = 12


def bars(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes of grey 12x12 images: a horizontal bar, a vertical bar, the diagonal."""
    y = torch.randint(0, 3, (n,), generator=gen)
    x = torch.rand(n, 1, SIDE, SIDE, generator=gen) * 0.2
    for i in range(n):
        k = int(torch.randint(2, SIDE - 2, (1,), generator=gen))
        if y[i] == 0:
            x[i, 0, k, :] = 0.9
        elif y[i] == 1:
            x[i, 0, :, k] = 0.9
        else:
            x[i, 0].fill_diagonal_(0.9)
    return x, y


@pytest.fixture(scope="module")
def bars_model() -> tuple[PixelModel, torch.Tensor, torch.Tensor]:
    """A tiny CNN trained to 100% on the bars (seeded), behind a [0.5] mean/std normalisation."""
    gen = torch.Generator().manual_seed(0)
    x, y = bars(300, gen)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 36, 3),
    )
    model = PixelModel(net, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(60):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    xt, yt = bars(100, gen)
    assert (predict(model, xt).argmax(1) == yt).float().mean() == 1.0
    return model, xt, yt


# ---------------------------------------------------------------- pixel space


@pytest.mark.parametrize("channels", [1, 3])
def test_pixel_model_equals_preprocess_then_model(channels):
    backbone = build_backbone("vgg_mini", "none", num_classes=4, seed=0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28, channels), dtype=np.uint8)
    from transferlab.data.prepared import to_nchw_uint8

    expected = backbone.model(backbone.preprocess(to_nchw_uint8(images, channels)))
    pixels = to_pixels(backbone, images)
    assert pixels.shape == (5, channels, 28, 28)
    assert float(pixels.min()) >= 0.0 and float(pixels.max()) <= 1.0
    np.testing.assert_allclose(pixels.numpy(), images.transpose(0, 3, 1, 2) / 255.0, atol=1e-6)
    got = pixel_model(backbone)(pixels)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- saliency


def test_saliency_is_the_true_input_gradient():
    """captum's map equals central finite differences of the class score (max |.| over channels)."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    ).double()
    model = PixelModel(net, (0.4, 0.5, 0.6), (0.2, 0.3, 0.25)).double().eval()
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([2, 0])
    maps = saliency_maps(model, x, target)
    assert maps.shape == (2, 8, 8)
    h = 1e-6
    for n, i, j in [(0, 0, 0), (0, 3, 5), (1, 7, 2), (1, 4, 4)]:
        fd = []
        for c in range(3):
            plus, minus = x.clone(), x.clone()
            plus[n, c, i, j] += h
            minus[n, c, i, j] -= h
            with torch.no_grad():
                diff = model(plus)[n, target[n]] - model(minus)[n, target[n]]
            fd.append(abs(float(diff)) / (2 * h))
        assert float(maps[n, i, j]) == pytest.approx(max(fd), rel=1e-5, abs=1e-9)


def test_saliency_mass_counts_the_object_share():
    maps = torch.tensor([[[3.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])
    mask = torch.tensor([[[True, False], [False, False]], [[True, True], [False, False]]])
    out = saliency_mass(maps, mask)
    np.testing.assert_allclose(out["mass_in_object"], [0.75, 0.5])
    np.testing.assert_allclose(out["object_area"], [0.25, 0.5])
    np.testing.assert_allclose(out["ratio"], [3.0, 1.0])


# ---------------------------------------------------------------- targeted attack

LINF_BOUND = 0.6  # the bars are bright (0.9) on a dark background: moving one takes < 0.6 per pixel
L2_BOUND = 2.0


def test_targeted_attack_reaches_target_within_bound(bars_model):
    model, xt, yt = bars_model
    x = xt[yt == 0][:4]  # horizontal bars -> push to "vertical bar"
    res = targeted_attack(model, x, target=1, step_size=0.05, max_iterations=200)
    assert bool(res.success.all())
    assert torch.equal(predict(model, res.adversarial).argmax(1), torch.ones(4, dtype=torch.long))
    assert torch.equal(res.predicted, torch.ones(4, dtype=torch.long))
    assert float(res.linf.max()) < LINF_BOUND
    assert float(res.l2.max()) < L2_BOUND
    assert bool((res.iterations >= 1).all()) and bool((res.iterations < 200).all())
    assert bool((res.confidence > 1 / 3).all())
    # the reported norms are those of the returned images
    delta = (res.adversarial - x).flatten(1)
    torch.testing.assert_close(res.linf, delta.abs().amax(1))
    torch.testing.assert_close(res.l2, delta.norm(dim=1))
    assert float(res.adversarial.min()) >= 0.0 and float(res.adversarial.max()) <= 1.0


def test_targeted_attack_stops_at_the_first_success(bars_model):
    model, xt, yt = bars_model
    x = xt[yt == 0][:2]
    res = targeted_attack(
        model, x, target=0, step_size=0.05, max_iterations=50
    )  # already the target
    assert bool(res.success.all())
    assert res.iterations.tolist() == [0, 0]
    assert torch.equal(res.adversarial, x)


def test_targeted_attack_reports_failure_when_out_of_steps(bars_model):
    model, xt, yt = bars_model
    res = targeted_attack(model, xt[yt == 0][:2], target=1, step_size=0.001, max_iterations=3)
    assert not bool(res.success.any())
    assert res.iterations.tolist() == [3, 3]


# ---------------------------------------------------------------- FGSM


@pytest.fixture(scope="module")
def blobs() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A linear classifier on two Gaussian blobs in [0, 1]^20 (separable: margin >> noise)."""
    gen = torch.Generator().manual_seed(0)
    d, n = 20, 200
    y = torch.arange(n) % 2
    centres = torch.where(y.view(-1, 1) == 1, 0.6, 0.4)
    x = (centres + 0.03 * torch.randn(n, d, generator=gen)).clamp(0, 1).view(n, 1, 1, d)
    model = nn.Sequential(nn.Flatten(), nn.Linear(d, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([-torch.ones(d), torch.ones(d)]))
        model[1].bias.copy_(torch.tensor([10.0, -10.0]))  # boundary at the mean pixel 0.5
    return model.eval(), x, y


def test_fgsm_at_zero_is_clean_and_curve_never_rises(blobs):
    model, x, y = blobs
    clean = float((model(x).argmax(1) == y).float().mean())
    assert clean == 1.0
    eps = [0.0, 0.02, 0.05, 0.08, 0.1, 0.12, 0.2, 0.3]
    curve = fgsm_accuracy_curve(model, x, y, eps, batch_size=64)
    assert curve[0] == clean
    assert all(b <= a for a, b in zip(curve, curve[1:], strict=False)), curve
    assert curve[-1] == 0.0  # eps 0.3 crosses the 0.1 margin of every point
    assert 0.0 < curve[eps.index(0.1)] < 1.0  # the curve actually moves through the grid


def test_fgsm_moves_every_pixel_by_epsilon_and_stays_in_range(bars_model):
    model, xt, yt = bars_model
    adv = fgsm(model, xt, yt, 0.1)
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    assert float((adv - xt).abs().max()) <= 0.1 + 1e-6
    torch.testing.assert_close(fgsm(model, xt, yt, 0.0), xt)
    big = fgsm(model, xt, yt, 1.0)
    assert set(torch.unique(big).tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="epsilon"):
        fgsm(model, xt, yt, -0.1)


# ---------------------------------------------------------------- class visualisation


def test_class_visualisation_raises_target_probability(bars_model):
    model, _, _ = bars_model
    params = ClassVisParams(iterations=30, lr=0.3, jitter=1, blur_every=5, blur_sigma=0.5)
    images, p0, p1 = visualise_classes(
        model, [0, 1, 2], (1, SIDE, SIDE), params, torch.Generator().manual_seed(0)
    )
    assert images.shape == (3, 1, SIDE, SIDE)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert bool((p1 > p0).all()), (p0, p1)
    again = visualise_classes(
        model, [0, 1, 2], (1, SIDE, SIDE), params, torch.Generator().manual_seed(0)
    )
    assert torch.equal(again[0], images)


# ---------------------------------------------------------------- corruption


def test_noise_and_blur_stay_in_range_and_hurt(bars_model):
    model, xt, yt = bars_model
    noisy = add_noise(xt, 0.5, torch.Generator().manual_seed(0))
    assert float(noisy.min()) >= 0.0 and float(noisy.max()) <= 1.0
    assert torch.equal(add_noise(xt, 0.0, torch.Generator()), xt)
    assert torch.equal(gaussian_blur(xt, 0.0), xt)
    blurred = gaussian_blur(xt, 1.0)
    assert blurred.shape == xt.shape and float(blurred.max()) < float(xt.max())
    noise = corruption_curve(model, xt, yt, "noise", [0.0, 0.3, 1.0], seed=0)
    assert noise[0] == 1.0 and noise[-1] < noise[0]
    assert noise == corruption_curve(model, xt, yt, "noise", [0.0, 0.3, 1.0], seed=0)


def test_confident_mistakes_are_sorted_by_confidence():
    logits = torch.tensor([[5.0, 0.0], [0.0, 1.0], [0.0, 9.0], [3.0, 0.0]])
    labels = torch.tensor([1, 1, 0, 0])
    pos, conf = confident_mistakes(logits, labels, 5)
    assert pos.tolist() == [2, 0]
    assert conf[0] > conf[1]


def test_rank_correlation_is_spearman_per_image():
    a = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    np.testing.assert_allclose(rank_correlation(a, a), 1.0)
    np.testing.assert_allclose(rank_correlation(a, a.exp()), 1.0)  # ranks only: a monotone map agrees (float64: no ties)
    np.testing.assert_allclose(rank_correlation(a, -a), -1.0)


def test_randomised_copy_reinitialises_every_layer_seeded_leaving_the_original():
    net = build_backbone("vgg_mini", "none", seed=0).model
    with torch.no_grad():  # make the original clearly "trained": not what any init gives
        for p in net.parameters():
            p.add_(3.0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    a, b = randomised_copy(net, seed=1), randomised_copy(net, seed=1)
    assert torch.equal(torch.get_rng_state(), rng)  # the global stream is untouched
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    for (name, p), q, r in zip(net.named_parameters(), a.parameters(), b.parameters(), strict=True):
        assert p.shape == q.shape and torch.equal(q, r), name
        assert not torch.equal(p, q), name  # every parameter re-drawn


def test_round_robin_spreads_the_first_images_over_the_classes():
    from transferlab.explain.adversarial import round_robin

    labels = np.array([0, 0, 0, 1, 1, 2])
    assert round_robin(torch.tensor([0, 1, 2, 3, 4, 5]), labels).tolist() == [0, 3, 5, 1, 4, 2]
    assert round_robin(torch.tensor([1, 2, 4]), labels).tolist() == [1, 4, 2]
