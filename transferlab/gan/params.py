"""The ``gan`` params section: shared training knobs plus one config per named variant."""

from __future__ import annotations

import dataclasses
import types
from typing import Literal

from transferlab.config import require
from transferlab.errors import unknown_name

SMOOTH_REAL_LABEL = 0.9  # one-sided label smoothing target for real images (Salimans et al. 2016)


@dataclasses.dataclass(frozen=True)
class VariantConfig:
    """One entry of ``gan.configs``: architecture, latent size and where the label goes."""

    arch: Literal["dcgan", "mlp"] = "dcgan"
    nz: int = 100  # latent size
    label_in_g: bool = False  # feed the class label to the generator
    label_in_d: bool = False  # feed the class label to the discriminator
    width: int = 32  # DCGAN: ngf = ndf; MLP: first hidden layer size
    nb_update_G: int | None = None  # overrides gan.nb_update_G for this variant when set
    nb_update_D: int | None = None  # overrides gan.nb_update_D for this variant when set
    iterations: int | None = None  # overrides gan.iterations for this variant when set

    def __post_init__(self) -> None:
        require(self.nz >= 1, f"nz must be >= 1, got {self.nz}")
        require(self.width >= 4, f"width must be >= 4, got {self.width}")
        require(not (self.label_in_d and not self.label_in_g), "label_in_d needs label_in_g: true")
        for name in ("nb_update_G", "nb_update_D", "iterations"):
            value = getattr(self, name)
            require(value is None or value >= 1, f"{name} must be >= 1, got {value}")

    @property
    def conditional(self) -> bool:
        return self.label_in_g


@dataclasses.dataclass(frozen=True)
class GanParams:
    """The ``gan`` section of params.yaml."""

    dataset: str = "fashion-mnist"
    classifier: str = "vgg_mini"
    fid_layer: str = "fc7"
    variants: tuple[str, ...] = ()
    # dict hint so config.from_mapping converts each entry (it returns a read-only mapping)
    configs: dict[str, VariantConfig] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({})
    )
    iterations: int = 1000
    batch_size: int = 64
    lr: float = 2e-4
    betas: tuple[float, ...] = (0.5, 0.999)
    nb_update_G: int = 1
    nb_update_D: int = 1
    label_smoothing: bool = True
    checkpoints: tuple[int, ...] = ()
    log_every: int = 25
    n_fid: int = 1000
    grid_seed: int = 1234
    num_threads: int = 1  # torch intra-op threads while training (0 = torch's default)

    def __post_init__(self) -> None:
        require(self.iterations >= 1, f"iterations must be >= 1, got {self.iterations}")
        require(self.batch_size >= 2, f"batch_size must be >= 2, got {self.batch_size}")
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            f"betas must be two numbers in [0, 1), got {list(self.betas)}",
        )
        require(self.nb_update_G >= 1, f"nb_update_G must be >= 1, got {self.nb_update_G}")
        require(self.nb_update_D >= 1, f"nb_update_D must be >= 1, got {self.nb_update_D}")
        bad = [c for c in self.checkpoints if not 1 <= c <= self.iterations]
        require(not bad, f"checkpoints must lie in [1, iterations={self.iterations}], got {bad}")
        require(self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}")
        require(self.num_threads >= 0, f"num_threads must be >= 0, got {self.num_threads}")
        require(self.n_fid >= 10, f"n_fid must be >= 10, got {self.n_fid}")
        for name, cfg in self.configs.items():
            late = [c for c in self.checkpoints if cfg.iterations is not None and c > cfg.iterations]
            require(
                not late,
                f"checkpoints {late} lie beyond gan.configs.{name}.iterations={cfg.iterations}",
            )
        missing = [v for v in self.variants if v not in self.configs]
        require(
            not missing,
            f"variants {missing} have no entry under gan.configs ({', '.join(self.configs)})",
        )

    def config(self, variant: str) -> VariantConfig:
        """The config of ``variant``; a one-line UserError naming the valid ones otherwise."""
        if variant not in self.configs:
            raise unknown_name("GAN variant", variant, self.configs)
        return self.configs[variant]

    def updates(self, variant: str) -> tuple[int, int]:
        """(nb_update_G, nb_update_D) for ``variant`` (its override, else the shared value)."""
        cfg = self.config(variant)
        g = cfg.nb_update_G if cfg.nb_update_G is not None else self.nb_update_G
        d = cfg.nb_update_D if cfg.nb_update_D is not None else self.nb_update_D
        return g, d

    def iterations_of(self, variant: str) -> int:
        """Training iterations of ``variant`` (its override, else ``gan.iterations``)."""
        own = self.config(variant).iterations
        return own if own is not None else self.iterations

    def checkpoint_iterations(self, variant: str | None = None) -> tuple[int, ...]:
        """Sorted checkpoint iterations of ``variant`` (shared ones if None); the last always is one."""
        last = self.iterations if variant is None else self.iterations_of(variant)
        return tuple(sorted({*self.checkpoints, last}))
