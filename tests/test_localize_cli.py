"""``fakescope localize`` and ``fakescope eval --task localize`` end to end, on tiny localizers.

The localizers here are test-only: the heat is how much redder than green a pixel is, computed
tile by tile through ``tiled_map`` like a real method, so a red square painted on a grey image
is found exactly and a 6000x4000 image goes through quickly. They are registered for the test
only (``monkeypatch`` on the registry), saved to a folder and loaded back by the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import fakescope.localizers as localizers
from fakescope.cli.main import app
from fakescope.localizers.base import Localizer, check_images_masks
from fakescope.localizers.tiling import tiled_map

runner = CliRunner()
#: Whether each predict_heatmap call received JPEG quantization tables.
SEEN_TABLES: list[bool] = []
GREY = (128, 128, 128)
RED = (230, 20, 20)


def redness(tile: np.ndarray) -> np.ndarray:
    red, green = tile[..., 0].astype(np.float32), tile[..., 1].astype(np.float32)
    return np.clip((red - green) / 200.0, 0.0, 1.0)


class RedLocalizer(Localizer):
    """Heat = (R - G) / 200, tile by tile: finds red paint, nothing on grey photos."""

    name = "test-red"
    weights_format = "npz"

    def __init__(self, tile: int = 64) -> None:
        self.tile = tile

    def fit(self, images: Any, masks: Any, on_progress: Any = None) -> RedLocalizer:
        check_images_masks(images, masks)
        return self

    def predict_heatmap(self, image: np.ndarray, *, jpeg_quantization: Any = None) -> np.ndarray:
        SEEN_TABLES.append(jpeg_quantization is not None)
        return tiled_map(image, redness, tile=self.tile, overlap=16)

    def _weights(self) -> dict[str, np.ndarray]:
        return {"scale": np.ones(1, dtype=np.float32)}

    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        pass


class UndoRedLocalizer(RedLocalizer):
    """Also "un-warps": a horizontal flip, easy to recognise in the written file."""

    name = "test-red-undo"

    def undo(self, image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image[:, ::-1])


class FlowUndoRedLocalizer(UndoRedLocalizer):
    """Carries a (zero) flow in its localization; un-warping from it flips vertically."""

    name = "test-red-flow"

    def localize(self, image: np.ndarray, *, jpeg_quantization: Any = None) -> Any:
        localization = super().localize(image, jpeg_quantization=jpeg_quantization)
        localization.flow = np.zeros((*image.shape[:2], 2), dtype=np.float32)
        return localization

    def undo_with_flow(self, image: np.ndarray, flow: np.ndarray) -> np.ndarray:
        assert flow.shape == (*image.shape[:2], 2)
        return np.ascontiguousarray(image[::-1])


class MissingPackageLocalizer(RedLocalizer):
    """Needs a package that is not installed, as a learned method without torch would."""

    name = "test-missing-package"

    def predict_heatmap(self, image: np.ndarray, *, jpeg_quantization: Any = None) -> np.ndarray:
        raise ModuleNotFoundError("No module named 'not_installed_here'")


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localizers, "_registry", localizers._registry.copy())
    localizers.register("test-missing-package", f"{__name__}:MissingPackageLocalizer")
    localizers.register("test-red", f"{__name__}:RedLocalizer")
    localizers.register("test-red-undo", f"{__name__}:UndoRedLocalizer")
    localizers.register("test-red-flow", f"{__name__}:FlowUndoRedLocalizer")


@pytest.fixture
def red_dir(registered: None, tmp_path: Path) -> Path:
    return RedLocalizer().save(tmp_path / "red-localizer")


@pytest.fixture
def undo_dir(registered: None, tmp_path: Path) -> Path:
    return UndoRedLocalizer().save(tmp_path / "undo-localizer")


def painted(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """A grey image with a red rectangle ``[y0, x0, y1, x1)``."""
    pixels = np.full((height, width, 3), GREY, dtype=np.uint8)
    y0, x0, y1, x1 = box
    pixels[y0:y1, x0:x1] = RED
    return pixels


def rows_of(out: Path) -> list[dict]:
    lines = (out / "localization.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def read(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_writes_heatmap_mask_overlay_and_rows(red_dir: Path, tmp_path: Path) -> None:
    box = (20, 30, 60, 90)
    Image.fromarray(painted(96, 128, box)).save(tmp_path / "doctored.png")
    Image.fromarray(painted(80, 80, (0, 0, 0, 0))).save(tmp_path / "clean.jpg", quality=95)
    out = tmp_path / "out"
    SEEN_TABLES.clear()
    result = runner.invoke(
        app,
        ["localize", str(tmp_path / "doctored.png"), str(tmp_path / "clean.jpg"),
         "--out", str(out), "--localizer", str(red_dir), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert SEEN_TABLES == [False, True]  # the JPEG's tables reach the method, the PNG has none
    with Image.open(out / "doctored.heatmap.png") as image:  # a palette PNG (colour map)
        assert image.mode == "P"
        heat = np.asarray(image.convert("RGB"))
    mask = read(out / "doctored.mask.png")
    overlay = read(out / "doctored.overlay.png")
    assert heat.shape == (96, 128, 3) and heat.dtype == np.uint8
    assert overlay.shape == (96, 128, 3)
    assert mask.shape == (96, 128) and set(np.unique(mask)) == {0, 255}
    expected = np.zeros((96, 128), dtype=bool)
    expected[20:60, 30:90] = True
    np.testing.assert_array_equal(mask == 255, expected)
    # Hot pixels are brighter in the colour map, and the overlay is red inside the region.
    assert heat[40, 60].sum() > heat[5, 5].sum() + 200
    assert overlay[40, 60, 0] > overlay[40, 60, 1] + 100
    np.testing.assert_array_equal(overlay[5, 5], GREY)  # no heat: the image untouched
    assert tuple(overlay[20, 60]) == (255, 255, 0)  # the region's outline

    rows = rows_of(out)
    assert [Path(row["path"]).name for row in rows] == ["doctored.png", "clean.jpg"]
    doctored, clean = rows
    assert doctored["error"] is None and doctored["verdict"] == "fake"
    assert doctored["score"] == 1.0  # (230 - 20) / 200, clipped: the hottest 1 % is all red
    assert len(doctored["sha256"]) == 64
    loc = doctored["evidence"]["localization"]
    assert loc["method"] == "test-red" and loc["threshold"] == 0.5
    assert loc["tampered_fraction"] == pytest.approx(expected.mean(), abs=1e-6)
    assert loc["regions"][0]["bbox"] == [20, 30, 60, 90]
    assert loc["files"] == {
        "heatmap": "doctored.heatmap.png",
        "mask": "doctored.mask.png",
        "overlay": "doctored.overlay.png",
    }
    assert clean["verdict"] == "real" and clean["evidence"]["localization"]["regions"] == []
    assert read(out / "clean.mask.png").max() == 0
    assert "2 files: 1 fake, 1 real, 0 error" in result.stderr


def test_threshold_option_overrides_the_localizer(red_dir: Path, tmp_path: Path) -> None:
    pixels = painted(64, 64, (0, 0, 0, 0))
    pixels[10:30, 10:30] = (180, 60, 60)  # heat 0.6: flagged at 0.5, not at 0.8
    Image.fromarray(pixels).save(tmp_path / "a.png")
    for threshold, verdict, flagged in (("0.5", "fake", 255), ("0.8", "real", 0)):
        out = tmp_path / f"out-{threshold}"
        result = runner.invoke(
            app,
            ["localize", str(tmp_path / "a.png"), "-o", str(out), "-l", str(red_dir),
             "--threshold", threshold, "--no-progress"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        row = rows_of(out)[0]
        assert row["verdict"] == verdict
        assert row["evidence"]["localization"]["threshold"] == float(threshold)
        assert row["score"] == pytest.approx(0.6)
        assert read(out / "a.mask.png").max() == flagged


def test_bad_file_is_an_error_row_and_the_batch_goes_on(red_dir: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    Image.fromarray(painted(64, 64, (10, 10, 30, 30))).save(inbox / "good.png")
    good = (inbox / "good.png").read_bytes()
    (inbox / "truncated.png").write_bytes(good[: len(good) // 2])
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["localize", str(inbox), "--out", str(out), "-l", str(red_dir), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    rows = {Path(row["path"]).name: row for row in rows_of(out)}
    assert set(rows) == {"good.png", "truncated.png"}
    assert rows["good.png"]["error"] is None
    bad = rows["truncated.png"]
    assert bad["score"] is None and bad["verdict"] is None
    assert bad["error_kind"] in {"truncated_image", "corrupt_image"}
    assert not list(out.glob("truncated*.png"))  # nothing written for the bad file


def test_nothing_localized_exits_1(red_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "text.png").write_text("not an image")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["localize", str(tmp_path / "text.png"), str(tmp_path / "missing.png"),
         "--out", str(out), "-l", str(red_dir), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 1
    kinds = [row["error_kind"] for row in rows_of(out)]
    assert kinds == ["unsupported_format", "unreadable"]
    assert "no input could be localized" in result.stderr


def test_unreadable_folder_is_an_error_row(
    red_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fakescope.io.discover as discover

    inbox = tmp_path / "inbox"
    (inbox / "locked").mkdir(parents=True)
    Image.fromarray(painted(64, 64, (10, 10, 30, 30))).save(inbox / "good.png")
    listing = discover._sorted_entries

    def refuse_locked(folder: str) -> list:
        # chmod 000 does not stop root, who runs these tests in containers: refuse explicitly.
        if Path(folder).name == "locked":
            raise PermissionError(13, "Permission denied", folder)
        return listing(folder)

    monkeypatch.setattr(discover, "_sorted_entries", refuse_locked)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["localize", str(inbox), "--out", str(out), "-l", str(red_dir), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    rows = {Path(row["path"]).name: row for row in rows_of(out)}
    assert rows["locked"]["error_kind"] == "unreadable"
    assert "cannot list folder" in rows["locked"]["error"]
    assert rows["good.png"]["verdict"] == "fake"


def test_same_stem_from_two_folders_does_not_overwrite(red_dir: Path, tmp_path: Path) -> None:
    for folder, box in (("a", (0, 0, 20, 20)), ("b", (40, 40, 64, 64))):
        (tmp_path / folder).mkdir()
        Image.fromarray(painted(64, 64, box)).save(tmp_path / folder / "photo.png")
    # The same name a third time, from stdin, and a file whose stem is the second's new one.
    Image.fromarray(painted(64, 64, (0, 0, 0, 0))).save(tmp_path / "photo-2.png")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["localize", str(tmp_path / "a"), str(tmp_path / "b"), "-", str(tmp_path / "photo-2.png"),
         "--out", str(out), "-l", str(red_dir), "--no-progress"],
        input=f"{tmp_path / 'a' / 'photo.png'}\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = rows_of(out)
    masks = [row["evidence"]["localization"]["files"]["mask"] for row in rows]
    assert masks == [
        "photo.mask.png",
        "photo-2.mask.png",
        "photo-3.mask.png",
        "photo-2-2.mask.png",
    ]
    assert read(out / "photo.mask.png")[5, 5] == 255  # a/photo.png: its square is top-left
    assert read(out / "photo-2.mask.png")[5, 5] == 0  # b/photo.png: bottom-right
    assert read(out / "photo-2.mask.png")[50, 50] == 255
    assert read(out / "photo-2-2.mask.png").max() == 0


def test_undo_writes_the_unwarped_image(undo_dir: Path, tmp_path: Path) -> None:
    pixels = painted(48, 64, (0, 0, 48, 10))  # red strip on the left
    Image.fromarray(pixels).save(tmp_path / "w.png")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["localize", str(tmp_path / "w.png"), "--out", str(out), "-l", str(undo_dir),
         "--undo", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read(out / "w.unwarped.png"), pixels[:, ::-1])
    row = rows_of(out)[0]
    assert row["evidence"]["localization"]["files"]["unwarped"] == "w.unwarped.png"
    assert row["evidence"]["undo"] == {"method": "test-red-undo"}


def test_undo_reuses_the_predicted_flow(registered: None, tmp_path: Path) -> None:
    """A warp method's localization carries its flow: un-warping must not predict it again."""
    localizer_dir = FlowUndoRedLocalizer().save(tmp_path / "flow-localizer")
    pixels = painted(48, 64, (0, 0, 10, 64))  # red strip on top
    Image.fromarray(pixels).save(tmp_path / "w.png")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["localize", str(tmp_path / "w.png"), "--out", str(out), "-l", str(localizer_dir),
         "--undo", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read(out / "w.unwarped.png"), pixels[::-1])
    assert rows_of(out)[0]["evidence"]["localization"]["has_flow"] is True


