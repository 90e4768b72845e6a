"""``fakescope data real OUT_DIR``: real photographs cut into tiles, with provenance.

Heavy imports stay inside the command so that ``fakescope --help`` stays fast.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

TILE_SIZES = (256, 512)
REAL_GROUP = "real"
PHOTOS_CSV = "photos.csv"
TILES_CSV = "tiles.csv"


def _check_tile_size(value: int) -> int:
    if value not in TILE_SIZES:
        raise typer.BadParameter(f"must be one of {', '.join(map(str, TILE_SIZES))}")
    return value


def source_slug(source: str) -> str:
    """``debian:mate-backgrounds`` -> ``debian-mate-backgrounds``: a safe folder name."""
    return re.sub(r"[^a-z0-9.]+", "-", source.lower()).strip("-.") or "unknown"


def real_command(
    out_dir: Annotated[
        Path, typer.Argument(file_okay=False, help="Dataset folder to write (or add) reals to.")
    ],
    tile_size: Annotated[
        int, typer.Option(callback=_check_tile_size, help="Tile side in pixels: 256 or 512.")
    ] = 256,
    max_tiles_per_photo: Annotated[int, typer.Option(min=1, help="At most this many tiles.")] = 24,
    seed: Annotated[int, typer.Option(help="Seed of the tile grid, per photo.")] = 0,
    sources_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Cache of fetched photos (default: $FAKESCOPE_REAL_SOURCES or "
            "~/.cache/fakescope/real-sources).",
        ),
    ] = None,
    debian: Annotated[
        bool,
        typer.Option(
            help="Include the Debian wallpaper packages (apt-get download once, cached after)."
        ),
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show progress on stderr.")] = True,
) -> None:
    """Cut real photographs into tiles under OUT_DIR/real/<source>/<photo_id>_<y>_<x>.png.

    Sources: Debian wallpaper packages (fetched once with 'apt-get download', unpacked with
    'dpkg-deb -x', nothing installed) and sample photos shipped inside scikit-image,
    scikit-learn and matplotlib. Works offline once the Debian packages are in the cache (or
    with --no-debian).

    Photographs only: a file is used only when it is on the curated allowlist of
    fakescope.data.sources (every image of the packages was inspected; renders, vector art,
    paintings and composites are left out) and passes a sensor-noise sanity check.
    Deduplicated by hash: photos by the SHA-256 of their bytes (one file shipped under several
    names counts once), and tiles by the SHA-256 of the PNG (a tile identical to one already in
    OUT_DIR/manifest.csv is dropped; a rerun adds no duplicate rows).

    Tiles are plain crops (no resampling) on a seeded grid aligned to 16 pixels, at most
    --max-tiles-per-photo per photo, featureless crops skipped. Writes photos.csv (source,
    licence, author of each photo; paths relative to the sources cache), tiles.csv (source JPEG
    quality of each tile, for matching fakes) and appends manifest.csv rows (label 0, group
    'real').
    """
    from rich.console import Console
    from rich.markup import escape

    from fakescope.cli.common import progress_bar
    from fakescope.data import sources
    from fakescope.data.manifest import ManifestRow, append_manifest, file_sha256, read_manifest
    from fakescope.data.tiles import (
        TILE_ALIGN,
        TILE_MIN_STD,
        TileRecord,
        tile_photo,
        write_tile_index,
    )

    console = Console(stderr=True)
    root = (sources_dir or sources.default_cache_dir()).expanduser().resolve()
    out_root = out_dir.resolve()
    try:
        photos = sources.gather_real_photos(root, debian=debian)
    except sources.SourceError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        if debian:
            console.print("hint: --no-debian uses the Python packages' photos only")
        raise typer.Exit(1) from exc
    if not photos:
        console.print("[red]error:[/red] no real photographs found")
        raise typer.Exit(1)
    out_root.mkdir(parents=True, exist_ok=True)
    sources.write_manifest(photos, out_root / PHOTOS_CSV)

    existing = read_manifest(out_root)
    listed = {row.path: row.sha256 for row in existing}
    seen = set(listed.values())
    rows: list[ManifestRow] = []
    kept: list[TileRecord] = []
    n_duplicates = n_failed = n_empty = n_stale = 0
    enabled = progress and console.is_terminal
    with progress_bar(enabled, console) as bar:
        task = bar.add_task("tiling", total=len(photos))
        for photo in photos:
            bar.advance(task)
            try:
                tiles = tile_photo(
                    root / photo.path,
                    photo.photo_id,
                    out_root / REAL_GROUP / source_slug(photo.source),
                    size=tile_size,
                    max_tiles=max_tiles_per_photo,
                    seed=seed,
                    align=TILE_ALIGN,
                    min_std=TILE_MIN_STD,
                )
            except Exception as exc:  # one bad photo never aborts the run; the cause is reported
                n_failed += 1
                console.print(
                    f"[yellow]warning:[/yellow] {escape(photo.photo_id)}: "
                    f"{escape(type(exc).__name__)}: {escape(str(exc))}",
                    soft_wrap=True,
                )
                continue
            if not tiles:
                n_empty += 1
            for tile in tiles:
                path = Path(tile.path)
                relative = path.relative_to(out_root).as_posix()
                sha256 = file_sha256(path)
                if relative in listed:
                    # A rerun: same name, already listed. Same settings give the same bytes.
                    if listed[relative] != sha256:
                        n_stale += 1
                    kept.append(replace(tile, path=relative))
                    continue
                if sha256 in seen:
                    path.unlink()
                    n_duplicates += 1
                    continue
                seen.add(sha256)
                kept.append(replace(tile, path=relative))
                rows.append(
                    ManifestRow(
                        path=relative,
                        label=0,
                        group=REAL_GROUP,
                        photo_id=photo.photo_id,
                        source=photo.source,
                        licence=photo.licence,
                        sha256=sha256,
                        width=tile_size,
                        height=tile_size,
                        format="PNG",
                    )
                )
    append_manifest(out_root, rows)
    write_tile_index(kept, out_root / TILES_CSV)

    if n_stale:
        console.print(
            f"[yellow]warning:[/yellow] {n_stale} tiles were already listed in manifest.csv with "
            "other content (a rerun with other settings?); write to a new folder instead",
            soft_wrap=True,
        )
    notes = [f"{len(rows)} new tiles from {len(photos)} photographs"]
    if n_duplicates:
        notes.append(f"{n_duplicates} duplicate tiles dropped")
    if n_empty:
        notes.append(f"{n_empty} photos gave no tile (smaller than {tile_size} px or featureless)")
    if n_failed:
        notes.append(f"{n_failed} photos failed")
    console.print(f"{'; '.join(notes)} -> {escape(str(out_root))}", soft_wrap=True)
