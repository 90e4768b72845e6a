"""``fakescope data synth``: real photos in, a generator's images out, in the dataset layout.

The flow (docs/dataset-layout.md for the layout):

1. **Inputs.** Every image under ``--from`` (recursive, sorted; :func:`iter_input_files`) is a
   real photo or tile. Its ``photo_id`` is the one a ``manifest.csv`` in or above ``--from``
   lists for it (``fakescope data real`` writes one), else its file stem up to the first ``_``
   (tiles are named ``<photo_id>_<y>_<x>.png``). Files under a ``fake``, ``1_fake`` or
   ``processed-real`` folder are skipped: they are not real sources. A file that cannot be
   decoded is a warning and a count, never an abort.
2. **Tiles.** An image at least ``tile_size`` on both sides gives up to ``max_tiles`` tiles
   (:func:`fakescope.data.tiles.cut_tiles`: plain crops, offsets multiples of 16 so the JPEG
   block grid stays aligned, featureless crops dropped); a smaller one gives one crop at its
   origin, its sides cut down to multiples of 16. No resampling.
3. **Training set.** Image-to-image generators must never be applied to photos they trained on:
   they train on ``--train-from`` (whose photo ids must not appear in ``--from``) or, by
   default, on a seeded split of ``--from`` *by photo* (``train_fraction`` of the photos, at
   least one, at least one left over), recorded in every output's meta. An unconditional
   generator trains on ``--train-from`` or all of ``--from``. ``processed-real`` trains nothing.
4. **Model.** Trained or loaded from the fingerprinted cache (:mod:`~.base`).
5. **Outputs.** ``OUT/fake/<generator>/<photo_id>_<n>.png`` (``n`` counts the outputs of one
   photo) or ``OUT/real/processed-real/...`` for the control family;
   ``OUT/meta/<generator>/<stem>.json`` with every parameter; one ``manifest.csv`` row each.
   Image-to-image fakes get the JPEG history of their source tile (the source photo's estimated
   quality and chroma subsampling, read from the file or, for PNG tiles, from a ``tiles.csv``
   tile index beside or above ``--from``), so format and quality do not separate the classes
   (Grommelt et al. 2024). DCGAN samples, which have no source, each get the JPEG history of a
   training tile drawn with the seed, so their quality distribution matches the reals'.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fakescope import __version__
from fakescope.data.generators.base import CacheResult
from fakescope.data.generators.fakes import match_jpeg_history
from fakescope.data.generators.registry import create_generator, get_entry
from fakescope.data.manifest import ManifestRow, append_manifest, file_sha256
from fakescope.data.tiles import (
    TILE_ALIGN,
    TILE_MIN_STD,
    TileRecord,
    cut_tiles,
    jpeg_subsampling,
    photo_rng,
    read_tile_index,
    save_png,
)
from fakescope.errors import FakescopeError, InputError
from fakescope.io.discover import iter_input_files
from fakescope.io.image import load_image

NOT_REAL_DIRS = frozenset({"fake", "1_fake", "processed-real"})
DEFAULT_UNCONDITIONAL_COUNT = 64


class SynthError(FakescopeError, RuntimeError):
    """The synthesis cannot run (no usable photos, overlapping training set, existing output)."""


@dataclass(frozen=True)
class SynthOptions:
    """Everything ``fakescope data synth`` takes besides the folders."""

    generator: str
    seed: int = 0
    count: int | None = None  # outputs to write (default: one per tile; DCGAN: 64)
    train_steps: int | None = None  # override the generator's default number of steps
    cache_dir: Path | None = None  # default: $FAKESCOPE_CACHE/generators or ~/.cache/...
    rebuild: bool = False
    train_from: Path | None = None
    train_fraction: float = 0.3
    tile_size: int = 256
    max_tiles: int = 4  # per input image


@dataclass
class SynthEvents:
    """Optional callbacks, so a CLI can draw progress bars; all default to doing nothing."""

    train_step: Callable[[int, int], None] | None = None  # (done, total)
    generated: Callable[[int, int | None], None] | None = None  # (written so far, total)
    bad_file: Callable[[str, str], None] | None = None  # (path, message)
    note: Callable[[str], None] | None = None


@dataclass
class SynthReport:
    """What a run did."""

    generator: str
    written: list[Path] = field(default_factory=list)
    bad_files: list[tuple[str, str]] = field(default_factory=list)
    skipped_files: int = 0  # under fake/ or processed-real/: not real sources
    train_photo_ids: list[str] = field(default_factory=list)
    apply_photo_ids: list[str] = field(default_factory=list)
    train_tiles: int = 0
    split: str = ""  # "train-from", "seeded-photo-split" or "all-of-from"
    cache: CacheResult | None = None
    train_seconds: float = 0.0
    generate_seconds: float = 0.0


@dataclass(frozen=True)
class SourceTile:
    record: TileRecord  # name, photo_id, offset, source format and JPEG history
    pixels: np.ndarray
    relative: str  # source file, relative to the folder it was read from
    file_sha256: str
    jpeg_origin: str  # where the JPEG history came from: "file", "tiles.csv" or ""


def photo_id_of(path: str | os.PathLike[str]) -> str:
    """The file stem up to the first ``_`` (the stem with ``-`` for ``_`` if that is empty)."""
    stem = Path(path).stem
    return stem.split("_", 1)[0] or stem.replace("_", "-").strip("-") or "photo"


@dataclass(frozen=True)
class _PhotoInfo:
    """A ``manifest.csv`` found in or above an input folder: photo ids, sources, licences."""

    folder: Path | None = None
    by_path: dict[str, str] = field(default_factory=dict)  # path relative to folder -> photo_id
    by_photo: dict[str, dict[str, str]] = field(default_factory=dict)  # -> source, licence

    def photo_id(self, path: Path) -> str:
        """The manifest's photo id of ``path`` when it is listed, else :func:`photo_id_of`.

        The manifest wins so that fakes carry exactly the id that ``fakescope.data.layout``
        gives their source; ``_`` is replaced because output names use it as the separator.
        """
        if self.folder is not None:
            try:
                relative = path.resolve().relative_to(self.folder).as_posix()
            except ValueError:
                relative = ""
            listed = self.by_path.get(relative)
            if listed:
                return listed.replace("_", "-")
        return photo_id_of(path)


class _Inputs:
    """The image files of one folder, grouped by photo, with bad and skipped ones counted."""

    def __init__(self, root: Path, report: SynthReport, events: SynthEvents) -> None:
        if not root.is_dir():
            raise SynthError(f"{root}: not a folder")
        self.root = root
        self.by_photo: dict[str, list[Path]] = defaultdict(list)
        self.tile_index = _find_tile_index(root)
        self.photo_info = _find_photo_info(root)
        self.photo_of: dict[Path, str] = {}
        for entry in iter_input_files([str(root)]):
            if entry.error is not None:
                _bad(report, events, entry.path, str(entry.error))
                continue
            path = Path(entry.path)
            if NOT_REAL_DIRS.intersection(path.relative_to(root).parts[:-1]):
                report.skipped_files += 1
                continue
            self.photo_of[path] = self.photo_info.photo_id(path)
            self.by_photo[self.photo_of[path]].append(path)

    def photo_ids(self) -> list[str]:
        return sorted(self.by_photo)

    def files(self, photo_ids: Sequence[str]) -> list[Path]:
        return sorted(p for photo_id in photo_ids for p in self.by_photo[photo_id])

    def tiles(
        self,
        files: Sequence[Path],
        options: SynthOptions,
        report: SynthReport,
        events: SynthEvents,
    ) -> Iterator[SourceTile]:
        """Decode files lazily into tiles; a bad file is reported and skipped."""
        for path in files:
            try:
                yield from self._file_tiles(path, options)
            except InputError as exc:
                _bad(report, events, str(path), exc.message)

    def _file_tiles(self, path: Path, options: SynthOptions) -> Iterator[SourceTile]:
        loaded = load_image(path)
        pixels, metadata = loaded.pixels, loaded.metadata
        photo_id = self.photo_of[path]
        height, width = pixels.shape[:2]
        size = options.tile_size
        if height >= size and width >= size:
            cuts = [
                (t.y, t.x, t.pixels)
                for t in cut_tiles(
                    pixels,
                    photo_id,
                    size=size,
                    max_tiles=options.max_tiles,
                    seed=options.seed,
                    align=TILE_ALIGN,
                    min_std=TILE_MIN_STD,
                )
            ]
        else:
            h, w = height // TILE_ALIGN * TILE_ALIGN, width // TILE_ALIGN * TILE_ALIGN
            if not h or not w:
                raise InputError(f"{width}x{height} is too small for a tile", str(path))
            cuts = [(0, 0, np.ascontiguousarray(pixels[:h, :w]))]
        is_jpeg = metadata.format in ("JPEG", "MPO")
        source_format, quality = metadata.format, metadata.jpeg_quality
        subsampling = jpeg_subsampling(path) if is_jpeg else ""
        origin = "file" if is_jpeg and quality is not None else ""
        indexed = self.tile_index.get(path.stem)
        whole_tile = len(cuts) == 1 and cuts[0][2].shape[:2] == (height, width)
        if not is_jpeg and indexed is not None and whole_tile:
            # A PNG tile cut from a JPEG photo: its history is the photo's, from the index.
            source_format, quality = indexed.source_format, indexed.jpeg_quality
            subsampling = indexed.jpeg_subsampling
            origin = "tiles.csv" if quality is not None else ""
        relative = path.relative_to(self.root).as_posix()
        for y, x, crop in cuts:
            record = TileRecord(
                name=path.stem if whole_tile else f"{path.stem}@{y},{x}",
                photo_id=photo_id,
                y=y,
                x=x,
                path=str(path),
                source_format=source_format,
                jpeg_quality=quality,
                jpeg_subsampling=subsampling,
            )
            yield SourceTile(record, crop, relative, loaded.sha256, origin)


def _bad(report: SynthReport, events: SynthEvents, path: str, message: str) -> None:
    report.bad_files.append((path, message))
    if events.bad_file is not None:
        events.bad_file(path, message)


def _find_tile_index(root: Path) -> dict[str, TileRecord]:
    """``tiles.csv`` (written by the tiler) in ``root`` or up to two folders above, by name."""
    for folder in (root, root.parent, root.parent.parent):
        index = folder / "tiles.csv"
        if index.is_file():
            try:
                return {record.name: record for record in read_tile_index(index)}
            except (OSError, ValueError, KeyError, TypeError):
                return {}
    return {}


def _find_photo_info(root: Path) -> _PhotoInfo:
    """The first ``manifest.csv`` in ``root`` or up to two folders above (reals only).

    Reads both the dataset manifest (``fakescope.data.manifest``) and the photo manifest of
    the real-photo cache (``fakescope.data.sources``): both have ``path`` (relative to their
    folder), ``photo_id``, ``source`` and ``licence``.
    """
    resolved = root.resolve()
    for folder in (resolved, resolved.parent, resolved.parent.parent):
        manifest = folder / "manifest.csv"
        if not manifest.is_file():
            continue
        try:
            with open(manifest, newline="", encoding="utf-8") as handle:
                rows = [
                    row
                    for row in csv.DictReader(handle)
                    if row.get("photo_id") and row.get("label") in (None, "", "0")
                ]
        except (OSError, UnicodeDecodeError, csv.Error):
            return _PhotoInfo()
        return _PhotoInfo(
            folder,
            {row["path"]: row["photo_id"] for row in rows if row.get("path")},
            {
                row["photo_id"].replace("_", "-"): {
                    "source": row.get("source") or "",
                    "licence": row.get("licence") or "",
                }
                for row in rows
            },
        )
    return _PhotoInfo()


def split_photos(
    photo_ids: Sequence[str], seed: int, train_fraction: float
) -> tuple[list[str], list[str]]:
    """Seeded split by photo: (train, apply), both non-empty, ``train_fraction`` of photos train."""
    ids = sorted(set(photo_ids))
    if len(ids) < 2:
        raise SynthError(
            f"{len(ids)} photo(s) in --from: an image-to-image generator needs at least 2 to "
            "train and apply on different photos (or pass --train-from)"
        )
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    n_train = min(len(ids) - 1, max(1, round(len(ids) * train_fraction)))
    return sorted(order[:n_train]), sorted(order[n_train:])


def _training_stack(tiles: Sequence[SourceTile]) -> np.ndarray:
    """Stack training tiles; mixed sizes are cut to the smallest square side at the origin."""
    side = min(min(t.pixels.shape[:2]) for t in tiles)
    return np.stack([t.pixels[:side, :side] for t in tiles])


def _group_dir(out_dir: Path, generator: str, label: int) -> Path:
    return out_dir / ("real" if label == 0 else "fake") / generator


def synthesize(
    from_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    options: SynthOptions,
    events: SynthEvents | None = None,
) -> SynthReport:
    """Run one generator over real photos and write its images (see module docstring).

    Raises :class:`~.registry.UnknownGeneratorError`, :class:`~.registry.
    GeneratorUnavailableError` (torch missing) or :class:`SynthError`.
    """
    events = events or SynthEvents()
    entry = get_entry(options.generator)
    generator = create_generator(options.generator)
    if options.train_steps is not None and hasattr(generator, "options"):
        generator.options = replace(generator.options, steps=options.train_steps)
    from_root, out_root = Path(from_dir), Path(out_dir)
    report = SynthReport(options.generator)
    group_dir = _group_dir(out_root, options.generator, generator.label)
    if group_dir.is_dir() and any(group_dir.iterdir()):
        raise SynthError(f"{group_dir} already holds images; remove it or choose another OUT_DIR")
    inputs = _Inputs(from_root, report, events)
    photo_ids = inputs.photo_ids()
    if not photo_ids and entry.kind != "unconditional":
        raise SynthError(f"no readable image files under {from_root}")

    # -- which photos train, which are applied to ------------------------------------------
    train_inputs: _Inputs | None = None
    train_ids: list[str] = []
    apply_ids = photo_ids
    if entry.kind != "processing":
        if options.train_from is not None:
            train_inputs = _Inputs(Path(options.train_from), report, events)
            train_ids = train_inputs.photo_ids()
            report.split = "train-from"
            overlap = sorted(set(train_ids) & set(photo_ids))
            if overlap and entry.kind == "image-to-image":
                raise SynthError(
                    f"--train-from and --from share photos {overlap[:5]}: a generator must not "
                    "be applied to photos it was trained on"
                )
        elif entry.kind == "image-to-image":
            train_inputs = inputs
            train_ids, apply_ids = split_photos(photo_ids, options.seed, options.train_fraction)
            report.split = "seeded-photo-split"
        else:
            train_inputs, train_ids = inputs, photo_ids
            report.split = "all-of-from"
        if not train_ids:
            raise SynthError("no training photos")
    report.train_photo_ids, report.apply_photo_ids = train_ids, apply_ids

    # -- train or load ---------------------------------------------------------------------
    train_tiles: list[SourceTile] = []
    if train_inputs is not None:
        train_tiles = list(
            train_inputs.tiles(train_inputs.files(train_ids), options, report, events)
        )
        if not train_tiles:
            raise SynthError("none of the training photos gave a usable tile")
        # The photos that actually gave tiles (a listed file may have failed to decode).
        report.train_photo_ids = sorted({t.record.photo_id for t in train_tiles})
        report.train_tiles = len(train_tiles)
        start = time.perf_counter()
        try:
            report.cache = generator.fit_cached(
                _training_stack(train_tiles),
                options.seed,
                cache_dir=options.cache_dir,
                rebuild=options.rebuild,
                on_step=events.train_step,
            )
        except ValueError as exc:  # e.g. training crops larger than the tiles
            raise SynthError(f"{options.generator}: {exc}") from exc
        report.train_seconds = time.perf_counter() - start

    common = {
        "generator": options.generator,
        "kind": entry.kind,
        "label": generator.label,
        "seed": options.seed,
        "fakescope_version": __version__,
        "model": _model_meta(generator, report),
        "training": _training_meta(options, report, train_tiles),
    }
    writer = _Writer(out_root, group_dir, options.generator, generator.label, common, inputs)
    start = time.perf_counter()
    if entry.kind == "unconditional":
        _write_unconditional(generator, options, train_tiles, writer, events)
    else:
        files = inputs.files(apply_ids)
        if options.count is not None:
            # A seeded choice of photos, so a small --count still spans several photos.
            rng = np.random.default_rng([options.seed, 7])
            files = [files[i] for i in rng.permutation(len(files))]
        tiles = inputs.tiles(files, options, report, events)
        if entry.kind == "processing":
            _write_processed(generator, options, tiles, writer, events)
        else:
            _write_image_to_image(generator, options, tiles, writer, events)
    writer.flush()
    report.generate_seconds = time.perf_counter() - start
    report.written = writer.written
    return report


def _model_meta(generator: Any, report: SynthReport) -> dict[str, Any] | None:
    if report.cache is None:
        return None
    log = generator.log
    return {
        "fingerprint": report.cache.fingerprint,
        "cache_dir": str(report.cache.path),
        "cache_hit": report.cache.hit,
        "config": generator.identity(),
        "options": asdict(generator.options),
        "train_seconds": None if log is None else round(log.seconds, 2),
        "final_losses": None if log is None else log.final(),
    }


def _training_meta(
    options: SynthOptions, report: SynthReport, tiles: Sequence[SourceTile]
) -> dict[str, Any] | None:
    if not tiles:
        return None
    return {
        "split": report.split,
        "train_from": str(options.train_from) if options.train_from is not None else None,
        "train_fraction": None if options.train_from is not None else options.train_fraction,
        "split_seed": options.seed,
        "train_photo_ids": report.train_photo_ids,
        "train_tiles": len(tiles),
    }


class _Writer:
    """Names, saves and indexes outputs: PNG, meta JSON, manifest rows (flushed in batches)."""

    def __init__(
        self,
        out_root: Path,
        group_dir: Path,
        group: str,
        label: int,
        common: dict[str, Any],
        inputs: _Inputs,
    ) -> None:
        self.out_root, self.group_dir, self.group, self.label = out_root, group_dir, group, label
        self.meta_dir = out_root / "meta" / group
        self.common = common
        self.inputs = inputs
        self.counters: dict[str, int] = defaultdict(int)
        self.rows: list[ManifestRow] = []
        self.written: list[Path] = []

    def write(
        self,
        pixels: np.ndarray,
        photo_id: str,
        source: SourceTile | None,
        extra: dict[str, Any],
    ) -> Path:
        n = self.counters[photo_id]
        self.counters[photo_id] += 1
        stem = f"{photo_id}_{n}"
        image_path = save_png(pixels, self.group_dir / f"{stem}.png")
        meta_path = self.meta_dir / f"{stem}.json"
        relative = image_path.relative_to(self.out_root).as_posix()
        document = {
            **self.common,
            "file": relative,
            "photo_id": photo_id,
            "source": None if source is None else _source_meta(source),
            **extra,
        }
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        meta_path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        info = self.inputs.photo_info.by_photo.get(photo_id, {})
        self.rows.append(
            ManifestRow(
                path=relative,
                label=self.label,
                group=self.group,
                photo_id=photo_id,
                source=(info.get("source") or self.group) if self.label == 0 else self.group,
                licence=info.get("licence", ""),
                sha256=file_sha256(image_path),
                width=int(pixels.shape[1]),
                height=int(pixels.shape[0]),
                format="PNG",
                params=meta_path.relative_to(self.out_root).as_posix(),
            )
        )
        self.written.append(image_path)
        if len(self.rows) >= 64:
            self.flush()
        return image_path

    def flush(self) -> None:
        """Append pending rows, so an interrupted run leaves a manifest of what exists."""
        if self.rows:
            append_manifest(self.out_root, self.rows)
            self.rows = []


def _source_meta(source: SourceTile) -> dict[str, Any]:
    record = source.record
    return {
        "path": source.relative,
        "file_sha256": source.file_sha256,
        "offset": [record.y, record.x],
        "size": [int(source.pixels.shape[0]), int(source.pixels.shape[1])],
        "format": record.source_format,
        "jpeg_quality": record.jpeg_quality,
        "jpeg_subsampling": record.jpeg_subsampling,
    }


def _jpeg_meta(record: TileRecord, origin: str) -> dict[str, Any] | None:
    if record.source_format not in ("JPEG", "MPO") or record.jpeg_quality is None:
        return None
    return {
        "quality": record.jpeg_quality,
        "subsampling": record.jpeg_subsampling or None,
        "origin": origin,
    }


def _write_image_to_image(
    generator: Any,
    options: SynthOptions,
    tiles: Iterator[SourceTile],
    writer: _Writer,
    events: SynthEvents,
    batch_size: int = 8,
) -> None:
    batch: list[SourceTile] = []

    def run() -> None:
        fakes = generator.generate(np.stack([t.pixels for t in batch]), options.seed)
        for tile, fake in zip(batch, fakes, strict=True):
            jpeg = _jpeg_meta(tile.record, tile.jpeg_origin)
            writer.write(
                match_jpeg_history(fake, tile.record),
                tile.record.photo_id,
                tile,
                {"jpeg_history": jpeg},
            )
            if events.generated is not None:
                events.generated(len(writer.written), options.count)
        batch.clear()

    for index, tile in enumerate(tiles):
        if options.count is not None and index >= options.count:
            break
        if batch and (len(batch) == batch_size or batch[0].pixels.shape != tile.pixels.shape):
            run()
        batch.append(tile)
    if batch:
        run()


def _write_processed(
    generator: Any,
    options: SynthOptions,
    tiles: Iterator[SourceTile],
    writer: _Writer,
    events: SynthEvents,
) -> None:
    # Operations are dealt in shuffled rounds over the output index: balanced for any count.
    schedule: list[str] = []
    for index, tile in enumerate(tiles):
        if options.count is not None and index >= options.count:
            break
        if index >= len(schedule):
            schedule = generator.schedule(index + 256, options.seed)
        rng = photo_rng(options.seed, f"{tile.record.name}@{tile.record.y},{tile.record.x}")
        pixels, params = generator.process(tile.pixels, schedule[index], rng)
        writer.write(pixels, tile.record.photo_id, tile, {"params": params, "jpeg_history": None})
        if events.generated is not None:
            events.generated(len(writer.written), options.count)


def _write_unconditional(
    generator: Any,
    options: SynthOptions,
    train_tiles: Sequence[SourceTile],
    writer: _Writer,
    events: SynthEvents,
) -> None:
    count = options.count if options.count is not None else DEFAULT_UNCONDITIONAL_COUNT
    samples = generator.generate(count, options.seed)  # all latents at once: i independent of n
    # Each sample borrows the JPEG history of a training tile drawn with the seed, so the
    # fakes' JPEG qualities follow the reals' (Grommelt et al. 2024); PNG sources give none.
    rng = np.random.default_rng([options.seed, 1])
    donors = rng.integers(0, len(train_tiles), count)
    for index, sample in enumerate(samples):
        donor = train_tiles[int(donors[index])]
        jpeg = _jpeg_meta(donor.record, donor.jpeg_origin)
        if jpeg is not None:
            jpeg["donor"] = donor.relative
        photo_id = f"{options.generator}-{options.seed}-{index}"
        writer.write(
            match_jpeg_history(sample, donor.record),
            photo_id,
            None,
            {"params": {"latent_seed": options.seed, "sample_index": index}, "jpeg_history": jpeg},
        )
        if events.generated is not None:
            events.generated(len(writer.written), count)
