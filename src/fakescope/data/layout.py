"""Labelled dataset layouts that ``train`` and ``eval`` read.

Accepted layouts, found anywhere under the root:

- ``ROOT/real/**`` and ``ROOT/fake/**``. Images directly under ``fake/`` belong to the group
  ``fake``; images under ``fake/<generator>/**`` to the group ``<generator>``. Reals here are
  shared by every group.
- CNNDetection's ``0_real`` / ``1_fake`` folders at any depth, e.g.
  ``ROOT/progan/car/0_real``. Their group is the path of their parent relative to the root
  (``progan/car``), and reals are paired with the fakes of the same group.

Files are picked up by image extension. ``photo_id`` is the file stem up to the first ``_``
when files are named ``<photo_id>_...`` (as tiles are), so splits can keep a photo's tiles
together; otherwise it is the file's own path.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fakescope.errors import InputError
from fakescope.io.image import is_image_path

REAL_DIRS = frozenset({"real", "0_real"})
FAKE_DIRS = frozenset({"fake", "1_fake"})
SHARED_GROUP = ""  # reals in a real/ folder serve every fake group


@dataclass(frozen=True)
class LabelledItem:
    path: Path
    label: int  # 0 real, 1 fake
    group: str  # fake group (generator); for reals, the group they pair with or SHARED_GROUP
    photo_id: str


def discover_dataset(root: str | Path) -> list[LabelledItem]:
    """Every labelled image under ``root``, sorted by path. Raises if there is none of a class."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("dataset folder does not exist or is not a folder", str(root))
    items: list[LabelledItem] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise_walk_error):
        dirnames.sort()
        current = Path(dirpath)
        relative = current.relative_to(root).parts
        label_at = _label_position(relative)
        if label_at is None:
            continue
        position, label = label_at
        marker = relative[position]
        for filename in sorted(filenames):
            path = current / filename
            if not is_image_path(path):
                continue
            group = _group(relative, position, marker, label)
            items.append(LabelledItem(path, label, group, _photo_id(path, root)))
    counts = Counter(item.label for item in items)
    if not counts[0] or not counts[1]:
        raise InputError(
            f"found {counts[0]} real and {counts[1]} fake images; expected real/ and fake/ "
            "folders (fake/<generator>/ for groups) or CNNDetection's 0_real/1_fake",
            str(root),
        )
    return items


def _raise_walk_error(error: OSError) -> None:
    raise InputError(f"cannot list folder: {error.strerror}", error.filename)


def _label_position(parts: tuple[str, ...]) -> tuple[int, int] | None:
    """Index and label of the innermost real/fake marker folder in a relative path."""
    for position in range(len(parts) - 1, -1, -1):
        if parts[position] in REAL_DIRS:
            return position, 0
        if parts[position] in FAKE_DIRS:
            return position, 1
    return None


def _group(parts: tuple[str, ...], position: int, marker: str, label: int) -> str:
    if marker in {"0_real", "1_fake"}:
        return "/".join(parts[:position]) or "fake"
    if label == 0:
        return SHARED_GROUP
    below = parts[position + 1 : position + 2]
    return below[0] if below else "fake"


def _photo_id(path: Path, root: Path) -> str:
    stem = path.stem
    if "_" in stem:
        return stem.split("_", 1)[0]
    return str(path.relative_to(root))


def fake_groups(items: list[LabelledItem]) -> list[str]:
    return sorted({item.group for item in items if item.label == 1})


def group_indices(items: list[LabelledItem], group: str) -> list[int]:
    """Indices of the fakes of ``group`` and the reals they are compared with."""
    paired = [i for i, it in enumerate(items) if it.label == 0 and it.group == group]
    reals = paired or [
        i for i, it in enumerate(items) if it.label == 0 and it.group == SHARED_GROUP
    ]
    if not reals:  # a group without its own reals falls back to every real
        reals = [i for i, it in enumerate(items) if it.label == 0]
    fakes = [i for i, it in enumerate(items) if it.label == 1 and it.group == group]
    return sorted(reals + fakes)
