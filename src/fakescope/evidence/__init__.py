"""Evidence around the pixels: what a file's metadata and provenance say about its history.

Each reader takes an :class:`~fakescope.evidence.source.EvidenceSource` (the file's bytes and
its decoded image) and returns a JSON-ready dict, or None when it has nothing to say about this
kind of file (the ``jpeg`` reader on a PNG). :func:`collect_evidence` runs every registered
reader and returns their reports by name; a reader that raises gets ``{"error": ...}`` under
its own name and the others still report, so bad metadata never costs the file.

Every report may carry two lists that :mod:`fakescope.evidence.rules` reads:
``generator`` (markers that an AI generator made the file: which tool, where, what was seen)
and ``editing`` (signs of editing, reported and never deciding a verdict on their own).

Readers, in the order they run (see ``docs/evidence.md``):

- ``file``: format, pixel mode, size, frames, alpha, ICC profile;
- ``exif``: camera, software, dates, thumbnail consistency (:mod:`.exif`);
- ``xmp``: creator tool, edit history, IPTC digital source type (:mod:`.xmp`);
- ``text_chunks``: PNG text, comments, generation parameters (:mod:`.text_chunks`);
- ``jpeg``: quality, table family, double compression (:mod:`.jpeg`);
- ``c2pa``: C2PA manifests, validated offline (:mod:`.c2pa`; optional ``c2pa-python``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

from fakescope.evidence.c2pa import read_c2pa
from fakescope.evidence.exif import read_exif
from fakescope.evidence.jpeg import read_jpeg
from fakescope.evidence.source import EvidenceSource
from fakescope.evidence.text_chunks import read_text_chunks
from fakescope.evidence.xmp import read_xmp
from fakescope.io.image import ImageMetadata, LoadedImage

Reader = Callable[[EvidenceSource], dict[str, Any] | None]


def file_summary(metadata: ImageMetadata) -> dict[str, Any]:
    """The ``file`` report: what the container says, read at decode time."""
    return {
        "format": metadata.format,
        "mode": metadata.mode,
        "width": metadata.width,
        "height": metadata.height,
        "frames": metadata.frames,
        "has_alpha": metadata.has_alpha,
        "has_icc_profile": metadata.has_icc_profile,
    }


def _read_file(source: EvidenceSource) -> dict[str, Any]:
    return file_summary(source.metadata)


READERS: dict[str, Reader] = {
    "file": _read_file,
    "exif": read_exif,
    "xmp": read_xmp,
    "text_chunks": read_text_chunks,
    "jpeg": read_jpeg,
    "c2pa": read_c2pa,
}


def register_reader(name: str, reader: Reader) -> None:
    """Add (or replace) a reader; it runs after the built-in ones, under ``name``."""
    READERS[name] = reader


def collect_evidence(
    data: bytes, image: LoadedImage, readers: Mapping[str, Reader] | None = None
) -> dict[str, dict[str, Any]]:
    """Every reader's report on one decoded file, by reader name (readers with None omitted)."""
    source = EvidenceSource(data=data, image=image)
    reports: dict[str, dict[str, Any]] = {}
    try:
        with warnings.catch_warnings():
            # Pillow warns about malformed metadata it then works around; the readers report
            # what they could read, so the warnings would only be noise in a scan's output.
            warnings.simplefilter("ignore")
            for name, reader in (READERS if readers is None else readers).items():
                try:
                    report = reader(source)
                except Exception as exc:  # one reader's failure must never cost the others
                    report = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                if report is not None:
                    reports[name] = report
    finally:
        if "pil" in source.__dict__:  # opened lazily by a reader: release its buffer now
            source.pil.close()
    return reports


__all__ = [
    "READERS",
    "EvidenceSource",
    "Reader",
    "collect_evidence",
    "file_summary",
    "register_reader",
]
