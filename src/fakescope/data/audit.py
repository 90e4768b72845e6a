"""Bias audit and debiasing of labelled datasets (Grommelt et al. 2024, "Fake or JPEG?").

Generated-image datasets often leak the label through how files are stored rather than what
they show: reals are JPEGs of varied sizes, fakes are PNGs of one size. A detector trained on
such a set learns "JPEG or not" and "512x512 or not". :func:`audit_dataset` measures every
such storage variable on its own as a real-vs-fake classifier; :func:`debias_dataset` writes a
copy where format, JPEG quality and size no longer separate the classes.

**What is read.** Only headers where possible: Pillow's ``Image.open`` parses the header
lazily, so format, mode, size, JPEG quantization tables (quality via
:func:`fakescope.io.jpeg.estimate_quality`), chroma subsampling and EXIF come without decoding
pixels; PNG text chunks and eXIf are found by walking the chunk headers (seeking over pixel
data), because Pillow's ``text`` and ``getexif`` on PNG decode the whole image. Width and
height are as displayed (EXIF orientation 5-8 swaps them), as a detector sees the pixels.
``decode=True`` also decodes every file with :func:`fakescope.io.image.load_image`, which finds
files whose header is fine but whose pixel data is cut short.

**The AUC rule.** Each variable alone is scored as a classifier of real (0) vs fake (1):

- numeric variables: the value itself is the score and the reported separability is
  ``max(AUC, 1 - AUC)``, so the direction does not matter; a missing JPEG quality (a lossless
  file) ranks above quality 100. Because a rank score misses non-monotone leaks (every fake
  exactly 512x512, reals both smaller and larger), each exact value is also treated as a
  category (below) and the larger of the two separabilities is reported;
- categorical variables: the score of a file is the fake rate of its category, estimated
  out-of-fold (folds grouped by ``photo_id``, a splice's donor photo with its target, and
  stratified by label, rates smoothed towards the fold's prior) so that a category seen once
  does not predict itself. Out-of-fold rates are slightly pessimistic for useless categories
  (a held-out fake lowers its category's training rate), so values below 0.5 are reported as
  0.5: no signal.

A variable is **flagged** when its separability exceeds ``threshold`` (0.6 by default) overall
or for any generator group against the reals it is compared with. ``chance_auc`` is the
separability that a variable without any signal exceeds with 5 % probability at that sample
size (normal approximation of the Mann-Whitney statistic): a flag below it may be noise.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import ExifTags, Image, JpegImagePlugin

from fakescope.data.layout import (
    SHARED_GROUP,
    LabelledItem,
    discover_dataset,
    fake_groups,
    group_indices,
    linked_photo_groups,
)
from fakescope.data.manifest import ManifestRow, append_manifest, file_sha256, read_manifest
from fakescope.errors import InputError
from fakescope.io.image import PILLOW_DECODE_ERRORS, SUPPORTED_FORMATS, load_image
from fakescope.io.jpeg import estimate_quality

DEFAULT_THRESHOLD = 0.6
DEFAULT_QUALITY = 96  # Grommelt et al.: about the mean quality of ImageNet's JPEGs
DEFAULT_SUBSAMPLING = "4:2:0"  # libjpeg's default and what most camera and web JPEGs use
LOSSLESS_QUALITY = 101.0  # rank of a file without JPEG quality: above any lossy quality
DEBIAS_INFO_NAME = "debias.json"
QUANTILES: tuple[tuple[str, float], ...] = (
    ("min", 0.0),
    ("p5", 0.05),
    ("p25", 0.25),
    ("median", 0.5),
    ("p75", 0.75),
    ("p95", 0.95),
    ("max", 1.0),
)
CropMode = Literal["center", "random", "none"]

# Pillow's subsampling codes from JpegImagePlugin.get_sampling: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0.
_SUBSAMPLING_NAMES = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
# MPO is opened by the JPEG plugin; naming it in ``formats`` would fail (see io.image).
_OPEN_FORMATS: tuple[str, ...] = tuple(fmt for fmt in SUPPORTED_FORMATS if fmt != "MPO")
# Everything Pillow raises on malformed headers; none is a bug in the caller.
_HEADER_ERRORS: tuple[type[BaseException], ...] = (
    *PILLOW_DECODE_ERRORS,
    Image.DecompressionBombError,
)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_MAX_EXIF_BYTES = 1 << 20
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # transposes and 90-degree rotations
_TIFF_CAMERA_TAGS = (
    ExifTags.IFD.Exif,
    ExifTags.IFD.GPSInfo,
    ExifTags.Base.Make,
    ExifTags.Base.Model,
)


# --------------------------------------------------------------------------- per-file records


@dataclass(frozen=True)
class FileRecord:
    """Storage metadata of one file, read from its header."""

    path: str  # relative to the dataset root, POSIX separators
    label: int
    group: str
    photo_id: str
    format: str
    mode: str
    width: int  # as displayed: after EXIF orientation
    height: int
    file_size: int  # bytes
    jpeg_quality: int | None
    chroma_subsampling: str  # "4:4:4", "4:2:2", "4:2:0", "grey", "other" or "n/a"
    has_exif: bool
    png_text_keys: tuple[str, ...]
    has_icc_profile: bool

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def aspect_ratio(self) -> float:
        return self.width / self.height

    @property
    def bytes_per_pixel(self) -> float:
        return self.file_size / self.pixels


@dataclass(frozen=True)
class FileError:
    """A file that could not be read; it is left out of every statistic."""

    path: str
    kind: str
    message: str


def read_file_record(path: Path, root: Path, item: LabelledItem) -> FileRecord:
    """Header metadata of ``path``. Raises :class:`InputError` for an unreadable file.

    A header this reader rejects is decoded once with :func:`load_image`: for a bad file that
    raises the typed error (truncated, empty, unsupported, ...) that the report then names;
    for a file it can decode after all, the record is built from its metadata instead.
    """
    relative = path.relative_to(root).as_posix()
    try:
        return _read_header(path, relative, item)
    except _HEADER_ERRORS:
        loaded = load_image(path)
    meta = loaded.metadata
    height, width = loaded.pixels.shape[:2]
    return FileRecord(
        path=relative,
        label=item.label,
        group=item.group,
        photo_id=item.photo_id,
        format=meta.format,
        mode=meta.mode,
        width=width,
        height=height,
        file_size=path.stat().st_size,
        jpeg_quality=meta.jpeg_quality,
        chroma_subsampling="other" if meta.format in {"JPEG", "MPO"} else "n/a",
        has_exif=bool(meta.exif),
        png_text_keys=tuple(sorted(meta.png_text)),
        has_icc_profile=meta.has_icc_profile,
    )


def _read_header(path: Path, relative: str, item: LabelledItem) -> FileRecord:
    file_size = path.stat().st_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns on odd EXIF; bad metadata is handled here
        with Image.open(path, formats=_OPEN_FORMATS) as image:
            fmt = image.format or "UNKNOWN"
            width, height = image.size
            if width <= 0 or height <= 0:
                raise ValueError(f"invalid dimensions {width}x{height}")
            png_keys: tuple[str, ...] = ()
            png_exif: bytes | None = None
            if fmt == "PNG":
                png_keys, png_exif = _walk_png_chunks(path)
            exif = _read_exif(image, fmt, png_exif)
            orientation = exif.get(ExifTags.Base.Orientation, 1) if exif is not None else 1
            if isinstance(orientation, int) and orientation in _SWAPPING_ORIENTATIONS:
                width, height = height, width
            quality = None
            subsampling = "n/a"
            if fmt in {"JPEG", "MPO"}:
                tables = getattr(image, "quantization", None)
                if tables:
                    estimate = estimate_quality({int(k): list(v) for k, v in tables.items()})
                    quality = estimate.quality if estimate is not None else None
                subsampling = _subsampling_name(image)
            return FileRecord(
                path=relative,
                label=item.label,
                group=item.group,
                photo_id=item.photo_id,
                format=fmt,
                mode=image.mode,
                width=width,
                height=height,
                file_size=file_size,
                jpeg_quality=quality,
                chroma_subsampling=subsampling,
                has_exif=_has_exif(exif, fmt),
                png_text_keys=png_keys,
                has_icc_profile=bool(image.info.get("icc_profile")),
            )


def _subsampling_name(image: Image.Image) -> str:
    if getattr(image, "layers", 3) == 1:
        return "grey"
    return _SUBSAMPLING_NAMES.get(JpegImagePlugin.get_sampling(image), "other")


def _read_exif(image: Image.Image, fmt: str, png_exif: bytes | None) -> Image.Exif | None:
    """EXIF from the header, None when there is none; never decodes pixels."""
    try:
        if fmt == "PNG":
            # PngImageFile.getexif decodes the image when eXIf is not before IDAT.
            if not png_exif:
                return None
            exif = Image.Exif()
            exif.load(png_exif)
            return exif
        if fmt in {"GIF", "BMP"}:
            return None
        exif = image.getexif()
        return exif if len(exif) else None
    except _HEADER_ERRORS:
        return None  # malformed EXIF is metadata noise, not an unreadable image


def _has_exif(exif: Image.Exif | None, fmt: str) -> bool:
    if exif is None:
        return False
    if fmt == "TIFF":
        # A TIFF's own directory (sizes, strips) reads as EXIF; only camera tags count.
        return any(tag in exif for tag in _TIFF_CAMERA_TAGS)
    return len(exif) > 0


def _walk_png_chunks(path: Path) -> tuple[tuple[str, ...], bytes | None]:
    """Keywords of the text chunks and the eXIf payload, anywhere in the file.

    Seeks over chunk payloads (only text keywords and eXIf are read), so pixel data costs
    nothing; chunks after IDAT, where some writers put metadata, are found too.
    """
    keys: list[str] = []
    exif: bytes | None = None
    with open(path, "rb") as handle:
        if handle.read(8) != _PNG_SIGNATURE:
            return (), None
        while True:
            head = handle.read(8)
            if len(head) < 8:
                break
            length = int.from_bytes(head[:4], "big")
            kind = head[4:8]
            if kind in _PNG_TEXT_CHUNKS:
                payload = handle.read(min(length, 80))  # keywords are at most 79 bytes
                keys.append(payload.split(b"\x00", 1)[0].decode("latin-1"))
                handle.seek(length - len(payload) + 4, os.SEEK_CUR)
            elif kind == b"eXIf" and length <= _MAX_EXIF_BYTES:
                exif = handle.read(length)
                handle.seek(4, os.SEEK_CUR)
            elif kind == b"IEND":
                break
            else:
                handle.seek(length + 4, os.SEEK_CUR)
    return tuple(sorted(set(keys))), exif


# --------------------------------------------------------------------------- variables


@dataclass(frozen=True)
class Variable:
    name: str
    kind: Literal["numeric", "categorical"]
    value: Callable[[FileRecord], float | str]
    description: str


def _quality_rank(record: FileRecord) -> float:
    return LOSSLESS_QUALITY if record.jpeg_quality is None else float(record.jpeg_quality)


VARIABLES: tuple[Variable, ...] = (
    Variable("format", "categorical", lambda r: r.format, "file format (from the bytes)"),
    Variable(
        "jpeg_quality",
        "numeric",
        _quality_rank,
        "estimated JPEG quality (IJG scale); lossless files rank as 101",
    ),
    Variable(
        "chroma_subsampling",
        "categorical",
        lambda r: r.chroma_subsampling,
        "JPEG chroma subsampling (n/a for other formats)",
    ),
    Variable("width", "numeric", lambda r: float(r.width), "width as displayed"),
    Variable("height", "numeric", lambda r: float(r.height), "height as displayed"),
    Variable("aspect_ratio", "numeric", lambda r: r.aspect_ratio, "width / height"),
    Variable("pixels", "numeric", lambda r: float(r.pixels), "width x height"),
    Variable("file_size", "numeric", lambda r: float(r.file_size), "file size in bytes"),
    Variable("bytes_per_pixel", "numeric", lambda r: r.bytes_per_pixel, "file size / pixel count"),
    Variable("mode", "categorical", lambda r: r.mode, "Pillow pixel mode as stored"),
    Variable("has_exif", "categorical", lambda r: _yes_no(r.has_exif), "an EXIF block exists"),
    Variable(
        "png_text",
        "categorical",
        lambda r: ",".join(r.png_text_keys) or "none",
        "keywords of PNG text chunks",
    ),
    Variable(
        "has_icc_profile",
        "categorical",
        lambda r: _yes_no(r.has_icc_profile),
        "an ICC profile is embedded",
    ),
)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


# --------------------------------------------------------------------------- AUCs


@dataclass(frozen=True)
class AucResult:
    """One variable as a classifier on one scope (all data, or one group vs its reals)."""

    auc: float | None  # separability in [0.5, 1]; None when a class is missing
    auc_rank: float | None  # numeric only: max(AUC, 1 - AUC) of the value as a score
    auc_category: float | None  # out-of-fold per-category fake rate as the score
    direction: str | None  # numeric only: "higher_in_fake", "higher_in_real" or "none"
    n_real: int
    n_fake: int
    chance_auc: float | None
    flagged: bool
    evidence: str  # a short human-readable reason (medians or category counts)


@dataclass(frozen=True)
class VariableAudit:
    name: str
    kind: str
    description: str
    overall: AucResult
    groups: dict[str, AucResult]

    @property
    def flagged(self) -> bool:
        return self.overall.flagged or any(result.flagged for result in self.groups.values())


def chance_auc(n_real: int, n_fake: int, z: float = 1.96) -> float | None:
    """The separability a signal-free variable exceeds with 5 % probability (two-sided).

    Under no signal the Mann-Whitney AUC has variance (n0 + n1 + 1) / (12 n0 n1).
    """
    if n_real == 0 or n_fake == 0:
        return None
    return min(1.0, 0.5 + z * float(np.sqrt((n_real + n_fake + 1) / (12.0 * n_real * n_fake))))


def _folds(
    labels: np.ndarray, photo_ids: Sequence[str], seed: int, n_folds: int
) -> list[np.ndarray]:
    """Held-out index sets, grouped by photo (tiles share metadata) and stratified by label.

    Photos are split into three strata (reals only, fakes only, both) and dealt round-robin
    to the folds in a seeded random order within each stratum. scikit-learn's
    StratifiedGroupKFold does the same job but takes seconds per 10^4 photos, per scope.
    """
    _, photo = np.unique(np.asarray(photo_ids, dtype=object).astype(str), return_inverse=True)
    n_photos = int(photo.max()) + 1 if photo.size else 0
    n_splits = min(n_folds, n_photos)
    if n_splits < 2:
        return []
    fakes = np.bincount(photo, weights=labels, minlength=n_photos)
    reals = np.bincount(photo, weights=1 - labels, minlength=n_photos)
    stratum = (fakes > 0).astype(np.int64) + 2 * (reals > 0)
    rng = np.random.default_rng(seed)
    fold_of_photo = np.empty(n_photos, dtype=np.int64)
    for value in np.unique(stratum):
        members = rng.permutation(np.flatnonzero(stratum == value))
        # Each stratum starts at a random fold, so small strata do not all pile onto fold 0.
        start = int(rng.integers(n_splits))
        fold_of_photo[members] = (np.arange(members.size) + start) % n_splits
    fold = fold_of_photo[photo]
    return [np.flatnonzero(fold == k) for k in range(n_splits) if np.any(fold == k)]


def _oof_category_auc(values: Sequence[str], labels: np.ndarray, folds: list[np.ndarray]) -> float:
    """ROC-AUC of the out-of-fold smoothed fake rate of each file's category, at least 0.5."""
    from sklearn.metrics import roc_auc_score

    categories, codes = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    if categories.size < 2 or not folds:
        return 0.5  # one category carries no information; no folds, no honest estimate
    scores = np.empty(labels.size, dtype=np.float64)
    every = np.ones(labels.size, dtype=bool)
    for test in folds:
        train = every.copy()
        train[test] = False
        prior = float(labels[train].mean())
        counts = np.bincount(codes[train], minlength=categories.size).astype(np.float64)
        fakes = np.bincount(codes[train], weights=labels[train], minlength=categories.size)
        rates = (fakes + prior) / (counts + 1.0)  # m-estimate, m = 1: unseen -> the prior
        scores[test] = rates[codes[test]]
    return max(0.5, float(roc_auc_score(labels, scores)))


