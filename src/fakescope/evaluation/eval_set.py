"""Which images an evaluation uses: photo-grouped test splits, seeded caps, decoded once.

Two protocols split a dataset into a training and a test side, always by photo (a photo's real
tiles, the fakes made from it and the photos linked to it by a splice stay on one side):

- **benchmark** (a dataset with ``splits.csv``, built by ``fakescope data benchmark``): test
  photos are every ``heldout`` photo plus a seeded share (30 %) of the ``source`` photos, as in
  ``scripts/build_fused_model.py`` and the cross-generator table, so that a model built with that
  recipe is tested on photos it never saw. Unconditional samples (DCGAN) have no source photo:
  a seeded 30 % of them (by sorted path) is the test side.
- **grouped hold-out** (any other dataset): :func:`fakescope.pipeline.training.split_holdout`,
  stratified by class and grouped by photo.

An evaluation set is then capped per *bucket* (each fake group, and each real source such as
``real`` or ``processed-real``) with a seeded draw, so that one command finishes in minutes on a
large dataset; the caps are stated in every report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from fakescope.data.benchmark_splits import read_roles, split_photos
from fakescope.data.layout import LabelledItem
from fakescope.data.manifest import read_manifest
from fakescope.errors import InputError
from fakescope.pipeline.dataset import decode_items

#: The share of ``source`` photos on the test side of a benchmark (the recipe scripts' default).
BENCHMARK_TEST_SHARE = 0.3
#: Photo ids the benchmark gives to unconditional samples (no real photo behind them).
GENERATED_ROLE = "generated"

T = TypeVar("T")


def real_source(item: LabelledItem, root: Path, manifest_groups: dict[str, str]) -> str:
    """A real image's source: its manifest group (``real``, ``processed-real``), else the
    folder below ``real/`` (or the paired group of a ``0_real`` folder)."""
    relative = item.path.relative_to(root).as_posix()
    if relative in manifest_groups:
        return manifest_groups[relative]
    if item.group:
        return f"{item.group} reals"
    parts = Path(relative).parts
    return parts[1] if len(parts) > 2 and parts[0] == "real" else "real"


def bucket_of(item: LabelledItem, sources: dict[Path, str]) -> str:
    """Fakes: their group; reals: ``real:<source>``."""
    return item.group if item.label == 1 else f"real:{sources[item.path]}"


@dataclass(frozen=True)
class Split:
    """A photo-grouped split of a dataset's items."""

    protocol: str  # "benchmark" or "grouped-holdout"
    train: list[LabelledItem]
    test: list[LabelledItem]
    description: str


def benchmark_split(items: Sequence[LabelledItem], root: Path, seed: int) -> Split | None:
    """The benchmark protocol, or None when ``root`` has no ``splits.csv``."""
    if not (root / "splits.csv").is_file():
        return None
    roles = read_roles(root)
    source = [photo for photo, role in roles.items() if role == "source"]
    test_photos = split_photos(source, BENCHMARK_TEST_SHARE, seed) if source else set()
    test_photos |= {photo for photo, role in roles.items() if role == "heldout"}
    generated = sorted(
        (item for item in items if roles.get(item.photo_id, GENERATED_ROLE) == GENERATED_ROLE),
        key=lambda item: item.path.as_posix(),
    )
    order = np.random.default_rng(seed).permutation(len(generated))
    generated_test = {generated[i].path for i in order[: round(0.3 * len(generated))]}
    train: list[LabelledItem] = []
    test: list[LabelledItem] = []
    for item in items:
        if roles.get(item.photo_id, GENERATED_ROLE) == GENERATED_ROLE:
            on_test = item.path in generated_test
        else:
            sides = {photo in test_photos for photo in (item.photo_id, *item.related_photo_ids)}
            if len(sides) > 1:  # a splice whose donor is on the other side: on neither side
                continue
            on_test = sides == {True}
        (test if on_test else train).append(item)
    description = (
        f"benchmark photos: test = {len(test_photos)} photos (every heldout photo + "
        f"{BENCHMARK_TEST_SHARE:.0%} of the source photos, seed {seed}) and "
        f"{len(generated_test)} of {len(generated)} unconditional samples"
    )
    return Split("benchmark", train, test, description)


