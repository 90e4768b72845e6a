"""Dataset layouts, the grouped hold-out split, and training with calibration."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakescope.calibration.model import CalibratedModel
from fakescope.data.layout import discover_dataset, fake_groups, group_indices
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


def test_split_keeps_photos_together_and_both_classes(dataset_dir):
    items = discover_dataset(dataset_dir)
    # Make tiles share photos: photo id is the stem before the first underscore.
    train, held = split_holdout(items, holdout=0.3, seed=0)
    assert set(train).isdisjoint(held) and len(train) + len(held) == len(items)
    for part in (train, held):
        assert {items[i].label for i in part} == {0, 1}
    assert {items[i].photo_id for i in train}.isdisjoint({items[i].photo_id for i in held})


def test_split_groups_tiles_of_one_photo(tmp_path):
    rng = np.random.default_rng(0)
    for photo in range(6):
        for tile in range(3):
            _save(tmp_path / "real" / f"p{photo}_{tile}.png", natural_like(rng, 32))
            _save(tmp_path / "fake" / f"q{photo}_{tile}.png", upsampled_fake(rng, 32))
    items = discover_dataset(tmp_path)
    train, held = split_holdout(items, holdout=0.3, seed=1)
    assert {items[i].photo_id for i in train}.isdisjoint({items[i].photo_id for i in held})


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
    assert model.detector.C == 0.5


def test_model_without_calibration_is_refused(tmp_path, fitted_spectral):
    fitted_spectral.save(tmp_path)
    with pytest.raises(ModelError, match="uncalibrated"):
        CalibratedModel.load(tmp_path)
    (tmp_path / "calibration.json").write_text(json.dumps({"threshold": 0.5}))
    with pytest.raises(ModelError, match="cannot read calibration"):
        CalibratedModel.load(tmp_path)
