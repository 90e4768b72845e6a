"""Fast tests for the data side of the default model: sources, tiles, fakes and the generator.

No network, no apt: the Debian and Python-package sources are exercised only through their pure
parts (manifest, dedup, DEP-5 parsing, photo check); the generator tests use a tiny random model.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakescope.data import sources, tiles
from fakescope.data.generators.fakes import match_jpeg_history, write_fakes
from fakescope.data.generators.jpeg import jpeg_round_trip
from fakescope.io.image import load_image


def _noise_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _record(photo_id: str, sha: str, **changes: object) -> sources.PhotoRecord:
    base = sources.PhotoRecord(
        photo_id=photo_id,
        scene=photo_id,
        path=f"photos/{photo_id}.jpg",
        source="debian:mate-backgrounds",
        source_version="1.0",
        original_path=f"usr/share/backgrounds/{photo_id}.jpg",
        licence="GPL-2+",
        author="someone, with a comma",
        sha256=sha,
        width=640,
        height=480,
        format="JPEG",
        jpeg_quality=90,
    )
    return dataclasses.replace(base, **changes)


# --- tiling -----------------------------------------------------------------------------------


def test_tiles_are_exact_crops_at_aligned_offsets() -> None:
    image = _noise_image(700, 900)
    cut = tiles.cut_tiles(image, "photo-a", size=256, max_tiles=None, seed=3)
    assert len(cut) == 2 * 3  # a densest grid: 700 // 256 rows, 900 // 256 columns
    for tile in cut:
        assert tile.photo_id == "photo-a"
        assert tile.y % 8 == 0 and tile.x % 8 == 0
        assert tile.pixels.shape == (256, 256, 3)
        np.testing.assert_array_equal(
            tile.pixels, image[tile.y : tile.y + 256, tile.x : tile.x + 256]
        )
    boxes = {(t.y, t.x) for t in cut}
    assert len(boxes) == len(cut)
    for a in cut:
        for b in cut:
            if (a.y, a.x) != (b.y, b.x):
                assert abs(a.y - b.y) >= 256 or abs(a.x - b.x) >= 256  # no overlap


def test_tiles_respect_max_and_seed_and_alignment() -> None:
    image = _noise_image(1100, 1300)
    first = tiles.cut_tiles(image, "photo-b", max_tiles=5, seed=7, align=16)
    again = tiles.cut_tiles(image, "photo-b", max_tiles=5, seed=7, align=16)
    other = tiles.cut_tiles(image, "photo-b", max_tiles=5, seed=8, align=16)
    assert len(first) == 5
    assert [(t.y, t.x) for t in first] == [(t.y, t.x) for t in again]
    assert [(t.y, t.x) for t in first] != [(t.y, t.x) for t in other]
    assert all(t.y % 16 == 0 and t.x % 16 == 0 for t in first)


def test_tiles_skip_flat_crops_and_small_images() -> None:
    flat = np.full((512, 512, 3), 128, dtype=np.uint8)
    assert tiles.cut_tiles(flat, "flat", min_std=2.0) == []
    assert len(tiles.cut_tiles(flat, "flat")) == 4
    assert tiles.cut_tiles(_noise_image(200, 900), "small") == []


def test_tile_names_round_trip_and_reject_underscores() -> None:
    assert tiles.tile_name("mate-aqua", 16, 272) == "mate-aqua_16_272"
    assert tiles.parse_tile_name("some/dir/mate-aqua_16_272.png") == ("mate-aqua", 16, 272)
    with pytest.raises(ValueError):
        tiles.tile_name("bad_id", 0, 0)
    with pytest.raises(ValueError):
        tiles.parse_tile_name("not-a-tile.png")


def test_tile_photo_writes_lossless_pngs_from_a_jpeg(tmp_path: Path) -> None:
    image = _noise_image(300, 560, seed=1)
    source = tmp_path / "photo.jpg"
    Image.fromarray(image).save(source, format="JPEG", quality=85, subsampling="4:2:0")
    decoded = load_image(source).pixels
    records = tiles.tile_photo(source, "photo-c", tmp_path / "tiles", max_tiles=None, seed=0)
    assert len(records) == 2
    for record in records:
        assert record.photo_id == "photo-c"
        assert Path(record.path).name == f"{record.name}.png"
        assert record.source_format == "JPEG"
        assert record.jpeg_quality == 85
        assert record.jpeg_subsampling == "4:2:0"
        saved = np.asarray(Image.open(record.path))
        y, x = record.y, record.x
        np.testing.assert_array_equal(saved, decoded[y : y + 256, x : x + 256])
    index = tiles.write_tile_index(records, tmp_path / "tiles.csv")
    assert tiles.read_tile_index(index) == records


# --- sources ----------------------------------------------------------------------------------


def test_manifest_round_trip_has_required_columns(tmp_path: Path) -> None:
    records = [_record("mate-a", "a" * 64), _record("py-b", "b" * 64, jpeg_quality=None)]
    path = sources.write_manifest(records, tmp_path / "sub" / "manifest.csv")
    with open(path, newline="") as handle:
        header = next(csv.reader(handle))
    for column in ("photo_id", "path", "source", "licence", "sha256", "width", "height", "format"):
        assert column in header
    assert sources.read_manifest(path) == records


def test_dedup_by_sha256_keeps_first() -> None:
    records = [_record("a", "1" * 64), _record("b", "2" * 64), _record("c", "1" * 64)]
    assert [r.photo_id for r in sources.dedup_by_sha256(records)] == ["a", "b"]


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "x.bin"
    path.write_bytes(b"fakescope" * 1000)
    assert sources.sha256_file(path) == hashlib.sha256(b"fakescope" * 1000).hexdigest()


DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2014 Someone
License: GPL-2+

Files: nature/Aqua.jpg
       nature/Garden.jpg
Copyright: 2008 Someone Else
License: CC-BY-4.0

Files: 16.04/seeding_by_X.jpg
Copyright: 2018 X
License: CC0-1.0

Files: debian/*
 AUTHORS
Copyright: 2020 Packager
License: Expat
"""


