"""Labelled dataset layouts that ``train`` and ``eval`` read.

Accepted layouts, found anywhere under the root:

- ``ROOT/real/**`` and ``ROOT/fake/**``. Images directly under ``fake/`` belong to the group
  ``fake``; images under ``fake/<generator>/**`` to the group ``<generator>``. Reals here are
  shared by every group.
- CNNDetection's ``0_real`` / ``1_fake`` folders at any depth, e.g.
  ``ROOT/progan/car/0_real``. Their group is the path of their parent relative to the root
  (``progan/car``), and reals are paired with the fakes of the same group.

Files are picked up by image extension. ``photo_id`` says which real photo an image derives
from, so that splits keep a photo's tiles, fakes and forgeries on one side. It comes from the
dataset's ``manifest.csv`` when there is one, else from tile names ``<photo_id>_<y>_<x>``
(what ``fakescope data real`` writes); any other file is its own photo. A looser rule such as
"the stem up to the first ``_``" would merge ``IMG_0001`` and ``IMG_0002`` into one photo.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fakescope.data.manifest import read_manifest
from fakescope.data.tiles import parse_tile_name
from fakescope.errors import InputError
from fakescope.io.discover import iter_input_files

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
    manifest_photo_ids = {row.path: row.photo_id for row in read_manifest(root)}
    items: list[LabelledItem] = []
    for entry in iter_input_files([str(root)]):
        if entry.error is not None:
            raise entry.error
        path = Path(entry.path)
        relative = path.relative_to(root)
        label_at = _label_position(relative.parts[:-1])
        if label_at is None:
            continue
        position, label = label_at
        group = _group(relative.parts[:-1], position, relative.parts[position], label)
        photo_id = manifest_photo_ids.get(relative.as_posix()) or _photo_id(relative)
        items.append(LabelledItem(path, label, group, photo_id))
    counts = Counter(item.label for item in items)
    if not counts[0] or not counts[1]:
        raise InputError(
            f"found {counts[0]} real and {counts[1]} fake images; expected real/ and fake/ "
            "folders (fake/<generator>/ for groups) or CNNDetection's 0_real/1_fake",
            str(root),
        )
    return items


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


def _photo_id(relative: Path) -> str:
    try:
        return parse_tile_name(relative.name)[0]
    except ValueError:
        return relative.as_posix()


def fake_groups(items: list[LabelledItem]) -> list[str]:
    return sorted({item.group for item in items if item.label == 1})


def group_reals(items: list[LabelledItem], group: str) -> tuple[list[int], str]:
    """The reals a fake group is compared with, and which rule chose them.

    ``paired``: the group's own reals (CNNDetection layout); ``shared``: the reals of a
    ``real/`` folder; ``all``: every real in the dataset, when neither exists. Reports say
    which, since comparing a generator with another generator's reals can mislead.
    """
    paired = [i for i, it in enumerate(items) if it.label == 0 and it.group == group]
    if paired:
        return paired, "paired"
    shared = [i for i, it in enumerate(items) if it.label == 0 and it.group == SHARED_GROUP]
    if shared:
        return shared, "shared"
    return [i for i, it in enumerate(items) if it.label == 0], "all"


def group_indices(items: list[LabelledItem], group: str) -> list[int]:
    """Indices of the fakes of ``group`` and the reals they are compared with."""
    reals, _ = group_reals(items, group)
    fakes = [i for i, it in enumerate(items) if it.label == 1 and it.group == group]
    return sorted(reals + fakes)
