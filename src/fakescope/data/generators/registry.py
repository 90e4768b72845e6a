"""The generator zoo: name -> lazily imported class, so listing names never imports torch.

Adding a generator is one entry in :data:`GENERATORS` (module, class, fixed keyword arguments)
plus its module; nothing dispatches on names elsewhere.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakescope.data.generators.base import CONFIG_NAME, TORCH_HINT, GeneratorKind
from fakescope.errors import FakescopeError


class UnknownGeneratorError(FakescopeError, KeyError):
    """No generator of that name is registered."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown generator {name!r}; choose from: {', '.join(GENERATORS)}")

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


class GeneratorUnavailableError(FakescopeError, ImportError):
    """The generator's dependencies (torch, safetensors) are not installed."""


@dataclass(frozen=True)
class GeneratorEntry:
    """Where a generator lives and how the registry instantiates it."""

    module: str
    attribute: str
    kind: GeneratorKind
    summary: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    needs_torch: bool = True


_AE = "fakescope.data.generators.ae"
GENERATORS: dict[str, GeneratorEntry] = {
    "ae-transposed": GeneratorEntry(
        _AE,
        "AutoencoderGenerator",
        "image-to-image",
        "autoencoder, last upsampling layer: transposed convolution",
        {"upsampling": "transposed"},
    ),
    "ae-nearest": GeneratorEntry(
        _AE,
        "AutoencoderGenerator",
        "image-to-image",
        "autoencoder, last upsampling layer: nearest neighbour + conv3x3",
        {"upsampling": "nearest"},
    ),
    "ae-bilinear": GeneratorEntry(
        _AE,
        "AutoencoderGenerator",
        "image-to-image",
        "autoencoder, last upsampling layer: bilinear + conv3x3",
        {"upsampling": "bilinear"},
    ),
    "ae-pixelshuffle": GeneratorEntry(
        _AE,
        "AutoencoderGenerator",
        "image-to-image",
        "autoencoder, last upsampling layer: conv3x3 + pixel shuffle",
        {"upsampling": "pixelshuffle"},
    ),
    "sr-gan": GeneratorEntry(
        "fakescope.data.generators.srgan",
        "SRGANGenerator",
        "image-to-image",
        "ESRGAN-style 4x super-resolution GAN (bicubic 4x down, generated back up)",
    ),
    "dcgan": GeneratorEntry(
        "fakescope.data.generators.dcgan",
        "DCGAN",
        "unconditional",
        "unconditional DCGAN, 64x64 samples from latent vectors",
    ),
    "inpaint-net": GeneratorEntry(
        "fakescope.data.generators.inpainter",
        "InpaintNet",
        # Image-to-image with a mask argument: generate(tiles, seed, masks=None) fills the
        # masks (default: one seeded hole per tile), so `data synth` runs it like the others.
        "image-to-image",
        "gated-convolution inpainter (DeepFill v2 style): fills holes, the rest untouched",
    ),
    "processed-real": GeneratorEntry(
        "fakescope.data.generators.processed",
        "ProcessedReal",
        "processing",
        "real photos resized, recompressed, blurred or screenshotted (label 0, a control)",
        needs_torch=False,
    ),
}


def list_generators() -> list[str]:
    """Registered names, in registry order."""
    return list(GENERATORS)


def get_entry(name: str) -> GeneratorEntry:
    try:
        return GENERATORS[name]
    except KeyError:
        raise UnknownGeneratorError(name) from None


def get_generator_class(name: str) -> type[Any]:
    """Import and return the class behind ``name`` (torch is imported here, if at all)."""
    entry = get_entry(name)
    try:
        module = importlib.import_module(entry.module)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise GeneratorUnavailableError(
            f"generator {name!r} needs {missing}, which is not installed: {TORCH_HINT}"
        ) from exc
    return getattr(module, entry.attribute)


def create_generator(name: str, **kwargs: Any) -> Any:
    """A fresh, untrained generator; ``kwargs`` (e.g. ``config=``, ``options=``) are passed on."""
    cls = get_generator_class(name)
    return cls(name=name, **{**get_entry(name).kwargs, **kwargs})


def load_generator(directory: str | os.PathLike[str]) -> Any:
    """Load a saved network generator from its folder (``config.json`` names the generator)."""
    document = json.loads((Path(directory) / CONFIG_NAME).read_text(encoding="utf-8"))
    return get_generator_class(document["generator"]).load(directory)
