"""``fakescope data benchmark``: one command, one benchmark (docs/dataset-layout.md).

The steps, each a call into the library (never the CLI), in this order:

1. **photos**: the real photographs (:func:`fakescope.data.sources.gather_real_photos`, the
   cached Debian wallpapers and Python packages' samples), written to ``photos.csv``.
2. **roles**: every *scene* (a photo, or the photos of one scene) gets one role, seeded and
   stratified by source family: ``generator`` (the zoo trains on it and nothing else),
   ``source`` (its tiles are turned into fakes, processed reals and forgeries) and ``heldout``
   (never trained on, never faked: clean reals). Generators therefore never see a photo whose
   tiles they are applied to, nor a held-out photo. ``splits.csv`` lists each photo's role.
3. **tiles**: plain crops (no resampling, offsets on the 16-pixel JPEG grid) of every photo into
   ``real/<role>/<photo_id>_<y>_<x>.png``, at most ``cap`` per photo where ``cap`` is the
   smallest that gives ``real_tiles`` tiles (so large photos do not dominate); ``tiles.csv``
   keeps each tile's source JPEG history.
4. **image-to-image families** (``ae-*``, ``sr-gan``): trained on the ``generator`` tiles
   (cached by fingerprint), applied to ``fakes_per_family`` seeded ``source`` tiles; each fake
   is JPEG round-tripped at its source photo's quality and subsampling
   (:func:`fakescope.data.generators.fakes.match_jpeg_history`) and saved as PNG like the reals.
5. **control** (``processed-real``): the same ``source`` tiles resized, recompressed, blurred or
   screenshotted; real (label 0), under ``real/processed-real/``.
6. **forgeries**: ``forgeries_per_kind`` of every kind in ``kinds`` (default: every kind
   registered in :data:`fakescope.data.forge.FORGERIES`) from ``source`` tiles, donors included,
   with exact masks. They are not re-compressed afterwards, which would make the masks inexact;
   their untouched pixels keep the source tile's JPEG history.
7. **unconditional families** (``dcgan``): trained on the ``generator`` tiles. Their samples
   are small (64 px) and have no source photo, so they cannot share the tiles' size: they go to
   the CNNDetection-style pair ``<family>/1_fake/`` with size-matched real crops of ``source`` and
   ``heldout`` tiles in ``<family>/0_real/`` (plain crops on the 16-pixel grid).
   :mod:`fakescope.data.layout` pairs those reals with that family only (audit, ``eval``), and
   the number of matched reals makes the share of small images the same in both classes overall,
   so size gives the label away neither per family nor overall. Samples borrow the JPEG history
   of a training tile. A failed run (all samples alike, or noise: DCGAN does either on some
   seeds) is retrained with the next seed, at most ``collapse_retries`` times.
8. **audit**: :func:`fakescope.data.audit.audit_dataset` on the benchmark (``audit.json``);
   when a variable is flagged, :func:`~fakescope.data.audit.debias_dataset` writes a JPEG96 copy
   next to it (sizes kept: they are balanced by construction, and one square crop would either
   shrink every tile to the 64-px samples or drop them) and that copy is audited too.
9. **summary**: ``benchmark.json`` (plan, counts, timings per step, both audits) and
   ``README.md``.

**Reproducible and resumable.** Everything is drawn from ``seed``; generator weights are cached
by fingerprint. ``benchmark-state.json`` records each finished step with its settings and the
manifest rows it wrote; a rerun skips a step whose settings are unchanged and whose rows and
files are all there, and cleans (folders and manifest rows) and reruns a step that was
interrupted or whose settings changed (a count, training steps). A folder whose tiles were cut
with other settings (seed, tile size, real tiles, role fractions) is refused. Adding forgery
kinds or families to a finished build runs only the new steps, then the audit again.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fakescope import __version__
from fakescope.data import sources
from fakescope.data.manifest import (
    MANIFEST_NAME,
    ManifestRow,
    append_manifest,
    file_sha256,
    read_manifest,
)
from fakescope.data.tiles import (
    TILE_ALIGN,
    TILE_MIN_STD,
    TileRecord,
    photo_rng,
    read_tile_index,
    save_png,
    tile_photo,
    write_tile_index,
)
from fakescope.errors import FakescopeError

DEFAULT_FAMILIES: tuple[str, ...] = (
    "ae-transposed",
    "ae-nearest",
    "ae-bilinear",
    "ae-pixelshuffle",
    "sr-gan",
    "dcgan",
)
CONTROL_FAMILY = "processed-real"
LEARNED_INPAINT_KIND = "inpaint-learned"  # a forgery kind that needs a trained model
# Training steps of each generator when the plan does not set them, against the zoo's defaults
# (AE 3000, sr-gan 1500, dcgan 1000, inpaint-net 1000), which take about 30 CPU-minutes on an
# idle 2-core machine and twice that on a shared one: this budget keeps the whole build under an
# hour there (docs/dataset-layout.md has the measured times). dcgan: seeds 1 and 2 gave the
# zoo's colour blobs at 500 steps; seed 0 collapses on this data at 400 and 1000 steps alike
# (see ``collapse_retries``).
BENCHMARK_TRAIN_STEPS: dict[str, int] = {
    "ae-transposed": 1200,
    "ae-nearest": 1200,
    "ae-bilinear": 1200,
    "ae-pixelshuffle": 1200,
    "sr-gan": 1000,
    "dcgan": 600,
    "inpaint-net": 600,
}
INPAINTER = "inpaint-net"  # the model behind the inpaint-learned forgery kind
# A failed GAN run is told from its samples (measured on DCGAN runs with the benchmark's tiles):
# - every sample the same image: the mean per-pixel standard deviation across samples (0-255)
#   was 1.3-1.5 for such runs, 12-28 for working ones;
# - samples that are unstructured noise: the median over samples of the mean absolute
#   difference between neighbouring pixels divided by the sample's standard deviation was
#   1.02-1.09 for noise (1.13 for white noise), 0.50-0.71 for the zoo's colour blobs and 0.20
#   for 64-px photo crops (95th percentile 0.49).
MIN_SAMPLE_SPREAD = 4.0
MAX_SAMPLE_ROUGHNESS = 0.9
ROLES: tuple[str, ...] = ("generator", "source", "heldout")
GENERATED_ROLE = "generated"  # photo ids of unconditional samples: no photo behind them
REAL_GROUP = "real"
STATE_NAME = "benchmark-state.json"
SUMMARY_NAME = "benchmark.json"
SPLITS_NAME = "splits.csv"
README_NAME = "README.md"
AUDIT_NAME = "audit.json"
PHOTOS_NAME = "photos.csv"
TILES_NAME = "tiles.csv"
STAGING_NAME = ".staging"  # hard-linked inputs and staged outputs; removed before the audit
STATE_VERSION = 1
MIN_TILE_SIZE = 64  # the zoo trains on 64-px crops
_PAIRED_KEY = 0x7061697265  # "paire": the stream that draws the matched reals
# Files the benchmark writes at the top of OUT_DIR; anything else there means a foreign folder.
_OWN_FILES = frozenset(
    {STATE_NAME, SUMMARY_NAME, SPLITS_NAME, README_NAME, AUDIT_NAME, PHOTOS_NAME, TILES_NAME}
)

Log = Callable[[str], None]


class BenchmarkError(FakescopeError, RuntimeError):
    """The benchmark cannot be built as asked (bad plan, foreign folder, other settings)."""


def registered_kinds() -> tuple[str, ...]:
    """Every forgery kind registered now, in registry order (a kind added later is included)."""
    from fakescope.data.forge import FORGERIES

    return tuple(FORGERIES)


@dataclass(frozen=True)
class BenchmarkPlan:
    """What to build. Only these settings decide the content; paths and caches do not."""

    seed: int = 0
    real_tiles: int = 2000
    fakes_per_family: int = 400
    forgeries_per_kind: int = 500
    tile_size: int = 256
    families: tuple[str, ...] = DEFAULT_FAMILIES
    kinds: tuple[str, ...] = field(default_factory=registered_kinds)
    train_steps: int | None = None  # every generator; None: BENCHMARK_TRAIN_STEPS
    heldout_fraction: float = 0.2
    generator_fraction: float = 0.3
    collapse_retries: int = 2  # unconditional GANs: retrain a failed run with seed + 1, ...
    threshold: float = 0.6  # audit flag
    debias_quality: int = 96

    def validate(self) -> None:
        """Raise :class:`BenchmarkError` naming the first bad setting."""
        from fakescope.data.generators.registry import GENERATORS

        if self.tile_size < MIN_TILE_SIZE or self.tile_size % TILE_ALIGN:
            raise BenchmarkError(
                f"tile size must be a multiple of {TILE_ALIGN} and at least {MIN_TILE_SIZE} "
                f"(the zoo trains on {MIN_TILE_SIZE}-px crops), got {self.tile_size}"
            )
        for name, value in (
            ("real_tiles", self.real_tiles),
            ("fakes_per_family", self.fakes_per_family),
            ("forgeries_per_kind", self.forgeries_per_kind),
        ):
            if value < 1:
                raise BenchmarkError(f"{name} must be at least 1, got {value}")
        if self.collapse_retries < 0:
            raise BenchmarkError(f"collapse_retries must be >= 0, got {self.collapse_retries}")
        if self.train_steps is not None and self.train_steps < 1:
            raise BenchmarkError(f"train_steps must be at least 1, got {self.train_steps}")
        if not (
            0 <= self.heldout_fraction < 1
            and 0 < self.generator_fraction < 1
            and self.heldout_fraction + self.generator_fraction < 1
        ):
            raise BenchmarkError("heldout and generator fractions must leave photos for 'source'")
        for family in self.families:
            entry = GENERATORS.get(family)
            if entry is None or entry.kind not in ("image-to-image", "unconditional"):
                usable = [n for n, e in GENERATORS.items() if e.kind != "processing"]
                raise BenchmarkError(
                    f"unknown generator family {family!r}; choose from: {', '.join(usable)}"
                )
        known = registered_kinds()
        for kind in self.kinds:
            if kind not in known:
                raise BenchmarkError(
                    f"unknown forgery kind {kind!r}; registered: {', '.join(known)}"
                )
        for values, what in ((self.families, "families"), (self.kinds, "kinds")):
            if len(set(values)) != len(values):
                raise BenchmarkError(f"{what} are listed twice: {', '.join(values)}")

    def steps_for(self, generator: str) -> int | None:
        """Training steps of ``generator`` (None: the generator's own default)."""
        if self.train_steps is not None:
            return self.train_steps
        return BENCHMARK_TRAIN_STEPS.get(generator)

    def core(self) -> dict[str, Any]:
        """What the photos' roles and the tiles depend on: a resumed build must share it."""
        return {
            "seed": self.seed,
            "real_tiles": self.real_tiles,
            "tile_size": self.tile_size,
            "heldout_fraction": self.heldout_fraction,
            "generator_fraction": self.generator_fraction,
        }

    def step_params(self, step: str) -> dict[str, Any]:
        """What one step's output depends on beyond the tiles; a change rebuilds that step.

        Training steps are resolved here, so a change of :data:`BENCHMARK_TRAIN_STEPS` rebuilds
        the families it concerns, and only them.
        """
        kind, _, name = step.partition(":")
        if kind == "family":
            params = {"count": self.fakes_per_family, "train_steps": self.steps_for(name)}
            if _generator_kind(name) == "unconditional":
                params["collapse_retries"] = self.collapse_retries
                params["sample_check"] = [MIN_SAMPLE_SPREAD, MAX_SAMPLE_ROUGHNESS]
            return params
        if kind == "control":
            return {"count": self.fakes_per_family}
        if kind == "forge":
            learned = {"train_steps": self.steps_for(INPAINTER)}
            return {
                "count": self.forgeries_per_kind,
                **(learned if name == LEARNED_INPAINT_KIND else {}),
            }
        return {}

    def image_families(self) -> list[str]:
        return [f for f in self.families if _generator_kind(f) == "image-to-image"]

    def unconditional_families(self) -> list[str]:
        return [f for f in self.families if _generator_kind(f) == "unconditional"]

    def steps(self) -> list[str]:
        """Step names in the order they run."""
        return [
            "photos",
            "tiles",
            *(f"family:{f}" for f in self.image_families()),
            f"control:{CONTROL_FAMILY}",
            *(f"forge:{k}" for k in self.kinds),
            *(f"family:{f}" for f in self.unconditional_families()),
            "audit",
        ]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "families": list(self.families), "kinds": list(self.kinds)}


