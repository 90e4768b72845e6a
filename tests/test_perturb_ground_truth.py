"""Masks and warp flows follow geometric perturbations (and ignore photometric ones)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage
from PIL import Image
from typer.testing import CliRunner

from fakescope.cli.main import app
from fakescope.data import perturb as P
from tests.conftest import natural_like
from tests.test_data_perturb import SPECS

runner = CliRunner()

GEOMETRIC_SPECS = tuple(spec for spec in SPECS if P.parse_spec(spec).geometric)
PHOTOMETRIC_SPECS = tuple(spec for spec in SPECS if not P.parse_spec(spec).geometric)
# Mask alignment: every geometric code path, with and without fill, chained and as a preset.
ALIGNMENT_SPECS = (
    "resize:0.37:nearest",
    "resize:0.5",
    "resize:1.7:lanczos",
    "resize:0.45:bilinear:noaa",
    "resize:0.4:lanczos:2.0",
    "longside:40",
    "crop:0.7",
    "crop:33:center",
    "rotate:23",
    "rotate:-31:expand",
    "rotate:12:same",
    "rotate:90:expand",
    "rotate:180",
    "crop:0.8,rotate:-12:expand,resize:0.6,jpeg:90",
)
HEIGHT, WIDTH = 90, 120  # not square, so that swapped axes would show


def _shapes_mask() -> np.ndarray:
    """A disk and a rectangle, 0/255, away from the border."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    disk = (yy - 40) ** 2 + (xx - 35) ** 2 <= 15**2
    rect = (yy >= 20) & (yy < 70) & (xx >= 70) & (xx < 100)
    return np.where(disk | rect, 255, 0).astype(np.uint8)


def _smooth_image() -> np.ndarray:
    """Low-frequency content, so bilinear warps of it are accurate to a fraction of a level."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    field = 128 + 60 * np.sin(xx / 9.0) * np.cos(yy / 11.0) + 30 * np.sin((xx + yy) / 17.0)
    return np.repeat(field[..., None], 3, axis=2)


def _warp(pixels: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``out(p) = pixels(p + flow(p))``, bilinear: the convention of ``flow/``."""
    yy, xx = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]].astype(np.float64)
    coords = [yy + flow[..., 0], xx + flow[..., 1]]
    return np.stack(
        [
            scipy.ndimage.map_coordinates(pixels[..., c].astype(np.float64), coords, order=1)
            for c in range(pixels.shape[2])
        ],
        axis=-1,
    )


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


# --- the Python API -----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", PHOTOMETRIC_SPECS)
def test_photometric_steps_leave_ground_truth_unchanged(spec: str):
    chain = P.parse_spec(spec)
    result = chain(_to_uint8(_smooth_image()), 1)
    mask = _shapes_mask()
    flow = np.random.default_rng(0).normal(size=(HEIGHT, WIDTH, 2)).astype(np.float32)
    assert np.array_equal(P.replay_mask(mask, result.record), mask)
    assert np.array_equal(P.replay_flow(flow, result.record), flow)


@pytest.mark.parametrize("spec", GEOMETRIC_SPECS)
def test_geometric_steps_give_binary_masks_and_flows_of_the_output_size(spec: str):
    pixels = natural_like(np.random.default_rng(2), 96)[:, :80].copy()
    result = P.parse_spec(spec)(pixels, 7)
    out_shape = result.pixels.shape[:2]
    mask = np.zeros(pixels.shape[:2], np.uint8)
    mask[20:60, 10:50] = 255
    moved = P.replay_mask(mask, result.record)
    assert moved.dtype == np.uint8 and moved.shape == out_shape
    assert set(np.unique(moved)) <= {0, 255}
    as_bool = P.replay_mask(mask > 0, result.record)
    assert as_bool.dtype == np.bool_ and np.array_equal(as_bool, moved > 0)
    flow = np.ones((*pixels.shape[:2], 2), np.float64)  # float64 in, float32 out
    moved_flow = P.replay_flow(flow, result.record)
    assert moved_flow.dtype == np.float32 and moved_flow.shape == (*out_shape, 2)
    # Replaying the record on the step that made it gives the same (deterministic).
    assert np.array_equal(P.replay_mask(mask, result.record), moved)


