"""The course's convolution arithmetic: output size, weight counts, receptive-field steps.

For an input of side ``n`` with ``D`` channels, a convolution of ``C`` filters of side
``k`` with stride ``s`` and padding ``p``:

* output side ``floor((n + 2p - k) / s) + 1`` (with dilation ``d`` the kernel spans
  ``d(k - 1) + 1`` pixels);
* weights ``k*k*D*C + C`` (the ``+ C`` are the biases);
* a fully-connected layer producing the same ``C x m x m`` output from the same
  ``D x n x n`` input would need ``(D*n*n) * (C*m*m) + C*m*m`` weights: the reason
  convolutions (weight sharing + local connectivity) made deep image networks possible.

The receptive-field step is the usual recurrence (Araujo et al., *Computing Receptive
Fields of CNNs*, Distill 2019): ``r_out = r_in + (k_eff - 1) * j_in``, ``j_out = j_in * s``,
``start_out = start_in + ((k_eff - 1) / 2 - p) * j_in`` where ``j`` (the jump) is the
distance in input pixels between neighbouring output units and ``start`` the input
coordinate of the centre of the first unit's receptive field.
"""

from __future__ import annotations

import dataclasses
import math


def conv_output_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """Output side of a convolution/pooling: floor((n + 2p - d(k-1) - 1) / s) + 1."""
    if min(n, k, s, d) < 1 or p < 0:
        raise ValueError(f"need n, k, s, d >= 1 and p >= 0, got n={n} k={k} s={s} p={p} d={d}")
    span = d * (k - 1) + 1
    if n + 2 * p < span:
        raise ValueError(f"kernel span {span} is larger than the padded input {n + 2 * p}")
    return math.floor((n + 2 * p - span) / s) + 1


def conv_weights(k: int, in_channels: int, out_channels: int, bias: bool = True, groups: int = 1) -> int:
    """Weights of a k x k convolution: k*k*(D/groups)*C (+ C biases)."""
    return k * k * (in_channels // groups) * out_channels + (out_channels if bias else 0)


def fc_equivalent_weights(in_shape: tuple[int, ...], out_shape: tuple[int, ...], bias: bool = True) -> int:
    """Weights of a fully-connected layer mapping a tensor of ``in_shape`` to one of ``out_shape``."""
    n_in, n_out = math.prod(in_shape), math.prod(out_shape)
    return n_in * n_out + (n_out if bias else 0)


@dataclasses.dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one unit (side, in input pixels), jump between units, first centre."""

    size: float = 1.0
    jump: float = 1.0
    start: float = 0.5  # the centre of input pixel 0 is at 0.5 (pixel i spans [i, i+1))

    def step(self, k: int, s: int = 1, p: int = 0, d: int = 1) -> ReceptiveField:
        """The field after a k x k window with stride s, padding p and dilation d."""
        span = d * (k - 1) + 1
        return ReceptiveField(
            size=self.size + (span - 1) * self.jump,
            jump=self.jump * s,
            start=self.start + ((span - 1) / 2 - p) * self.jump,
        )

    def merge(self, other: ReceptiveField) -> ReceptiveField:
        """Field of a unit combining two branches (residual add, concatenation): the larger."""
        return self if self.size >= other.size else other