def _generator_kind(name: str) -> str:
    from fakescope.data.generators.registry import get_entry

    return get_entry(name).kind


# --------------------------------------------------------------------------- photo plan


@dataclass(frozen=True)
class PhotoPlan:
    """Derived from the photos and the plan alone: each photo's role and the tile cap."""

    roles: dict[str, str]  # photo_id -> role
    max_tiles_per_photo: int
    possible_tiles: dict[str, int]  # photo_id -> tiles its size allows (before the cap)


def _stratum(record: sources.PhotoRecord) -> str:
    """Source family: a role mixes wallpapers of every package and the Python samples."""
    if record.source.startswith("pypi:"):
        return "pypi"
    return record.photo_id.split("-")[0]


def assign_roles(
    photos: Sequence[sources.PhotoRecord], seed: int, heldout: float, generator: float
) -> dict[str, str]:
    """photo_id -> role. Seeded, by scene (one scene, one role), stratified by source family."""
    strata: dict[str, set[str]] = defaultdict(set)
    for record in photos:
        strata[_stratum(record)].add(record.scene)
    scene_role: dict[str, str] = {}
    rng = np.random.default_rng(seed)
    for name in sorted(strata):
        scenes = sorted(strata[name])
        order = [scenes[i] for i in rng.permutation(len(scenes))]
        n_heldout = round(len(order) * heldout)
        n_generator = round(len(order) * generator)
        for index, scene in enumerate(order):
            if index < n_heldout:
                scene_role[scene] = "heldout"
            elif index < n_heldout + n_generator:
                scene_role[scene] = "generator"
            else:
                scene_role[scene] = "source"
    roles = {record.photo_id: scene_role[record.scene] for record in photos}
    missing = [role for role in ("generator", "source") if role not in roles.values()]
    if missing:
        raise BenchmarkError(
            f"{len(scene_role)} scenes leave no photo for role(s) {', '.join(missing)}; "
            "the benchmark needs more photos"
        )
    return roles


