"""``fakescope data forge``: forgeries, their exact masks, parameters, flows and the dataset.

Small smooth random fields (96x96) stand in for photos. The mask contract is checked against
the pixels: outside the mask a forgery leaves the original bytes (warps: within what a sub-pixel
bilinear shift can do), inside it changes most pixels.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from fakescope.cli.main import app
from fakescope.data.forge import FORGERIES, MissingDependencyError, get_forgery, require_cv2
from fakescope.data.forge.base import forgery_entropy
from fakescope.data.forge.build import ForgeOptions, ForgeSetupError, forge_dataset
from fakescope.data.forge.shapes import SHAPES, sample_shape
from fakescope.data.layout import discover_dataset
from fakescope.data.manifest import file_sha256, read_manifest
from tests.conftest import natural_like

KINDS = ("splice", "copymove", "inpaint", "warp")
runner = CliRunner()


def _images(n: int = 3, seed: int = 7) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [natural_like(rng) for _ in range(n)]


def _write_inputs(root: Path, n_photos: int = 4, corrupt: bool = True) -> Path:
    """``root/in/p<i>_0_0.png`` and, optionally, a corrupt PNG that must be skipped."""
    folder = root / "in"
    folder.mkdir(parents=True)
    for i, pixels in enumerate(_images(n_photos, seed=3)):
        Image.fromarray(pixels).save(folder / f"p{i}_0_0.png")
    if corrupt:
        (folder / "broken_0_0.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    return folder


def _read_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _plain(output: str) -> str:
    """CLI output with rich's panel borders and line wrapping undone."""
    return " ".join(output.replace("\u2502", " ").split())


def _neighbour_range(image: np.ndarray) -> np.ndarray:
    """Per pixel, the largest absolute difference to its 8 neighbours (any channel)."""
    padded = np.pad(image.astype(np.int32), ((1, 1), (1, 1), (0, 0)), mode="reflect")
    height, width = image.shape[:2]
    diffs = [
        np.abs(padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] - image).max(axis=2)
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    ]
    return np.max(diffs, axis=0)


# --- registry and dependencies (no OpenCV needed) -------------------------------------------


def test_registry_holds_the_four_kinds_and_the_learned_inpainter() -> None:
    assert set(FORGERIES) == {*KINDS, "inpaint-learned"}
    assert FORGERIES["splice"].needs_donor
    assert not any(FORGERIES[k].needs_donor for k in ("copymove", "inpaint", "warp"))
    with pytest.raises(
        KeyError, match="registered: copymove, inpaint, inpaint-learned, splice, warp"
    ):
        get_forgery("blur")


def test_missing_opencv_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install -e \.\[data\]"):
        require_cv2()


