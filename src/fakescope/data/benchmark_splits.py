"""Reading a built benchmark (``fakescope data benchmark``) back as photo-grouped splits.

Tile, fake and processed-real file names start with the photo id (``<photo_id>_<y>_<x>`` or
``<photo_id>_<n>``), and ``splits.csv`` gives every photo its role (``generator``, ``source``,
``heldout``). Evaluation scripts split by *photo*, never by tile, so that no photo is on both
sides: these helpers are the one place that knows the naming.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fakescope.errors import InputError
from fakescope.io.image import load_image

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})
#: Unconditional families are stored as ``<family>/0_real`` + ``<family>/1_fake`` (own size).
UNCONDITIONAL = "dcgan"
FORGERIES = frozenset({"splice", "copymove", "inpaint", "inpaint-learned", "warp"})


def photo_of(path: Path) -> str:
    """The photo id a tile or fake was cut from (its name without the position suffix)."""
    parts = path.stem.split("_")
    tail = 2 if len(parts) >= 3 and parts[-1].isdigit() and parts[-2].isdigit() else 1
    return "_".join(parts[:-tail]) if len(parts) > tail else path.stem


def images_in(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted); none when it does not exist."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def decode(paths: Sequence[Path]) -> list[np.ndarray]:
    """Decoded RGB pixels; an unreadable file is reported on stderr and skipped."""
    pixels = []
    for path in paths:
        try:
            pixels.append(load_image(path).pixels)
        except InputError as exc:
            print(f"skipped {path}: {exc}", file=sys.stderr)
    return pixels


def centre_crop(pixels: np.ndarray, side: int) -> np.ndarray:
    """The central ``side`` x ``side`` window (the whole image along a shorter axis)."""
    height, width = pixels.shape[:2]
    top, left = max(0, (height - side) // 2), max(0, (width - side) // 2)
    return pixels[top : top + side, left : left + side]


def read_roles(root: Path) -> dict[str, str]:
    """``{photo_id: role}`` from the benchmark's ``splits.csv``."""
    with (root / "splits.csv").open(newline="") as handle:
        return {row["photo_id"]: row["role"] for row in csv.DictReader(handle)}


def split_photos(photos: Sequence[str], share: float, seed: int) -> set[str]:
    """A seeded ``share`` of the distinct ``photos`` (at least one)."""
    unique = sorted(set(photos))
    rng = np.random.default_rng(seed)
    n_chosen = max(1, round(share * len(unique)))
    return set(rng.permutation(unique)[:n_chosen].tolist())
