"""``sr-gan``: a small ESRGAN-style 4x super-resolution GAN (Ledig et al. 2017; Wang et al. 2018).

What it models: the "upscaled by a neural network" family. A real tile is bicubically
downscaled 4x (Pillow) and the network hallucinates it back to full size, so every output pixel
is generated, with content that follows a real photo.

Generator (ESRGAN layout with plain residual blocks instead of RRDBs, sized for a CPU)::

    conv3x3(3 -> nf)                                       # features at low resolution
    blocks x [conv3x3 LReLU(0.2) conv3x3] * 0.2 + skip     # residual scaling as in ESRGAN, no BN
    conv3x3, + long skip from the first conv
    UP x2 (nf -> nf) LReLU(0.2)                            # UP = nearest + conv3x3 (ESRGAN),
    UP x2 (nf -> nf/2) LReLU(0.2)                          #   or pixelshuffle / transposed
    conv3x3 (nf/2 -> nf/2) LReLU(0.2), conv3x3 (nf/2 -> 3) # the full-resolution head

The second upsampling stage narrows to ``nf/2`` channels because full-resolution convolutions
dominate the cost on a CPU. Discriminator: a small patch discriminator (three 4x4 stride-2
convolutions with BatchNorm after the first, LeakyReLU 0.2, a 3x3 convolution to one logit per
patch; Isola et al. 2017), trained with the standard non-saturating GAN loss.

Training, on (bicubic-downscaled, original) pairs of random 64x64 crops of real tiles: the first
``pretrain_fraction`` of the steps minimise L1 only (ESRGAN's PSNR-oriented warm-up, which keeps
the GAN phase from starting from noise), the rest minimise ``L1 + adversarial_weight * adv``
while the discriminator learns real crops from super-resolved ones. Adam, betas (0.9, 0.999) as
in ESRGAN; the generator's learning rate decays to a tenth on a cosine. Generation:
``generate(tiles)`` downsamples each tile 4x (bicubic, Pillow) and super-resolves it back to its
own size (sides must be multiples of 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional

from fakescope.data.generators.base import (
    GeneratorKind,
    LossBlocks,
    StepCallback,
    TrainingLog,
    stack_tiles,
)
from fakescope.data.generators.network import (
    NetworkGenerator,
    random_crops,
    seeded,
    to_pixels,
    to_tensor,
    torch_settings,
)

SCALE = 4


@dataclass(frozen=True)
class SRGANConfig:
    """Shape of the super-resolution generator and its patch discriminator."""

    features: int = 32  # nf: channels of the low-resolution trunk
    blocks: int = 4
    upsampling: str = "nearest"  # "nearest" (ESRGAN), "pixelshuffle" or "transposed"
    disc_features: int = 16

    def __post_init__(self) -> None:
        if self.upsampling not in _UPSAMPLERS:
            raise ValueError(f"upsampling must be one of {sorted(_UPSAMPLERS)}")
        if self.features < 2 or self.features % 2 or self.blocks < 0 or self.disc_features < 1:
            raise ValueError("features must be even and >= 2, blocks >= 0, disc_features >= 1")


@dataclass(frozen=True)
class SRGANOptions:
    """How the SR-GAN is trained (part of the cache fingerprint)."""

    steps: int = 1500
    batch_size: int = 16
    crop: int = 64  # high-resolution crop side; the low-resolution input is crop / 4
    learning_rate: float = 5e-4
    disc_learning_rate: float = 2e-4
    pretrain_fraction: float = 0.5  # share of steps with the L1 loss only
    adversarial_weight: float = 1e-2
    threads: int = 2  # pinned: float sums depend on the thread split


def _nearest(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1)
    )


def _pixelshuffle(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, c_out * 4, 3, padding=1), nn.PixelShuffle(2))


def _transposed(c_in: int, c_out: int) -> nn.Module:
    return nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1)


_UPSAMPLERS = {"nearest": _nearest, "pixelshuffle": _pixelshuffle, "transposed": _transposed}


class ResidualBlock(nn.Module):
    """conv-LReLU-conv with the residual scaled by 0.2 (ESRGAN's stabiliser without BN)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.body(x)


class SRNet(nn.Module):
    """Low-resolution (N, 3, h, w) in [-1, 1] -> (N, 3, 4h, 4w) in [-1, 1]."""

    def __init__(self, config: SRGANConfig) -> None:
        super().__init__()
        nf = config.features
        upsample = _UPSAMPLERS[config.upsampling]
        self.head = nn.Conv2d(3, nf, 3, padding=1)
        self.trunk = nn.Sequential(
            *[ResidualBlock(nf) for _ in range(config.blocks)], nn.Conv2d(nf, nf, 3, padding=1)
        )
        self.upsample = nn.Sequential(
            upsample(nf, nf), nn.LeakyReLU(0.2), upsample(nf, nf // 2), nn.LeakyReLU(0.2)
        )
        self.tail = nn.Sequential(
            nn.Conv2d(nf // 2, nf // 2, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(nf // 2, 3, 3, padding=1),
        )

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        features = self.head(low)
        return self.tail(self.upsample(features + self.trunk(features)))


class PatchDiscriminator(nn.Module):
    """(N, 3, H, W) -> (N, 1, H/8, W/8) logits, one per overlapping patch."""

    def __init__(self, features: int) -> None:
        super().__init__()
        f = features
        self.net = nn.Sequential(
            nn.Conv2d(3, f, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(f, f * 2, 4, stride=2, padding=1),
            nn.BatchNorm2d(f * 2),
            nn.LeakyReLU(0.2),
            nn.Conv2d(f * 2, f * 4, 4, stride=2, padding=1),
            nn.BatchNorm2d(f * 4),
            nn.LeakyReLU(0.2),
            nn.Conv2d(f * 4, 1, 3, padding=1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def bicubic_downscale(pixels: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, H/scale, W/scale, 3) with Pillow's bicubic filter (antialiased)."""
    height, width = pixels.shape[1:3]
    if height % scale or width % scale:
        raise ValueError(f"tile sides must be multiples of {scale}, got {height}x{width}")
    size = (width // scale, height // scale)
    return np.stack(
        [
            np.asarray(Image.fromarray(tile).resize(size, Image.Resampling.BICUBIC))
            for tile in pixels
        ]
    )


class SRGANGenerator(NetworkGenerator):
    """4x super-resolution GAN: real tile -> bicubic 4x down -> generated back to full size."""

    kind: ClassVar[GeneratorKind] = "image-to-image"
    format_version: ClassVar[int] = 2  # 2: cosine learning-rate decay (older caches retrain)
    config_class: ClassVar[type] = SRGANConfig
    options_class: ClassVar[type] = SRGANOptions

    def __init__(
        self, name: str, config: SRGANConfig | None = None, options: SRGANOptions | None = None
    ) -> None:
        super().__init__(name, config, options)
        self.net: SRNet | None = None
        self.disc: PatchDiscriminator | None = None

    def build(self, seed: int) -> None:
        with seeded(seed):
            self.net = SRNet(self.config)
            self.disc = PatchDiscriminator(self.config.disc_features)

    def saved_modules(self) -> dict[str, nn.Module]:
        assert self.net is not None, "build() first"
        return {"generator": self.net}

    def train_steps(
        self, tiles: np.ndarray, seed: int, on_step: StepCallback | None
    ) -> TrainingLog:
        assert self.net is not None and self.disc is not None
        options = self.options
        if options.crop % SCALE:
            raise ValueError(f"crop must be a multiple of {SCALE}")
        net, disc = self.net.train(), self.disc.train()
        opt_g = torch.optim.Adam(net.parameters(), lr=options.learning_rate, betas=(0.9, 0.999))
        opt_d = torch.optim.Adam(
            disc.parameters(), lr=options.disc_learning_rate, betas=(0.9, 0.999)
        )
        # Cosine decay to a tenth, as for the autoencoders: at a budget of minutes the loss is
        # still falling when training stops, and the decay settles it instead of leaving it noisy.
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt_g, T_max=options.steps, eta_min=options.learning_rate / 10
        )
        pretrain = round(options.steps * options.pretrain_fraction)
        rng = np.random.default_rng(seed)
        log = TrainingLog(steps=options.steps)
        blocks = LossBlocks(log)
        bce = functional.binary_cross_entropy_with_logits
        for step in range(options.steps):
            crops = random_crops(tiles, rng, options.batch_size, options.crop)
            high = to_tensor(crops)
            low = to_tensor(bicubic_downscale(crops))
            fake = net(low)
            l1 = functional.l1_loss(fake, high)
            losses = {"l1": float(l1.detach())}
            if step < pretrain:
                generator_loss = l1
            else:
                # Discriminator: real crops -> 1, super-resolved crops -> 0.
                real_logits, fake_logits = disc(high), disc(fake.detach())
                disc_loss = bce(real_logits, torch.ones_like(real_logits)) + bce(
                    fake_logits, torch.zeros_like(fake_logits)
                )
                opt_d.zero_grad(set_to_none=True)
                disc_loss.backward()
                opt_d.step()
                # Generator: non-saturating loss, the discriminator should say "real".
                adversarial_logits = disc(fake)
                adversarial = bce(adversarial_logits, torch.ones_like(adversarial_logits))
                generator_loss = l1 + options.adversarial_weight * adversarial
                losses |= {"adv": float(adversarial.detach()), "disc": float(disc_loss.detach())}
            opt_g.zero_grad(set_to_none=True)
            generator_loss.backward()
            opt_g.step()
            schedule.step()
            # L1 is reported in [0, 1] pixel units (tensors are in [-1, 1]).
            blocks.add({**losses, "l1": losses["l1"] / 2}, last=step == options.steps - 1)
            if on_step is not None:
                on_step(step + 1, options.steps)
        return log

    def generate(self, tiles: np.ndarray, seed: int = 0, batch_size: int = 8) -> np.ndarray:
        """4x bicubic downscale then 4x super-resolution; same shape out; ``seed`` unused."""
        self.require_trained()
        assert self.net is not None
        pixels = stack_tiles(tiles)
        low = bicubic_downscale(pixels)
        self.net.eval()
        out = []
        with torch_settings(self.options.threads), torch.no_grad():
            for start in range(0, len(low), batch_size):
                out.append(to_pixels(self.net(to_tensor(low[start : start + batch_size]))))
        return np.concatenate(out)
