"""Shared machinery of the zoo's torch generators: seeding, determinism, safetensors, the cache.

A subclass of :class:`NetworkGenerator` declares its architecture config and training options
(two frozen dataclasses), builds its networks from a seed, trains them, and names the modules
that generation needs (a GAN's discriminator is not saved: it is only needed for training).
Everything else (fit with a pinned thread count and deterministic algorithms, the fingerprinted
cache, save/load as ``model.safetensors`` + ``config.json``) lives here once.

Reproducibility: networks are built under ``torch.manual_seed(seed)`` inside ``fork_rng`` (the
caller's global RNG is untouched), batches and noise come from generators seeded with the same
seed, and ``torch.use_deterministic_algorithms(True)`` is on while training, so a run is
bit-identical for the same torch version and thread count (the count is part of the options
because float sums depend on how work is split between threads).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from fakescope.data.generators.base import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    CacheResult,
    GeneratorKind,
    StepCallback,
    TrainingLog,
    default_cache_dir,
    fingerprint,
    stack_tiles,
    tile_hash,
)


@contextmanager
def torch_settings(threads: int, deterministic: bool = True) -> Iterator[None]:
    """Pin the thread count and deterministic algorithms for a block, then restore both."""
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Global torch RNG seeded inside the block, the caller's state restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [-1, 1] (zero-centred, as GANs use)."""
    # A copy: decoded images are often read-only arrays, which torch.from_numpy warns about.
    array = torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(0, 3, 1, 2).float()
    return array / 127.5 - 1.0


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float in [-1, 1] -> (N, H, W, 3) uint8, clipped and rounded."""
    scaled = ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).contiguous().numpy()


def random_crops(tiles: np.ndarray, rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """``count`` random ``size`` x ``size`` crops of random tiles (N, H, W, 3)."""
    if tiles.shape[1] < size or tiles.shape[2] < size:
        raise ValueError(f"training crops of {size} do not fit tiles of {tiles.shape[1:3]}")
    index = rng.integers(0, len(tiles), count)
    ys = rng.integers(0, tiles.shape[1] - size + 1, count)
    xs = rng.integers(0, tiles.shape[2] - size + 1, count)
    return np.stack(
        [tiles[i, y : y + size, x : x + size] for i, y, x in zip(index, ys, xs, strict=True)]
    )


class NetworkGenerator(ABC):
    """A seeded torch generator with a fingerprinted safetensors cache (see module docstring)."""

    kind: ClassVar[GeneratorKind]
    label: ClassVar[int] = 1  # generated images are fakes
    # Part of the fingerprint: bump it whenever the architecture code or the training recipe
    # changes, since the code itself is not hashed and old cache entries must stop matching.
    format_version: ClassVar[int] = 1
    config_class: ClassVar[type]
    options_class: ClassVar[type]

    def __init__(self, name: str, config: Any | None = None, options: Any | None = None) -> None:
        self.name = name
        self.config = config if config is not None else self.config_class()
        self.options = options if options is not None else self.options_class()
        self.seed: int | None = None
        self.log: TrainingLog | None = None
        self.cache: CacheResult | None = None

    # -- what a subclass provides ---------------------------------------------------------

    @abstractmethod
    def build(self, seed: int) -> None:
        """Create the networks with initial weights drawn from ``seed``."""

    @abstractmethod
    def saved_modules(self) -> dict[str, nn.Module]:
        """The modules that generation needs, by name (their weights are saved)."""

    @abstractmethod
    def train_steps(
        self, tiles: np.ndarray, seed: int, on_step: StepCallback | None
    ) -> TrainingLog:
        """Train the built networks on (N, H, W, 3) uint8 tiles; torch settings already pinned."""

    def identity(self) -> dict[str, Any]:
        """Architecture config as it enters the fingerprint (subclasses may add fixed fields)."""
        return asdict(self.config)

    # -- shared behaviour -------------------------------------------------------------------

    @property
    def trained(self) -> bool:
        return self.seed is not None

    def require_trained(self) -> None:
        if not self.trained:
            raise RuntimeError(f"{self.name}: call fit() or load() before generating")

    def fit(
        self,
        real_tiles: Sequence[np.ndarray] | np.ndarray,
        seed: int,
        on_step: StepCallback | None = None,
    ) -> TrainingLog:
        """Build from ``seed`` and train on (N, H, W, 3) uint8 real tiles; deterministic."""
        tiles = stack_tiles(real_tiles)
        with torch_settings(self.options.threads):
            self.build(seed)
            start = time.perf_counter()
            log = self.train_steps(tiles, seed, on_step)
            log.seconds = time.perf_counter() - start
            log.train_tiles = len(tiles)
        for module in self.saved_modules().values():
            module.eval()
        self.seed, self.log = seed, log
        return log

    def fingerprint(self, real_tiles: Sequence[np.ndarray] | np.ndarray, seed: int) -> str:
        """Identity of the model that ``fit(real_tiles, seed)`` would train."""
        return fingerprint(
            {
                "generator": self.name,
                "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "format_version": self.format_version,
                "config": self.identity(),
                "options": asdict(self.options),
                "seed": seed,
                "torch": torch.__version__,
                # Ordered: training samples tiles by index, so order changes the model.
                "data": [tile_hash(tile) for tile in real_tiles],
            }
        )

    def save(self, directory: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``directory``."""
        self.require_trained()
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        state = {
            f"{module_name}.{key}": tensor.detach().contiguous()
            for module_name, module in self.saved_modules().items()
            for key, tensor in module.state_dict().items()
        }
        save_file(state, str(out / WEIGHTS_NAME), metadata={"generator": self.name})
        document = {
            "format_version": self.format_version,
            "generator": self.name,
            "config": asdict(self.config),
            "options": asdict(self.options),
            "seed": self.seed,
            "torch_version": torch.__version__,
            "log": asdict(self.log) if self.log is not None else None,
            **(extra or {}),
        }
        (out / CONFIG_NAME).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Self:
        """Rebuild a saved generator (eval mode) from its folder."""
        folder = Path(directory)
        document = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
        if document.get("format_version") != cls.format_version:
            raise ValueError(
                f"{folder}: unsupported format_version {document.get('format_version')}"
            )
        generator = cls(
            document["generator"],
            cls.config_class(**document["config"]),
            cls.options_class(**document["options"]),
        )
        generator.build(int(document["seed"]))
        state = load_file(str(folder / WEIGHTS_NAME))
        for module_name, module in generator.saved_modules().items():
            prefix = f"{module_name}."
            module.load_state_dict(
                {
                    key[len(prefix) :]: value
                    for key, value in state.items()
                    if key.startswith(prefix)
                }
            )
            module.eval()
        generator.seed = int(document["seed"])
        if document.get("log"):
            generator.log = TrainingLog(**document["log"])
        return generator

    def fit_cached(
        self,
        real_tiles: Sequence[np.ndarray] | np.ndarray,
        seed: int,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        rebuild: bool = False,
        on_step: StepCallback | None = None,
        extra: dict[str, Any] | None = None,
    ) -> CacheResult:
        """Load the cached model with this fingerprint, or train (``rebuild``: always) and save.

        The model is written to a temporary folder and renamed into place, so an interrupted
        run never leaves a half-written cache entry that a later run would trust.
        """
        tiles = stack_tiles(real_tiles)
        key = self.fingerprint(tiles, seed)
        root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        folder = root / f"{self.name}-{key[:16]}"
        if not rebuild and self._try_load(folder, key):
            self.cache = CacheResult(folder, key, hit=True)
            return self.cache
        self.fit(tiles, seed, on_step)
        staging = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        self.save(staging, extra={"fingerprint": key, **(extra or {})})
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
        self.cache = CacheResult(folder, key, hit=False)
        return self.cache

    def _try_load(self, folder: Path, key: str) -> bool:
        """Adopt the weights in ``folder`` when its fingerprint is ``key``; False otherwise."""
        try:
            document = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
            if document.get("fingerprint") != key:
                return False
            loaded = type(self).load(folder)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError):
            return False  # missing or unreadable cache entry: train again
        self.__dict__.update(loaded.__dict__)
        return True


def batched(
    function: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """Apply ``function`` to ``images`` in batches without gradients."""
    with torch.no_grad():
        return torch.cat(
            [function(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        )
