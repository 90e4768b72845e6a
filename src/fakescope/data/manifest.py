"""``manifest.csv``: one row per image of a dataset (see docs/dataset-layout.md)."""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

MANIFEST_NAME = "manifest.csv"


@dataclass(frozen=True)
class ManifestRow:
    path: str  # relative to the dataset root
    label: int  # 0 real, 1 fake or forged
    group: str
    photo_id: str
    source: str
    licence: str
    sha256: str
    width: int
    height: int
    format: str
    mask: str = ""
    params: str = ""


MANIFEST_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ManifestRow))


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def append_manifest(root: str | os.PathLike[str], rows: Iterable[ManifestRow]) -> Path:
    """Append rows to ``root/manifest.csv``, writing the header first when the file is new."""
    path = Path(root) / MANIFEST_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    is_new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        if is_new:
            writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))
    return path


def read_manifest(root: str | os.PathLike[str]) -> list[ManifestRow]:
    """Rows of ``root/manifest.csv``; an empty list when the dataset has none."""
    path = Path(root) / MANIFEST_NAME
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            ManifestRow(
                **{
                    **row,
                    "label": int(row["label"]),
                    "width": int(row["width"]),
                    "height": int(row["height"]),
                }
            )
            for row in csv.DictReader(handle)
        ]