@pytest.mark.parametrize("spec", ALIGNMENT_SPECS)
def test_mask_stays_on_the_region_that_changed(spec: str):
    """An image whose changed region is exactly the mask, perturbed with one record: after the
    perturbation the pixels that differ are the moved mask, up to its one-pixel boundary."""
    mask = _shapes_mask()
    base = np.full((HEIGHT, WIDTH, 3), 60, np.uint8)
    forged = base.copy()
    forged[mask > 0] = 230
    result = P.parse_spec(spec)(forged, 11)
    before = P.replay(base, result.record).pixels.astype(np.int16)
    changed = np.abs(result.pixels.astype(np.int16) - before).max(axis=2) > 85
    moved = P.replay_mask(mask, result.record) > 0
    assert moved.shape == changed.shape
    assert moved.sum() > 0.8 * changed.sum() > 0
    if spec in ("resize:0.37:nearest", "crop:0.7", "crop:33:center"):
        assert np.array_equal(changed, moved)  # the same pixels picked: exact
    else:
        band = scipy.ndimage.binary_dilation(moved) & ~scipy.ndimage.binary_erosion(moved)
        assert not np.any((changed != moved) & ~band)


def _scaled_grid(size_in: int, size_out: int) -> np.ndarray:
    """Input coordinates (pixel indices) of the output pixel centres of a resize."""
    return (np.arange(size_out) + 0.5) * size_in / size_out - 0.5


@pytest.mark.parametrize(
    "spec", ["resize:0.5", "resize:0.37:bilinear:noaa", "resize:1.7", "longside:50"]
)
def test_resized_flow_matches_the_analytic_flow(spec: str):
    result = P.parse_spec(spec)(_to_uint8(_smooth_image()), 0)
    out_h, out_w = result.pixels.shape[:2]
    scale_y, scale_x = out_h / HEIGHT, out_w / WIDTH

    # A constant translation: the same vector everywhere, in output pixels.
    constant = np.broadcast_to(np.float32([2.5, -1.25]), (HEIGHT, WIDTH, 2))
    moved = P.replay_flow(np.ascontiguousarray(constant), result.record)
    assert np.allclose(moved[..., 0], 2.5 * scale_y, atol=1e-5)
    assert np.allclose(moved[..., 1], -1.25 * scale_x, atol=1e-5)

    # A linear field f(y, x) = A (y, x) + b: f'(u) = s * f(T^-1(u)), exact wherever T^-1(u)
    # lies inside the input (outside, the field is extended by its edge value).
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    linear = np.stack((0.03 * yy - 0.02 * xx + 1.0, 0.01 * yy + 0.05 * xx - 2.0), axis=-1)
    moved = P.replay_flow(linear.astype(np.float32), result.record)
    uy, ux = np.meshgrid(_scaled_grid(HEIGHT, out_h), _scaled_grid(WIDTH, out_w), indexing="ij")
    expected = np.stack(
        (scale_y * (0.03 * uy - 0.02 * ux + 1.0), scale_x * (0.01 * uy + 0.05 * ux - 2.0)), -1
    )
    inside = (uy >= 0) & (uy <= HEIGHT - 1) & (ux >= 0) & (ux <= WIDTH - 1)
    assert inside.mean() > 0.9
    assert np.allclose(moved[inside], expected[inside], atol=1e-3)


@pytest.mark.parametrize("degrees", [90.0, 30.0, -17.5])
def test_rotated_constant_flow_turns_with_the_image(degrees: float):
    """A rightward displacement becomes up-and-right under a counter-clockwise rotation."""
    flow = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    flow[..., 1] = 3.0  # dx: content comes from 3 px to the right
    rotate = P.Rotate(degrees=degrees, mode="crop")
    moved = rotate.replay_flow(flow, {"degrees": degrees, "mode": "crop"})
    angle = np.radians(degrees)
    assert np.allclose(moved[..., 0], -3.0 * np.sin(angle), atol=1e-4)
    assert np.allclose(moved[..., 1], 3.0 * np.cos(angle), atol=1e-4)
    # With a canvas larger than the image, the fill carries no displacement (nor mask).
    params = {"degrees": degrees, "mode": "expand"}
    moved = rotate.replay_flow(flow, params)
    outside = rotate.replay_mask(np.full((HEIGHT, WIDTH), 255, np.uint8), params) == 0
    if degrees % 90:
        assert outside.any()
    assert np.all(moved[outside] == 0)


