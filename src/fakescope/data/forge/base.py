"""What every forgery kind shares: its result, its signature, seeding and the OpenCV guard."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from fakescope.errors import FakescopeError

INSTALL_HINT = "pip install -e .[data]"


class MissingDependencyError(FakescopeError, ImportError):
    """An optional package that a forgery kind needs is not installed."""


class ForgeryError(FakescopeError, ValueError):
    """One image cannot take this forgery (too small, no room for a second region, ...)."""


def require_cv2() -> ModuleType:
    """The ``cv2`` module, or an error that says how to install it.

    Imported here rather than at module level so that ``fakescope`` and the forge registry load
    without OpenCV; only the kinds that need it fail, and with an actionable message.
    """
    try:
        import cv2
    except ImportError as exc:
        raise MissingDependencyError(
            f"OpenCV is needed to forge images; install it with `{INSTALL_HINT}` "
            "(or `pip install opencv-python-headless`)"
        ) from exc
    return cv2


@dataclass(frozen=True)
class Forgery:
    """A forged image and its exact ground truth.

    ``mask`` is True where the operation wrote new content: it is built from the operation
    itself (the pasted shape, the inpainted hole, the displacement field), never from a diff,
    so a pixel whose new value happens to equal the old one is still marked.
    """

    pixels: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) bool
    params: dict[str, Any]  # JSON-ready: everything sampled, enough to reproduce the forgery
    # Further masks by folder name under masks/, e.g. {"copymove-source": region copied from}.
    extra_masks: Mapping[str, np.ndarray] = field(default_factory=dict)
    flow: np.ndarray | None = None  # (H, W, 2) float32 backward flow (dy, dx), for warps

    def validate(self, shape: tuple[int, ...]) -> None:
        """Fail loudly when a kind breaks the contract (a bug, never bad input)."""
        height, width = shape[:2]
        if self.pixels.shape != shape or self.pixels.dtype != np.uint8:
            raise AssertionError(f"forged pixels {self.pixels.shape} {self.pixels.dtype}")
        masks = {"mask": self.mask, **self.extra_masks}
        for name, mask in masks.items():
            if mask.shape != (height, width) or mask.dtype != np.bool_:
                raise AssertionError(f"{name} is {mask.shape} {mask.dtype}, not bool (H, W)")
        if self.flow is not None and (
            self.flow.shape != (height, width, 2) or self.flow.dtype != np.float32
        ):
            raise AssertionError(f"flow is {self.flow.shape} {self.flow.dtype}")


class ForgeFunction(Protocol):
    """Forge ``target`` (H, W, 3) uint8 with the random stream ``rng``.

    ``donor`` is a second real image (of another photo) for kinds that paste foreign content;
    other kinds ignore it. Kinds may take further keyword-only options that fix a parameter
    instead of sampling it (tests and ablations use them); the sampled values are in ``params``.
    """

    def __call__(
        self, target: np.ndarray, rng: np.random.Generator, *, donor: np.ndarray | None = None
    ) -> Forgery: ...


@dataclass(frozen=True)
class ForgeryKind:
    """A registry entry: how to forge, and what the forgery needs."""

    name: str
    forge: ForgeFunction
    summary: str
    needs_donor: bool = False
    # Raises MissingDependencyError when the kind cannot run here; checked once before a batch.
    ensure_available: Callable[[], object] = require_cv2


def forgery_entropy(seed: int, kind: str, index: int, source: str) -> list[int]:
    """The seed material for one forgery: a pure function of what it is, not of run order.

    Hashing the kind and the source path (rather than drawing from one shared stream) means a
    forgery is the same whether it is made first or last, alone or among thousands.
    """
    digest = hashlib.sha256(f"{kind}\0{source}".encode()).digest()
    return [int(seed), int.from_bytes(digest[:8], "little"), int(index)]


def choose(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    """One of ``options`` as a plain ``str`` (``rng.choice`` would give a numpy string)."""
    return options[int(rng.integers(len(options)))]


def composite(target: np.ndarray, content: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``content`` inside ``mask``, ``target`` everywhere else.

    Every kind ends with this, so pixels outside the mask are the original bytes whatever the
    OpenCV routine did near the region's border.
    """
    return np.where(mask[..., None], content, target).astype(np.uint8)


def to_json_float(value: float, digits: int = 4) -> float:
    return round(float(value), digits)