def _category_evidence(values: Sequence[str], labels: np.ndarray, limit: int = 3) -> str:
    counts: dict[str, list[int]] = {}
    for value, label in zip(values, labels, strict=True):
        counts.setdefault(str(value), [0, 0])[int(label)] += 1
    ranked = sorted(counts.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:limit]
    shown = "; ".join(f"{name} {real}/{fake}" for name, (real, fake) in ranked)
    more = f"; +{len(counts) - limit} more" if len(counts) > limit else ""
    return f"real/fake: {shown}{more}"


def _score_variable(
    variable: Variable,
    records: Sequence[FileRecord],
    labels: np.ndarray,
    folds: list[np.ndarray],
    threshold: float,
) -> AucResult:
    from sklearn.metrics import roc_auc_score

    n_fake = int(labels.sum())
    n_real = int(labels.size - n_fake)
    chance = chance_auc(n_real, n_fake)
    if n_real == 0 or n_fake == 0:
        return AucResult(None, None, None, None, n_real, n_fake, chance, False, "one class only")
    values = [variable.value(record) for record in records]
    if variable.kind == "categorical":
        auc_category = _oof_category_auc([str(v) for v in values], labels, folds)
        evidence = _category_evidence(values, labels)
        flagged = auc_category > threshold
        return AucResult(
            auc_category, None, auc_category, None, n_real, n_fake, chance, flagged, evidence
        )
    numbers = np.asarray(values, dtype=np.float64)
    raw = float(roc_auc_score(labels, numbers))
    auc_rank = max(raw, 1.0 - raw)
    direction = "none" if raw == 0.5 else ("higher_in_fake" if raw > 0.5 else "higher_in_real")
    # Exact values as categories catch non-monotone leaks (every fake exactly 512 wide).
    auc_category = _oof_category_auc([repr(v) for v in numbers.tolist()], labels, folds)
    auc = max(auc_rank, auc_category)
    median_real = float(np.median(numbers[labels == 0]))
    median_fake = float(np.median(numbers[labels == 1]))
    evidence = f"median real {_short(median_real)}, fake {_short(median_fake)}"
    return AucResult(
        auc, auc_rank, auc_category, direction, n_real, n_fake, chance, auc > threshold, evidence
    )


