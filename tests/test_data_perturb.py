"""Perturbations: the pixel contract, determinism, replay, spec parsing and `data perturb`."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fakescope.cli.data_perturb import perturb_command
from fakescope.cli.main import app
from fakescope.data import perturb as P
from fakescope.data.manifest import ManifestRow, append_manifest, file_sha256, read_manifest
from fakescope.io.image import decode_image_bytes, load_image
from tests.conftest import natural_like, upsampled_fake

runner = CliRunner()

# At least one spec per registered name, plus the options that change the code path.
SPECS = (
    "jpeg:75",
    "jpeg:30:444",
    "jpeg:60-95",
    "webp:50",
    "blur:1.5",
    "blur:0.5-2",
    "noise:2",
    "noise:0-6",
    "resize:0.5",
    "resize:0.5:noaa",
    "resize:0.37:bilinear:noaa",
    "resize:0.3:nearest",
    "resize:1.7:lanczos",
    "resize:0.4:lanczos:2.0",
    "resize:0.4-1.6:box",
    "longside:40",
    "crop:0.8",
    "crop:32:center",
    "crop:0.5-0.9",
    "rotate:-10-10",
    "rotate:30:expand",
    "rotate:12:same",
    "gamma:0.5-2.2",
    "jitter:0.3:0.3:0.3:0.1",
    "grayscale",
    "social:facebook",
    "social:whatsapp",
    "crop:0.9,resize:0.5,noise:1,jpeg:70-90",
)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    # Not square, so that swapped axes would show.
    return natural_like(np.random.default_rng(0), 96)[:, :80].copy()


def _json_round_trip(value: dict) -> dict:
    """What a meta JSON file gives back."""
    return json.loads(json.dumps(value))


def test_specs_cover_every_registered_perturbation():
    used = {step.name for spec in SPECS for step in P.parse_spec(spec).steps}
    assert used == set(P.PERTURBATIONS)


def test_registry_maps_names_to_classes():
    for name, cls in P.PERTURBATIONS.items():
        assert cls.name == name
        assert isinstance(cls(), P.Perturbation)  # every default is valid


@pytest.mark.parametrize("spec", SPECS)
def test_contract_determinism_and_replay(spec, image):
    chain = P.parse_spec(spec)
    first = chain(image, 7)
    again = chain(image, np.random.default_rng(7))
    assert first.pixels.dtype == np.uint8
    assert first.pixels.ndim == 3 and first.pixels.shape[2] == 3
    assert first.pixels.flags.c_contiguous
    np.testing.assert_array_equal(first.pixels, again.pixels)
    assert first.record == again.record
    assert (first.encoded is None) == (again.encoded is None)
    if first.encoded is not None:
        assert first.encoded.data == again.encoded.data
    record = _json_round_trip(first.record)
    assert record == first.record  # JSON-ready: nothing lost on the way to a meta file
    replayed = P.replay(image, record)
    np.testing.assert_array_equal(replayed.pixels, first.pixels)
    if first.encoded is not None:
        assert replayed.encoded is not None and replayed.encoded.data == first.encoded.data
    # The step records replay one by one, too.
    pixels = image
    for step in record["params"]["steps"]:
        pixels = P.replay(pixels, step).pixels
    np.testing.assert_array_equal(pixels, first.pixels)


def test_input_is_not_modified(image):
    before = image.copy()
    for spec in SPECS:
        P.parse_spec(spec)(image, 1)
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize(
    "perturbation",
    [P.GaussianNoise(sigma=3.0), P.Crop(size=0.5), P.JPEG(quality=P.Range(20, 95, integer=True))],
)
def test_seeds_change_random_parameters(perturbation, image):
    outputs = {perturbation(image, seed).pixels.tobytes() for seed in range(6)}
    assert len(outputs) > 1


def test_bad_pixels_are_refused():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        P.GaussianBlur()(np.zeros((8, 8), np.uint8), 0)
    with pytest.raises(ValueError, match="uint8"):
        P.GaussianBlur()(np.zeros((8, 8, 3), np.float32), 0)


@pytest.mark.parametrize("quality", [10, 50, 75, 95])
def test_jpeg_quality_is_the_quality_of_the_file(quality, image):
    result = P.parse_spec(f"jpeg:{quality}")(image, 0)
    assert result.encoded is not None and result.encoded.format == "JPEG"
    decoded = decode_image_bytes(result.encoded.data)
    assert decoded.metadata.format == "JPEG"
    assert decoded.metadata.jpeg_quality == quality
    np.testing.assert_array_equal(decoded.pixels, result.pixels)


def test_jpeg_range_is_sampled_and_recorded(image):
    qualities = set()
    for seed in range(8):
        result = P.parse_spec("jpeg:60-95")(image, seed)
        quality = result.record["params"]["steps"][0]["params"]["quality"]
        assert isinstance(quality, int) and 60 <= quality <= 95
        assert decode_image_bytes(result.encoded.data).metadata.jpeg_quality == quality
        qualities.add(quality)
    assert len(qualities) > 1


def test_webp_gives_webp_bytes(image):
    result = P.WebP(quality=40)(image, 0)
    assert result.encoded is not None and result.encoded.extension == ".webp"
    decoded = decode_image_bytes(result.encoded.data)
    assert decoded.metadata.format == "WEBP"
    np.testing.assert_array_equal(decoded.pixels, result.pixels)
    assert not np.array_equal(result.pixels, image)  # lossy


def test_only_a_final_codec_returns_bytes(image):
    assert P.parse_spec("jpeg:80,blur:1")(image, 0).encoded is None
    last = P.parse_spec("blur:1,webp:80,jpeg:80")(image, 0)
    assert last.encoded is not None and last.encoded.format == "JPEG"
    social = P.parse_spec("social:facebook")(image, 0)
    assert social.encoded is not None and social.encoded.format == "JPEG"


@pytest.mark.parametrize(
    ("scale", "expected"), [(0.5, (48, 40)), (2.0, (192, 160)), (1.0, (96, 80))]
)
@pytest.mark.parametrize("mode", ["", ":noaa", ":nearest", ":lanczos"])
def test_resize_scale_changes_the_size(scale, expected, mode, image):
    result = P.parse_spec(f"resize:{scale}{mode}")(image, 0)
    assert result.pixels.shape == (*expected, 3)


def test_resize_without_antialiasing_aliases():
    # A one-pixel checkerboard: an antialiased shrink averages it to grey, a point-sampling
    # shrink keeps a strong (aliased) pattern.
    grid = (np.indices((120, 120)).sum(axis=0) % 2 * 255).astype(np.uint8)
    board = np.repeat(grid[:, :, None], 3, axis=2)
    smooth = P.parse_spec("resize:0.3")(board, 0).pixels
    aliased = P.parse_spec("resize:0.3:bilinear:noaa")(board, 0).pixels
    nearest = P.parse_spec("resize:0.3:nearest")(board, 0).pixels
    assert smooth.std() < 5
    assert aliased.std() > 30
    assert nearest.std() > 100


def test_longside_only_shrinks(image):
    assert P.parse_spec("longside:48")(image, 0).pixels.shape == (48, 40, 3)
    unchanged = P.parse_spec("longside:500")(image, 0).pixels
    np.testing.assert_array_equal(unchanged, image)


def test_crop_by_fraction_pixels_and_centre(image):
    assert P.parse_spec("crop:0.5")(image, 3).pixels.shape == (48, 40, 3)
    centred = P.parse_spec("crop:32:center")(image, 3)
    assert centred.pixels.shape == (32, 32, 3)
    np.testing.assert_array_equal(centred.pixels, image[32:64, 24:56])
    params = P.parse_spec("crop:20")(image, 5).record["params"]["steps"][0]["params"]
    top, left = params["top"], params["left"]
    result = P.Crop(size=20.0).replay(image, params)
    np.testing.assert_array_equal(result.pixels, image[top : top + 20, left : left + 20])
    with pytest.raises(ValueError, match="larger than the image"):
        P.parse_spec("crop:200")(image, 0)


def test_rotation_crop_leaves_no_border_and_expand_grows():
    white = np.full((90, 130, 3), 255, np.uint8)
    for degrees in (3, 17, 45, -30, 90):
        cropped = P.Rotate(degrees=float(degrees))(white, 0).pixels
        assert cropped.min() >= 250, degrees  # no black fill
    expanded = P.parse_spec("rotate:30:expand")(white, 0).pixels
    assert expanded.shape[0] > 90 and expanded.shape[1] > 130
    assert expanded.min() == 0  # the corners are filled
    assert P.parse_spec("rotate:30:same")(white, 0).pixels.shape == white.shape


def test_colour_perturbations(image):
    grey = P.Grayscale()(image, 0).pixels
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    np.testing.assert_array_equal(P.Gamma(gamma=1.0)(image, 0).pixels, image)
    assert P.Gamma(gamma=2.0)(image, 0).pixels.mean() < image.mean()
    np.testing.assert_array_equal(P.GaussianBlur(sigma=0.0)(image, 0).pixels, image)
    np.testing.assert_array_equal(P.GaussianNoise(sigma=0.0)(image, 0).pixels, image)
    jitter = P.ColorJitter(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.2)
    params = jitter(image, 4).record["params"]
    assert 0.5 <= params["brightness"] <= 1.5 and -0.2 <= params["hue"] <= 0.2
    unchanged = P.ColorJitter(brightness=0, contrast=0, saturation=0, hue=0)(image, 0)
    np.testing.assert_array_equal(unchanged.pixels, image)


def test_noise_sigma_is_in_pixel_units():
    flat = np.full((128, 128, 3), 128, np.uint8)
    noisy = P.GaussianNoise(sigma=4.0)(flat, 0).pixels.astype(float)
    assert abs(noisy.std() - 4.0) < 0.2
    assert abs(noisy.mean() - 128) < 0.2


# --- spec parsing -------------------------------------------------------------------------------


def test_spec_parsing_values_ranges_and_choices():
    chain = P.parse_spec(" jpeg:75 , blur:1.0,resize:0.5:noaa,rotate:-10-10:expand,crop:0.8:center")
    jpeg, blur, resize, rotate, crop = chain.steps
    assert jpeg == P.JPEG(quality=75)
    assert blur == P.GaussianBlur(sigma=1.0)
    assert resize == P.Resize(scale=0.5, antialias=False)
    assert rotate == P.Rotate(degrees=P.Range(-10.0, 10.0), mode="expand")
    assert crop == P.Crop(size=0.8, position="center")
    assert P.parse_spec("jpeg:60-95").steps[0].quality == P.Range(60, 95, integer=True)
    assert P.parse_spec("noise:2").steps[0] == P.GaussianNoise(sigma=2.0)
    assert P.parse_spec("jpeg:444:90").steps[0] == P.JPEG(quality=90, subsampling="4:4:4")
    assert P.parse_spec("webp:quality=30").steps[0] == P.WebP(quality=30)
    assert P.parse_spec("resize:0.5:lanczos:2").steps[0].reducing_gap == 2.0
    assert P.parse_spec("social:twitter").steps[0] == P.Social(preset="twitter")
    assert P.parse_spec("GRAYSCALE").steps[0] == P.Grayscale()
    assert P.parse_spec("resize:0.5:NOAA:Bilinear").steps[0] == P.Resize(
        scale=0.5, filter="bilinear", antialias=False
    )


def test_normalised_spec_reads_back_to_the_same_chain():
    chain = P.parse_spec(",".join(SPECS))
    assert P.parse_spec(chain.spec()) == chain
    assert json.loads(json.dumps(chain.config()))["steps"][0]["name"] == "jpeg"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty step"),
        ("jpeg:75,,blur", "empty step"),
        ("sharpen:2", "valid names: jpeg, webp"),
        ("jpeg:abc", "must be a number"),
        ("jpeg:101", "<= 100"),
        ("jpeg:0", ">= 1"),
        ("jpeg:75.5", "integer"),
        ("jpeg:95-60", "low > high"),
        ("jpeg:75:", "empty argument"),
        ("jpeg:q=3", "unknown argument 'q'"),
        ("jpeg:75:quality=80", "given twice"),
        ("blur:1:2", "unexpected argument '2'"),
        ("blur:-1", ">= 0"),
        ("blur:nan", "finite"),
        ("grayscale:1", "unexpected argument"),
        ("resize:0", ">= 0.05"),
        ("resize:0.5:lanczos:noaa", "noaa works with"),
        ("resize:0.5:noaa:2", "reducing_gap"),
        ("resize:0.5:lanczos:bicubic", "filter given twice"),
        ("crop:0", "> 0"),
        ("crop:0.5-300", "all fractions"),
        ("jitter:0.1-0.2", "does not accept a range"),
        ("jitter:0.2:0.2:0.2:0.7", "<= 0.5"),
        ("social:myspace", "unexpected argument 'myspace'"),
    ],
)
def test_bad_specs_give_clear_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        P.parse_spec(spec)


def test_unknown_name_lists_every_valid_name():
    with pytest.raises(ValueError) as info:
        P.parse_spec("jpeg:80,sharpen:2")
    for name in P.PERTURBATIONS:
        assert name in str(info.value)


def test_python_api_validates_too():
    with pytest.raises(ValueError, match="quality"):
        P.JPEG(quality=150)
    with pytest.raises(ValueError, match="subsampling"):
        P.JPEG(subsampling="4:1:1")
    with pytest.raises(ValueError, match="perturbations"):
        P.Chain(("jpeg",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown perturbation"):
        P.replay(np.zeros((4, 4, 3), np.uint8), {"name": "nope", "params": {}})


def test_chains_compose_and_record_every_step(image):
    inner = P.Chain((P.Crop(size=0.5), P.GaussianNoise(sigma=1.0)))
    outer = P.Chain((inner, P.JPEG(quality=80)))
    result = outer(image, 11)
    steps = result.record["params"]["steps"]
    assert [s["name"] for s in steps] == ["chain", "jpeg"]
    assert [s["name"] for s in steps[0]["params"]["steps"]] == ["crop", "noise"]
    assert result.pixels.shape == (48, 40, 3)
    assert outer.geometric and not P.Chain((P.JPEG(),)).geometric
    np.testing.assert_array_equal(
        P.replay(image, _json_round_trip(result.record)).pixels, result.pixels
    )


def test_derived_seeds_depend_on_seed_and_key_only():
    assert P.derive_seed(0, "real/a.png") == P.derive_seed(0, "real/a.png")
    assert P.derive_seed(0, "real/a.png") != P.derive_seed(1, "real/a.png")
    assert P.derive_seed(0, "real/a.png") != P.derive_seed(0, "real/b.png")
    assert 0 <= P.derive_seed(5, "x") < 2**63


def test_cli_help_names_every_perturbation():
    doc = perturb_command.__doc__ or ""
    for name in P.PERTURBATIONS:
        assert f"{name}" in doc
    for preset in P.SOCIAL_PRESETS:
        assert preset in doc


# --- the command, end to end --------------------------------------------------------------------


def _row(root: Path, relative: str, label: int, group: str, **extra: str) -> ManifestRow:
    loaded = load_image(root / relative)
    return ManifestRow(
        path=relative,
        label=label,
        group=group,
        photo_id=Path(relative).name.split("_", 1)[0],
        source="test",
        licence="CC0-1.0",
        sha256=file_sha256(root / relative),
        width=loaded.pixels.shape[1],
        height=loaded.pixels.shape[0],
        format=loaded.metadata.format,
        **extra,
    )


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """real/ (PNG and JPEG, nested), fake/gen/ with a mask and params, a bad file, a manifest."""
    rng = np.random.default_rng(5)
    root = tmp_path / "ds"
    for folder in ("real/src", "fake/gen", "masks/gen", "meta/gen", "flow/warp"):
        (root / folder).mkdir(parents=True)
    Image.fromarray(natural_like(rng, 48)).save(root / "real" / "pa_0_0.png")
    Image.fromarray(natural_like(rng, 48)).save(root / "real" / "src" / "pb_0_0.jpg", quality=90)
    Image.fromarray(upsampled_fake(rng, 48)).save(root / "fake" / "gen" / "pa_0_0.png")
    Image.fromarray(upsampled_fake(rng, 48)).save(root / "fake" / "gen" / "pb_0_0.png")
    (root / "real" / "pc_0_0.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(root / "masks" / "gen" / "pa_0_0.png")
    (root / "meta" / "gen" / "pa_0_0.json").write_text(json.dumps({"generator": "gen"}))
    np.save(root / "flow" / "warp" / "pa_0_0.npy", np.zeros((4, 4, 2), np.float32))
    rows = [
        _row(root, "real/pa_0_0.png", 0, "real"),
        _row(root, "real/src/pb_0_0.jpg", 0, "real"),
        _row(
            root,
            "fake/gen/pa_0_0.png",
            1,
            "gen",
            mask="masks/gen/pa_0_0.png",
            params="meta/gen/pa_0_0.json",
        ),
        _row(root, "fake/gen/pb_0_0.png", 1, "gen"),
    ]
    append_manifest(root, rows)
    return root


def _perturb(*args: str):
    return runner.invoke(app, ["data", "perturb", *args, "--no-progress"])


def _flat(output: str) -> str:
    """Output without rich's box borders and line wrapping."""
    return " ".join(output.replace("│", " ").split())


