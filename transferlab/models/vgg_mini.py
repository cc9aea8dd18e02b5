"""vgg_mini: a VGG-shaped CNN small enough to pretrain on a 2-core CPU.

Same layout as torchvision's VGG (``features`` -> ``avgpool`` -> ``classifier``):
three conv blocks of 3x3 convs (with BatchNorm, as in vgg16_bn) each ending in a
2x2 max-pool, then fc6, fc7 and the class layer. At its 28 px input (Fashion-MNIST's
native size) pool3 is 64x3x3, so fc6 rewrites as a 3x3 convolution exactly as
VGG16's fc6 does as 7x7. Narrow early blocks keep one pretraining epoch on 60k
images under a minute on a 2-core CPU.
"""

from __future__ import annotations

from torch import nn

from transferlab.models.archs import VGG_MINI_BLOCKS

INPUT_SIZE = 28
BLOCKS = VGG_MINI_BLOCKS  # conv widths per block
FC_WIDTH = 256


class VGGMini(nn.Module):
    """VGG-shaped network: conv blocks ending in max-pool, then fc6, fc7, classifier."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for widths in BLOCKS:
            for out_ch in widths:
                layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]
                in_ch = out_ch
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        side = INPUT_SIZE // 2 ** len(BLOCKS)
        self.avgpool = nn.AdaptiveAvgPool2d((side, side))
        self.classifier = nn.Sequential(
            nn.Linear(in_ch * side * side, FC_WIDTH),  # fc6
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(FC_WIDTH, FC_WIDTH),  # fc7
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(FC_WIDTH, num_classes),  # fc8
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))
