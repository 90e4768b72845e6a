"""A tiny, seeded image-to-image autoencoder whose upsampling layers leave spectral fingerprints.

Why an autoencoder: the default spectral detector (Durall et al. 2019) needs fakes that share
the reals' content but carry a generator's frequency signature. Reconstructing real tiles through
a small encoder-decoder does exactly that, trains in minutes on a CPU, and needs no external
weights or data.

Architecture (``levels=2`` gives 4x down/up, ``levels=3`` gives 8x)::

    x * 2 - 1                                              # zero-centred input
    conv3x3(3 -> w) ReLU
    levels x [conv4x4 stride 2 (c -> 2c) ReLU]            # encoder, strided convolutions
    (levels - 1) x [BODY_UP(c -> c/2) ReLU]                # decoder body: transposed conv
    LAST_UP(2w -> w) ReLU                                  # the last upsampling layer
    conv1x1(w -> 3), then * 0.5 + 0.5                      # "to RGB", back to [0, 1]

``config.upsampling`` chooses only ``LAST_UP``; ``BODY_UP`` is ``config.body_upsampling``
(``"transposed"`` by default) and is the same for every variant. Chandrasegaran et al. (CVPR
2021) showed that the spectral discrepancies of CNN generators come from the *last* upsampling
layer, so the variants of the generator zoo (``ae-transposed``, ``ae-nearest``, ``ae-bilinear``,
``ae-pixelshuffle``) differ in that layer only and any difference in their fingerprints is the
last layer's doing. With the defaults (``upsampling="transposed"``) every decoder layer is a
transposed convolution, which is exactly the network the default model build has always trained:
the layers are created in the same order from the same seed, so its weights stay bit-identical.

The decoder ends with a 1x1 projection on purpose: a spatial convolution after the last
upsampling step would partly smooth away the pattern the upsampler leaves, and the point is to
keep that fingerprint (as "toRGB" layers in ProGAN/StyleGAN do). Upsampling variants are a small
mapping, :data:`UPSAMPLERS`: ``"transposed"`` (ConvTranspose2d k=4 s=2: zero-insertion
upsampling whose learned kernels leave periodic, checkerboard-like spectral peaks even when the
kernel size divides by the stride, Odena et al. 2016; Durall et al. CVPR 2020), ``"nearest"`` and
``"bilinear"`` (interpolation then conv3x3) and ``"pixelshuffle"`` (conv3x3 to 4c then
PixelShuffle). Each variant gets its own weights; only ``"transposed"`` is trained by the default
build; the zoo (:mod:`fakescope.data.generators.ae`) trains all four.

Reproducibility: weights are initialised under ``torch.manual_seed(config.seed)``, crops come
from a NumPy generator with the same seed, and deterministic algorithms are enforced; results are
bit-identical for the same torch version and thread count. Weights are stored with safetensors
next to a JSON config (no pickle), under a fingerprint of config, training options and training
data, so a cached model is reused only when all of them match.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FORMAT_VERSION = 2  # 2: zero-centred input/output


def _transposed(c_in: int, c_out: int) -> nn.Module:
    return nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1)


def _nearest(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1)
    )


def _bilinear(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(c_in, c_out, 3, padding=1),
    )


def _pixelshuffle(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, c_out * 4, 3, padding=1), nn.PixelShuffle(2))


# Name -> factory(c_in, c_out) of a 2x upsampling layer. A new variant is one entry here.
UPSAMPLERS: dict[str, Callable[[int, int], nn.Module]] = {
    "transposed": _transposed,
    "nearest": _nearest,
    "bilinear": _bilinear,
    "pixelshuffle": _pixelshuffle,
}


@dataclass(frozen=True)
class AutoencoderConfig:
    """Everything that defines the network's shape and initial weights."""

    upsampling: str = "transposed"  # the LAST upsampling layer only
    width: int = 16  # channels after the first conv; doubled at each downsampling level
    levels: int = 2  # downsampling steps of 2: 2 -> 4x, 3 -> 8x
    seed: int = 0
    body_upsampling: str = "transposed"  # every decoder upsampling layer before the last

    def __post_init__(self) -> None:
        for name in ("upsampling", "body_upsampling"):
            value = getattr(self, name)
            if value not in UPSAMPLERS:
                raise ValueError(f"{name} must be one of {sorted(UPSAMPLERS)}: {value}")
        if self.width < 1 or self.levels < 1:
            raise ValueError("width and levels must be positive")

    @property
    def factor(self) -> int:
        """Input sides must be multiples of this."""
        return 2**self.levels