def test_cli_end_to_end(tiny_dataset: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = _perturb("resize:0.5,jpeg:70", str(tiny_dataset), str(out), "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "pc_0_0.png" in result.output  # the bad file is named ...
    assert "1 bad files skipped" in result.output  # ... counted, and the run went on
    assert "perturbed 4 images" in result.output

    # Mirrored structure; a final JPEG is stored as the codec's bytes at that quality.
    expected = ["fake/gen/pa_0_0.jpg", "fake/gen/pb_0_0.jpg", "real/pa_0_0.jpg"]
    expected.append("real/src/pb_0_0.jpg")
    assert sorted(p.relative_to(out).as_posix() for p in out.glob("[rf]*/**/*.jpg")) == expected
    for relative in expected:
        loaded = load_image(out / relative)
        assert loaded.metadata.format == "JPEG" and loaded.metadata.jpeg_quality == 70
        assert loaded.pixels.shape == (24, 24, 3)
    assert not (out / "real" / "pc_0_0.png").exists()

    # The mask moved with its image (resized like it, still binary); the flow that belongs to
    # no image cannot be moved and is left out, named; the input's meta is embedded.
    mask = np.asarray(Image.open(out / "masks" / "gen" / "pa_0_0.png"))
    assert mask.shape == (24, 24) and set(np.unique(mask)) <= {0, 255}
    assert not (out / "flow" / "warp" / "pa_0_0.npy").exists()
    assert "1 mask/flow files left out" in _flat(result.output)
    assert "flow/warp/pa_0_0.npy" in _flat(result.output)

    # Manifest: same labels, groups, photo ids and masks; new paths, hashes, sizes and params.
    rows = {row.path: row for row in read_manifest(out)}
    before = {Path(r.path).with_suffix("").as_posix(): r for r in read_manifest(tiny_dataset)}
    assert sorted(rows) == expected
    for path, row in rows.items():
        old = before[Path(path).with_suffix("").as_posix()]
        assert (row.label, row.group, row.photo_id, row.mask) == (
            old.label,
            old.group,
            old.photo_id,
            old.mask,
        )
        assert row.sha256 == file_sha256(out / path)
        assert (row.width, row.height, row.format) == (24, 24, "JPEG")
        assert row.params == f"meta/perturb/{Path(path).with_suffix('').as_posix()}.json"

    # Each image's meta JSON replays to the very same bytes.
    meta = json.loads((out / "meta/perturb/fake/gen/pa_0_0.json").read_text())
    assert meta["spec"] == "resize:0.5,jpeg:70" and meta["seed"] == 3
    assert meta["source_path"] == "fake/gen/pa_0_0.png"
    assert meta["input_params"] == {"generator": "gen"}
    assert meta["file_seed"] == P.derive_seed(3, "fake/gen/pa_0_0.png")
    source = load_image(tiny_dataset / "fake/gen/pa_0_0.png").pixels
    replayed = P.replay(source, meta["applied"])
    assert replayed.encoded is not None
    assert replayed.encoded.data == (out / "fake/gen/pa_0_0.jpg").read_bytes()

    summary = json.loads((out / "perturb.json").read_text())
    assert summary["spec"] == "resize:0.5,jpeg:70"
    assert summary["seed"] == 3 and summary["files"] == 4 and summary["bad_files"] == 1
    assert summary["geometric"] is True
    assert summary["ground_truth"] == {
        "mode": "transformed",
        "files": 1,
        "left_out": ["flow/warp/pa_0_0.npy"],
    }
    assert meta["ground_truth"] == ["masks/gen/pa_0_0.png"]
    assert [s["name"] for s in summary["chain"]["steps"]] == ["resize", "jpeg"]

    # Order independence: a run over a part of the data (same relative path) gives the same
    # bytes for that file, since its seed derives from (seed, relative path) only.
    mirror = tmp_path / "mirror"
    (mirror / "fake" / "gen").mkdir(parents=True)
    (mirror / "fake/gen/pa_0_0.png").write_bytes(
        (tiny_dataset / "fake/gen/pa_0_0.png").read_bytes()
    )
    mirrored = tmp_path / "mirrored"
    result = _perturb("resize:0.5,jpeg:70", str(mirror), str(mirrored), "--seed", "3")
    assert result.exit_code == 0, result.output
    assert (mirrored / "fake/gen/pa_0_0.jpg").read_bytes() == (
        out / "fake/gen/pa_0_0.jpg"
    ).read_bytes()


def test_cli_png_output_without_a_final_codec_and_no_manifest(tmp_path: Path):
    src = tmp_path / "src"
    (src / "real").mkdir(parents=True)
    Image.fromarray(natural_like(np.random.default_rng(1), 40)).save(src / "real" / "x_1.png")
    out = tmp_path / "out"
    result = _perturb("jpeg:50,noise:2", str(src), str(out))
    assert result.exit_code == 0, result.output
    loaded = load_image(out / "real" / "x_1.png")
    assert loaded.metadata.format == "PNG" and loaded.pixels.shape == (40, 40, 3)
    assert not (out / "manifest.csv").exists()  # the input had none
    assert (out / "meta/perturb/real/x_1.json").is_file()
    assert "1 bad" not in result.output

    same = tmp_path / "same"
    assert _perturb("jpeg:50,noise:2", str(src), str(same)).exit_code == 0
    assert (same / "real/x_1.png").read_bytes() == (out / "real/x_1.png").read_bytes()
    other = tmp_path / "other"
    assert _perturb("jpeg:50,noise:2", str(src), str(other), "--seed", "1").exit_code == 0
    assert (other / "real/x_1.png").read_bytes() != (out / "real/x_1.png").read_bytes()


def test_cli_usage_errors(tiny_dataset: Path, tmp_path: Path):
    result = _perturb("sharpen:2", str(tiny_dataset), str(tmp_path / "o1"))
    assert result.exit_code == 2
    assert "valid names" in _flat(result.output)
    result = _perturb("jpeg:75", str(tiny_dataset), str(tiny_dataset / "inside"))
    assert result.exit_code == 2
    assert not (tiny_dataset / "inside").exists()
    done = tmp_path / "done"
    assert _perturb("jpeg:75", str(tiny_dataset), str(done)).exit_code == 0
    result = _perturb("jpeg:75", str(tiny_dataset), str(done))
    assert result.exit_code == 2
    assert "already holds a dataset" in _flat(result.output)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _perturb("jpeg:75", str(empty), str(tmp_path / "o2")).exit_code == 1


def test_manifest_rows_keep_their_columns(tiny_dataset: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert _perturb("grayscale", str(tiny_dataset), str(out)).exit_code == 0
    with open(out / "manifest.csv", newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    with open(tiny_dataset / "manifest.csv", newline="", encoding="utf-8") as handle:
        assert header == next(csv.reader(handle))
    rows = read_manifest(out)
    assert {r.format for r in rows} == {"PNG"}
    original = {r.path: r for r in read_manifest(tiny_dataset)}
    kept = original["real/src/pb_0_0.jpg"]
    new = next(r for r in rows if r.path == "real/src/pb_0_0.png")
    assert replace(new, path=kept.path, sha256=kept.sha256, format=kept.format, params="") == kept