def water_fill(capacities: Iterable[int], target: int) -> int:
    """Smallest cap ``c`` with ``sum(min(n, c)) >= target`` (the largest ``n`` if unreachable)."""
    values = list(capacities)
    if not values:
        return 0
    for cap in range(1, max(values) + 1):
        if sum(min(n, cap) for n in values) >= target:
            return cap
    return max(values)


def plan_photos(photos: Sequence[sources.PhotoRecord], plan: BenchmarkPlan) -> PhotoPlan:
    """Roles and tile cap: a pure function of the photo list and the plan (reproducible)."""
    size = plan.tile_size
    possible = {p.photo_id: (p.height // size) * (p.width // size) for p in photos}
    roles = assign_roles(photos, plan.seed, plan.heldout_fraction, plan.generator_fraction)
    return PhotoPlan(roles, water_fill(possible.values(), plan.real_tiles), possible)


# --------------------------------------------------------------------------- results


@dataclass
class StepResult:
    name: str
    seconds: float  # of the run that built it (a skipped step keeps its recorded time)
    skipped: bool
    rows: int  # manifest rows the step wrote
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchmarkResult:
    out_dir: Path
    summary: dict[str, Any]
    steps: list[StepResult]
    wall_seconds: float

    @property
    def audit(self) -> dict[str, Any] | None:
        return self.summary.get("audit")

    @property
    def debiased_audit(self) -> dict[str, Any] | None:
        return self.summary.get("debiased_audit")


# --------------------------------------------------------------------------- the build


def build_benchmark(
    out_dir: str | os.PathLike[str],
    plan: BenchmarkPlan,
    *,
    sources_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    debian: bool = True,
    debias_dir: str | os.PathLike[str] | None = None,
    log: Log | None = None,
) -> BenchmarkResult:
    """Build (or finish) the benchmark in ``out_dir``; see the module docstring.

    ``sources_dir``: cache of real photos (default ``$FAKESCOPE_REAL_SOURCES`` or
    ``~/.cache/fakescope/real-sources``); ``cache_dir``: generator weights (default
    ``$FAKESCOPE_CACHE/generators``); ``debias_dir``: where the debiased copy goes (default
    ``<out_dir>-debiased``, beside it: a copy inside the dataset would join it).
    """
    plan.validate()
    out = Path(out_dir).resolve()
    debias = Path(debias_dir).resolve() if debias_dir else out.with_name(f"{out.name}-debiased")
    builder = _Builder(
        out,
        plan,
        Path(sources_dir).expanduser().resolve() if sources_dir else None,
        Path(cache_dir).expanduser() if cache_dir else None,
        debian,
        debias,
        log or (lambda message: None),
    )
    return builder.run()


class _Builder:
    def __init__(
        self,
        out: Path,
        plan: BenchmarkPlan,
        sources_dir: Path | None,
        cache_dir: Path | None,
        debian: bool,
        debias_dir: Path,
        log: Log,
    ) -> None:
        self.out = out
        self.plan = plan
        self.sources_dir = sources_dir
        self.cache_dir = cache_dir
        self.debian = debian
        self.debias_dir = debias_dir
        self.log = log
        self.state: dict[str, Any] = {}
        self.results: list[StepResult] = []
        self.ran: list[str] = []
        self.photos: list[sources.PhotoRecord] = []
        self.photo_plan: PhotoPlan | None = None
        self._audited = False

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> BenchmarkResult:
        start, started = time.perf_counter(), time.time()
        self._open()
        self._step("photos", [], self._photos, files=[PHOTOS_NAME])
        self.photo_plan = plan_photos(self.photos, self.plan)
        self._step("tiles", [f"real/{role}/" for role in ROLES], self._tiles, files=[TILES_NAME])
        for family in self.plan.image_families():
            prefixes = [f"fake/{family}/", f"meta/{family}/"]
            self._step(f"family:{family}", prefixes, lambda f=family: self._image_family(f))
        control = [f"real/{CONTROL_FAMILY}/", f"meta/{CONTROL_FAMILY}/"]
        self._step(f"control:{CONTROL_FAMILY}", control, self._control)
        for kind in self.plan.kinds:
            self._step(f"forge:{kind}", self._forge_prefixes(kind), lambda k=kind: self._forge(k))
        for family in self.plan.unconditional_families():
            prefixes = [f"{family}/", f"meta/{family}/"]
            self._step(f"family:{family}", prefixes, lambda f=family: self._unconditional(f))
        _remove(self.out / STAGING_NAME)
        self._write_splits()
        self._audit()
        wall = time.perf_counter() - start
        # Every run that built something, with its wall time: a resumed build keeps the time
        # of its first run.
        ran = [*self.ran, *(["audit"] if self._audited else [])]
        if ran:
            self.state.setdefault("runs", []).append(
                {
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                    "wall_seconds": round(wall, 1),
                    "ran": ran,
                }
            )
            self._save_state()
        summary = self._summary(wall)
        _write_json(self.out / SUMMARY_NAME, summary)
        (self.out / README_NAME).write_text(render_readme(summary), encoding="utf-8")
        self.log(f"done in {wall:.0f} s: {self.out}")
        return BenchmarkResult(self.out, summary, self.results, wall)

    def _open(self) -> None:
        """Load the state of an earlier run, or refuse a folder that is not a benchmark."""
        state_path = self.out / STATE_NAME
        if state_path.is_file():
            self.state = json.loads(state_path.read_text(encoding="utf-8"))
            recorded = self.state.get("plan")
            if self.state.get("version") != STATE_VERSION or recorded != self.plan.core():
                raise BenchmarkError(
                    f"{self.out} holds a benchmark built with other settings "
                    f"({json.dumps(recorded)}); build into a new folder"
                )
        elif self.out.is_dir() and any(
            # Hidden entries are the staging folder and temporary files of an interrupted run.
            entry.name not in _OWN_FILES and not entry.name.startswith(".")
            for entry in self.out.iterdir()
        ):
            raise BenchmarkError(
                f"{self.out} is not empty and holds no {STATE_NAME}: not a benchmark folder; "
                "choose a new folder"
            )
        self.out.mkdir(parents=True, exist_ok=True)
        self.state.setdefault("version", STATE_VERSION)
        self.state["plan"] = self.plan.core()
        self.state.setdefault("steps", {})
        _remove(self.out / STAGING_NAME)  # left over by an interrupted run
        self._save_state()

    def _save_state(self) -> None:
        _write_json(self.out / STATE_NAME, self.state)

    def _step(
        self,
        name: str,
        prefixes: list[str],
        work: Callable[[], dict[str, Any]],
        files: Sequence[str] = (),
    ) -> StepResult:
        """Skip a step whose outputs are complete; else clean its leftovers and run it."""
        recorded = self.state["steps"].get(name)
        params = self.plan.step_params(name)
        if (
            recorded is not None
            and recorded.get("params", {}) == params
            and self._intact(recorded, prefixes, files)
        ):
            if name == "photos":
                self.photos = sources.read_manifest(self.out / PHOTOS_NAME)
            result = StepResult(
                name, recorded["seconds"], True, recorded["rows"], recorded["details"]
            )
            self.log(f"{name}: complete, skipped")
            self.results.append(result)
            return result
        if recorded is not None and recorded.get("params", {}) != params:
            self.log(f"{name}: settings changed ({recorded.get('params')} -> {params}), rebuilding")
        self.state["steps"].pop(name, None)
        self._save_state()
        self._remove_outputs(prefixes)
        self.log(f"{name}: running")
        start = time.perf_counter()
        details = work()
        seconds = time.perf_counter() - start
        rows = self._count_rows(prefixes)
        self.state["steps"][name] = {
            "seconds": round(seconds, 2),
            "rows": rows,
            "params": params,
            "prefixes": prefixes,
            "details": details,
        }
        self._save_state()
        self.ran.append(name)
        self.log(f"{name}: done in {seconds:.0f} s" + (f", {rows} images" if prefixes else ""))
        result = StepResult(name, round(seconds, 2), False, rows, details)
        self.results.append(result)
        return result

    def _intact(self, recorded: dict[str, Any], prefixes: list[str], files: Sequence[str]) -> bool:
        if any(not (self.out / name).is_file() for name in files):
            return False
        listed = [row for row in read_manifest(self.out) if row.path.startswith(tuple(prefixes))]
        if prefixes and len(listed) != recorded.get("rows"):
            return False
        return all((self.out / row.path).is_file() for row in listed)

    def _count_rows(self, prefixes: list[str]) -> int:
        if not prefixes:
            return 0
        return sum(row.path.startswith(tuple(prefixes)) for row in read_manifest(self.out))

    def _remove_outputs(self, prefixes: list[str]) -> None:
        """Folders and manifest rows of an interrupted step, so it can start afresh."""
        if not prefixes:
            return
        for prefix in prefixes:
            _remove(self.out / prefix)
        rows = read_manifest(self.out)
        kept = [row for row in rows if not row.path.startswith(tuple(prefixes))]
        if len(kept) != len(rows):
            _rewrite_manifest(self.out, kept)

    def _forge_prefixes(self, kind: str) -> list[str]:
        from fakescope.data.forge import FORGERIES

        prefixes = [f"fake/{kind}/", f"masks/{kind}/", f"flow/{kind}/", f"meta/{kind}/"]
        masks = self.out / "masks"
        if masks.is_dir():
            # Extra masks of a kind (copymove-source) are named after it; another kind's
            # folder (inpaint-learned for inpaint) is not.
            prefixes += [
                f"masks/{entry.name}/"
                for entry in sorted(masks.iterdir())
                if entry.name.startswith(f"{kind}-") and entry.name not in FORGERIES
            ]
        return prefixes

    # -- steps ------------------------------------------------------------------------------

    def _photos(self) -> dict[str, Any]:
        root = self.sources_dir or sources.default_cache_dir().expanduser().resolve()
        self.photos = sources.gather_real_photos(root, debian=self.debian)
        if not self.photos:
            raise BenchmarkError("no real photographs found")
        sources.write_manifest(self.photos, self.out / PHOTOS_NAME)
        return {
            "photos": len(self.photos),
            "scenes": len({p.scene for p in self.photos}),
            "sources_dir": str(root),
            "by_source": dict(Counter(p.source for p in self.photos)),
        }

    def _tiles(self) -> dict[str, Any]:
        assert self.photo_plan is not None
        root = self.sources_dir or sources.default_cache_dir().expanduser().resolve()
        photo_plan, plan = self.photo_plan, self.plan
        by_id = {p.photo_id: p for p in self.photos}
        tiles: dict[str, list[tuple[TileRecord, str]]] = {}
        shas: dict[str, str] = {}  # tile sha256 -> its path: a tile identical to another drops
        cap = photo_plan.max_tiles_per_photo
        pending = [p.photo_id for p in self.photos]
        while True:
            for index, photo_id in enumerate(pending, 1):
                tiles[photo_id] = self._tile_photo(by_id[photo_id], root, cap, shas)
                if index % 10 == 0 or index == len(pending):
                    self.log(f"tiles: {index}/{len(pending)} photos at up to {cap} tiles each")
            total = sum(len(kept) for kept in tiles.values())
            # Featureless or duplicate tiles may leave the total short: raise the cap for the
            # photos that reached it and could give more (a larger cap gives a superset).
            pending = [
                photo_id
                for photo_id, kept in tiles.items()
                if len(kept) >= cap and photo_plan.possible_tiles[photo_id] > cap
            ]
            if total >= plan.real_tiles or not pending:
                break
            cap += max(1, -(-(plan.real_tiles - total) // len(pending)))
        ordered = [pair for p in self.photos for pair in tiles[p.photo_id]]
        rows = [
            ManifestRow(
                path=tile.path,
                label=0,
                group=REAL_GROUP,
                photo_id=tile.photo_id,
                source=by_id[tile.photo_id].source,
                licence=by_id[tile.photo_id].licence,
                sha256=sha256,
                width=plan.tile_size,
                height=plan.tile_size,
                format="PNG",
            )
            for tile, sha256 in ordered
        ]
        append_manifest(self.out, rows)
        write_tile_index([tile for tile, _ in ordered], self.out / TILES_NAME)
        by_role = Counter(photo_plan.roles[tile.photo_id] for tile, _ in ordered)
        if len(ordered) < plan.real_tiles:
            self.log(f"tiles: only {len(ordered)} of {plan.real_tiles} tiles fit in the photos")
        return {
            "tiles": len(ordered),
            "max_tiles_per_photo": cap,
            "by_role": {role: by_role[role] for role in ROLES},
        }

    def _tile_photo(
        self, photo: sources.PhotoRecord, root: Path, cap: int, shas: dict[str, str]
    ) -> list[tuple[TileRecord, str]]:
        """The photo's tiles (paths relative to the benchmark) with their sha256."""
        assert self.photo_plan is not None
        role = self.photo_plan.roles[photo.photo_id]
        records = tile_photo(
            root / photo.path,
            photo.photo_id,
            self.out / "real" / role,
            size=self.plan.tile_size,
            max_tiles=cap,
            seed=self.plan.seed,
            align=TILE_ALIGN,
            min_std=TILE_MIN_STD,
        )
        kept = []
        for record in records:
            path = Path(record.path)
            relative = path.relative_to(self.out).as_posix()
            sha256 = file_sha256(path)
            if shas.setdefault(sha256, relative) != relative:
                path.unlink()  # the same pixels as an earlier tile: one copy is enough
                continue
            kept.append((replace(record, path=relative), sha256))
        return kept

    def _synth_options(self, generator: str, seed: int | None = None, **extra: Any) -> Any:
        from fakescope.data.generators.synth import SynthOptions

        return SynthOptions(
            generator=generator,
            seed=self.plan.seed if seed is None else seed,
            count=self.plan.fakes_per_family,
            train_steps=self.plan.steps_for(generator),
            cache_dir=self.cache_dir,
            tile_size=self.plan.tile_size,
            max_tiles=1,  # inputs are tiles already: one each, whole
            **extra,
        )

    def _events(self, name: str) -> Any:
        from fakescope.data.generators.synth import SynthEvents

        shown: set[int] = set()

        def train_step(done: int, total: int) -> None:
            tenth = done * 10 // max(1, total)
            if tenth not in shown and (done == total or tenth > 0):
                shown.add(tenth)
                self.log(f"{name}: training step {done}/{total}")

        def bad_file(path: str, message: str) -> None:
            self.log(f"{name}: skipped {path}: {message}")

        return SynthEvents(train_step=train_step, bad_file=bad_file)

    def _synth_details(self, report: Any) -> dict[str, Any]:
        cache = report.cache
        return {
            "written": len(report.written),
            "train_tiles": report.train_tiles,
            "train_photos": len(report.train_photo_ids),
            "train_seconds": round(report.train_seconds, 2),
            "generate_seconds": round(report.generate_seconds, 2),
            "cache_hit": None if cache is None else cache.hit,
            "model": None if cache is None else cache.path.name,
            "bad_files": len(report.bad_files),
            **({} if cache is None else _training_log(cache.path)),
        }

    def _image_family(self, family: str) -> dict[str, Any]:
        from fakescope.data.generators.synth import synthesize

        options = self._synth_options(family, train_from=self.out / "real" / "generator")
        report = synthesize(self.out / "real" / "source", self.out, options, self._events(family))
        return self._synth_details(report)

    def _control(self) -> dict[str, Any]:
        from fakescope.data.generators.synth import synthesize

        options = self._synth_options(CONTROL_FAMILY)
        report = synthesize(
            self.out / "real" / "source", self.out, options, self._events(CONTROL_FAMILY)
        )
        operations: Counter[str] = Counter()
        for path in report.written:
            meta = self.out / "meta" / CONTROL_FAMILY / f"{path.stem}.json"
            operations[json.loads(meta.read_text(encoding="utf-8"))["params"]["operation"]] += 1
        return {**self._synth_details(report), "operations": dict(sorted(operations.items()))}

    def _forge_inputs(self) -> Path:
        """``.staging/forge-inputs/real/source/``: hard links of the source tiles, and their rows.

        The forge copies each input it uses to ``real/<its folders>/``; mirroring the dataset's
        own paths makes that copy the tile already listed, so nothing is duplicated, and the
        staged manifest gives every forgery its photo's licence.
        """
        staging = self.out / STAGING_NAME / "forge-inputs"
        if (staging / MANIFEST_NAME).is_file():
            return staging
        rows = [row for row in read_manifest(self.out) if row.path.startswith("real/source/")]
        for row in rows:
            _link_or_copy(self.out / row.path, staging / row.path)
        append_manifest(staging, rows)
        return staging

    def _forge(self, kind: str) -> dict[str, Any]:
        from fakescope.data.forge.build import ForgeOptions, forge_dataset

        options = ForgeOptions(kind=kind, seed=self.plan.seed, count=self.plan.forgeries_per_kind)
        inputs = self._forge_inputs()
        model: dict[str, Any] = {}
        with self._forge_model(kind, inputs, model):
            report = forge_dataset(inputs, self.out, options)
        if report.reals:
            raise BenchmarkError(f"forge:{kind} wrote {report.reals} real copies (a bug)")
        return {
            "forged": report.forged,
            "skipped_inputs": len(report.skipped),
            "failed_attempts": len(report.failed),
            **({"model": model} if model else {}),
        }

    @contextmanager
    def _forge_model(self, kind: str, inputs: Path, details: dict[str, Any]) -> Iterator[None]:
        """Kinds that need a trained model get one trained on the ``generator`` photos only.

        Today that is ``inpaint-learned`` (the zoo's ``inpaint-net``), trained through the
        fingerprinted cache like the families, so the forged photos are unseen by the model.
        """
        if kind != LEARNED_INPAINT_KIND:
            yield
            return
        from fakescope.data.forge.inpaint_learned import prepare_inpainter, use_inpainter

        inpainter = prepare_inpainter(
            inputs,
            out_dir=self.out,
            train_from=self.out / "real" / "generator",
            seed=self.plan.seed,
            train_steps=self.plan.steps_for(INPAINTER),
            cache_dir=self.cache_dir,
            on_step=self._events(kind).train_step,
            on_bad_file=lambda path, message: self.log(f"{kind}: skipped {path}: {message}"),
        )
        description = inpainter.description
        details.update(
            {
                "generator": description["generator"],
                "cache_hit": inpainter.cache_hit,
                "train_seconds": round(inpainter.train_seconds, 2),
                "train_tiles": (description.get("training") or {}).get("train_tiles"),
                "overlapping_photo_ids": description["overlapping_photo_ids"],
                "model": Path(description["folder"]).name,
                **_training_log(Path(description["folder"])),
            }
        )
        with use_inpainter(inpainter):
            yield

    def _unconditional(self, family: str) -> dict[str, Any]:
        """Samples to ``<family>/1_fake/``, size-matched real crops to ``<family>/0_real/``."""
        from fakescope.data.generators.synth import synthesize

        staging = self.out / STAGING_NAME / family
        attempts: list[dict[str, Any]] = []
        # GAN training is fragile: on some data and seeds the discriminator wins and the samples
        # are noise, or all alike. Such a run is retrained with the next seed (seed + 1, ...),
        # so the outcome stays a function of the plan; every attempt is recorded.
        for attempt in range(self.plan.collapse_retries + 1):
            seed = self.plan.seed + attempt
            _remove(staging)
            options = self._synth_options(
                family, seed=seed, train_from=self.out / "real" / "generator"
            )
            report = synthesize(
                self.out / "real" / "source", staging, options, self._events(family)
            )
            check = check_samples(sorted((staging / "fake" / family).glob("*.png")))
            attempts.append({"seed": seed, **check})
            if not check["failed"]:
                break
            self.log(
                f"{family}: seed {seed} failed ({check['failed']}); "
                + (
                    "retrying with the next seed"
                    if attempt < self.plan.collapse_retries
                    else "kept"
                )
            )
        moved = []
        for row in read_manifest(staging):
            name = Path(row.path).name
            target = f"{family}/1_fake/{name}"
            meta_target = f"meta/{family}/{Path(row.params).name}"
            (self.out / target).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / row.path, self.out / target)
            document = json.loads((staging / row.params).read_text(encoding="utf-8"))
            document["file"] = target
            (self.out / meta_target).parent.mkdir(parents=True, exist_ok=True)
            (self.out / meta_target).write_text(
                json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )
            moved.append(replace(row, path=target, params=meta_target))
        _remove(staging)
        if not moved:
            raise BenchmarkError(f"{family} wrote no samples")
        side = moved[0].width
        reals = self._matched_reals(family, side, len(moved))
        append_manifest(self.out, moved + reals)
        return {
            **self._synth_details(report),
            "sample_side": side,
            "matched_reals": len(reals),
            "train_seed": attempts[-1]["seed"],
            "attempts": attempts,
            "collapsed": bool(attempts[-1]["failed"]),
        }

    def _matched_reals(self, family: str, side: int, n_samples: int) -> list[ManifestRow]:
        """Plain ``side``-px crops of source and held-out tiles, as many as keep the share equal.

        ``n_samples / fakes == matched / reals`` over the whole benchmark, so neither the family
        (paired with these reals) nor the overall audit sees the small size as a giveaway.
        """
        rows = read_manifest(self.out)
        n_real = sum(row.label == 0 for row in rows)
        n_fake = sum(row.label == 1 for row in rows)
        wanted = max(1, round(n_samples * n_real / n_fake)) if n_fake else n_samples
        listed = {row.path: row for row in rows}
        candidates = [
            tile
            for tile in read_tile_index(self.out / TILES_NAME)
            if tile.path.startswith(("real/source/", "real/heldout/"))
        ]
        if not candidates:
            raise BenchmarkError("no source or held-out tiles to match the samples with")
        rng = np.random.default_rng([self.plan.seed, _PAIRED_KEY])
        order = rng.permutation(len(candidates))
        written: list[ManifestRow] = []
        used: set[str] = set()
        attempt = 0
        # One crop per tile, cycling through the tiles again (other offsets) if more are needed.
        while len(written) < wanted and attempt < 4 * wanted + len(candidates):
            tile = candidates[int(order[attempt % len(candidates)])]
            attempt += 1
            crop_rng = photo_rng(self.plan.seed, f"{tile.name}@{attempt // len(candidates)}")
            slots = (self.plan.tile_size - side) // TILE_ALIGN + 1
            dy, dx = (int(v) * TILE_ALIGN for v in crop_rng.integers(0, slots, 2))
            name = f"{tile.photo_id}_{tile.y + dy}_{tile.x + dx}"
            if name in used:
                continue
            used.add(name)
            with Image.open(self.out / tile.path) as image:
                pixels = np.asarray(image.convert("RGB"))[dy : dy + side, dx : dx + side]
            relative = f"{family}/0_real/{name}.png"
            save_png(np.ascontiguousarray(pixels), self.out / relative)
            origin = listed[tile.path]
            written.append(
                ManifestRow(
                    path=relative,
                    label=0,
                    group=family,
                    photo_id=tile.photo_id,
                    source=origin.source,
                    licence=origin.licence,
                    sha256=file_sha256(self.out / relative),
                    width=side,
                    height=side,
                    format="PNG",
                )
            )
        return written

    def _write_splits(self) -> None:
        """``splits.csv``: the role of every photo_id the manifest uses."""
        assert self.photo_plan is not None
        rows = read_manifest(self.out)
        images = Counter(row.photo_id for row in rows)
        role_folders = tuple(f"real/{role}/" for role in ROLES)
        tiles = Counter(row.photo_id for row in rows if row.path.startswith(role_folders))
        path = self.out / SPLITS_NAME
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["photo_id", "scene", "role", "source", "licence", "tiles", "images"])
            for photo in self.photos:
                writer.writerow(
                    [
                        photo.photo_id,
                        photo.scene,
                        self.photo_plan.roles[photo.photo_id],
                        photo.source,
                        photo.licence,
                        tiles[photo.photo_id],
                        images[photo.photo_id],
                    ]
                )
            known = {photo.photo_id for photo in self.photos}
            for photo_id in sorted(set(images) - known):
                writer.writerow([photo_id, "", GENERATED_ROLE, "", "", 0, images[photo_id]])

    def _audit(self) -> None:
        from fakescope.data.audit import audit_dataset, debias_dataset

        name = "audit"
        recorded = self.state["steps"].get(name)
        if (
            recorded is not None
            and not self.ran
            and (self.out / AUDIT_NAME).is_file()
            and recorded["details"]["audit"]["threshold"] == self.plan.threshold
            and (not recorded["details"]["debiased"] or self.debias_dir.is_dir())
        ):
            self.log("audit: nothing changed since the last audit, skipped")
            self.results.append(StepResult(name, recorded["seconds"], True, 0, recorded["details"]))
            return
        self.log("audit: running")
        timings: dict[str, float] = {}
        start = time.perf_counter()
        report = audit_dataset(self.out, threshold=self.plan.threshold, seed=self.plan.seed)
        _write_json(self.out / AUDIT_NAME, report.to_dict())
        timings["audit"] = time.perf_counter() - start
        details: dict[str, Any] = {"audit": audit_summary(report), "debiased": None}
        self._clear_debias_dir()
        if report.flagged:
            self.log(f"audit: flagged {', '.join(report.flagged)}; writing the debiased copy")
            start = time.perf_counter()
            result = debias_dataset(
                self.out,
                self.debias_dir,
                self.plan.seed,
                self.plan.debias_quality,
                crop="none",
            )
            timings["debias"] = time.perf_counter() - start
            start = time.perf_counter()
            debiased = audit_dataset(
                self.debias_dir, threshold=self.plan.threshold, seed=self.plan.seed
            )
            _write_json(self.debias_dir / AUDIT_NAME, debiased.to_dict())
            timings["debiased_audit"] = time.perf_counter() - start
            details["debiased"] = {
                "dir": str(self.debias_dir),
                "written": len(result.files),
                "skipped": len(result.skipped),
                "errors": len(result.errors),
                "quality": result.quality,
                "subsampling": result.subsampling,
                "crop": result.crop,
            }
            details["debiased_audit"] = audit_summary(debiased)
        details["timings"] = {key: round(value, 2) for key, value in timings.items()}
        seconds = round(sum(timings.values()), 2)
        self.state["steps"][name] = {"seconds": seconds, "rows": 0, "details": details}
        self._save_state()
        self._audited = True
        self.results.append(StepResult(name, seconds, False, 0, details))

    def _clear_debias_dir(self) -> None:
        """Remove an earlier debiased copy; never a folder this command did not write."""
        from fakescope.data.audit import DEBIAS_INFO_NAME

        folder = self.debias_dir
        if not folder.exists():
            return
        if (folder / DEBIAS_INFO_NAME).is_file() or not any(folder.iterdir()):
            shutil.rmtree(folder)
            return
        raise BenchmarkError(
            f"{folder} exists and is not a debiased copy (no {DEBIAS_INFO_NAME}); "
            "pass another debias folder"
        )

    # -- summary ----------------------------------------------------------------------------

    def _summary(self, wall: float) -> dict[str, Any]:
        assert self.photo_plan is not None
        audit_step = self.state["steps"].get("audit", {}).get("details", {})
        steps = {
            result.name: {
                "seconds": result.seconds,
                "skipped": result.skipped,
                "rows": result.rows,
                **result.details,
            }
            for result in self.results
            if result.name != "audit"
        }
        audit_result = next((r for r in self.results if r.name == "audit"), None)
        if audit_result is not None:
            steps["audit"] = {
                "seconds": audit_result.seconds,
                "skipped": audit_result.skipped,
                **audit_step.get("timings", {}),
            }
        roles = Counter(self.photo_plan.roles.values())
        return {
            "fakescope_version": __version__,
            "command": command_line(self.plan, self.out),
            "plan": self.plan.to_dict(),
            "photos": {
                "total": len(self.photos),
                "by_role": {role: roles[role] for role in ROLES},
                "max_tiles_per_photo": self.state["steps"]["tiles"]["details"][
                    "max_tiles_per_photo"
                ],
            },
            "counts": count_images(read_manifest(self.out), self.plan),
            "steps": steps,
            "build_seconds": round(sum(s["seconds"] for s in steps.values()), 1),
            "wall_seconds": round(wall, 1),
            "runs": self.state.get("runs", []),
            "audit": audit_step.get("audit"),
            "debias": audit_step.get("debiased"),
            "debiased_audit": audit_step.get("debiased_audit"),
        }


# --------------------------------------------------------------------------- summaries


def count_images(rows: Sequence[ManifestRow], plan: BenchmarkPlan) -> dict[str, Any]:
    """Counts per class, role, family, control and forgery kind, from the manifest."""
    labels = Counter(row.label for row in rows)
    by_group = Counter(row.group for row in rows if row.label == 1)
    real_tiles = Counter(
        role for row in rows for role in ROLES if row.path.startswith(f"real/{role}/")
    )
    matched = Counter(
        row.group for row in rows if row.label == 0 and row.path.startswith(f"{row.group}/0_real/")
    )
    return {
        "real": labels[0],
        "fake": labels[1],
        "real_tiles": sum(real_tiles.values()),
        "real_tiles_by_role": {role: real_tiles[role] for role in ROLES},
        "control": {
            CONTROL_FAMILY: sum(r.path.startswith(f"real/{CONTROL_FAMILY}/") for r in rows)
        },
        "matched_reals": dict(matched),
        "families": {family: by_group[family] for family in plan.families},
        "generated_fakes": sum(by_group[family] for family in plan.families),
        "forgeries": {kind: by_group[kind] for kind in plan.kinds},
        "other_groups": {
            group: n
            for group, n in by_group.items()
            if group not in plan.families and group not in plan.kinds
        },
    }


def audit_summary(report: Any) -> dict[str, Any]:
    """The AUC table of an :class:`~fakescope.data.audit.AuditReport`, compact for JSON."""

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    variables = report.variables
    flagged_by_group = {
        "overall": [v.name for v in variables if v.overall.flagged],
        **{g: [v.name for v in variables if v.groups[g].flagged] for g in report.groups},
    }
    scopes = [("overall", lambda v: v.overall)] + [
        (g, lambda v, g=g: v.groups[g]) for g in report.groups
    ]
    evidence = {
        scope: {v.name: pick(v).evidence for v in variables if pick(v).flagged}
        for scope, pick in scopes
    }
    return {
        "root": report.root,
        "threshold": report.threshold,
        "n_real": report.n_real,
        "n_fake": report.n_fake,
        "n_errors": len(report.errors),
        "chance_auc": rounded(variables[0].overall.chance_auc) if variables else None,
        "groups": report.groups,
        "flagged": report.flagged,
        "flagged_by_group": {k: v for k, v in flagged_by_group.items() if v},
        "flagged_evidence": {k: v for k, v in evidence.items() if v},  # medians or counts
        "auc": {
            v.name: {
                "overall": rounded(v.overall.auc),
                **{g: rounded(v.groups[g].auc) for g in report.groups},
            }
            for v in variables
        },
    }


def command_line(plan: BenchmarkPlan, out: Path) -> str:
    """The command that rebuilds this benchmark (options that differ from the defaults)."""
    default = BenchmarkPlan()
    parts = ["fakescope", "data", "benchmark", str(out)]
    for name, option in (
        ("seed", "--seed"),
        ("real_tiles", "--real-tiles"),
        ("fakes_per_family", "--fakes-per-family"),
        ("forgeries_per_kind", "--forgeries-per-kind"),
        ("tile_size", "--tile-size"),
        ("train_steps", "--train-steps"),
    ):
        value = getattr(plan, name)
        if value != getattr(default, name):
            parts += [option, str(value)]
    if plan.families != default.families:
        parts += ["--families", ",".join(plan.families)]
    if plan.kinds != default.kinds:
        parts += ["--kinds", ",".join(plan.kinds)]
    return " ".join(parts)


def _auc_table(audit: dict[str, Any]) -> list[str]:
    threshold = audit["threshold"]
    groups = audit["groups"]
    lines = [
        "| variable | overall | " + " | ".join(groups) + " |",
        "|---|" + "---|" * (len(groups) + 1),
    ]
    for name, values in audit["auc"].items():
        cells = []
        for key in ("overall", *groups):
            value = values.get(key)
            text = "-" if value is None else f"{value:.3f}"
            cells.append(f"**{text}**" if value is not None and value > threshold else text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _gan_attempt_lines(steps: dict[str, Any]) -> list[str]:
    """One line per unconditional family: its training seed and the failed attempts before."""
    lines = []
    for name, step in steps.items():
        attempts = step.get("attempts")
        if not attempts:
            continue
        line = f"- `{name.split(':', 1)[1]}` trained with seed {step['train_seed']}"
        for attempt in attempts[:-1]:
            line += f"; seed {attempt['seed']} failed the sample check ({attempt['failed']})"
        if step["collapsed"]:
            line += f"; **its samples fail the check too** ({attempts[-1]['failed']})"
        lines.append(line + ".")
    return lines


def render_readme(summary: dict[str, Any]) -> str:
    """``README.md`` of a benchmark folder, from its summary."""
    counts = summary["counts"]
    plan = summary["plan"]
    lines = [
        "# fakescope benchmark",
        "",
        f"Built by `{summary['command']}` (fakescope {summary['fakescope_version']}); "
        "see docs/dataset-layout.md, section *Building the benchmark*. Every number below is "
        f"in `{SUMMARY_NAME}`.",
        "",
        "## Contents",
        "",
        f"- **{counts['real']} real** images: {counts['real_tiles']} tiles of "
        f"{plan['tile_size']} px under `real/<role>/` "
        + ", ".join(f"{role} {n}" for role, n in counts["real_tiles_by_role"].items())
        + f"; the `{CONTROL_FAMILY}` control ({counts['control'][CONTROL_FAMILY]}, real, "
        f"under `real/{CONTROL_FAMILY}/`)"
        + "".join(
            f"; {n} size-matched reals in `{family}/0_real/`"
            for family, n in counts["matched_reals"].items()
        )
        + ".",
        f"- **{counts['fake']} fake** images: "
        + ", ".join(f"{family} {n}" for family, n in counts["families"].items())
        + " (generators); "
        + ", ".join(f"{kind} {n}" for kind, n in counts["forgeries"].items())
        + " (forgeries, masks under `masks/<kind>/`, warp flows under `flow/warp/`).",
        *_gan_attempt_lines(summary["steps"]),
        "- Image-to-image fakes (`fake/<family>/`) are made from `source` tiles and carry their "
        "source photo's JPEG history; unconditional samples (`<family>/1_fake/`) are smaller "
        "than the tiles and are paired with real crops of their size (`<family>/0_real/`).",
        "",
        "## Roles (`splits.csv`)",
        "",
        "Each photo has one role, shared by the photos of one scene: `generator` (the zoo "
        "trained on these only), `source` (turned into fakes, processed reals and forgeries) and "
        "`heldout` (never trained on, never faked); `generated` marks the photo ids of "
        "unconditional samples. Join `manifest.csv` on `photo_id` to select images by role; "
        "split by `photo_id` (or scene) so that a photo's tiles, fakes and forgeries stay on "
        "one side. Splice donors are `source` photos too.",
        "",
        "Photos: "
        + ", ".join(f"{role} {n}" for role, n in summary["photos"]["by_role"].items())
        + f"; at most {summary['photos']['max_tiles_per_photo']} tiles per photo.",
        "",
        "## Build time",
        "",
        "| step | seconds | images |",
        "|---|---|---|",
    ]
    for name, step in summary["steps"].items():
        lines.append(f"| {name} | {step['seconds']:.0f} | {step.get('rows') or ''} |")
    lines += [
        "",
        f"Seconds of the run that built each step; total {summary['build_seconds']:.0f} s. "
        "Runs (start, wall time, steps run): "
        + "; ".join(
            f"{run['started']}, {run['wall_seconds']:.0f} s, "
            + (f"{len(run['ran'])} steps" if len(run["ran"]) > 1 else ", ".join(run["ran"]))
            for run in summary.get("runs", [])
        )
        + ".",
        "",
        "## Bias audit",
        "",
        "ROC-AUC of each storage variable alone as a real-vs-fake classifier (`fakescope data "
        "audit`); **bold** is above the threshold "
        f"{plan['threshold']}.",
        "",
    ]
    audit = summary.get("audit")
    if audit is not None:
        lines += [f"Benchmark (`{AUDIT_NAME}`): flagged: {', '.join(audit['flagged']) or 'none'}."]
        lines += ["", *_auc_table(audit), ""]
    debiased = summary.get("debiased_audit")
    if debiased is not None:
        lines += [
            f"Debiased copy `{summary['debias']['dir']}` (JPEG q{summary['debias']['quality']} "
            f"{summary['debias']['subsampling']}, sizes kept): flagged: "
            f"{', '.join(debiased['flagged']) or 'none'}.",
            "",
            *_auc_table(debiased),
            "",
        ]
        remaining = debiased.get("flagged_evidence", {})
        if remaining:
            lines += [
                "Still flagged after debiasing: "
                + "; ".join(
                    f"{group}: " + ", ".join(f"{name} ({text})" for name, text in flags.items())
                    for group, flags in remaining.items()
                )
                + ". The copy makes format, quality and metadata the same for both classes "
                "(sizes are balanced by construction); what remains is a difference in content "
                "(how much fine detail, hence how many bytes, an image has), not in how the "
                "files were stored.",
                "",
            ]
    elif audit is not None and not audit["flagged"]:
        lines += ["No variable was flagged, so no debiased copy was written.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- file helpers


def check_samples(paths: Sequence[Path]) -> dict[str, Any]:
    """Whether a GAN's samples show a failed run: all alike, or unstructured noise.

    ``spread``: mean over pixels of the standard deviation across samples (0-255);
    ``roughness``: median over samples of the mean absolute difference between neighbouring
    pixels (grey) over the sample's standard deviation. ``failed`` says what failed, or is "".
    """
    if len(paths) < 2:
        return {"spread": 0.0, "roughness": 0.0, "failed": "fewer than 2 samples"}
    stack = []
    for path in paths:
        with Image.open(path) as image:
            stack.append(np.asarray(image.convert("RGB"), dtype=np.float32))
    samples = np.stack(stack)
    spread = float(samples.std(axis=0).mean())
    grey = samples.mean(axis=3)
    steps = (
        np.abs(np.diff(grey, axis=1)).mean(axis=(1, 2))
        + np.abs(np.diff(grey, axis=2)).mean(axis=(1, 2))
    ) / 2
    roughness = float(np.median(steps / (grey.std(axis=(1, 2)) + 1e-6)))
    failed = []
    if spread < MIN_SAMPLE_SPREAD:
        failed.append(f"samples alike: spread {spread:.1f} < {MIN_SAMPLE_SPREAD}")
    if roughness > MAX_SAMPLE_ROUGHNESS:
        failed.append(f"samples are noise: roughness {roughness:.2f} > {MAX_SAMPLE_ROUGHNESS}")
    return {
        "spread": round(spread, 2),
        "roughness": round(roughness, 3),
        "failed": "; ".join(failed),
    }


def _training_log(folder: Path) -> dict[str, Any]:
    """Steps and final losses of a cached model (how well the budget trained it)."""
    from fakescope.data.generators.base import CONFIG_NAME

    try:
        document = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    log = document.get("log") or {}
    losses = {
        name: round(values[-1], 4) for name, values in log.get("losses", {}).items() if values
    }
    return {"train_steps": log.get("steps"), "final_losses": losses}


def _write_json(path: Path, document: dict[str, Any]) -> None:
    """Atomically: a crash never leaves a half-written state file behind."""
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    staging.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(staging, path)


def _rewrite_manifest(root: Path, rows: Sequence[ManifestRow]) -> None:
    """Replace ``manifest.csv`` by ``rows``, written by :mod:`fakescope.data.manifest`."""
    staging = root / STAGING_NAME / "manifest"
    _remove(staging)
    append_manifest(staging, rows)
    os.replace(staging / MANIFEST_NAME, root / MANIFEST_NAME)
    _remove(staging)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard link when possible (staged inputs cost no space), else copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
