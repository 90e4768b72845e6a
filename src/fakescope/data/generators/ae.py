"""``ae-transposed``, ``ae-nearest``, ``ae-bilinear``, ``ae-pixelshuffle``: the autoencoder zoo.

Four image-to-image autoencoders (:mod:`fakescope.data.generators.autoencoder`) that differ
**only in their last upsampling layer**: the encoder, the decoder body (transposed convolutions)
and the 1x1 "to RGB" projection are the same, and so are the training data, loss, schedule and
seed. Chandrasegaran et al. (CVPR 2021) showed that the spectral discrepancies of CNN-generated
images come from that last layer, and Durall et al. (CVPR 2020) that upsampling is what makes
them; a detector trained on one variant and tested on the others measures exactly how much it
relies on that trace.

Training: L1 reconstruction of random 64x64 crops of real tiles, Adam 2e-3 with cosine decay,
3000 steps of 16 crops (the default build's recipe; ``ae-transposed`` with the default options
*is* the default model's generator). Generation: a tile in, its reconstruction out (any size
that is a multiple of 4).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any, ClassVar

import numpy as np
from torch import nn

from fakescope.data.generators.autoencoder import (
    Autoencoder,
    AutoencoderConfig,
    TrainingOptions,
    reconstruct,
    train_autoencoder,
)
from fakescope.data.generators.base import GeneratorKind, StepCallback, TrainingLog, stack_tiles
from fakescope.data.generators.network import NetworkGenerator, torch_settings


class AutoencoderGenerator(NetworkGenerator):
    """Image-to-image autoencoder; ``upsampling`` picks its last upsampling layer only."""

    kind: ClassVar[GeneratorKind] = "image-to-image"
    config_class: ClassVar[type] = AutoencoderConfig
    options_class: ClassVar[type] = TrainingOptions

    def __init__(
        self,
        name: str,
        config: AutoencoderConfig | None = None,
        options: TrainingOptions | None = None,
        *,
        upsampling: str | None = None,
    ) -> None:
        config = config if config is not None else AutoencoderConfig()
        if upsampling is not None:
            # The registry fixes the variant; a custom config can change width or levels only.
            config = replace(config, upsampling=upsampling)
        super().__init__(name, replace(config, seed=0), options)
        self.model: Autoencoder | None = None

    def identity(self) -> dict[str, Any]:
        # The config's own seed is a placeholder (fit's seed is used, and fingerprinted apart).
        return {key: value for key, value in asdict(self.config).items() if key != "seed"}

    def build(self, seed: int) -> None:
        self.model = Autoencoder(replace(self.config, seed=seed))

    def saved_modules(self) -> dict[str, nn.Module]:
        assert self.model is not None, "build() first"
        return {"autoencoder": self.model}

    def train_steps(
        self, tiles: np.ndarray, seed: int, on_step: StepCallback | None
    ) -> TrainingLog:
        total = self.options.steps
        # train_autoencoder builds the network from the same seeded config as build() and
        # owns the loop, so the default model build and the zoo share one training recipe.
        model, ae_log = train_autoencoder(
            tiles,
            replace(self.config, seed=seed),
            self.options,
            on_step=None if on_step is None else lambda step: on_step(step, total),
        )
        self.model = model
        return TrainingLog(steps=total, losses={"l1": ae_log.losses}, block=100)

    def generate(self, tiles: np.ndarray, seed: int = 0) -> np.ndarray:
        """Reconstruct (N, H, W, 3) uint8 tiles; deterministic (``seed`` is unused)."""
        self.require_trained()
        assert self.model is not None
        with torch_settings(self.options.threads):
            return reconstruct(self.model, stack_tiles(tiles))