def test_dep5_licence_lookup_uses_last_matching_stanza() -> None:
    lookup = sources.dep5_licence_for
    assert lookup(DEP5, "usr/share/backgrounds/mate/nature/Aqua.jpg") == "CC-BY-4.0"
    assert lookup(DEP5, "usr/share/backgrounds/seeding_by_X.jpg") == "CC0-1.0"
    assert lookup(DEP5, "usr/share/wallpapers/Kite/contents/images/a.jpg") == "GPL-2+"


def test_allowlist_is_consistent() -> None:
    ids = [spec.photo_id for spec in sources.PHOTO_ALLOWLIST]
    assert len(ids) == len(set(ids))
    for spec in sources.PHOTO_ALLOWLIST:
        assert "_" not in spec.photo_id and spec.photo_id == spec.photo_id.lower()
        assert spec.source.split(":")[0] in ("debian", "pypi") and spec.licence
        if spec.source.startswith("debian:"):
            assert spec.package in sources.DEBIAN_PACKAGES


def test_photograph_check_rejects_flat_graphics() -> None:
    noisy = np.clip(
        np.full((128, 128, 3), 120.0) + np.random.default_rng(0).normal(0, 3, (128, 128, 3)),
        0,
        255,
    ).astype(np.uint8)
    graphic = np.zeros((128, 128, 3), dtype=np.uint8)
    graphic[:, 64:] = (200, 40, 40)
    assert sources.looks_like_photograph(noisy)
    assert not sources.looks_like_photograph(graphic)


def test_missing_apt_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get, no dpkg-deb
    with pytest.raises(sources.SourceError, match="apt-get"):
        sources.fetch_debian_package("mate-backgrounds", tmp_path)


def test_gather_python_packages_only(tmp_path: Path) -> None:
    # Uses only files already installed with scikit-learn (a dependency); no apt, no network.
    allowlist = [s for s in sources.PHOTO_ALLOWLIST if s.source == "pypi:scikit-learn"]
    records = sources.gather_real_photos(tmp_path, debian=False, allowlist=allowlist)
    assert {r.photo_id for r in records} == {"sklearn-china", "sklearn-flower"}
    for record in records:
        assert (tmp_path / record.path).is_file()
        assert sources.sha256_file(tmp_path / record.path) == record.sha256
        assert record.format == "JPEG" and record.licence == "CC-BY-2.0"
    assert sources.read_manifest(tmp_path / sources.MANIFEST_NAME) == records


# --- fakes and JPEG matching (no torch) ---------------------------------------------------------


def test_jpeg_round_trip_changes_pixels_but_keeps_shape() -> None:
    image = _noise_image(64, 64)
    out = jpeg_round_trip(image, 75, "4:2:0")
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not np.array_equal(out, image)
    with pytest.raises(ValueError):
        jpeg_round_trip(image, 0)