def test_undo_views_need_undo_and_a_method_with_views(undo_dir: Path, tmp_path: Path) -> None:
    Image.fromarray(painted(32, 32, (0, 0, 8, 8))).save(tmp_path / "w.png")
    out = tmp_path / "out"
    base = ["localize", str(tmp_path / "w.png"), "--out", str(out), "-l", str(undo_dir)]
    result = runner.invoke(app, [*base, "--undo-views", "2"])
    assert result.exit_code == 2 and "needs --undo" in result.output
    result = runner.invoke(app, [*base, "--undo", "--undo-views", "2"])
    assert result.exit_code == 2
    assert "no test-time views" in " ".join(result.output.replace("│", " ").split())
    assert not (out / "localization.jsonl").exists()


def test_undo_without_any_undo_step_is_one_usage_error(
    red_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(localizers, "list_bundled_localizers", lambda: [])  # no warp-flow-default
    for i in range(3):
        Image.fromarray(painted(32, 32, (0, 0, 8, 8))).save(tmp_path / f"{i}.png")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["localize", str(tmp_path), "--out", str(out), "-l", str(red_dir), "--undo"]
    )
    assert result.exit_code == 2
    assert result.output.count("warp-flow-default") >= 1
    assert "cannot undo warps" in result.output
    assert not (out / "localization.jsonl").exists()  # refused before any file was read