@dataclass(frozen=True)
class TrainingOptions:
    """How the autoencoder is trained (part of the cache fingerprint)."""

    steps: int = 3000
    batch_size: int = 16
    crop: int = 64  # random crops keep steps cheap; the net is fully convolutional
    learning_rate: float = 2e-3
    threads: int = 2  # pinned: float sums depend on the thread split


@dataclass
class TrainingLog:
    """What happened during training, saved in the JSON config."""

    seconds: float = 0.0
    final_loss: float = float("nan")  # mean L1 over the last 100 steps, pixel values in [0, 1]
    losses: list[float] = field(default_factory=list)  # mean L1 per block of 100 steps
    train_tiles: int = 0


class Autoencoder(nn.Module):
    """Strided-conv encoder, configurable-upsampling decoder (see module docstring)."""

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        with torch.random.fork_rng(devices=[]):
            # Seeded construction that leaves the caller's global RNG state untouched.
            torch.manual_seed(config.seed)
            channels = config.width
            encoder: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU()]
            for _ in range(config.levels):
                encoder += [nn.Conv2d(channels, channels * 2, 4, stride=2, padding=1), nn.ReLU()]
                channels *= 2
            decoder: list[nn.Module] = []
            for level in range(config.levels):
                # Same construction order for every variant: the body's initial weights are
                # identical across variants, and the all-transposed default is unchanged.
                last = level == config.levels - 1
                upsample = UPSAMPLERS[config.upsampling if last else config.body_upsampling]
                decoder += [upsample(channels, channels // 2), nn.ReLU()]
                channels //= 2
            decoder.append(nn.Conv2d(channels, 3, 1))
            self.encoder = nn.Sequential(*encoder)
            self.decoder = nn.Sequential(*decoder)

    @property
    def last_upsampler(self) -> nn.Module:
        """The decoder's last upsampling layer: the only part that differs between variants."""
        return self.decoder[2 * (self.config.levels - 1)]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float in [0, 1] -> same shape; H and W multiples of ``config.factor``."""
        height, width = images.shape[-2:]
        if height % self.config.factor or width % self.config.factor:
            raise ValueError(f"image sides must be multiples of {self.config.factor}")
        # Zero-centred values in and out, the usual normalisation: it converged faster in a
        # short test (held-out L1 after 600 steps 11.6/255 vs 12.4/255 with [0, 1] values).
        return self.decoder(self.encoder(images * 2.0 - 1.0)) * 0.5 + 0.5


def _to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1]."""
    # A copy: decoded images are often read-only arrays, which torch.from_numpy warns about.
    return torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255.0


def _to_pixels(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float -> (N, H, W, 3) uint8, clipped and rounded."""
    scaled = (images.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).contiguous().numpy()


def train_autoencoder(
    tiles: np.ndarray,
    config: AutoencoderConfig = AutoencoderConfig(),
    options: TrainingOptions = TrainingOptions(),
    progress: Callable[[int, float], None] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> tuple[Autoencoder, TrainingLog]:
    """Train on (N, H, W, 3) ``uint8`` tiles with an L1 reconstruction loss; CPU, deterministic.

    ``progress(step, mean_l1)`` is called every 100 steps (a log line); ``on_step(step)`` after
    every step (a progress bar).
    """
    if tiles.ndim != 4 or tiles.shape[-1] != 3 or tiles.dtype != np.uint8:
        raise ValueError(f"expected (N, H, W, 3) uint8 tiles, got {tiles.shape} {tiles.dtype}")
    crop = options.crop
    if crop % config.factor or tiles.shape[1] < crop or tiles.shape[2] < crop:
        raise ValueError(f"crop {crop} must fit the tiles and be a multiple of {config.factor}")
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(options.threads)
    torch.use_deterministic_algorithms(True)
    try:
        model = Autoencoder(config)
        model.train()
        optimiser = torch.optim.Adam(model.parameters(), lr=options.learning_rate)
        # Cosine decay to a tenth: settles the loss without a tuning schedule.
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimiser, T_max=options.steps, eta_min=options.learning_rate / 10
        )
        rng = np.random.default_rng(config.seed)
        log = TrainingLog(train_tiles=len(tiles))
        block: list[float] = []
        start = time.perf_counter()
        for step in range(options.steps):
            index = rng.integers(0, len(tiles), options.batch_size)
            ys = rng.integers(0, tiles.shape[1] - crop + 1, options.batch_size)
            xs = rng.integers(0, tiles.shape[2] - crop + 1, options.batch_size)
            batch = np.stack(
                [
                    tiles[i, y : y + crop, x : x + crop]
                    for i, y, x in zip(index, ys, xs, strict=True)
                ]
            )
            images = _to_tensor(batch)
            loss = torch.nn.functional.l1_loss(model(images), images)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            block.append(float(loss.detach()))
            if on_step is not None:
                on_step(step + 1)
            if len(block) == 100 or step == options.steps - 1:
                log.losses.append(float(np.mean(block)))
                if progress is not None:
                    progress(step + 1, log.losses[-1])
                block = []
        log.seconds = time.perf_counter() - start
        log.final_loss = log.losses[-1] if log.losses else float("nan")
        model.eval()
        return model, log
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic)


@torch.no_grad()
def reconstruct(model: Autoencoder, pixels: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Run (N, H, W, 3) ``uint8`` images through the autoencoder; returns the same shape."""
    if pixels.ndim == 3:
        return reconstruct(model, pixels[None], batch_size)[0]
    model.eval()
    out = [
        _to_pixels(model(_to_tensor(pixels[start : start + batch_size])))
        for start in range(0, len(pixels), batch_size)
    ]
    return np.concatenate(out) if out else np.empty_like(pixels)


# Fields added to AutoencoderConfig after FORMAT_VERSION 2, with the value that reproduces the
# network built before they existed.
_LATER_FIELDS: dict[str, Any] = {"body_upsampling": "transposed"}


def _fingerprint_config(config: AutoencoderConfig) -> dict[str, Any]:
    """The config as fingerprinted: later fields are left out while they keep the old network.

    Why: the fingerprints (and so the caches) of models trained before ``body_upsampling``
    existed stay valid, because those models are exactly the ones built with its default.
    """
    document = asdict(config)
    for name, old_value in _LATER_FIELDS.items():
        if document.get(name) == old_value:
            del document[name]
    return document


def training_fingerprint(
    config: AutoencoderConfig, options: TrainingOptions, data_keys: Sequence[str]
) -> str:
    """SHA-256 of config, options, torch version and the identities of the training tiles."""
    payload = json.dumps(
        {
            "format": FORMAT_VERSION,
            "config": _fingerprint_config(config),
            "options": asdict(options),
            "torch": torch.__version__,
            "data": sorted(data_keys),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def save_autoencoder(
    model: Autoencoder,
    directory: str | os.PathLike[str],
    *,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (config plus ``extra``) into a folder."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_NAME), metadata={"format": "fakescope-autoencoder"})
    document = {"format_version": FORMAT_VERSION, "config": asdict(model.config), **(extra or {})}
    (out / CONFIG_NAME).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return out


def load_autoencoder(directory: str | os.PathLike[str]) -> tuple[Autoencoder, dict[str, Any]]:
    """Rebuild a saved autoencoder; returns the model (eval mode) and its JSON document."""
    folder = Path(directory)
    document = json.loads((folder / CONFIG_NAME).read_text())
    if document.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{folder}: unsupported format_version {document.get('format_version')}")
    model = Autoencoder(AutoencoderConfig(**document["config"]))
    model.load_state_dict(load_file(str(folder / WEIGHTS_NAME)))
    model.eval()
    return model, document


def train_or_load(
    directory: str | os.PathLike[str],
    tiles: np.ndarray,
    data_keys: Sequence[str],
    config: AutoencoderConfig = AutoencoderConfig(),
    options: TrainingOptions = TrainingOptions(),
    progress: Callable[[int, float], None] | None = None,
) -> tuple[Autoencoder, dict[str, Any]]:
    """Reuse the model cached in ``directory`` when its fingerprint matches, else train anew.

    ``data_keys`` identify the training tiles (e.g. tile names); together with the config and
    options they make the fingerprint, so changing any of them retrains.
    """
    fingerprint = training_fingerprint(config, options, data_keys)
    folder = Path(directory)
    if (folder / CONFIG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file():
        try:
            model, document = load_autoencoder(folder)
        except (ValueError, KeyError, OSError, RuntimeError):
            pass  # unreadable cache: train again below
        else:
            if document.get("fingerprint") == fingerprint:
                return model, document
    model, log = train_autoencoder(tiles, config, options, progress)
    extra = {
        "fingerprint": fingerprint,
        "training": asdict(options),
        "log": asdict(log),
        "torch_version": torch.__version__,
        "train_tiles": sorted(data_keys),
    }
    save_autoencoder(model, folder, extra=extra)
    return load_autoencoder(folder)
