"""Turn a folder of real images into a forgery dataset (docs/dataset-layout.md).

For each forgery ``<photo_id>_<n>`` of kind ``K`` this writes::

    fake/K/<photo_id>_<n>.png     the forged image (PNG, lossless)
    masks/K/<photo_id>_<n>.png    uint8 0/255, 255 = pixels the operation changed (exact)
    masks/<extra>/...png          further masks of the kind (copymove-source)
    flow/K/<photo_id>_<n>.npy     float32 (H, W, 2) backward flow (dy, dx), for warp
    meta/K/<photo_id>_<n>.json    every sampled parameter, the seed and the inputs used
    real/<...>.png                each input image used (target or donor), untouched

and one ``manifest.csv`` row per written image. ``n`` is the forgery's slot in the plan, and its
random stream is derived from ``(seed, kind, n, input path)`` alone, so a forgery does not
depend on the order of processing, and a corrupt input only removes its own forgeries.

The plan: without ``count``, one forgery per input file in sorted order; with ``count``, inputs
are drawn as a sequence of seeded permutations (each input used as evenly as possible) until
``count`` forgeries are made. Files that cannot be decoded (or are smaller than ``size``) are
reported once and skipped; they never stop the batch.

Splices carry pixels of a second photo (the donor, recorded in the JSON). Their file name and
``photo_id`` are the target's; a split grouped by ``photo_id`` should also keep the donor's
photo on the same side (``meta/splice/*.json`` names it as ``donor.photo_id``).
"""

from __future__ import annotations

import json
import sys
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from fakescope import __version__
from fakescope.data.forge import FORGERIES, get_forgery
from fakescope.data.forge.base import Forgery, ForgeryError, ForgeryKind, forgery_entropy
from fakescope.data.layout import REAL_DIRS
from fakescope.data.manifest import ManifestRow, append_manifest, file_sha256, read_manifest
from fakescope.data.tiles import save_png
from fakescope.errors import FakescopeError, InputError
from fakescope.io.discover import iter_input_files
from fakescope.io.image import DEFAULT_MAX_PIXELS, load_image

CROP_ALIGN = 8  # crop offsets keep the JPEG 8x8 block grid at the origin (see data.tiles)
_PLAN_KEY = 0x666F726765  # "forge": separates the plan's stream from the forgeries' streams
_CACHE_SIZE = 8  # decoded images kept; donors are drawn again and again from few photos


class ForgeSetupError(FakescopeError, ValueError):
    """The request cannot be carried out at all (no inputs, one photo for splice, ...)."""


@dataclass(frozen=True)
class ForgeOptions:
    kind: str
    seed: int = 0
    count: int | None = None  # None: one forgery per input file
    size: int | None = None  # centre crop to size x size before forging (no resampling)
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class Candidate:
    """An input file: its path, its path below the input folder (posix) and its photo."""

    path: Path
    rel: str
    photo_id: str


@dataclass
class ForgeReport:
    kind: str
    forged: int = 0
    reals: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input, reason), once each
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, reason) per attempt


@dataclass(frozen=True)
class _Image:
    pixels: np.ndarray
    crop_yx: tuple[int, int] | None


class _Unusable(Exception):
    """An input that cannot serve: undecodable or too small. Reported once, then skipped."""


def photo_id_of(path: str | Path) -> str:
    """The prefix of the file name before the first ``_`` (the whole stem when there is none)."""
    return Path(path).stem.split("_", 1)[0]


def find_inputs(real_dir: Path) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """Image files under ``real_dir`` (sorted) and the folders that could not be listed."""
    candidates: list[Candidate] = []
    errors: list[tuple[str, str]] = []
    for entry in iter_input_files([str(real_dir)]):
        if entry.error is not None:
            errors.append((entry.path, entry.error.message))
            continue
        path = Path(entry.path)
        rel = PurePosixPath(*path.relative_to(real_dir).parts).as_posix()
        candidates.append(Candidate(path, rel, photo_id_of(path)))
    return candidates, errors