def _short(value: float) -> str:
    if value == LOSSLESS_QUALITY:
        return "lossless"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


# --------------------------------------------------------------------------- summaries


@dataclass(frozen=True)
class PopulationSummary:
    """Distributions of one class or group: counts, JPEG quality histogram, size quantiles."""

    n: int
    formats: dict[str, int]
    modes: dict[str, int]
    jpeg_quality: dict[int, int]  # quality -> count, JPEG files only
    chroma_subsampling: dict[str, int]  # JPEG files only
    n_exif: int
    n_png_text: int
    n_icc_profile: int
    top_sizes: dict[str, int]  # "WxH" -> count, the 5 most common
    quantiles: dict[str, dict[str, float]]  # variable -> {"min", "p5", ..., "max"}


def summarize(records: Sequence[FileRecord]) -> PopulationSummary:
    def counts(values: Iterable[Any]) -> dict[Any, int]:
        return dict(Counter(values).most_common())

    jpegs = [r for r in records if r.jpeg_quality is not None]
    quantiles: dict[str, dict[str, float]] = {}
    if records:
        for name, values in (
            ("width", [r.width for r in records]),
            ("height", [r.height for r in records]),
            ("aspect_ratio", [r.aspect_ratio for r in records]),
            ("pixels", [r.pixels for r in records]),
            ("file_size", [r.file_size for r in records]),
            ("bytes_per_pixel", [r.bytes_per_pixel for r in records]),
        ):
            points = np.quantile(np.asarray(values, dtype=np.float64), [q for _, q in QUANTILES])
            quantiles[name] = {key: float(v) for (key, _), v in zip(QUANTILES, points, strict=True)}
    return PopulationSummary(
        n=len(records),
        formats=counts(r.format for r in records),
        modes=counts(r.mode for r in records),
        jpeg_quality=dict(sorted(Counter(r.jpeg_quality for r in jpegs if r.jpeg_quality).items())),
        chroma_subsampling=counts(r.chroma_subsampling for r in jpegs),
        n_exif=sum(r.has_exif for r in records),
        n_png_text=sum(bool(r.png_text_keys) for r in records),
        n_icc_profile=sum(r.has_icc_profile for r in records),
        top_sizes=dict(Counter(f"{r.width}x{r.height}" for r in records).most_common(5)),
        quantiles=quantiles,
    )