def test_cli_without_opencv_exits_1_with_the_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _write_inputs(tmp_path, n_photos=2, corrupt=False)
    monkeypatch.setitem(sys.modules, "cv2", None)
    result = runner.invoke(
        app, ["data", "forge", "--kind", "warp", "--from", str(folder), str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "pip install -e .[data]" in _plain(result.output)


def test_cli_rejects_unknown_or_missing_kind(tmp_path: Path) -> None:
    folder = _write_inputs(tmp_path, n_photos=2, corrupt=False)
    out = tmp_path / "o"
    result = runner.invoke(
        app, ["data", "forge", "--kind", "blur", "--from", str(folder), str(out)]
    )
    assert result.exit_code == 2
    assert "registered: copymove, inpaint, inpaint-learned, splice, warp" in _plain(result.output)
    result = runner.invoke(app, ["data", "forge", "--from", str(folder), str(out)])
    assert result.exit_code == 2
    assert not out.exists()


@pytest.mark.parametrize("shape", SHAPES)
def test_shapes_fill_part_of_their_box(shape: str) -> None:
    for seed in range(10):
        region = sample_shape(np.random.default_rng(seed), 30, 22, shape)
        assert region.mask.shape == (30, 22) and region.mask.dtype == np.bool_
        assert 0.2 < region.mask.mean() < 0.95
        assert ndimage.label(region.mask)[1] == 1  # one piece
        assert region.params["shape"] == shape
        json.dumps(region.params)


def test_ellipse_is_reproducible_from_its_parameters() -> None:
    region = sample_shape(np.random.default_rng(5), 40, 30, "ellipse")
    p = region.params
    theta = np.radians(p["angle_deg"])
    yy, xx = np.mgrid[0:40, 0:30].astype(np.float64)
    cy, cx = p["centre_yx"]
    u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
    v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
    major, minor = p["semi_axes"]
    rebuilt = (u / major) ** 2 + (v / minor) ** 2 <= 1.0
    # Parameters are rounded to 4 decimals; only pixels on the very outline may flip.
    assert (rebuilt != region.mask).sum() <= 2


# --- each kind on its own -------------------------------------------------------------------


def _forge(kind: str, seed: int, **options: object) -> tuple[np.ndarray, object]:
    target, donor = _images(2)
    forgery = FORGERIES[kind].forge(target, np.random.default_rng(seed), donor=donor, **options)
    forgery.validate(target.shape)
    return target, forgery


def _assert_mask_contract(original: np.ndarray, forgery: object, exact_outside: bool) -> None:
    mask = forgery.mask
    assert mask.dtype == np.bool_ and mask.shape == original.shape[:2]
    assert 0 < mask.sum() < mask.size
    changed = (forgery.pixels != original).any(axis=2)
    if exact_outside:
        assert not changed[~mask].any()
    assert changed[mask].mean() > 0.6  # most of the mask really changed
    json.dumps(forgery.params)  # JSON-ready


@pytest.mark.parametrize("blending", ["none", "feather", "poisson"])
def test_splice_changes_exactly_the_pasted_region(blending: str) -> None:
    pytest.importorskip("cv2")
    target, donor = _images(2)
    for seed in range(6):
        forgery = FORGERIES["splice"].forge(
            target, np.random.default_rng(seed), donor=donor, blending=blending
        )
        _assert_mask_contract(target, forgery, exact_outside=True)
        params = forgery.params
        assert params["blending"] == blending
        if blending == "none":
            # The masked pixels are the donor's, moved from donor_yx to target_yx.
            (sy, sx), (ty, tx), (h, w) = params["donor_yx"], params["target_yx"], params["box_hw"]
            local = forgery.mask[ty : ty + h, tx : tx + w]
            pasted = forgery.pixels[ty : ty + h, tx : tx + w]
            assert np.array_equal(pasted[local], donor[sy : sy + h, sx : sx + w][local])
        if blending == "feather":
            assert 2.0 <= params["feather_px"] <= 6.0


def test_splice_samples_every_blending_and_needs_a_donor() -> None:
    pytest.importorskip("cv2")
    seen = {_forge("splice", seed)[1].params["blending"] for seed in range(20)}
    assert seen == {"none", "feather", "poisson"}
    with pytest.raises(ValueError, match="donor"):
        FORGERIES["splice"].forge(_images(1)[0], np.random.default_rng(0))


def test_copymove_copies_from_a_separate_source_region() -> None:
    pytest.importorskip("cv2")
    for seed in range(8):
        original, forgery = _forge("copymove", seed)
        _assert_mask_contract(original, forgery, exact_outside=True)
        source = forgery.extra_masks["copymove-source"]
        assert not (source & forgery.mask).any()
        params = forgery.params
        assert -45 <= params["angle_deg"] <= 45 and 0.75 <= params["scale"] <= 1.3
        # Independent of OpenCV: every target pixel maps back (inverse affine) into the source.
        affine = np.array(params["affine"])
        ys, xs = np.nonzero(forgery.mask)
        back = np.linalg.solve(affine[:, :2], np.stack([xs, ys]) - affine[:, 2:3])
        bx, by = np.rint(back).astype(int)
        near_source = ndimage.binary_dilation(source, iterations=1)
        assert near_source[by.clip(0, 95), bx.clip(0, 95)].all()


def test_copymove_pure_translation_copies_pixels() -> None:
    pytest.importorskip("cv2")
    original, forgery = _forge("copymove", 3, angle_deg=0.0, scale=1.0)
    affine = np.array(forgery.params["affine"])
    assert np.allclose(affine[:, :2], np.eye(2))
    # A shift by whole pixels would copy bytes; a fractional one interpolates between them.
    ys, xs = np.nonzero(forgery.mask)
    y0 = np.floor(ys - affine[1, 2]).astype(int)
    x0 = np.floor(xs - affine[0, 2]).astype(int)
    corners = np.stack([original[y0 + a, x0 + b] for a in (0, 1) for b in (0, 1)]).astype(int)
    copied = forgery.pixels[ys, xs].astype(int)
    assert ((copied >= corners.min(axis=0) - 1) & (copied <= corners.max(axis=0) + 1)).all()


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_inpaint_fills_exactly_the_removed_region(method: str) -> None:
    pytest.importorskip("cv2")
    for seed in range(4):
        original, forgery = _forge("inpaint", seed, method=method)
        _assert_mask_contract(original, forgery, exact_outside=True)
        assert forgery.params["method"] == method
        assert 3 <= forgery.params["radius_px"] <= 7


def test_warp_flow_mask_and_pixels_agree() -> None:
    pytest.importorskip("cv2")
    for seed in range(6):
        original, forgery = _forge("warp", seed)
        _assert_mask_contract(original, forgery, exact_outside=False)
        flow = forgery.flow
        assert flow.dtype == np.float32 and flow.shape == (96, 96, 2)
        magnitude = np.hypot(flow[..., 0], flow[..., 1])
        assert np.array_equal(forgery.mask, magnitude > 0.5)
        assert 0.5 < magnitude.max() <= 15.0 + 1e-3
        assert forgery.params["max_displacement_px"] == pytest.approx(magnitude.max(), abs=1e-3)
        diff = np.abs(forgery.pixels.astype(np.int32) - original).max(axis=2)
        # No flow, no change; a flow under 0.5 px moves a pixel by less than its neighbours differ.
        assert not diff[magnitude == 0].any()
        outside = ~forgery.mask
        assert (diff[outside] <= 0.75 * _neighbour_range(original)[outside] + 1).all()
        # The saved flow reproduces the forgery: forged(y, x) = original(y + dy, x + dx),
        # checked with SciPy's bilinear sampler rather than the OpenCV call that made it.
        yy, xx = np.mgrid[0:96, 0:96].astype(np.float64)
        coords = [yy + flow[..., 0], xx + flow[..., 1]]
        rebuilt = np.stack(
            [
                ndimage.map_coordinates(
                    original[..., c].astype(np.float64), coords, order=1, mode="mirror"
                )
                for c in range(3)
            ],
            axis=-1,
        )
        assert np.abs(rebuilt - forgery.pixels).max() <= 1.5


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_deterministic_in_its_seed(kind: str) -> None:
    pytest.importorskip("cv2")
    _, first = _forge(kind, 11)
    _, again = _forge(kind, 11)
    _, other = _forge(kind, 12)
    assert np.array_equal(first.pixels, again.pixels) and np.array_equal(first.mask, again.mask)
    assert first.params == again.params
    assert not np.array_equal(first.pixels, other.pixels)


def test_forgery_entropy_depends_on_what_not_when() -> None:
    assert forgery_entropy(0, "warp", 3, "a/b.png") == forgery_entropy(0, "warp", 3, "a/b.png")
    variants = [(1, "warp", 3, "a/b.png"), (0, "splice", 3, "a/b.png"), (0, "warp", 4, "a/b.png")]
    assert all(forgery_entropy(*v) != forgery_entropy(0, "warp", 3, "a/b.png") for v in variants)


# --- the dataset ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_forge_dataset_writes_the_layout(tmp_path: Path, kind: str) -> None:
    pytest.importorskip("cv2")
    folder = _write_inputs(tmp_path)
    out = tmp_path / "out"
    skipped: list[tuple[str, str]] = []
    report = forge_dataset(
        folder, out, ForgeOptions(kind=kind, seed=1), on_skip=lambda p, r: skipped.append((p, r))
    )
    assert report.forged == 4 and report.reals == 4
    assert len(report.skipped) == 1 and "broken_0_0.png" in skipped[0][0]
    rows = read_manifest(out)
    fakes = [r for r in rows if r.label == 1]
    reals = [r for r in rows if r.label == 0]
    assert len(fakes) == 4 and len(reals) == 4
    for row in rows:
        assert file_sha256(out / row.path) == row.sha256
        assert (row.width, row.height, row.format) == (96, 96, "PNG")
    for row in reals:
        assert row.path.startswith("real/") and not row.mask and not row.params
    for row in fakes:
        name = Path(row.path).name
        assert row.path == f"fake/{kind}/{name}" and row.group == kind
        assert (
            row.mask == f"masks/{kind}/{name}"
            and row.params == f"meta/{kind}/{Path(name).stem}.json"
        )
        assert name.startswith(f"{row.photo_id}_")
        mask = _read_png(out / row.mask)
        assert mask.dtype == np.uint8 and mask.shape == (96, 96)
        assert set(np.unique(mask)) <= {0, 255}
        meta = json.loads((out / row.params).read_text())
        assert meta["kind"] == kind and meta["params"] and meta["seed"] == 1
        assert meta["mask_pixels"] == int((mask == 255).sum())
        forged = _read_png(out / row.path)
        original = _read_png(out / meta["target"]["real"])
        changed = (forged != original).any(axis=2)
        if kind != "warp":
            assert not changed[mask == 0].any()
        assert changed[mask == 255].mean() > 0.6
        # The JSON's seed material and inputs reproduce the forgery exactly.
        donor = _read_png(out / meta["donor"]["real"]) if meta["donor"] else None
        redo = FORGERIES[kind].forge(
            original, np.random.default_rng(meta["rng_entropy"]), donor=donor
        )
        assert np.array_equal(redo.pixels, forged)
        if kind == "splice":
            assert meta["donor"]["photo_id"] != row.photo_id
        if kind == "copymove":
            source = _read_png(out / meta["extra_masks"]["copymove-source"])
            assert source.any() and not ((source > 0) & (mask > 0)).any()
        if kind == "warp":
            flow = np.load(out / meta["flow"])
            assert meta["flow"] == f"flow/warp/{Path(name).stem}.npy"
            assert flow.dtype == np.float32 and flow.shape == (96, 96, 2)
            assert np.array_equal(np.hypot(flow[..., 0], flow[..., 1]) > 0.5, mask == 255)
    items = discover_dataset(out)  # a complete dataset for train / eval
    assert {i.label for i in items} == {0, 1}
    assert {i.photo_id for i in items} == {"p0", "p1", "p2", "p3"}


def test_forge_dataset_is_deterministic(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    folder = _write_inputs(tmp_path)
    for out, seed in (("a", 5), ("b", 5), ("c", 6)):
        forge_dataset(folder, tmp_path / out, ForgeOptions(kind="splice", seed=seed, count=6))

    def files(name: str) -> dict[str, bytes]:
        root = tmp_path / name
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    assert files("a") == files("b")
    assert files("a") != files("c")


def test_count_reuses_inputs_and_lists_each_real_once(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    folder = _write_inputs(tmp_path, n_photos=3)
    out = tmp_path / "out"
    report = forge_dataset(folder, out, ForgeOptions(kind="inpaint", count=7))
    assert report.forged == 7
    forge_dataset(folder, out, ForgeOptions(kind="warp", count=2))  # a second kind, same reals
    rows = read_manifest(out)
    assert (
        sum(r.group == "inpaint" for r in rows) == 7 and sum(r.group == "warp" for r in rows) == 2
    )
    paths = [r.path for r in rows]
    assert len(paths) == len(set(paths))
    assert sum(r.label == 0 for r in rows) == 3
    # The corrupt file is reported once, however often the plan draws it.
    assert len(report.skipped) == 1


def test_outputs_are_never_inputs(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    folder = _write_inputs(tmp_path, corrupt=False)
    nested = folder / "forged"  # the dataset inside the folder of reals
    forge_dataset(folder, nested, ForgeOptions(kind="warp"))
    report = forge_dataset(folder, nested, ForgeOptions(kind="inpaint"))
    assert report.forged == 4  # not 4 + the warps and reals written by the first run
    # Forging a dataset's reals into the dataset itself reuses them without copies.
    report = forge_dataset(nested / "real", nested, ForgeOptions(kind="copymove"))
    assert report.forged == 4 and report.reals == 0
    rows = read_manifest(nested)
    assert sum(r.label == 0 for r in rows) == 4


def test_setup_errors(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    folder = _write_inputs(tmp_path, corrupt=False)
    out = tmp_path / "out"
    forge_dataset(folder, out, ForgeOptions(kind="copymove", count=1))
    with pytest.raises(ForgeSetupError, match="already holds copymove"):
        forge_dataset(folder, out, ForgeOptions(kind="copymove", count=1))
    lone = tmp_path / "lone"
    lone.mkdir()
    for i in range(2):  # two tiles, one photo: nothing to splice from
        Image.fromarray(_images(1, seed=i)[0]).save(lone / f"solo_{i}.png")
    with pytest.raises(ForgeSetupError, match="another photo"):
        forge_dataset(lone, tmp_path / "o2", ForgeOptions(kind="splice"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ForgeSetupError, match="no image files"):
        forge_dataset(empty, tmp_path / "o3", ForgeOptions(kind="warp"))


def test_size_crops_the_centre_and_skips_small_inputs(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    folder = tmp_path / "in"
    folder.mkdir()
    big = natural_like(np.random.default_rng(0), 120)
    Image.fromarray(big).save(folder / "big_0.png")
    Image.fromarray(natural_like(np.random.default_rng(1), 40)).save(folder / "small_0.png")
    out = tmp_path / "out"
    report = forge_dataset(folder, out, ForgeOptions(kind="warp", size=64))
    assert report.forged == 1
    assert report.skipped and "smaller than --size 64" in report.skipped[0][1]
    meta = json.loads((out / "meta/warp/big_0.json").read_text())
    y, x = meta["target"]["crop_yx"]
    assert (y, x) == (24, 24)  # (120 - 64) / 2 = 28, down to the 8-pixel JPEG grid
    assert meta["target"]["real"] == "real/big_0_crop64.png"
    assert np.array_equal(_read_png(out / "real/big_0_crop64.png"), big[24:88, 24:88])


# --- the command line -----------------------------------------------------------------------


def test_cli_end_to_end_with_a_corrupt_file(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    folder = _write_inputs(tmp_path)
    out = tmp_path / "out"
    args = ["data", "forge", "--kind", "copymove", "--from", str(folder), str(out)]
    result = runner.invoke(app, [*args, "--count", "5", "--seed", "3", "--size", "64"])
    assert result.exit_code == 0, result.output
    assert "broken_0_0.png" in result.output and "1 input file(s) skipped" in result.output
    with open(out / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    fakes = [r for r in rows if r["label"] == "1"]
    assert len(fakes) == 5 and all(r["mask"] and r["params"] for r in fakes)
    assert all(r["width"] == "64" for r in rows)
    assert len(list((out / "masks" / "copymove-source").glob("*.png"))) == 5
    again = runner.invoke(app, args)  # the same kind again into the same dataset
    assert again.exit_code == 2 and "already holds copymove" in _plain(again.output)


def test_cli_exit_codes_for_bad_folders(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x_0.png").write_bytes(b"not an image")
    result = runner.invoke(
        app, ["data", "forge", "--kind", "inpaint", "--from", str(broken), str(tmp_path / "o")]
    )
    assert result.exit_code == 1 and "no forgery could be made" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(
        app, ["data", "forge", "--kind", "inpaint", "--from", str(empty), str(tmp_path / "o2")]
    )
    assert result.exit_code == 2
