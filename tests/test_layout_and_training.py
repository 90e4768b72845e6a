"""Dataset layouts, the grouped hold-out split, and training with calibration."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakescope.calibration.model import CalibratedModel
from fakescope.calibration.threshold import calibrate_threshold
from fakescope.data.layout import discover_dataset, fake_groups, group_indices
from fakescope.data.manifest import ManifestRow, append_manifest
from fakescope.errors import InputError, ModelError
from fakescope.pipeline.evaluate import evaluate_model
from fakescope.pipeline.training import TrainingConfig, split_holdout, train_model
from tests.conftest import natural_like, upsampled_fake, write_dataset


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def test_real_fake_layout_with_generator_groups(dataset_dir):
    items = discover_dataset(dataset_dir)
    assert sum(item.label == 0 for item in items) == 16
    assert fake_groups(items) == ["gen0", "gen1"]
    index = group_indices(items, "gen0")
    assert {items[i].group for i in index} == {"", "gen0"}  # shared reals + that group's fakes


def test_cnndetection_layout_at_any_depth(tmp_path):
    rng = np.random.default_rng(0)
    for generator in ("progan/car", "stylegan"):
        for i in range(2):
            _save(tmp_path / "test" / generator / "0_real" / f"{i}.png", natural_like(rng, 32))
            _save(tmp_path / "test" / generator / "1_fake" / f"{i}.png", upsampled_fake(rng, 32))
    (tmp_path / "test" / "stylegan" / "1_fake" / "readme.txt").write_text("not an image")
    items = discover_dataset(tmp_path)
    assert len(items) == 8
    assert fake_groups(items) == ["test/progan/car", "test/stylegan"]
    paired = [items[i] for i in group_indices(items, "test/stylegan")]
    assert all(item.group == "test/stylegan" for item in paired) and len(paired) == 4


def test_fakes_directly_under_fake_form_one_group(tmp_path):
    rng = np.random.default_rng(0)
    _save(tmp_path / "real" / "a.png", natural_like(rng, 32))
    _save(tmp_path / "fake" / "b.png", upsampled_fake(rng, 32))
    assert fake_groups(discover_dataset(tmp_path)) == ["fake"]


def test_layout_errors(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        discover_dataset(tmp_path / "missing")
    _save(tmp_path / "real" / "a.png", natural_like(np.random.default_rng(0), 32))
    with pytest.raises(InputError, match="1 real and 0 fake"):
        discover_dataset(tmp_path)


def _tiles_with_fakes_from_the_same_photos(root: Path, n_photos: int = 8) -> None:
    """Tiles named ``<photo>_<y>_<x>``, and fakes made from the same photos, as data real/synth
    would write them: a split must keep a photo's reals and fakes on one side."""
    rng = np.random.default_rng(0)
    for photo in range(n_photos):
        for y in (0, 64):
            _save(root / "real" / f"p{photo}_{y}_0.png", natural_like(rng, 32))
            _save(root / "fake" / "gen" / f"p{photo}_{y}_0.png", upsampled_fake(rng, 32))


def test_split_keeps_each_photo_on_one_side_across_classes(tmp_path):
    _tiles_with_fakes_from_the_same_photos(tmp_path)
    items = discover_dataset(tmp_path)
    assert len({item.photo_id for item in items}) == 8
    for seed in range(5):
        train, held = split_holdout(items, holdout=0.3, seed=seed)
        assert set(train).isdisjoint(held) and len(train) + len(held) == len(items)
        for part in (train, held):
            assert {items[i].label for i in part} == {0, 1}
        assert {items[i].photo_id for i in train}.isdisjoint({items[i].photo_id for i in held})


