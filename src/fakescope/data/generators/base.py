"""The contract every member of the generator zoo follows, and its weight cache (no torch here).

Three kinds of generators (:data:`GeneratorKind`):

- ``"image-to-image"``: ``fit(real_tiles, seed)`` then ``generate(tiles) -> tiles`` of the same
  shape (autoencoders, super-resolution). Applied to photos disjoint from those it trained on.
- ``"unconditional"``: ``fit(real_tiles, seed)`` then ``generate(n, seed)`` samples from noise
  (DCGAN). There is no source photo.
- ``"processing"``: no network, no training; ``process(pixels, rng)`` returns a processed copy
  that is still a *real* photo (label 0, a control family).

Network generators are cached by a **fingerprint**: the SHA-256 of the generator's name, format
version, architecture config, training options, seed, torch version and the ordered SHA-256 of
every training tile's pixels. A folder ``<cache>/<name>-<fingerprint[:16]>/`` holds
``model.safetensors`` (weights, never a pickle) and ``config.json``; a cache hit therefore loads
exactly the model that the same inputs would train, and anything that changes the model changes
the folder. The cache root is ``$FAKESCOPE_CACHE/generators`` when the variable is set, else
``~/.cache/fakescope/generators``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

GeneratorKind = Literal["image-to-image", "unconditional", "processing"]
CACHE_ENV_VAR = "FAKESCOPE_CACHE"
DEFAULT_CACHE_ROOT = Path("~/.cache/fakescope")
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
TORCH_HINT = "pip install -e .[torch]"

# (steps done, total steps): called after every training step, e.g. to advance a progress bar.
StepCallback = Callable[[int, int], None]


def default_cache_dir() -> Path:
    """``$FAKESCOPE_CACHE/generators`` if the variable is set, else ``~/.cache/fakescope/...``."""
    root = os.environ.get(CACHE_ENV_VAR) or str(DEFAULT_CACHE_ROOT)
    return Path(root).expanduser() / "generators"


def tile_hash(pixels: np.ndarray) -> str:
    """SHA-256 of a tile's shape and pixel bytes: what the model saw, whatever the file was."""
    array = np.ascontiguousarray(pixels, dtype=np.uint8)
    digest = hashlib.sha256(repr(array.shape).encode("ascii"))
    digest.update(array.tobytes())
    return digest.hexdigest()


def fingerprint(document: dict[str, Any]) -> str:
    """SHA-256 of a JSON document with sorted keys (the identity of a trained model)."""
    payload = json.dumps(document, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def stack_tiles(tiles: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Validate and stack RGB ``uint8`` tiles of one size into (N, H, W, 3)."""
    array = np.asarray(tiles) if not isinstance(tiles, np.ndarray) else tiles
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8 or len(array) == 0:
        raise ValueError(
            f"expected a non-empty (N, H, W, 3) uint8 batch of tiles, got {array.shape} "
            f"{array.dtype}"
        )
    return array


@dataclass
class TrainingLog:
    """What happened during training; saved in ``config.json`` next to the weights."""

    steps: int = 0
    seconds: float = 0.0
    train_tiles: int = 0
    # Loss name -> its mean over each block of ``block`` steps (the last block may be shorter).
    losses: dict[str, list[float]] = field(default_factory=dict)
    block: int = 100

    def final(self) -> dict[str, float]:
        """The last block's mean of every loss."""
        return {name: values[-1] for name, values in self.losses.items() if values}


class LossBlocks:
    """Averages losses over blocks of steps, so a log stays short for long runs."""

    def __init__(self, log: TrainingLog) -> None:
        self.log = log
        self._sums: dict[str, float] = {}
        self._count = 0

    def add(self, values: dict[str, float], last: bool) -> None:
        for name, value in values.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._count += 1
        if self._count == self.log.block or last:
            for name, total in self._sums.items():
                self.log.losses.setdefault(name, []).append(total / self._count)
            self._sums, self._count = {}, 0


@dataclass(frozen=True)
class CacheResult:
    """Where a trained model lives and whether it was loaded rather than trained."""

    path: Path
    fingerprint: str
    hit: bool