def test_write_fakes_matches_source_jpeg_history(tmp_path: Path) -> None:
    png_tile = tiles.save_png(_noise_image(64, 64, 1), tmp_path / "t" / "png-photo_0_0.png")
    jpg_tile = tiles.save_png(_noise_image(64, 64, 2), tmp_path / "t" / "jpg-photo_0_0.png")
    records = [
        tiles.TileRecord("png-photo_0_0", "png-photo", 0, 0, str(png_tile), "PNG", None, ""),
        tiles.TileRecord("jpg-photo_0_0", "jpg-photo", 0, 0, str(jpg_tile), "JPEG", 80, "4:2:0"),
    ]
    written = write_fakes(lambda batch: 255 - batch, records, tmp_path / "fake")
    assert [p.name for p in written] == ["png-photo_0_0.png", "jpg-photo_0_0.png"]
    png_fake = np.asarray(Image.open(written[0]))
    np.testing.assert_array_equal(png_fake, 255 - np.asarray(Image.open(png_tile)))
    jpg_fake = np.asarray(Image.open(written[1]))
    expected = jpeg_round_trip(255 - np.asarray(Image.open(jpg_tile)), 80, "4:2:0")
    np.testing.assert_array_equal(jpg_fake, expected)
    np.testing.assert_array_equal(match_jpeg_history(png_fake, records[0]), png_fake)


# --- generator (torch) ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ae() -> object:
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from fakescope.data.generators import autoencoder

    return autoencoder


def test_autoencoder_maps_batch_to_same_shape(ae) -> None:
    import torch

    for upsampling in ae.UPSAMPLERS:
        model = ae.Autoencoder(ae.AutoencoderConfig(upsampling=upsampling, width=4, seed=1))
        with torch.no_grad():
            out = model(torch.rand(2, 3, 64, 64))
        assert out.shape == (2, 3, 64, 64)
    model = ae.Autoencoder(ae.AutoencoderConfig(width=4, levels=3))
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    with pytest.raises(ValueError):
        model(torch.rand(1, 3, 60, 60))
    with pytest.raises(ValueError):
        ae.AutoencoderConfig(upsampling="unknown")


def test_autoencoder_is_seeded(ae) -> None:
    batch = _noise_image(64, 64)[None].repeat(3, axis=0)
    a = ae.reconstruct(ae.Autoencoder(ae.AutoencoderConfig(width=4, seed=5)), batch)
    b = ae.reconstruct(ae.Autoencoder(ae.AutoencoderConfig(width=4, seed=5)), batch)
    c = ae.reconstruct(ae.Autoencoder(ae.AutoencoderConfig(width=4, seed=6)), batch)
    assert a.shape == batch.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_training_is_deterministic_and_reduces_loss(ae) -> None:
    data = np.stack([_noise_image(32, 32, seed) // 4 + 96 for seed in range(4)])
    config = ae.AutoencoderConfig(width=4, seed=0)
    options = ae.TrainingOptions(steps=40, batch_size=4, crop=16, learning_rate=1e-2, threads=1)
    model_a, log_a = ae.train_autoencoder(data, config, options)
    model_b, log_b = ae.train_autoencoder(data, config, options)
    assert log_a.losses == log_b.losses
    out_a = ae.reconstruct(model_a, data)
    np.testing.assert_array_equal(out_a, ae.reconstruct(model_b, data))

    def error(out: np.ndarray) -> float:
        return float(np.abs(out.astype(np.int16) - data).mean())

    assert error(out_a) < 0.5 * error(ae.reconstruct(ae.Autoencoder(config), data))


def test_save_load_round_trip_uses_safetensors_and_json(ae, tmp_path: Path) -> None:
    import json

    model = ae.Autoencoder(ae.AutoencoderConfig(width=4, seed=2, upsampling="pixelshuffle"))
    folder = ae.save_autoencoder(model, tmp_path / "gen", extra={"note": "test"})
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    document = json.loads((folder / "config.json").read_text())
    assert document["config"]["upsampling"] == "pixelshuffle" and document["note"] == "test"
    loaded, _ = ae.load_autoencoder(folder)
    batch = _noise_image(32, 32)[None]
    np.testing.assert_array_equal(ae.reconstruct(model, batch), ae.reconstruct(loaded, batch))


def test_train_or_load_reuses_cache_only_when_fingerprint_matches(ae, tmp_path: Path) -> None:
    data = np.stack([_noise_image(32, 32, seed) for seed in range(2)])
    config = ae.AutoencoderConfig(width=4)
    options = ae.TrainingOptions(steps=3, batch_size=2, crop=16, threads=1)
    _, first = ae.train_or_load(tmp_path / "g", data, ["a", "b"], config, options)
    _, again = ae.train_or_load(tmp_path / "g", data, ["b", "a"], config, options)
    assert again["fingerprint"] == first["fingerprint"]
    assert again["log"]["seconds"] == first["log"]["seconds"]  # loaded, not retrained
    _, changed = ae.train_or_load(tmp_path / "g", data, ["a", "c"], config, options)
    assert changed["fingerprint"] != first["fingerprint"]