@pytest.mark.parametrize(
    "spec",
    [
        "resize:0.5",
        "resize:1.7:bilinear",
        "crop:0.7",
        "rotate:23:same",
        "rotate:-37:expand",
        "rotate:15",
        "rotate:90:expand",
        "crop:0.8,rotate:-12:expand,resize:0.6",
    ],
)
def test_moved_flow_still_maps_the_original_onto_the_forgery(spec: str):
    """T(warp(I, f)) == warp(T(I), f') for the moved flow f', far better than with f'=0."""
    original = _smooth_image()
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    flow = np.stack((3 * np.sin(xx / 30) + 1.5, 4 * np.cos(yy / 25) - 2), axis=-1)
    forged = _to_uint8(_warp(original, flow))
    result = P.parse_spec(spec)(forged, 3)
    moved_original = P.replay(_to_uint8(original), result.record).pixels.astype(np.float64)
    moved_flow = P.replay_flow(flow.astype(np.float32), result.record)
    # Away from the image's border, where warps read beyond the edge.
    inside = P.replay_mask(np.full((HEIGHT, WIDTH), 255, np.uint8), result.record) > 0
    inside = scipy.ndimage.binary_erosion(inside, iterations=8)
    error = np.abs(_warp(moved_original, moved_flow) - result.pixels)[inside].mean()
    unmoved = np.abs(moved_original - result.pixels)[inside].mean()
    assert error < 1.0 and error < unmoved / 10


def test_crop_cuts_masks_and_flows_at_the_recorded_box():
    pixels = _to_uint8(_smooth_image())
    result = P.parse_spec("crop:0.6,crop:0.5")(pixels, 4)
    first, second = (step["params"] for step in result.record["params"]["steps"])
    top, left = first["top"] + second["top"], first["left"] + second["left"]
    height, width = second["height"], second["width"]
    flow = np.random.default_rng(1).normal(size=(HEIGHT, WIDTH, 2)).astype(np.float32)
    mask = _shapes_mask()
    assert np.array_equal(result.pixels, pixels[top : top + height, left : left + width])
    assert np.array_equal(
        P.replay_mask(mask, result.record), mask[top : top + height, left : left + width]
    )
    # Crops keep the vectors: displacements are relative to each pixel.
    assert np.array_equal(
        P.replay_flow(flow, result.record), flow[top : top + height, left : left + width]
    )


def test_ground_truth_replay_refuses_bad_arrays():
    record = P.parse_spec("resize:0.5")(_to_uint8(_smooth_image()), 0).record
    with pytest.raises(ValueError, match="mask"):
        P.replay_mask(np.zeros((4, 4, 3), np.uint8), record)
    with pytest.raises(ValueError, match="mask"):
        P.replay_mask(np.zeros((4, 4), np.float32), record)
    with pytest.raises(ValueError, match="flow"):
        P.replay_flow(np.zeros((4, 4, 2), np.int32), record)
    with pytest.raises(ValueError, match="flow"):
        P.replay_flow(np.zeros((4, 4, 3), np.float32), record)


# --- data perturb on a forged dataset -----------------------------------------------------------


