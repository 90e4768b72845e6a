"""Reading a built benchmark (``fakescope data benchmark``) back as photo-grouped splits.

Tile, fake and processed-real file names start with the photo id (``<photo_id>_<y>_<x>`` or
``<photo_id>_<n>``), and ``splits.csv`` gives every photo its role (``generator``, ``source``,
``heldout``). Evaluation scripts split by *photo*, never by tile, so that no photo is on both
sides: these helpers are the one place that knows the naming.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
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


# -- localization ----------------------------------------------------------------------------
#: Forgery kinds with a pixel mask, the ones localization trains and evaluates on.
LOCALIZATION_KINDS = ("splice", "copymove", "inpaint", "inpaint-learned", "warp")
#: Shares of the forged photos for training, threshold calibration and test.
LOCALIZATION_SHARES = (0.6, 0.15, 0.25)


@dataclass(frozen=True)
class LocalizationItem:
    """One image for localization: forged (with mask) or pristine (``mask`` None).

    ``original`` is the pristine tile a forgery was made from and ``flow`` a warp's ground-truth
    flow; ``kind`` is the forgery kind, or ``"pristine"``.
    """

    image: Path
    kind: str
    photo_id: str
    mask: Path | None = None
    original: Path | None = None
    flow: Path | None = None
    donor_photo_id: str | None = None


def localization_splits(
    root: Path,
    seed: int = 0,
    shares: tuple[float, float, float] = LOCALIZATION_SHARES,
    kinds: Sequence[str] = LOCALIZATION_KINDS,
) -> dict[str, list[LocalizationItem]]:
    """``{"train", "calibration", "test"}`` items of a benchmark, disjoint by photo.

    The photos that were forged are split (seeded) by ``shares``; every forgery and every
    pristine tile of ``real/source`` goes to its photo's split. A splice also carries pixels
    of its donor photo, so one whose donor is in another split is left out rather than let a
    photo's pixels sit on both sides. Pristine tiles of ``real/heldout`` join the test split.
    """
    root = Path(root)
    per_kind: dict[str, list[LocalizationItem]] = {}
    for kind in kinds:
        items = []
        for image in images_in(root / "fake" / kind):
            meta_path = root / "meta" / kind / f"{image.stem}.json"
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
            mask = root / "masks" / kind / f"{image.stem}.png"
            flow = root / "flow" / kind / f"{image.stem}.npy"
            target = (meta.get("target") or {}).get("real")
            donor = (meta.get("donor") or {}).get("photo_id")
            items.append(
                LocalizationItem(
                    image=image,
                    kind=kind,
                    photo_id=photo_of(image),
                    mask=mask if mask.is_file() else None,
                    original=root / target if target else None,
                    flow=flow if flow.is_file() else None,
                    donor_photo_id=donor,
                )
            )
        per_kind[kind] = items
    forged_photos = sorted({item.photo_id for items in per_kind.values() for item in items})
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(forged_photos))
    n_train = round(shares[0] * len(order))
    n_calibration = max(1, round(shares[1] * len(order)))
    split_of = {
        photo: "train" if i < n_train else "calibration" if i < n_train + n_calibration else "test"
        for i, photo in enumerate(order)
    }
    splits: dict[str, list[LocalizationItem]] = {"train": [], "calibration": [], "test": []}
    for items in per_kind.values():
        for item in items:
            split = split_of[item.photo_id]
            if item.donor_photo_id and split_of.get(item.donor_photo_id, split) != split:
                continue
            splits[split].append(item)
    for tile in images_in(root / "real" / "source"):
        if (split := split_of.get(photo_of(tile))) is not None:
            splits[split].append(LocalizationItem(tile, "pristine", photo_of(tile)))
    for tile in images_in(root / "real" / "heldout"):
        splits["test"].append(LocalizationItem(tile, "pristine", photo_of(tile)))
    return splits