# --------------------------------------------------------------------------- the audit


@dataclass
class AuditReport:
    root: str
    threshold: float
    groups: list[str]
    records: list[FileRecord]
    errors: list[FileError]
    variables: list[VariableAudit]
    summaries: dict[str, PopulationSummary]  # "real", "fake", "fake/<group>", "real/<group>"
    decoded: bool = False
    n_real: int = field(init=False)
    n_fake: int = field(init=False)

    def __post_init__(self) -> None:
        self.n_fake = sum(r.label == 1 for r in self.records)
        self.n_real = len(self.records) - self.n_fake

    @property
    def flagged(self) -> list[str]:
        return [variable.name for variable in self.variables if variable.flagged]

    def variable(self, name: str) -> VariableAudit:
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise KeyError(name)

    def to_dict(self, include_records: bool = False) -> dict[str, Any]:
        """JSON-ready: every number the table shows, and the per-file records on request."""
        result: dict[str, Any] = {
            "root": self.root,
            "threshold": self.threshold,
            "decoded": self.decoded,
            "n_files": len(self.records),
            "n_real": self.n_real,
            "n_fake": self.n_fake,
            "n_errors": len(self.errors),
            "groups": self.groups,
            "flagged": self.flagged,
            "variables": {
                v.name: {
                    "kind": v.kind,
                    "description": v.description,
                    "flagged": v.flagged,
                    "overall": asdict(v.overall),
                    "groups": {g: asdict(r) for g, r in v.groups.items()},
                }
                for v in self.variables
            },
            "summaries": {name: _summary_dict(s) for name, s in self.summaries.items()},
            "errors": [asdict(error) for error in self.errors],
        }
        if include_records:
            result["records"] = [asdict(record) for record in self.records]
        return result