def grouped_holdout_split(items: Sequence[LabelledItem], holdout: float, seed: int) -> Split:
    from fakescope.pipeline.training import split_holdout

    train_idx, test_idx = split_holdout(list(items), holdout, seed)
    return Split(
        "grouped-holdout",
        [items[i] for i in train_idx],
        [items[i] for i in test_idx],
        f"grouped hold-out: {holdout:.0%} of the photos (stratified by class, seed {seed})",
    )


def split_dataset(
    items: Sequence[LabelledItem], root: Path, seed: int, holdout: float = 0.3
) -> Split:
    """The benchmark protocol when the dataset has ``splits.csv``, else a grouped hold-out."""
    return benchmark_split(items, root, seed) or grouped_holdout_split(items, holdout, seed)


def cap_buckets(
    items: Sequence[T],
    buckets: Sequence[str],
    cap: int | Callable[[str], int],
    seed: int,
) -> list[T]:
    """At most ``cap`` items per bucket (a seeded draw; order by path kept)."""
    by_bucket: dict[str, list[int]] = defaultdict(list)
    for index, bucket in enumerate(buckets):
        by_bucket[bucket].append(index)
    keep: list[int] = []
    rng = np.random.default_rng(seed)
    for bucket in sorted(by_bucket):
        indices = by_bucket[bucket]
        limit = cap(bucket) if callable(cap) else cap
        if len(indices) > limit:
            indices = sorted(rng.choice(indices, size=limit, replace=False).tolist())
        keep += indices
    return [items[i] for i in sorted(keep)]


@dataclass
class EvalSet:
    """Decoded evaluation images with their labels, groups, photos and buckets.

    Pixels are decoded once and shared by every part of a report (metrics, robustness,
    analysis); undecodable or too small files are listed in ``errors`` and left out.
    """

    root: Path
    items: list[LabelledItem]
    images: list[np.ndarray]
    buckets: list[str]
    real_sources: dict[Path, str]
    errors: list[InputError] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return np.array([item.label for item in self.items], dtype=np.int64)

    @property
    def photos(self) -> list[str]:
        return [item.photo_id for item in self.items]

    def relative(self, index: int) -> str:
        """The image's path inside the dataset (``external/<group>/<name>`` for added fakes)."""
        item = self.items[index]
        if item.path.is_relative_to(self.root):
            return item.path.relative_to(self.root).as_posix()
        return f"external/{item.group}/{item.path.name}"

    def keys(self) -> list[str]:
        """Cache keys: the file's path, size and modification time (a changed file re-scores)."""
        keys = []
        for item in self.items:
            stat = item.path.stat()
            keys.append(f"{item.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}")
        return keys

    def subset(self, indices: Sequence[int]) -> EvalSet:
        return EvalSet(
            self.root,
            [self.items[i] for i in indices],
            [self.images[i] for i in indices],
            [self.buckets[i] for i in indices],
            self.real_sources,
        )


def manifest_groups(root: Path) -> dict[str, str]:
    """``{relative path: group}`` from the dataset's manifest (empty without one)."""
    return {row.path: row.group for row in read_manifest(root)}


def build_eval_set(
    root: Path,
    items: Sequence[LabelledItem],
    cap: int,
    seed: int,
    min_side: int,
    on_progress: Callable[[int], None] | None = None,
) -> EvalSet:
    """Cap ``items`` per bucket and decode them."""
    groups = manifest_groups(root)
    sources = {it.path: real_source(it, root, groups) for it in items if it.label == 0}
    buckets = [bucket_of(item, sources) for item in items]
    chosen = cap_buckets(items, buckets, cap, seed)
    decoded = decode_items(chosen, on_progress, min_side=min_side)
    return EvalSet(
        root,
        decoded.items,
        decoded.images,
        [bucket_of(item, sources) for item in decoded.items],
        sources,
        decoded.errors,
    )