def test_photo_ids_come_from_the_manifest_or_strict_tile_names(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("IMG_0001", "IMG_0002", "beach_256_512"):
        _save(tmp_path / "real" / f"{name}.png", natural_like(rng, 32))
    _save(tmp_path / "fake" / "gen" / "seed_7.png", upsampled_fake(rng, 32))
    ids = {item.path.name: item.photo_id for item in discover_dataset(tmp_path)}
    assert ids == {
        "IMG_0001.png": "real/IMG_0001.png",  # not merged into one "IMG" photo
        "IMG_0002.png": "real/IMG_0002.png",
        "beach_256_512.png": "beach",
        "seed_7.png": "fake/gen/seed_7.png",
    }
    append_manifest(
        tmp_path,
        [ManifestRow("fake/gen/seed_7.png", 1, "gen", "beach", "test", "CC0", "", 32, 32, "PNG")],
    )
    ids = {item.path.name: item.photo_id for item in discover_dataset(tmp_path)}
    assert ids["seed_7.png"] == "beach"


def test_split_needs_two_photos(tmp_path):
    rng = np.random.default_rng(0)
    _save(tmp_path / "real" / "a_0_0.png", natural_like(rng, 32))
    _save(tmp_path / "fake" / "a_0_0.png", upsampled_fake(rng, 32))
    with pytest.raises(InputError, match="2 distinct photos"):
        split_holdout(discover_dataset(tmp_path), holdout=0.3, seed=0)


def test_deep_folders_do_not_hit_the_recursion_limit(tmp_path):
    rng = np.random.default_rng(0)
    deep = os.path.join(tmp_path, "real")
    os.mkdir(deep)
    for _ in range(1100):  # makedirs and Path.mkdir(parents=True) recurse once per level
        deep = os.path.join(deep, "d")
        os.mkdir(deep)
    Image.fromarray(natural_like(rng, 16)).save(os.path.join(deep, "a.png"))
    _save(tmp_path / "fake" / "b.png", upsampled_fake(rng, 16))
    try:
        assert len(discover_dataset(tmp_path)) == 2
    finally:  # pytest's own cleanup (rmtree) recurses once per level, so unwind it here
        os.remove(os.path.join(deep, "a.png"))
        while deep != os.path.join(tmp_path, "real"):
            os.rmdir(deep)
            deep = os.path.dirname(deep)


def test_training_calibrates_on_held_out_reals_and_round_trips(trained_model_dir, dataset_dir):
    model = CalibratedModel.load(trained_model_dir)
    calibration = model.calibration
    assert calibration.target_fpr == 0.05
    assert calibration.n_calibration == model.info["training"]["n_held_out"]["real"]
    assert model.info["training"]["n_train"]["real"] + calibration.n_calibration == 16
    assert model.info["validation"]["overall"]["roc_auc"] > 0.9
    report = evaluate_model(model, dataset_dir)
    assert set(report["groups"]) == {"gen0", "gen1"}
    assert report["overall"]["ap"] > 0.95 and report["threshold"] == calibration.threshold


def test_training_skips_bad_files_and_reports_them(tmp_path):
    root = write_dataset(tmp_path / "ds", n_per_class=8)
    (root / "real" / "broken_0.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(40))
    model = train_model(root, TrainingConfig(detector="spectral", params={"C": 0.5}))
    assert model.info["training"]["n_skipped_files"] == 1
    assert model.info["training"]["skipped_files"][0].startswith("real/broken_0.png: ")
    assert model.info["training"]["data"] == "ds"  # never an absolute path in a model file
    assert model.detector.C == 0.5


def test_model_without_calibration_is_refused(tmp_path, fitted_spectral):
    fitted_spectral.save(tmp_path)
    with pytest.raises(ModelError, match="uncalibrated"):
        CalibratedModel.load(tmp_path)
    (tmp_path / "calibration.json").write_text(json.dumps({"threshold": 0.5}))
    with pytest.raises(ModelError, match="cannot read calibration"):
        CalibratedModel.load(tmp_path)
    good = calibrate_threshold(np.linspace(0, 1, 50)).to_dict()
    (tmp_path / "calibration.json").write_text(json.dumps({**good, "threshold": "high"}))
    with pytest.raises(ModelError, match="must be a number"):
        CalibratedModel.load(tmp_path)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda w: {**w, "coef": w["coef"][:-1]}, "expected"),
        (lambda w: {**w, "coef": np.full_like(w["coef"], np.nan)}, "non-finite"),
        (lambda w: {k: v for k, v in w.items() if k != "platt"}, "lack the array 'platt'"),
        (lambda w: {**w, "scale": np.zeros_like(w["scale"])}, "positive"),
    ],
)
def test_damaged_weights_fail_at_load(tmp_path, trained_model_dir, damage, message):
    for name in ("config.json", "calibration.json"):
        (tmp_path / name).write_bytes((trained_model_dir / name).read_bytes())
    with np.load(trained_model_dir / "weights.npz") as archive:
        weights = {key: archive[key] for key in archive.files}
    np.savez(tmp_path / "weights.npz", **damage(weights))
    with pytest.raises(ModelError, match=message):
        CalibratedModel.load(tmp_path)


def test_unknown_parameter_in_config_is_a_model_error(tmp_path, trained_model_dir):
    for name in ("weights.npz", "calibration.json"):
        (tmp_path / name).write_bytes((trained_model_dir / name).read_bytes())
    config = json.loads((trained_model_dir / "config.json").read_text())
    config["params"]["colour"] = "blue"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="invalid detector parameters"):
        CalibratedModel.load(tmp_path)


def test_training_on_chosen_fake_groups_only(dataset_dir, tmp_path):
    from typer.testing import CliRunner

    from fakescope.cli.main import app
    from fakescope.data.layout import select_fake_groups

    items = discover_dataset(dataset_dir)
    chosen = select_fake_groups(items, ["gen1"])
    assert {item.group for item in chosen} == {"", "gen1"}
    assert sum(item.label == 0 for item in chosen) == 16  # the shared reals all stay
    assert select_fake_groups(items, []) == items
    with pytest.raises(InputError, match="no fake group nope; the dataset has gen0, gen1"):
        select_fake_groups(items, ["nope"])
    runner = CliRunner()
    args = ["train", "spectral", "--data", str(dataset_dir), "--no-progress"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "m"), "--fakes", "gen1"])
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "m" / "model.json").read_text())
    assert "gen0" not in json.dumps(info["validation"])
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "x"), "--fakes", "nope"])
    assert result.exit_code == 2 and "no fake group" in result.output