def forge_dataset(
    real_dir: str | Path,
    out_dir: str | Path,
    options: ForgeOptions,
    *,
    on_skip: Callable[[str, str], None] | None = None,
    on_forged: Callable[[], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ForgeReport:
    """Forge images of ``real_dir`` into the dataset ``out_dir``; see the module docstring.

    Raises :class:`ForgeSetupError` when nothing can be done, and
    :class:`~fakescope.data.forge.base.MissingDependencyError` when the kind cannot run here.
    """
    real_dir, out_dir = Path(real_dir), Path(out_dir)
    try:
        kind = get_forgery(options.kind)
    except KeyError as exc:
        raise ForgeSetupError(str(exc.args[0])) from None
    kind.ensure_available()
    candidates, walk_errors = find_inputs(real_dir)
    candidates = [c for c in candidates if not _is_output(c.path, real_dir, out_dir)]
    if not candidates:
        raise ForgeSetupError(f"no image files under {real_dir}")
    if kind.needs_donor and len({c.photo_id for c in candidates}) < 2:
        raise ForgeSetupError(
            f"{kind.name} pastes content from another photo, but every input file belongs to "
            "one photo_id (the file-name prefix before the first '_')"
        )
    _refuse_existing(out_dir, kind.name)
    if on_total is not None:
        on_total(options.count if options.count is not None else len(candidates))
    return _Builder(real_dir, out_dir, options, kind, candidates, on_skip, on_forged).run(
        walk_errors
    )


def _is_output(path: Path, real_dir: Path, out_dir: Path) -> bool:
    """Whether an input file is something this command writes, which must not be forged again.

    Forgeries, masks and flows never are inputs. When the output folder lies inside the input
    folder, nothing under it is; when the inputs lie inside the dataset (forging
    ``DATASET/real`` into ``DATASET``), its reals are.
    """
    path, real_dir, out_dir = path.resolve(), real_dir.resolve(), out_dir.resolve()
    if any(path.is_relative_to(out_dir / name) for name in ("fake", "masks", "flow", "meta")):
        return True
    return out_dir != real_dir and out_dir.is_relative_to(real_dir) and path.is_relative_to(out_dir)


def _refuse_existing(out_dir: Path, kind: str) -> None:
    """Forgery names restart at slot 0 on every run; a second run must not overwrite a first."""
    folder = out_dir / "fake" / kind
    listed = any(row.path.startswith(f"fake/{kind}/") for row in _read_rows(out_dir))
    if listed or (folder.is_dir() and any(folder.iterdir())):
        raise ForgeSetupError(
            f"{out_dir} already holds {kind} forgeries; write them to a new dataset folder "
            f"(or remove fake/{kind}, masks/{kind}, meta/{kind} and their manifest rows)"
        )


def _read_rows(root: Path) -> list[ManifestRow]:
    try:
        return read_manifest(root)
    except (KeyError, TypeError, ValueError) as exc:
        raise ForgeSetupError(f"cannot read {root / 'manifest.csv'}: {exc}") from exc


class _Builder:
    def __init__(
        self,
        real_dir: Path,
        out_dir: Path,
        options: ForgeOptions,
        kind: ForgeryKind,
        candidates: list[Candidate],
        on_skip: Callable[[str, str], None] | None,
        on_forged: Callable[[], None] | None,
    ) -> None:
        self.real_dir = real_dir
        self.out = out_dir
        self.options = options
        self.kind = kind
        self.candidates = candidates
        self.on_skip = on_skip or (lambda path, reason: None)
        self.on_forged = on_forged or (lambda: None)
        self.report = ForgeReport(kind.name)
        self.bad: dict[str, str] = {}
        self.cache: OrderedDict[str, _Image] = OrderedDict()
        self.input_rows = _input_manifest(real_dir)
        self.real_paths = _real_paths(candidates, options.size)
        self.listed = {row.path for row in _read_rows(out_dir)}

    def run(self, walk_errors: list[tuple[str, str]]) -> ForgeReport:
        for path, reason in walk_errors:
            self._skip(path, reason)
        tried: set[int] = set()  # inputs tried since the last forgery
        for slot, index in enumerate(self._plan()):
            if self.options.count is not None and self.report.forged >= self.options.count:
                break
            if len(tried) == len(self.candidates):
                break  # every input failed since the last success: more rounds cannot help
            tried.add(index)
            if self._forge_slot(slot, self.candidates[index]):
                tried.clear()
        return self.report

    def _plan(self) -> Iterator[int]:
        if self.options.count is None:
            yield from range(len(self.candidates))
            return
        rng = np.random.default_rng([self.options.seed, _PLAN_KEY])
        while True:  # permutation after permutation: every input used as evenly as possible
            yield from (int(i) for i in rng.permutation(len(self.candidates)))

    def _forge_slot(self, slot: int, target: Candidate) -> bool:
        try:
            image = self._load(target)
        except _Unusable:
            return False
        entropy = forgery_entropy(self.options.seed, self.kind.name, slot, target.rel)
        donor: tuple[Candidate, _Image] | None = None
        if self.kind.needs_donor:
            donor = self._donor(target, np.random.default_rng([*entropy, 1]))
            if donor is None:
                self._fail(target, "no other photo could be decoded as a donor")
                return False
        try:
            forgery = self.kind.forge(
                image.pixels,
                np.random.default_rng(entropy),
                donor=None if donor is None else donor[1].pixels,
            )
        except ForgeryError as exc:
            self._fail(target, exc.args[0] if exc.args else str(exc))
            return False
        forgery.validate(image.pixels.shape)
        self._write(f"{target.photo_id}_{slot}", slot, entropy, target, image, donor, forgery)
        self.report.forged += 1
        self.on_forged()
        return True

    def _load(self, candidate: Candidate) -> _Image:
        if candidate.rel in self.bad:
            raise _Unusable(self.bad[candidate.rel])
        if candidate.rel in self.cache:
            self.cache.move_to_end(candidate.rel)
            return self.cache[candidate.rel]
        try:
            pixels = load_image(candidate.path, max_pixels=self.options.max_pixels).pixels
            image = _crop(pixels, self.options.size)
        except InputError as exc:
            self._mark_bad(candidate, f"{exc.kind}: {exc.message}")
            raise _Unusable(exc.message) from exc
        except _Unusable as exc:
            self._mark_bad(candidate, f"too_small: {exc}")
            raise
        self.cache[candidate.rel] = image
        if len(self.cache) > _CACHE_SIZE:
            self.cache.popitem(last=False)
        return image

    def _donor(
        self, target: Candidate, rng: np.random.Generator
    ) -> tuple[Candidate, _Image] | None:
        # A permutation of every other photo's files, not only those known to be good, so the
        # choice does not depend on which bad files earlier slots happened to discover.
        others = [c for c in self.candidates if c.photo_id != target.photo_id]
        for index in rng.permutation(len(others)):
            try:
                return others[int(index)], self._load(others[int(index)])
            except _Unusable:
                continue
        return None

    def _mark_bad(self, candidate: Candidate, reason: str) -> None:
        self.bad[candidate.rel] = reason
        self._skip(str(candidate.path), reason)

    def _skip(self, path: str, reason: str) -> None:
        self.report.skipped.append((path, reason))
        self.on_skip(path, reason)

    def _fail(self, target: Candidate, reason: str) -> None:
        self.report.failed.append((str(target.path), reason))
        self.on_skip(str(target.path), f"cannot forge ({reason})")

    def _write(
        self,
        name: str,
        slot: int,
        entropy: list[int],
        target: Candidate,
        image: _Image,
        donor: tuple[Candidate, _Image] | None,
        forgery: Forgery,
    ) -> None:
        kind = self.kind.name
        rows: list[ManifestRow] = []
        image_rel = f"fake/{kind}/{name}.png"
        mask_rel = f"masks/{kind}/{name}.png"
        meta_rel = f"meta/{kind}/{name}.json"
        save_png(forgery.pixels, self.out / image_rel)
        _save_mask(forgery.mask, self.out / mask_rel)
        extra: dict[str, str] = {}
        for group, mask in forgery.extra_masks.items():
            extra[group] = f"masks/{group}/{name}.png"
            _save_mask(mask, self.out / extra[group])
        flow_rel = None
        if forgery.flow is not None:
            flow_rel = f"flow/{kind}/{name}.npy"
            (self.out / flow_rel).parent.mkdir(parents=True, exist_ok=True)
            np.save(self.out / flow_rel, forgery.flow)
        used = [(target, image)] + ([donor] if donor is not None else [])
        for candidate, pixels in used:
            row = self._write_real(candidate, pixels)
            if row is not None:
                rows.append(row)
        height, width = forgery.mask.shape
        meta: dict[str, Any] = {
            "kind": kind,
            "name": name,
            "slot": slot,
            "image": image_rel,
            "mask": mask_rel,
            "extra_masks": extra,
            "flow": flow_rel,
            "photo_id": target.photo_id,
            "target": self._describe(target, image),
            "donor": None if donor is None else self._describe(*donor),
            "seed": self.options.seed,
            "rng_entropy": entropy,
            "size": self.options.size,
            "height": height,
            "width": width,
            "mask_pixels": int(forgery.mask.sum()),
            "mask_fraction": round(float(forgery.mask.mean()), 6),
            "params": forgery.params,
            "software": _software(),
        }
        (self.out / meta_rel).parent.mkdir(parents=True, exist_ok=True)
        (self.out / meta_rel).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        licences = [self._input_row_value(c, "licence") for c, _ in used]
        rows.append(
            ManifestRow(
                path=image_rel,
                label=1,
                group=kind,
                photo_id=target.photo_id,
                source=f"fakescope data forge --kind {kind}",
                licence="; ".join(dict.fromkeys(lic for lic in licences if lic)),
                sha256=file_sha256(self.out / image_rel),
                width=width,
                height=height,
                format="PNG",
                mask=mask_rel,
                params=meta_rel,
            )
        )
        append_manifest(self.out, rows)
        self.listed.update(row.path for row in rows)

    def _write_real(self, candidate: Candidate, image: _Image) -> ManifestRow | None:
        rel = self.real_paths[candidate.rel]
        if rel in self.listed:
            return None  # written for an earlier forgery (or an earlier run)
        path = save_png(image.pixels, self.out / rel)
        height, width = image.pixels.shape[:2]
        known = self.input_rows.get(candidate.path.resolve())
        self.report.reals += 1
        return ManifestRow(
            path=rel,
            label=0,
            group=known.group if known is not None and known.label == 0 else "real",
            photo_id=candidate.photo_id,
            source=known.source if known is not None else "",
            licence=known.licence if known is not None else "",
            sha256=file_sha256(path),
            width=width,
            height=height,
            format="PNG",
        )

    def _input_row_value(self, candidate: Candidate, column: str) -> str:
        known = self.input_rows.get(candidate.path.resolve())
        return "" if known is None else str(getattr(known, column))

    def _describe(self, candidate: Candidate, image: _Image) -> dict[str, Any]:
        return {
            "input": candidate.rel,
            "photo_id": candidate.photo_id,
            "real": self.real_paths[candidate.rel],
            "crop_yx": None if image.crop_yx is None else list(image.crop_yx),
        }


def _crop(pixels: np.ndarray, size: int | None) -> _Image:
    """A ``size`` square from the centre, its offsets rounded down to the JPEG block grid."""
    if size is None:
        return _Image(pixels, None)
    height, width = pixels.shape[:2]
    if height < size or width < size:
        raise _Unusable(f"{width}x{height} is smaller than --size {size}")
    y = (height - size) // 2 // CROP_ALIGN * CROP_ALIGN
    x = (width - size) // 2 // CROP_ALIGN * CROP_ALIGN
    return _Image(np.ascontiguousarray(pixels[y : y + size, x : x + size]), (y, x))


def _save_mask(mask: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255).save(path, format="PNG")


def _real_paths(candidates: list[Candidate], size: int | None) -> dict[str, str]:
    """Where each input's untouched copy goes under ``real/``, as a dataset-relative path.

    The input's folders are kept (a leading ``real/`` dropped, so a dataset's reals do not end
    up in ``real/real/``); the name keeps its stem, with ``_0`` appended when it has no ``_``
    so that ``fakescope.data.layout`` derives the same photo_id as for its forgeries, and
    ``_crop<size>`` when cropped, so that forging a dataset into itself never puts a crop
    where the full image is listed. Two inputs that would land on one name (``a.jpg``,
    ``a.png``) keep their extension in it.
    """
    wanted: dict[str, str] = {}
    for candidate in candidates:
        parts = PurePosixPath(candidate.rel).parts
        folders = parts[1:-1] if len(parts) > 1 and parts[0] in REAL_DIRS else parts[:-1]
        stem = PurePosixPath(parts[-1]).stem
        stem = stem if "_" in stem else f"{stem}_0"
        stem = stem if size is None else f"{stem}_crop{size}"
        wanted[candidate.rel] = PurePosixPath("real", *folders, f"{stem}.png").as_posix()
    clashes = {path for path, n in Counter(wanted.values()).items() if n > 1}
    for rel, path in wanted.items():
        if path in clashes:
            suffix = PurePosixPath(rel).suffix.lstrip(".").lower()
            wanted[rel] = path[: -len(".png")] + f"_{suffix}.png"
    return wanted


def _input_manifest(real_dir: Path) -> dict[Path, ManifestRow]:
    """Rows of a manifest at or just above the input folder, by file: source and licence."""
    rows: dict[Path, ManifestRow] = {}
    for root in (real_dir.parent, real_dir):  # the nearer manifest wins
        try:
            for row in read_manifest(root):
                rows[(root / row.path).resolve()] = row
        except (KeyError, TypeError, ValueError, OSError):
            continue  # a foreign or broken manifest only costs the licence column
    return rows


def _software() -> dict[str, str]:
    versions = {"fakescope": __version__, "numpy": np.__version__}
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        versions["opencv"] = str(getattr(cv2, "__version__", "unknown"))
    return versions


__all__ = ["FORGERIES", "ForgeOptions", "ForgeReport", "ForgeSetupError", "forge_dataset"]
