"""Input discovery and the scanning pipeline's failure isolation."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from fakescope.calibration.model import CalibratedModel
from fakescope.io.discover import iter_input_files
from fakescope.pipeline.scan import scan_paths
from tests.conftest import natural_like


def test_walk_is_sorted_recursive_and_filters_extensions(tmp_path):
    for name in ("b/z.png", "a.JPG", "b/c/y.webp", "skip.txt", "b/readme.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    entries = list(iter_input_files([str(tmp_path)]))
    names = [os.path.relpath(e.path, tmp_path) for e in entries]
    assert names == ["a.JPG", "b/c/y.webp", "b/z.png"]


def test_explicit_files_are_always_tried_and_missing_paths_are_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    entries = list(iter_input_files([str(tmp_path / "notes.txt"), str(tmp_path / "gone.png")]))
    assert entries[0].error is None
    assert entries[1].error is not None and entries[1].error.kind == "unreadable"


def test_unreadable_folder_is_an_error_entry_and_the_walk_goes_on(tmp_path, monkeypatch):
    (tmp_path / "locked").mkdir()
    (tmp_path / "open").mkdir()
    (tmp_path / "open" / "a.png").write_bytes(b"x")
    real_scandir = os.scandir

    def guarded(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", guarded)
    entries = list(iter_input_files([str(tmp_path)]))
    assert [e.error is not None for e in entries] == [True, False]
    assert "Permission denied" in str(entries[0].error)


def test_discovery_is_lazy(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")

    def inputs():
        yield str(tmp_path)
        raise AssertionError("read past what was asked for")

    assert next(iter_input_files(inputs())).path.endswith("a.png")


def test_symlinked_folders_are_not_followed(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    assert [os.path.basename(e.path) for e in iter_input_files([str(tmp_path)])] == ["a.png"]


def test_a_model_failure_on_one_image_fails_only_that_row(tmp_path, trained_model_dir):
    rng = np.random.default_rng(0)
    for name, size in (("a", 64), ("b", 48), ("c", 64)):
        Image.fromarray(natural_like(rng, size)).save(tmp_path / f"{name}.png")
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "d.png")
    model = CalibratedModel.load(trained_model_dir)
    original = model.detector.predict_with_evidence

    def fails_on_48px(images):
        if any(image.shape[0] == 48 for image in images):
            raise RuntimeError("boom")
        return original(images)

    model.detector.predict_with_evidence = fails_on_48px
    results = list(scan_paths([str(tmp_path)], model, batch_size=8))
    assert [r.error_kind for r in results] == [None, "scoring_error", None, "image_too_small"]
    assert "boom" in results[1].error and results[1].sha256 is not None
    assert results[0].score == pytest.approx(
        original([np.asarray(Image.open(tmp_path / "a.png"))])[0][0], abs=1e-6
    )


def test_non_finite_scores_become_error_rows(tmp_path, trained_model_dir):
    Image.fromarray(natural_like(np.random.default_rng(0), 64)).save(tmp_path / "a.png")
    model = CalibratedModel.load(trained_model_dir)
    model.detector.head_.coef = np.full_like(model.detector.head_.coef, np.nan)
    (result,) = scan_paths([str(tmp_path / "a.png")], model)
    assert result.error_kind == "scoring_error" and result.score is None


@pytest.mark.parametrize("batch_size", [1, 2, 7])
def test_results_do_not_depend_on_batch_size(tmp_path, trained_model_dir, batch_size):
    rng = np.random.default_rng(1)
    for i in range(5):
        Image.fromarray(natural_like(rng, 64)).save(tmp_path / f"{i}.png")
    (tmp_path / "2b.png").write_bytes(b"broken")
    model = CalibratedModel.load(trained_model_dir)
    reference = [r.to_dict() for r in scan_paths([str(tmp_path)], model, batch_size=16)]
    assert [r.to_dict() for r in scan_paths([str(tmp_path)], model, batch_size=batch_size)] == (
        reference
    )