@pytest.fixture(scope="module")
def warp_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three small photos forged with ``data forge --kind warp``: fakes, masks, flows, meta."""
    pytest.importorskip("cv2")
    base = tmp_path_factory.mktemp("warp")
    photos = base / "photos"
    photos.mkdir()
    rng = np.random.default_rng(8)
    for name in ("pa", "pb", "pc"):
        Image.fromarray(natural_like(rng, 72)).save(photos / f"{name}.png")
    out = base / "forged"
    result = runner.invoke(
        app,
        ["data", "forge", str(out), "--kind", "warp", "--from", str(photos), "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert len(list((out / "flow" / "warp").glob("*.npy"))) == 3
    return out


def _perturb(*args: str):
    return runner.invoke(app, ["data", "perturb", *args, "--no-progress"])


def _load_mask(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_cli_moves_masks_and_flows_with_their_images(warp_dataset: Path, tmp_path: Path):
    out = tmp_path / "out"
    spec = "crop:0.9,rotate:-10-10:expand,resize:0.7"
    result = _perturb(spec, str(warp_dataset), str(out), "--seed", "5")
    assert result.exit_code == 0, result.output
    assert "left out" not in result.output
    summary = json.loads((out / "perturb.json").read_text())
    assert summary["geometric"] is True
    assert summary["ground_truth"] == {"mode": "transformed", "files": 6, "left_out": []}
    for fake in sorted((out / "fake" / "warp").glob("*.png")):
        name = fake.stem
        pixels = np.asarray(Image.open(fake).convert("RGB")).astype(np.float64)
        mask = _load_mask(out / "masks" / "warp" / f"{name}.png")
        flow = np.load(out / "flow" / "warp" / f"{name}.npy")
        assert mask.shape == pixels.shape[:2] and set(np.unique(mask)) <= {0, 255}
        assert flow.dtype == np.float32 and flow.shape == (*pixels.shape[:2], 2)
        meta = json.loads((out / "meta" / "perturb" / "fake" / "warp" / f"{name}.json").read_text())
        assert meta["ground_truth"] == [f"masks/warp/{name}.png", f"flow/warp/{name}.npy"]
        # The image's own params, replayed on its original and on its input ground truth,
        # give what was written: the dataset is consistent file by file.
        record = meta["applied"]
        source_mask = _load_mask(warp_dataset / "masks" / "warp" / f"{name}.png")
        assert np.array_equal(P.replay_mask(source_mask, record), mask)
        source_flow = np.load(warp_dataset / "flow" / "warp" / f"{name}.npy")
        assert np.array_equal(P.replay_flow(source_flow, record), flow)
        real = meta["input_params"]["target"]["real"]
        original = np.asarray(Image.open(warp_dataset / real).convert("RGB"))
        moved_original = P.replay(original, record).pixels.astype(np.float64)
        # Where the forgery moved pixels, the moved flow maps the moved original onto it.
        inside = P.replay_mask(np.full(original.shape[:2], 255, np.uint8), record) > 0
        region = scipy.ndimage.binary_erosion(inside, iterations=4) & (mask > 0)
        assert region.sum() > 20
        error = np.abs(_warp(moved_original, flow) - pixels)[region].mean()
        unmoved = np.abs(moved_original - pixels)[region].mean()
        assert error < 0.35 * unmoved

    # A second run reads the ground truth the first one wrote and moves it again.
    again = tmp_path / "again"
    assert _perturb("resize:0.5", str(out), str(again)).exit_code == 0
    for mask_path in sorted((out / "masks" / "warp").glob("*.png")):
        before = _load_mask(mask_path)
        after = _load_mask(again / "masks" / "warp" / mask_path.name)
        assert after.shape == (round(before.shape[0] * 0.5), round(before.shape[1] * 0.5))


def test_cli_copies_ground_truth_for_photometric_chains(warp_dataset: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = _perturb("jpeg:80,noise:1", str(warp_dataset), str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "perturb.json").read_text())
    assert summary["geometric"] is False
    assert summary["ground_truth"] == {"mode": "copied", "files": 6, "left_out": []}
    for folder in ("masks", "flow"):
        for source in (warp_dataset / folder).rglob("*.*"):
            copy = out / source.relative_to(warp_dataset)
            assert copy.read_bytes() == source.read_bytes()


def test_cli_skips_an_image_whose_mask_does_not_fit(warp_dataset: Path, tmp_path: Path):
    broken = tmp_path / "broken"
    (broken / "fake" / "warp").mkdir(parents=True)
    (broken / "masks" / "warp").mkdir(parents=True)
    name = sorted((warp_dataset / "fake" / "warp").glob("*.png"))[0].name
    (broken / "fake" / "warp" / name).write_bytes(
        (warp_dataset / "fake" / "warp" / name).read_bytes()
    )
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(broken / "masks" / "warp" / name)
    out = tmp_path / "out"
    result = _perturb("resize:0.5", str(broken), str(out))
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "is 12x10, the image 72x72" in flat and "1 bad files skipped" in flat
    assert "1 mask/flow files left out" in flat
    assert not (out / "fake" / "warp" / name).exists()
    assert not (out / "masks" / "warp" / name).exists()