def _summary_dict(summary: PopulationSummary) -> dict[str, Any]:
    data = asdict(summary)
    data["jpeg_quality"] = {str(q): n for q, n in summary.jpeg_quality.items()}  # JSON keys
    return data


def audit_dataset(
    root: str | os.PathLike[str],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    seed: int = 0,
    n_folds: int = 5,
    decode: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> AuditReport:
    """Read every file's storage metadata and score each variable alone as a label predictor.

    Raises :class:`InputError` when ``root`` is not a dataset (see
    :func:`fakescope.data.layout.discover_dataset`); a bad file is listed in ``errors`` and
    skipped. ``decode=True`` decodes every file too, to catch damaged pixel data.
    """
    root_path = Path(root)
    items = discover_dataset(root_path)
    records: list[FileRecord] = []
    kept: list[LabelledItem] = []
    errors: list[FileError] = []
    for item in items:
        try:
            record = read_file_record(item.path, root_path, item)
            if decode:
                load_image(item.path)
        except InputError as exc:
            errors.append(_file_error(item.path.relative_to(root_path).as_posix(), exc))
        else:
            records.append(record)
            kept.append(item)
        if on_progress is not None:
            on_progress(1)
    labels = np.asarray([r.label for r in records], dtype=np.int64)
    # Fold groups: a photo with every photo linked to it (a splice and its donor), so that a
    # category cannot be scored on a file that shares pixels with its training fold.
    photo_groups = linked_photo_groups(kept)
    groups = fake_groups(kept) if kept else []
    scopes: dict[str | None, np.ndarray] = {None: np.arange(len(records))}
    for group in groups:
        scopes[group] = np.asarray(group_indices(kept, group), dtype=np.int64)
    scored: dict[str | None, list[AucResult]] = {}
    for scope, index in scopes.items():
        if scope is not None and np.array_equal(index, scopes[None]):
            scored[scope] = scored[None]  # one group with shared reals: the overall scope
            continue
        scope_records = [records[i] for i in index]
        scope_labels = labels[index]
        folds = _folds(scope_labels, [photo_groups[i] for i in index], seed, n_folds)
        scored[scope] = [
            _score_variable(variable, scope_records, scope_labels, folds, threshold)
            for variable in VARIABLES
        ]
    variables = [
        VariableAudit(
            name=variable.name,
            kind=variable.kind,
            description=variable.description,
            overall=scored[None][position],
            groups={group: scored[group][position] for group in groups},
        )
        for position, variable in enumerate(VARIABLES)
    ]
    return AuditReport(
        root=str(root_path),
        threshold=threshold,
        groups=groups,
        records=records,
        errors=errors,
        variables=variables,
        summaries=_summaries(records),
        decoded=decode,
    )


def _file_error(relative: str, exc: InputError) -> FileError:
    return FileError(relative, getattr(exc, "kind", "input_error"), exc.message)


def _summaries(records: Sequence[FileRecord]) -> dict[str, PopulationSummary]:
    summaries = {
        "real": summarize([r for r in records if r.label == 0]),
        "fake": summarize([r for r in records if r.label == 1]),
    }
    fake_names = sorted({r.group for r in records if r.label == 1})
    real_names = sorted({r.group for r in records if r.label == 0 and r.group != SHARED_GROUP})
    for group in fake_names:
        summaries[f"fake/{group}"] = summarize(
            [r for r in records if r.label == 1 and r.group == group]
        )
    for group in real_names:  # CNNDetection layout: each group has its own reals
        summaries[f"real/{group}"] = summarize(
            [r for r in records if r.label == 0 and r.group == group]
        )
    return summaries


# --------------------------------------------------------------------------- debiasing


@dataclass(frozen=True)
class DebiasedFile:
    path: str  # in the copy
    source_path: str  # in the original dataset
    label: int
    top: int  # crop box in the upright source pixels
    left: int
    width: int
    height: int
    source_width: int
    source_height: int
    mask: str = ""


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class DebiasResult:
    out_dir: str
    quality: int
    subsampling: str
    crop: str
    size: int | None  # side of the square crop; None without cropping
    align: int
    seed: int
    files: list[DebiasedFile]
    skipped: list[SkippedFile]
    errors: list[FileError]

    def to_dict(self, include_files: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = {
            "out_dir": self.out_dir,
            "quality": self.quality,
            "subsampling": self.subsampling,
            "crop": self.crop,
            "size": self.size,
            "align": self.align,
            "seed": self.seed,
            "n_written": len(self.files),
            "n_masks": sum(bool(f.mask) for f in self.files),
            "skipped": [asdict(s) for s in self.skipped],
            "errors": [asdict(e) for e in self.errors],
        }
        if include_files:
            result["files"] = [asdict(f) for f in self.files]
        return result


def debias_dataset(
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    target_quality: int = DEFAULT_QUALITY,
    *,
    size: int | None = None,
    crop: CropMode = "center",
    subsampling: str = DEFAULT_SUBSAMPLING,
    align: int = 8,
    on_progress: Callable[[int], None] | None = None,
) -> DebiasResult:
    """Write a copy of ``root`` where storage no longer tells the classes apart.

    The recipes of Grommelt et al. 2024, applied to both classes alike:

    - **Size-constrained.** Every image is cropped, never resampled, to one square of side
      ``size`` (default: the smallest side in the dataset, so nothing is skipped). Resampling
      would low-pass one class's spectrum differently from the other's; a crop keeps pixels as
      they were. Images smaller than ``size`` on either side are skipped and listed. The crop
      is centred (``crop="center"``) or drawn per file from ``(seed, path)``
      (``crop="random"``), and its offsets are multiples of ``align`` (8): JPEG codes 8x8
      blocks from the origin, so an aligned crop keeps a previously compressed image's block
      grid on the grid of the new JPEG, rather than adding a misaligned double-compression
      trace to one class only. ``crop="none"`` keeps sizes (and leaves any size bias).
    - **JPEG96.** Every image, real or fake, is written as a baseline JPEG at
      ``target_quality`` (IJG tables) with ``subsampling`` chroma, as RGB, without EXIF, ICC
      profile or text, so format, quality, subsampling, mode and metadata become constant.

    Relative paths are mirrored with the suffix changed to ``.jpg`` (file names keep their
    ``photo_id`` prefix); masks under ``masks/<group>/`` and warp flows under
    ``flow/<group>/`` get the same crop. ``manifest.csv`` lists every written image (source and
    licence carried over from the original manifest when there is one) and ``debias.json``
    records the settings, each file's crop box, skipped files and errors.
    """
    root_path = Path(root)
    out_path = Path(out_dir)
    _check_out_dir(root_path, out_path)
    if not 1 <= target_quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {target_quality}")
    if subsampling not in _SUBSAMPLING_NAMES.values():
        raise ValueError(f"subsampling must be one of {sorted(_SUBSAMPLING_NAMES.values())}")
    if crop not in ("center", "random", "none"):
        raise ValueError(f"crop must be 'center', 'random' or 'none', got {crop!r}")
    if size is not None and size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if align < 1:
        raise ValueError(f"align must be positive, got {align}")
    items = discover_dataset(root_path)
    errors: list[FileError] = []
    headers: dict[Path, FileRecord] = {}
    for item in items:
        try:
            headers[item.path] = read_file_record(item.path, root_path, item)
        except InputError as exc:
            errors.append(_file_error(item.path.relative_to(root_path).as_posix(), exc))
    side: int | None = None
    if crop != "none":
        side = (
            size
            if size is not None
            else min((min(r.width, r.height) for r in headers.values()), default=None)
        )
    old_rows = {row.path: row for row in read_manifest(root_path)}
    out_path.mkdir(parents=True, exist_ok=True)
    files: list[DebiasedFile] = []
    skipped: list[SkippedFile] = []
    rows: list[ManifestRow] = []
    used: set[str] = set()
    for item in items:
        if on_progress is not None:
            on_progress(1)
        header = headers.get(item.path)
        if header is None:
            continue  # already in errors
        relative = item.path.relative_to(root_path)
        try:
            written = _debias_one(
                item,
                relative,
                (root_path, out_path),
                _CropPlan(side, crop, seed, align),
                (target_quality, subsampling),
                used,
                errors,
            )
        except InputError as exc:
            errors.append(_file_error(relative.as_posix(), exc))
            continue
        if isinstance(written, SkippedFile):
            skipped.append(written)
            continue
        files.append(written)
        rows.append(_manifest_row(item, written, old_rows.get(relative.as_posix()), out_path))
        if len(rows) >= 256:  # in batches: a long run keeps a usable manifest if interrupted
            append_manifest(out_path, rows)
            rows = []
    if rows:
        append_manifest(out_path, rows)
    result = DebiasResult(
        out_dir=str(out_path),
        quality=target_quality,
        subsampling=subsampling,
        crop=crop,
        size=side,
        align=align,
        seed=seed,
        files=files,
        skipped=skipped,
        errors=errors,
    )
    info = {"source": str(root_path), **result.to_dict(include_files=True)}
    (out_path / DEBIAS_INFO_NAME).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return result


def _check_out_dir(root: Path, out: Path) -> None:
    if not root.is_dir():
        raise InputError("dataset folder does not exist or is not a folder", str(root))
    resolved_root, resolved_out = root.resolve(), out.resolve()
    if resolved_out == resolved_root or resolved_root in resolved_out.parents:
        # Inside the source, the copy's real/ and fake/ folders would join the source dataset.
        raise InputError("the output folder must not be inside the dataset", str(out))
    if resolved_out in resolved_root.parents:
        raise InputError("the output folder must not contain the dataset", str(out))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        # A non-empty folder would mix old files into the copy and duplicate manifest rows.
        raise InputError("the output folder exists and is not empty", str(out))


@dataclass(frozen=True)
class _CropPlan:
    side: int | None  # None: no cropping
    mode: CropMode
    seed: int
    align: int

    def box(self, height: int, width: int, side: int, relative: str) -> tuple[int, int]:
        """(top, left) of the crop; offsets are multiples of ``align`` (see debias_dataset)."""
        rng = _file_rng(self.seed, relative) if self.mode == "random" else None

        def offset(extent: int) -> int:
            slack = extent - side
            if rng is None:
                return (slack // 2) // self.align * self.align
            return int(rng.integers(slack // self.align + 1)) * self.align

        return offset(height), offset(width)


def _file_rng(seed: int, relative: str) -> np.random.Generator:
    """A stream per file from (seed, path): adding a file never changes another file's crop."""
    digest = hashlib.sha256(relative.encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "big")])


def _target_name(relative: Path, used: set[str]) -> Path:
    target = relative.with_suffix(".jpg")
    if target.as_posix() in used:
        # a.png and a.jpg in one folder: keep the stem (and its photo_id prefix), add the suffix.
        target = relative.with_name(f"{relative.stem}-{relative.suffix.lstrip('.').lower()}.jpg")
    counter = 1
    while target.as_posix() in used:
        target = relative.with_name(f"{relative.stem}-{counter}.jpg")
        counter += 1
    used.add(target.as_posix())
    return target


def _debias_one(
    item: LabelledItem,
    relative: Path,
    folders: tuple[Path, Path],
    plan: _CropPlan,
    encoding: tuple[int, str],
    used: set[str],
    errors: list[FileError],
) -> DebiasedFile | SkippedFile:
    root, out = folders
    quality, subsampling = encoding
    pixels = load_image(item.path).pixels  # upright RGB uint8, alpha dropped
    height, width = pixels.shape[:2]
    top = left = 0
    if plan.side is not None:
        side = plan.side
        if height < side or width < side:
            return SkippedFile(
                relative.as_posix(), f"{width}x{height} is smaller than the {side}x{side} crop"
            )
        top, left = plan.box(height, width, side, relative.as_posix())
        pixels = pixels[top : top + side, left : left + side]
    target = _target_name(relative, used)
    destination = out / target
    destination.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(pixels)).save(
        destination,
        format="JPEG",
        quality=quality,
        subsampling=subsampling,
        optimize=False,
        progressive=False,
    )
    crop_h, crop_w = pixels.shape[:2]
    mask = ""
    if item.label == 1:
        box = (top, left, crop_h, crop_w, height, width)
        mask = _crop_companions(relative, target, root, out, box, errors)
    return DebiasedFile(
        path=target.as_posix(),
        source_path=relative.as_posix(),
        label=item.label,
        top=top,
        left=left,
        width=int(crop_w),
        height=int(crop_h),
        source_width=width,
        source_height=height,
        mask=mask,
    )


def _crop_companions(
    relative: Path,
    target: Path,
    root: Path,
    out: Path,
    box: tuple[int, int, int, int, int, int],
    errors: list[FileError],
) -> str:
    """Crop the mask (and warp flow) of a forged image like the image; the mask's new path."""
    parts = relative.parts
    if len(parts) < 3 or parts[0] != "fake":
        return ""
    below = Path(*parts[1:])  # <group>/<...>/<name>
    top, left, crop_h, crop_w, height, width = box
    mask_out = ""
    for candidate in (root / "masks" / below, root / "masks" / below.with_suffix(".png")):
        if not candidate.is_file():
            continue
        try:
            with Image.open(candidate) as opened:
                mask = np.asarray(opened.convert("L"))
        except _HEADER_ERRORS as exc:
            errors.append(FileError(candidate.relative_to(root).as_posix(), "mask", str(exc)))
            break
        if mask.shape != (height, width):
            errors.append(
                FileError(
                    candidate.relative_to(root).as_posix(),
                    "mask",
                    f"mask is {mask.shape[1]}x{mask.shape[0]}, image is {width}x{height}",
                )
            )
            break
        mask_relative = Path("masks", *target.parts[1:]).with_suffix(".png")
        (out / mask_relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask[top : top + crop_h, left : left + crop_w]).save(out / mask_relative)
        mask_out = mask_relative.as_posix()
        break
    flow_path = (root / "flow" / below).with_suffix(".npy")
    if flow_path.is_file():
        try:
            flow = np.load(flow_path, allow_pickle=False)
            if flow.shape[:2] != (height, width):
                raise ValueError(f"flow is {flow.shape}, image is {height}x{width}")
        except (OSError, ValueError) as exc:
            errors.append(FileError(flow_path.relative_to(root).as_posix(), "flow", str(exc)))
        else:
            # Displacements are relative to each pixel, so a crop leaves the values valid.
            flow_out = out / Path("flow", *target.parts[1:]).with_suffix(".npy")
            flow_out.parent.mkdir(parents=True, exist_ok=True)
            np.save(flow_out, np.ascontiguousarray(flow[top : top + crop_h, left : left + crop_w]))
    return mask_out


def _manifest_row(
    item: LabelledItem, written: DebiasedFile, old: ManifestRow | None, out: Path
) -> ManifestRow:
    parts = Path(written.path).parts
    if old is not None:
        group, source, licence = old.group, old.source, old.licence
    elif item.label == 1:
        group, source, licence = item.group, item.group, ""
    else:
        nested = parts[0] in ("real",) and len(parts) > 2
        group = parts[1] if nested else (item.group or "real")
        source, licence = "", ""
    return ManifestRow(
        path=written.path,
        label=item.label,
        group=group,
        photo_id=old.photo_id if old is not None and old.photo_id else item.photo_id,
        source=source,
        licence=licence,
        sha256=file_sha256(out / written.path),
        width=written.width,
        height=written.height,
        format="JPEG",
        mask=written.mask,
    )
