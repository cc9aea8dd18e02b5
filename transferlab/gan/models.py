"""GAN networks: DCGAN generator/discriminator (28x28 or 32x32) and a conditional MLP GAN.

Both families take an optional class label. Conditioning follows the classic recipe:
the generator sees ``[z, one_hot(y)]``; the convolutional discriminator sees the
one-hot label as extra constant input planes, the MLP discriminator as extra inputs.
``n_classes = 0`` means "no label" (plain DCGAN, or the ablation that drops the label
from the discriminator). Discriminators return logits (use ``BCEWithLogitsLoss``).
"""

from __future__ import annotations

import torch
from torch import nn

IMAGE_SIZES = (28, 32)  # DCGAN layouts: 7 -> 14 -> 28, or 4 -> 8 -> 16 -> 32


def _layout(image_size: int) -> tuple[int, int]:
    """(side of the first feature map, number of x2 up/down-samplings) for a DCGAN."""
    if image_size == 28:
        return 7, 2
    if image_size == 32:
        return 4, 3
    raise ValueError(f"DCGAN supports image sizes {IMAGE_SIZES}, got {image_size}")


def one_hot(
    y: torch.Tensor | None, n_classes: int, batch: int, device: torch.device
) -> torch.Tensor:
    """One-hot float labels (B, n_classes); an empty (B, 0) tensor when unconditional."""
    if n_classes == 0:
        return torch.zeros(batch, 0, device=device)
    if y is None:
        raise ValueError("this network is conditional: pass class labels y")
    return nn.functional.one_hot(y, n_classes).float()


def dcgan_init(module: nn.Module) -> None:
    """DCGAN weight init (Radford et al. 2016): N(0, 0.02) weights, BN gamma N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """``[z, one_hot(y)]`` -> transposed convs -> tanh image in [-1, 1]."""

    def __init__(
        self, nz: int, channels: int = 1, image_size: int = 28, ngf: int = 32, n_classes: int = 0
    ):
        super().__init__()
        side, n_up = _layout(image_size)
        self.nz, self.n_classes, self.channels, self.image_size = (
            nz,
            n_classes,
            channels,
            image_size,
        )
        width = ngf * 2 ** (n_up - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz + n_classes, width, side, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(n_up - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = torch.cat([z, one_hot(y, self.n_classes, len(z), z.device)], 1)
        return self.net(h[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """Image -> strided conv -> (+ one-hot label planes) -> strided convs, LeakyReLU -> one logit.

    The label planes join after the first convolution, at half resolution, as in the
    course's cDCGAN: the same conditioning as planes on the input at a tenth of its cost.
    """

    def __init__(self, channels: int = 1, image_size: int = 28, ndf: int = 32, n_classes: int = 0):
        super().__init__()
        side, n_down = _layout(image_size)
        self.n_classes, self.channels, self.image_size = n_classes, channels, image_size
        self.stem = nn.Sequential(nn.Conv2d(channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True))
        layers: list[nn.Module] = []
        width, extra = ndf, n_classes
        for _ in range(n_down - 1):
            layers += [
                nn.Conv2d(width + extra, width * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width * 2),
                nn.LeakyReLU(0.2, True),
            ]
            width, extra = width * 2, 0
        layers.append(nn.Conv2d(width + extra, 1, side, 1, 0))
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.stem(x)
        if self.n_classes:
            planes = one_hot(y, self.n_classes, len(x), x.device)[:, :, None, None]
            h = torch.cat([h, planes.expand(-1, -1, *h.shape[2:])], 1)
        return self.net(h).flatten()


class MLPGenerator(nn.Module):
    """Conditional MLP generator: ``[z, one_hot(y)]`` -> 256 -> 512 -> C*H*W, tanh."""

    def __init__(
        self,
        nz: int,
        channels: int = 1,
        image_size: int = 28,
        hidden: int = 256,
        n_classes: int = 0,
    ):
        super().__init__()
        self.nz, self.n_classes, self.channels, self.image_size = (
            nz,
            n_classes,
            channels,
            image_size,
        )
        self.net = nn.Sequential(
            nn.Linear(nz + n_classes, hidden),
            nn.LeakyReLU(0.2, True),
            nn.Linear(hidden, hidden * 2, bias=False),
            nn.BatchNorm1d(hidden * 2),
            nn.LeakyReLU(0.2, True),
            nn.Linear(hidden * 2, channels * image_size * image_size),
            nn.Tanh(),
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = torch.cat([z, one_hot(y, self.n_classes, len(z), z.device)], 1)
        return self.net(h).view(len(z), self.channels, self.image_size, self.image_size)


class MLPDiscriminator(nn.Module):
    """Conditional MLP discriminator: ``[flatten(x), one_hot(y)]`` -> 512 -> 256 -> logit."""

    def __init__(
        self, channels: int = 1, image_size: int = 28, hidden: int = 256, n_classes: int = 0
    ):
        super().__init__()
        self.n_classes, self.channels, self.image_size = n_classes, channels, image_size
        self.net = nn.Sequential(
            nn.Linear(channels * image_size * image_size + n_classes, hidden * 2),
            nn.LeakyReLU(0.2, True),
            nn.Linear(hidden * 2, hidden),
            nn.LeakyReLU(0.2, True),
            nn.Linear(hidden, 1),
        )
        dcgan_init(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = torch.cat([x.flatten(1), one_hot(y, self.n_classes, len(x), x.device)], 1)
        return self.net(h).flatten()


def build_gan(
    arch: str,
    *,
    nz: int,
    channels: int,
    image_size: int,
    n_classes: int,
    label_in_g: bool,
    label_in_d: bool,
    width: int = 32,
) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for ``arch`` in {"dcgan", "mlp"}.

    ``width`` is ngf/ndf for DCGAN and the first hidden size for the MLP GAN.
    """
    g_classes = n_classes if label_in_g else 0
    d_classes = n_classes if label_in_d else 0
    if arch == "dcgan":
        return (
            DCGANGenerator(nz, channels, image_size, width, g_classes),
            DCGANDiscriminator(channels, image_size, width, d_classes),
        )
    if arch == "mlp":
        return (
            MLPGenerator(nz, channels, image_size, width, g_classes),
            MLPDiscriminator(channels, image_size, width, d_classes),
        )
    raise ValueError(f"unknown GAN arch {arch!r}")
