"""``dcgan``: an unconditional DCGAN (Radford et al., ICLR 2016) at 64x64 (or 128x128).

What it models: the classic fully generated GAN image, every pixel from a latent vector, with
the transposed-convolution upsampling stack that made GAN spectra famous (Durall et al. 2020).

The standard recipe, unchanged apart from the width (``ngf = ndf = 32`` instead of 64, so
that a CPU trains it in minutes):

- Generator: z (100) -> ConvTranspose 4x4 to 4x4 x 8ngf, then ConvTranspose 4x4 stride 2
  halving the channels up to the image size, BatchNorm + ReLU between, Tanh at the end.
- Discriminator: Conv 4x4 stride 2 with LeakyReLU(0.2), BatchNorm on every layer but the first,
  a final 4x4 convolution to one logit.
- Weights from N(0, 0.02), BatchNorm scales from N(1, 0.02); Adam lr 2e-4, beta1 0.5; the
  non-saturating generator loss (binary cross-entropy against "real").

Training data: random ``image_size`` crops of the real tiles (no resampling, so the reals keep
their sensor noise and JPEG traces). At a few minutes of CPU the samples are blurry colour and
texture blobs, not scenes; they still carry the generator's upsampling fingerprint, which is
what a detector of this family must learn. ``generate(n, seed)`` draws n latent vectors from a
generator seeded with ``seed`` (in fixed blocks, so sample ``i`` does not depend on ``n``) and
runs the network in eval mode (BatchNorm with its running statistics, so one sample never depends
on the others in its batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from fakescope.data.generators.base import GeneratorKind, LossBlocks, StepCallback, TrainingLog
from fakescope.data.generators.network import (
    NetworkGenerator,
    random_crops,
    seeded,
    to_pixels,
    to_tensor,
    torch_settings,
)

SAMPLE_BLOCK = 64  # latents drawn and run per block (see DCGAN.generate)


@dataclass(frozen=True)
class DCGANConfig:
    """Shape of the DCGAN pair."""

    image_size: int = 64  # 64 or 128
    latent: int = 100  # nz
    gen_features: int = 32  # ngf (64 in the paper)
    disc_features: int = 32  # ndf (64 in the paper)

    def __post_init__(self) -> None:
        if self.image_size not in (32, 64, 128):
            raise ValueError("image_size must be 32, 64 or 128")
        if min(self.latent, self.gen_features, self.disc_features) < 1:
            raise ValueError("latent, gen_features and disc_features must be positive")

    @property
    def stages(self) -> int:
        """Stride-2 stages between 4x4 and the image size (64 -> 4)."""
        return int(np.log2(self.image_size)) - 2


@dataclass(frozen=True)
class DCGANOptions:
    """How the DCGAN is trained (part of the cache fingerprint)."""

    steps: int = 1000
    batch_size: int = 32  # 128 in the paper; more, smaller steps learn more per CPU minute
    learning_rate: float = 2e-4
    beta1: float = 0.5
    threads: int = 2  # pinned: float sums depend on the thread split


def _init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: convolutions N(0, 0.02), BatchNorm scale N(1, 0.02), shift 0."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """(N, latent, 1, 1) -> (N, 3, S, S) in [-1, 1]."""

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        channels = config.gen_features * 2 ** (config.stages - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(config.latent, channels, 4, 1, 0, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(True),
        ]
        for _ in range(config.stages - 1):
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(channels // 2),
                nn.ReLU(True),
            ]
            channels //= 2
        layers += [nn.ConvTranspose2d(channels, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net(latent)


class DCGANDiscriminator(nn.Module):
    """(N, 3, S, S) -> (N,) logits."""

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        channels = config.disc_features
        layers: list[nn.Module] = [
            nn.Conv2d(3, channels, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for _ in range(config.stages - 1):
            layers += [
                nn.Conv2d(channels, channels * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(channels * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels *= 2
        layers.append(nn.Conv2d(channels, 1, 4, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).flatten()


class DCGAN(NetworkGenerator):
    """Unconditional DCGAN; ``generate(n, seed)`` samples ``n`` images of ``image_size``."""

    kind: ClassVar[GeneratorKind] = "unconditional"
    config_class: ClassVar[type] = DCGANConfig
    options_class: ClassVar[type] = DCGANOptions

    def __init__(
        self, name: str, config: DCGANConfig | None = None, options: DCGANOptions | None = None
    ) -> None:
        super().__init__(name, config, options)
        self.net: DCGANGenerator | None = None
        self.disc: DCGANDiscriminator | None = None

    def build(self, seed: int) -> None:
        with seeded(seed):
            self.net = DCGANGenerator(self.config)
            self.disc = DCGANDiscriminator(self.config)
            self.net.apply(_init_weights)
            self.disc.apply(_init_weights)

    def saved_modules(self) -> dict[str, nn.Module]:
        assert self.net is not None, "build() first"
        return {"generator": self.net}

    def train_steps(
        self, tiles: np.ndarray, seed: int, on_step: StepCallback | None
    ) -> TrainingLog:
        assert self.net is not None and self.disc is not None
        options, size = self.options, self.config.image_size
        net, disc = self.net.train(), self.disc.train()
        betas = (options.beta1, 0.999)
        opt_g = torch.optim.Adam(net.parameters(), lr=options.learning_rate, betas=betas)
        opt_d = torch.optim.Adam(disc.parameters(), lr=options.learning_rate, betas=betas)
        rng = np.random.default_rng(seed)
        noise = torch.Generator().manual_seed(seed)
        bce = functional.binary_cross_entropy_with_logits
        ones = torch.ones(options.batch_size)
        zeros = torch.zeros(options.batch_size)
        log = TrainingLog(steps=options.steps)
        blocks = LossBlocks(log)
        for step in range(options.steps):
            real = to_tensor(random_crops(tiles, rng, options.batch_size, size))
            latent = torch.randn(options.batch_size, self.config.latent, 1, 1, generator=noise)
            fake = net(latent)
            # Discriminator step: real -> 1, generated -> 0 (fakes detached).
            disc_loss = bce(disc(real), ones) + bce(disc(fake.detach()), zeros)
            opt_d.zero_grad(set_to_none=True)
            disc_loss.backward()
            opt_d.step()
            # Generator step: the non-saturating loss, "make D say real".
            gen_loss = bce(disc(fake), ones)
            opt_g.zero_grad(set_to_none=True)
            gen_loss.backward()
            opt_g.step()
            blocks.add(
                {"disc": float(disc_loss.detach()), "gen": float(gen_loss.detach())},
                last=step == options.steps - 1,
            )
            if on_step is not None:
                on_step(step + 1, options.steps)
        return log

    def generate(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` samples (n, S, S, 3) uint8 from latent vectors drawn with ``seed``.

        Latents come in blocks of :data:`SAMPLE_BLOCK`, block ``b`` from a generator seeded with
        ``(seed, b)``, and every block runs as one full batch: sample ``i`` is bit-identical
        whatever ``n`` is (CPU kernels may pick other algorithms for other batch sizes).
        """
        self.require_trained()
        assert self.net is not None
        if n < 0:
            raise ValueError("n must be >= 0")
        size = self.config.image_size
        self.net.eval()
        blocks = []
        with torch_settings(self.options.threads), torch.no_grad():
            for block in range(-(-n // SAMPLE_BLOCK)):
                key = int(np.random.SeedSequence([seed, block]).generate_state(1, np.uint64)[0])
                latent = torch.randn(
                    SAMPLE_BLOCK,
                    self.config.latent,
                    1,
                    1,
                    generator=torch.Generator().manual_seed(key),
                )
                blocks.append(to_pixels(self.net(latent)))
        if not blocks:
            return np.empty((0, size, size, 3), dtype=np.uint8)
        return np.concatenate(blocks)[:n]
