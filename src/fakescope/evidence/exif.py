"""The ``exif`` reader: camera, software, dates, and what in EXIF contradicts the image.

Reported: camera make and model, lens, ``Software``, ``ProcessingSoftware``, ``HostComputer``,
the three dates (``DateTime`` = modified, ``DateTimeOriginal``, ``DateTimeDigitized``) and the
embedded thumbnail. Signs of editing (never a verdict on their own):

- ``editor_software``: a known editor in ``Software`` or ``ProcessingSoftware``;
- ``modified_after_capture``: ``DateTime`` more than a minute after ``DateTimeOriginal``
  (editors rewrite the first, cameras write both at capture);
- ``modified_before_original``: a modification date before the capture date, which no camera
  or editor writes: the dates were set by hand or copied from another file;
- ``thumbnail_differs``: the EXIF thumbnail (IFD1) does not look like the image. Cameras write
  the thumbnail at capture; editors that crop, retouch or replace content but copy the EXIF
  block unchanged leave the old thumbnail behind (Kee & Farid 2010 use the same mismatch).

``similarity`` is the Pearson correlation of the two pictures in grey at the thumbnail's size,
letterbox bars removed; a thumbnail of the same picture scores above 0.95, another picture
scores near 0. Below :data:`THUMBNAIL_DIFFERS_BELOW` the thumbnail is reported as different.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from PIL import ExifTags, Image

from fakescope.evidence.software import edit_sign, marker, match_editor, match_generator
from fakescope.evidence.source import EvidenceSource, printable

THUMBNAIL_DIFFERS_BELOW = 0.8
#: Larger "thumbnails" are not decoded: EXIF limits APP1 to 64 kB anyway, and the cap bounds
#: the work an untrusted offset/length pair can ask for.
MAX_THUMBNAIL_BYTES = 256 * 1024
_COMPARE_SIDE = 48  # grey pictures are compared at most this large: enough for the layout
_EDIT_GRACE = timedelta(minutes=1)
_EXIF_DATE_FORMAT = "%Y:%m:%d %H:%M:%S"
_IFD0 = {
    "make": ExifTags.Base.Make,
    "model": ExifTags.Base.Model,
    "software": ExifTags.Base.Software,
    "processing_software": ExifTags.Base.ProcessingSoftware,
    "host_computer": ExifTags.Base.HostComputer,
    "artist": ExifTags.Base.Artist,
    "modified": ExifTags.Base.DateTime,
}
_EXIF_IFD = {
    "original": ExifTags.Base.DateTimeOriginal,
    "digitized": ExifTags.Base.DateTimeDigitized,
    "lens": ExifTags.Base.LensModel,
}


def parse_exif_date(value: str | None) -> datetime | None:
    """An EXIF date (``YYYY:MM:DD HH:MM:SS``), or None for blank or malformed values."""
    if not value:
        return None
    try:
        return datetime.strptime(value.strip()[:19], _EXIF_DATE_FORMAT)
    except ValueError:
        return None


def read_exif(source: EvidenceSource) -> dict[str, Any] | None:
    exif = source.exif
    if not exif:
        return None
    try:
        sub_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, EOFError):
        sub_ifd = {}  # a broken Exif sub-IFD leaves IFD0 readable
    tags = {key: _tag(exif, tag) for key, tag in _IFD0.items()}
    tags |= {key: _tag(sub_ifd, tag) for key, tag in _EXIF_IFD.items()}
    camera = " ".join(v for v in (tags["make"], tags["model"]) if v) or None
    report: dict[str, Any] = {
        "camera": camera,
        "lens": tags["lens"],
        "software": tags["software"],
        "processing_software": tags["processing_software"],
        "host_computer": tags["host_computer"],
        "artist": tags["artist"],
        "dates": {key: tags[key] for key in ("modified", "original", "digitized")},
        "thumbnail": read_thumbnail(source),
    }
    generator: list[dict[str, str]] = []
    editing: list[dict[str, str]] = []
    for field in ("software", "processing_software"):
        value = tags[field]
        if tool := match_generator(value):
            generator.append(marker(tool, f"exif:{field}", value or ""))
        elif tool := match_editor(value):
            editing.append(edit_sign("editor_software", f"{tool} in EXIF {field} ({value})"))
    editing += _date_signs(tags)
    thumbnail = report["thumbnail"]
    if thumbnail and thumbnail.get("differs"):
        editing.append(
            edit_sign(
                "thumbnail_differs",
                f"EXIF thumbnail similarity {thumbnail['similarity']} to the image "
                f"(below {THUMBNAIL_DIFFERS_BELOW})",
            )
        )
    report["generator"] = generator
    report["editing"] = editing
    return report


def _tag(ifd: Any, tag: int) -> str | None:
    value = ifd.get(tag) if ifd else None
    if value is None:
        return None
    return printable(value, 120) or None


def _date_signs(tags: dict[str, str | None]) -> list[dict[str, str]]:
    modified = parse_exif_date(tags["modified"])
    captured = [
        d for d in (parse_exif_date(tags["original"]), parse_exif_date(tags["digitized"])) if d
    ]
    if modified is None or not captured:
        return []
    earliest = min(captured)
    if modified < earliest:
        return [
            edit_sign(
                "modified_before_original",
                f"DateTime {tags['modified']} is before the capture date "
                f"{earliest:%Y:%m:%d %H:%M:%S}",
            )
        ]
    if modified - earliest > _EDIT_GRACE:
        return [
            edit_sign(
                "modified_after_capture",
                f"DateTime {tags['modified']} is later than the capture date "
                f"{earliest:%Y:%m:%d %H:%M:%S}",
            )
        ]
    return []


def read_thumbnail(source: EvidenceSource) -> dict[str, Any] | None:
    """The IFD1 JPEG thumbnail compared with the image, or None when there is none."""
    tiff = source.exif_tiff
    if tiff is None:
        return None
    ifd1 = source.exif.get_ifd(ExifTags.IFD.IFD1)
    offset = ifd1.get(ExifTags.Base.JpegIFOffset)
    length = ifd1.get(ExifTags.Base.JpegIFByteCount)
    if not isinstance(offset, int) or not isinstance(length, int) or length <= 0:
        return None
    if length > MAX_THUMBNAIL_BYTES or offset + length > len(tiff):
        return {"present": True, "decodable": False, "reason": "offset or length out of range"}
    try:
        with Image.open(io.BytesIO(tiff[offset : offset + length]), formats=["JPEG"]) as thumb:
            thumb.draft("L", thumb.size)
            grey = np.asarray(thumb.convert("L"), dtype=np.float64)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        return {"present": True, "decodable": False, "reason": f"{type(exc).__name__}: {exc}"}
    similarity = thumbnail_similarity(grey, source.stored_pixels())
    report: dict[str, Any] = {
        "present": True,
        "decodable": True,
        "width": int(grey.shape[1]),
        "height": int(grey.shape[0]),
        "similarity": None if similarity is None else round(similarity, 3),
    }
    report["differs"] = similarity is not None and similarity < THUMBNAIL_DIFFERS_BELOW
    return report


def thumbnail_similarity(thumbnail: np.ndarray, pixels: np.ndarray) -> float | None:
    """Correlation of a grey thumbnail with the image (stored orientation), None if flat."""
    height, width = pixels.shape[:2]
    thumbnail = _trim_letterbox(thumbnail, width / height)
    t_height, t_width = thumbnail.shape
    scale = min(1.0, _COMPARE_SIDE / max(t_height, t_width))
    size = (max(4, round(t_width * scale)), max(4, round(t_height * scale)))
    # Striding first keeps a 50 MP image cheap; BOX resizing then averages what is left.
    step = max(1, min(height // (4 * size[1]), width // (4 * size[0])))
    image_small = Image.fromarray(np.ascontiguousarray(pixels[::step, ::step])).convert("L")
    image_grey = np.asarray(image_small.resize(size, Image.Resampling.BOX), dtype=np.float64)
    thumb_grey = np.asarray(
        Image.fromarray(thumbnail.astype(np.float32)).resize(size, Image.Resampling.BOX),
        dtype=np.float64,
    )
    a = image_grey.ravel() - image_grey.mean()
    b = thumb_grey.ravel() - thumb_grey.mean()
    norm = float(np.sqrt((a @ a) * (b @ b)))
    if norm < 1e-6 * a.size:
        return None  # a flat picture has no layout to compare
    return float(np.clip((a @ b) / norm, -1.0, 1.0))


def _trim_letterbox(thumbnail: np.ndarray, image_aspect: float, dark: float = 16.0) -> np.ndarray:
    """Cameras pad a thumbnail of another aspect ratio with black bars; those are cut off."""
    height, width = thumbnail.shape
    if abs(width / height - image_aspect) / image_aspect < 0.05:
        return thumbnail
    rows = np.flatnonzero(thumbnail.max(axis=1) > dark)
    cols = np.flatnonzero(thumbnail.max(axis=0) > dark)
    if rows.size < 4 or cols.size < 4:
        return thumbnail
    return thumbnail[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