def test_unknown_localizer_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["localize", str(tmp_path), "--out", str(tmp_path / "o"), "-l", "no-such-localizer"]
    )
    assert result.exit_code == 2
    assert "no-such-localizer" in result.output


def test_a_6000x4000_photo_goes_through(registered: None, tmp_path: Path) -> None:
    """Tiling bounds the method's memory; the writers work in row bands at full size."""
    localizer_dir = RedLocalizer(tile=512).save(tmp_path / "big-tiles")
    box = (1000, 2000, 1500, 3500)
    source = tmp_path / "big.png"
    Image.fromarray(painted(4000, 6000, box)).save(source, compress_level=1)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["localize", str(source), "--out", str(out), "-l", str(localizer_dir), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    for kind in ("heatmap", "mask", "overlay"):
        with Image.open(out / f"big.{kind}.png") as image:
            assert image.size == (6000, 4000)
    row = rows_of(out)[0]
    assert row["evidence"]["localization"]["regions"][0]["bbox"] == list(box)
    assert row["evidence"]["localization"]["height"] == 4000


# ------------------------------------------------------------------ eval --task localize


def build_benchmark(root: Path, n_photos: int = 8, size: int = 96) -> Path:
    """A tiny benchmark in the layout ``localization_splits`` reads, with real forgeries.

    Forged regions are then painted red so the test localizer finds them (scores are not the
    point here, the plumbing is): ``fake/<kind>/<photo>_<n>.png``, ``masks/<kind>/`` (0/255),
    ``real/source/<photo>_0_0.png`` pristine tiles.
    """
    from fakescope.data.forge import FORGERIES
    from tests.conftest import natural_like

    rng = np.random.default_rng(0)
    photos = [natural_like(rng, size) for _ in range(n_photos)]
    for folder in ("fake/copymove", "fake/splice", "masks/copymove", "masks/splice", "real/source"):
        (root / folder).mkdir(parents=True)
    for i, target in enumerate(photos):
        Image.fromarray(target).save(root / "real" / "source" / f"p{i}_0_0.png")
        for n, kind in enumerate(("copymove", "splice")):
            donor = photos[(i + 1) % n_photos] if kind == "splice" else None
            forgery = FORGERIES[kind].forge(target, rng, donor=donor)
            pixels = forgery.pixels.copy()
            pixels[forgery.mask] = RED
            Image.fromarray(pixels).save(root / "fake" / kind / f"p{i}_{n}.png")
            mask = np.where(forgery.mask, 255, 0).astype(np.uint8)
            Image.fromarray(mask).save(root / "masks" / kind / f"p{i}_{n}.png")
    return root


def test_eval_task_localize_report_and_tables(red_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("cv2")  # the copy-move forgery warps its region with OpenCV
    bench = build_benchmark(tmp_path / "bench")
    report_path = tmp_path / "report.json"
    result = runner.invoke(
        app,
        ["eval", "--task", "localize", "--benchmark", str(bench), "--localizer", str(red_dir),
         "--perturb", "clean", "--perturb", "resize:0.5", "--out", str(report_path),
         "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["task"] == "localize"
    assert report["benchmark"]["split"] == "test"
    assert set(report["benchmark"]["kinds"]) == {"copymove", "splice", "pristine"}
    assert list(report["perturbations"]) == ["clean", "resize:0.5"]
    clean = report["perturbations"]["clean"]
    assert set(clean["kinds"]) == {"copymove", "splice"}
    overall = clean["overall"]
    assert overall["n_pristine"] == report["benchmark"]["kinds"]["pristine"] > 0
    # The red paint is found exactly on the clean PNGs, and nothing on the pristine photos.
    assert overall["f1_tampered"] == pytest.approx(1.0)
    assert overall["f1_pristine"] == pytest.approx(1.0)
    assert overall["pixel_auc"] == pytest.approx(1.0)
    assert overall["image_ap"] == pytest.approx(1.0)
    # Halving the size keeps the masks aligned (they follow the geometry), with softer edges.
    resized = report["perturbations"]["resize:0.5"]["overall"]
    assert 0.6 < resized["f1_tampered"] <= 1.0
    assert "copymove" in result.stdout and "F1 tampered" in result.stdout


def test_eval_task_localize_limit_and_json_to_stdout(red_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    bench = build_benchmark(tmp_path / "bench")
    result = runner.invoke(
        app,
        ["eval", "--task", "localize", "--benchmark", str(bench), "--localizer", str(red_dir),
         "--perturb", "jpeg:75", "--limit", "1", "--format", "json", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["benchmark"]["kinds"] == {"copymove": 1, "pristine": 1, "splice": 1}
    assert list(report["perturbations"]) == ["jpeg:75"]


def test_eval_task_localize_usage_errors(red_dir: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["eval", "--task", "localize"]).exit_code == 2  # no benchmark
    assert runner.invoke(app, ["eval"]).exit_code == 2  # detect still needs --data
    bad_spec = ["eval", "--task", "localize", "--benchmark", str(tmp_path), "--perturb", "jpg:7"]
    assert runner.invoke(app, bad_spec).exit_code == 2
    empty = [
        "eval",
        "--task",
        "localize",
        "--benchmark",
        str(tmp_path),
        "--localizer",
        str(red_dir),
    ]
    result = runner.invoke(app, empty)
    assert result.exit_code == 2
    assert "holds no forgery" in " ".join(result.output.replace("│", " ").split())


def test_a_missing_package_is_one_usage_error_not_a_row_per_file(
    registered: None, tmp_path: Path
) -> None:
    model = MissingPackageLocalizer().save(tmp_path / "missing-package")
    for name in ("a.png", "b.png"):
        Image.fromarray(painted(64, 64, (0, 0, 8, 8))).save(tmp_path / name)
    result = runner.invoke(
        app,
        ["localize", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--out",
         str(tmp_path / "out"), "-l", str(model), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 2
    text = " ".join(result.output.replace("│", " ").split())
    assert "not_installed_here" in text and "pip install" in text
