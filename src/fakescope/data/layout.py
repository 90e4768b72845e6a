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

A fake may also carry pixels of *other* photos: a splice pastes a region of a donor photo into
its target. ``related_photo_ids`` names them, read from the fake's parameter JSON (the
manifest's ``params`` path, else ``meta/<group>/<name>.json`` beside ``fake/<group>/<name>``):
``donor.photo_id`` as ``fakescope data forge`` writes it, also inside the ``input_params`` that
``fakescope data perturb`` embeds. :func:`linked_photo_groups` merges such photos so that a split
keeps a splice, its target and its donor on one side.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakescope.data.manifest import ManifestRow, read_manifest
from fakescope.data.tiles import parse_tile_name
from fakescope.errors import InputError
from fakescope.io.discover import iter_input_files

REAL_DIRS = frozenset({"real", "0_real"})
FAKE_DIRS = frozenset({"fake", "1_fake"})
SHARED_GROUP = ""  # reals in a real/ folder serve every fake group
META_DIR = "meta"
# A fake's parameter JSON is parsed only when its bytes mention a donor at all: generated
# images have one JSON each, and parsing tens of thousands of them would slow discovery down.
_DONOR_KEY = b'"donor"'


@dataclass(frozen=True)
class LabelledItem:
    path: Path
    label: int  # 0 real, 1 fake
    group: str  # fake group (generator); for reals, the group they pair with or SHARED_GROUP
    photo_id: str
    # Other photos whose pixels this image carries (a splice's donor), sorted: a grouped split
    # must keep them on this image's side too.
    related_photo_ids: tuple[str, ...] = ()


def discover_dataset(root: str | Path) -> list[LabelledItem]:
    """Every labelled image under ``root``, sorted by path. Raises if there is none of a class."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("dataset folder does not exist or is not a folder", str(root))
    manifest = {row.path: row for row in read_manifest(root)}
    has_meta = (root / META_DIR).is_dir()
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
        row = manifest.get(relative.as_posix())
        photo_id = (row.photo_id if row is not None else "") or _photo_id(relative)
        related: tuple[str, ...] = ()
        if label == 1:  # reals carry one photo's pixels by definition
            meta = _meta_path(root, relative, position, row, has_meta)
            if meta is not None:
                related = tuple(sorted(set(_donor_photo_ids(meta)) - {photo_id}))
        items.append(LabelledItem(path, label, group, photo_id, related))
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


def _meta_path(
    root: Path, relative: Path, position: int, row: ManifestRow | None, has_meta: bool
) -> Path | None:
    """Where a fake's parameter JSON would be: the manifest's ``params``, else
    ``meta/<path below fake/>.json`` (only when the dataset has a meta/ folder at all)."""
    if row is not None and row.params.endswith(".json"):
        return root / row.params
    below = relative.parts[position + 1 :]
    if not has_meta or relative.parts[position] != "fake" or len(below) < 2:
        return None
    return (root / META_DIR).joinpath(*below).with_suffix(".json")


def _donor_photo_ids(path: Path) -> list[str]:
    """``donor.photo_id`` of a parameter JSON and of the JSONs it embeds; [] when it has none.

    The target's ``photo_id`` recorded beside a donor comes too: without a manifest, a forged
    file name such as ``<photo_id>_<n>.png`` is no tile name, so discovery cannot tell the
    target photo from the name alone. A missing or unreadable JSON names no donor rather than
    failing discovery: the images are still usable, only the split is less strict for them.
    """
    try:
        data = path.read_bytes()
    except OSError:
        return []
    if _DONOR_KEY not in data:
        return []
    try:
        meta: Any = json.loads(data)
    except ValueError:
        return []
    found: list[str] = []
    # A perturbed copy embeds its input's JSON as "input_params", once per perturb run.
    while isinstance(meta, dict):
        donors = meta.get("donor")
        for donor in donors if isinstance(donors, list) else [donors]:
            if isinstance(donor, dict) and isinstance(donor.get("photo_id"), str):
                found.append(donor["photo_id"])
                if isinstance(meta.get("photo_id"), str):
                    found.append(meta["photo_id"])
        meta = meta.get("input_params")
    return [photo for photo in found if photo]


def linked_photo_groups(items: Sequence[LabelledItem]) -> list[str]:
    """One group key per item: items whose photos are linked share it.

    Photos are linked when one item carries both (its ``photo_id`` and a
    ``related_photo_ids`` entry), transitively (a union-find). The key is the smallest photo id
    of the group, so it does not depend on the order of the items, and without any related
    photos it is simply the item's ``photo_id``.
    """
    parent: dict[str, str] = {}

    def find(photo: str) -> str:
        parent.setdefault(photo, photo)
        while parent[photo] != photo:
            parent[photo] = parent[parent[photo]]  # path halving keeps the trees flat
            photo = parent[photo]
        return photo

    for item in items:
        root = find(item.photo_id)
        for other in item.related_photo_ids:
            other_root = find(other)
            if other_root != root:
                # The smaller root wins, so every group's root is its smallest photo id.
                root, other_root = min(root, other_root), max(root, other_root)
                parent[other_root] = root
    return [find(item.photo_id) for item in items]


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


def select_fake_groups(items: list[LabelledItem], groups: Sequence[str]) -> list[LabelledItem]:
    """The fakes of ``groups`` and the reals each is compared with (everything if empty).

    The cross-generator protocol (Wang et al.): train on one family, test on the others.
    Unknown names raise, listing the dataset's groups.
    """
    if not groups:
        return items
    unknown = sorted(set(groups) - set(fake_groups(items)))
    if unknown:
        raise InputError(
            f"no fake group {', '.join(unknown)}; the dataset has {', '.join(fake_groups(items))}"
        )
    keep = sorted({i for group in groups for i in group_indices(items, group)})
    return [items[i] for i in keep]


def group_indices(items: list[LabelledItem], group: str) -> list[int]:
    """Indices of the fakes of ``group`` and the reals they are compared with."""
    reals, _ = group_reals(items, group)
    fakes = [i for i, it in enumerate(items) if it.label == 1 and it.group == group]
    return sorted(reals + fakes)
