"""`fakescope data real`: tiles, manifest rows and photo ids, without apt or a network.

``gather_real_photos`` is replaced by a stub that returns records for photos generated in
``tmp_path``, laid out like the real sources cache (``photos/<photo_id>.<ext>``).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fakescope.cli.data_real import source_slug
from fakescope.cli.main import app
from fakescope.data import sources
from fakescope.data.manifest import file_sha256, read_manifest
from fakescope.data.tiles import parse_tile_name
from tests.conftest import natural_like

runner = CliRunner()


def _photo(cache: Path, photo_id: str, pixels: np.ndarray, fmt: str) -> sources.PhotoRecord:
    suffix = ".jpg" if fmt == "JPEG" else ".png"
    path = cache / "photos" / f"{photo_id}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": 90} if fmt == "JPEG" else {}
    Image.fromarray(pixels).save(path, format=fmt, **options)
    return sources.PhotoRecord(
        photo_id=photo_id,
        scene=photo_id,
        path=path.relative_to(cache).as_posix(),
        source="debian:test-wallpapers",
        source_version="1.0-1",
        original_path=f"usr/share/backgrounds/{photo_id}{suffix}",
        licence="CC0-1.0",
        author="A. Photographer, with a comma",
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        width=pixels.shape[1],
        height=pixels.shape[0],
        format=fmt,
        jpeg_quality=90 if fmt == "JPEG" else None,
    )


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def pixels() -> tuple[np.ndarray, np.ndarray]:
    """Made once: a photo-sized random field takes a while to smooth."""
    field = natural_like(np.random.default_rng(2), 640)
    wide = field[:560].copy()  # 560 x 640: 2 x 2 tiles of 256
    tall = field[::-1, :300][:600].copy()  # 600 x 300: 2 x 1 tiles of 256
    return wide, tall


@pytest.fixture
def two_photos(cache: Path, pixels: tuple[np.ndarray, np.ndarray]) -> list[sources.PhotoRecord]:
    wide, tall = pixels
    second = replace(_photo(cache, "photo-two", tall, "JPEG"), source="pypi:scikit-image")
    return [_photo(cache, "photo-one", wide, "JPEG"), second]


@pytest.fixture
def stub_sources(monkeypatch: pytest.MonkeyPatch, two_photos: list[sources.PhotoRecord]) -> dict:
    calls: dict = {}

    def gather(cache_dir: Path | None = None, **options: object) -> list[sources.PhotoRecord]:
        calls["cache_dir"], calls["options"] = cache_dir, options
        return list(two_photos)

    monkeypatch.setattr(sources, "gather_real_photos", gather)
    return calls


def _real(*args: str):
    return runner.invoke(app, ["data", "real", *args, "--no-progress"])


def test_tiles_manifest_and_photo_ids(tmp_path: Path, cache: Path, stub_sources: dict):
    out = tmp_path / "dataset"
    result = _real(str(out), "--sources-dir", str(cache), "--max-tiles-per-photo", "3")
    assert result.exit_code == 0, result.output
    assert Path(stub_sources["cache_dir"]) == cache.resolve()
    assert stub_sources["options"] == {"debian": True}

    tiles = sorted(p.relative_to(out).as_posix() for p in (out / "real").rglob("*.png"))
    one = [t for t in tiles if Path(t).name.startswith("photo-one_")]
    two = [t for t in tiles if Path(t).name.startswith("photo-two_")]
    assert len(one) == 3  # 4 fit, capped at 3
    assert len(two) == 2
    assert all(t.startswith("real/debian-test-wallpapers/") for t in one)
    assert all(t.startswith("real/pypi-scikit-image/") for t in two)
    for relative in tiles:
        photo_id, y, x = parse_tile_name(relative)
        assert y % 16 == 0 and x % 16 == 0  # aligned with the JPEG block grid
        with Image.open(out / relative) as image:
            assert image.size == (256, 256) and image.mode == "RGB"
        # A tile is an exact crop of the decoded photo: no resampling.
        photo = np.asarray(Image.open(cache / "photos" / f"{photo_id}.jpg").convert("RGB"))
        np.testing.assert_array_equal(
            np.asarray(Image.open(out / relative)), photo[y : y + 256, x : x + 256]
        )

    rows = read_manifest(out)
    assert sorted(row.path for row in rows) == tiles
    for row in rows:
        assert row.label == 0 and row.group == "real"
        assert row.photo_id == parse_tile_name(row.path)[0]
        assert row.sha256 == file_sha256(out / row.path)
        assert (row.width, row.height, row.format) == (256, 256, "PNG")
        assert row.licence == "CC0-1.0"
        assert row.source in {"debian:test-wallpapers", "pypi:scikit-image"}
        assert (row.mask, row.params) == ("", "")

    with open(out / "photos.csv", newline="", encoding="utf-8") as handle:
        photos = list(csv.DictReader(handle))
    assert [p["photo_id"] for p in photos] == ["photo-one", "photo-two"]
    assert photos[0]["author"] == "A. Photographer, with a comma"
    assert photos[0]["licence"] == "CC0-1.0" and photos[0]["jpeg_quality"] == "90"
    with open(out / "tiles.csv", newline="", encoding="utf-8") as handle:
        index = list(csv.DictReader(handle))
    assert sorted(t["path"] for t in index) == tiles
    assert {t["source_format"] for t in index} == {"JPEG"}

    # A rerun writes the same tiles and adds no row.
    again = _real(str(out), "--sources-dir", str(cache), "--max-tiles-per-photo", "3")
    assert again.exit_code == 0, again.output
    assert len(read_manifest(out)) == len(rows)
    assert "0 new tiles" in again.output


def test_seed_moves_the_grid_and_is_reproducible(tmp_path: Path, cache: Path, stub_sources: dict):
    def names(out: Path, seed: str) -> list[str]:
        result = _real(str(out), "--sources-dir", str(cache), "--seed", seed)
        assert result.exit_code == 0, result.output
        return sorted(row.path for row in read_manifest(out))

    first = names(tmp_path / "a", "0")
    assert first == names(tmp_path / "b", "0")
    assert first != names(tmp_path / "c", "1")


def test_large_tiles_and_small_photos(tmp_path: Path, cache: Path, stub_sources: dict):
    out = tmp_path / "dataset"
    result = _real(str(out), "--sources-dir", str(cache), "--tile-size", "512")
    assert result.exit_code == 0, result.output
    rows = read_manifest(out)
    assert {row.photo_id for row in rows} == {"photo-one"}  # photo-two is 300 pixels wide
    assert all((row.width, row.height) == (512, 512) for row in rows)
    assert "1 photos gave no tile" in result.output


def test_tile_size_must_be_256_or_512(tmp_path: Path, cache: Path, stub_sources: dict):
    result = _real(str(tmp_path / "x"), "--sources-dir", str(cache), "--tile-size", "300")
    assert result.exit_code == 2
    assert not (tmp_path / "x").exists()


def test_identical_tiles_are_kept_once(tmp_path: Path, cache: Path, monkeypatch):
    # A 512 x 512 PNG made of one 256 x 256 block four times: its four tiles are identical.
    block = natural_like(np.random.default_rng(4), 256)
    record = _photo(cache, "photo-tiled", np.tile(block, (2, 2, 1)), "PNG")
    monkeypatch.setattr(sources, "gather_real_photos", lambda *a, **k: [record])
    out = tmp_path / "dataset"
    result = _real(str(out), "--sources-dir", str(cache))
    assert result.exit_code == 0, result.output
    assert len(read_manifest(out)) == 1
    assert len(list((out / "real").rglob("*.png"))) == 1
    assert "3 duplicate tiles dropped" in result.output


def test_missing_sources_exit_with_a_hint(tmp_path: Path, monkeypatch):
    def fail(*args: object, **kwargs: object) -> list[sources.PhotoRecord]:
        raise sources.SourceError("'apt-get' was not found on PATH")

    monkeypatch.setattr(sources, "gather_real_photos", fail)
    result = _real(str(tmp_path / "out"), "--sources-dir", str(tmp_path / "cache"))
    assert result.exit_code == 1
    assert "apt-get" in result.output and "--no-debian" in result.output


def test_no_debian_is_passed_on(tmp_path: Path, cache: Path, stub_sources: dict):
    result = _real(str(tmp_path / "out"), "--sources-dir", str(cache), "--no-debian")
    assert result.exit_code == 0, result.output
    assert stub_sources["options"] == {"debian": False}


def test_source_slugs_are_folder_names():
    assert source_slug("debian:mate-backgrounds") == "debian-mate-backgrounds"
    assert source_slug("debian:lomiri-wallpapers-20.04") == "debian-lomiri-wallpapers-20.04"
    assert source_slug("pypi:scikit-image") == "pypi-scikit-image"
    assert source_slug("::") == "unknown"
