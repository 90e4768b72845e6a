"""The detector contract, the registry, and the spectral detector's few-shot behaviour."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from fakescope import detectors as registry
from fakescope.detectors import (
    Detector,
    create,
    get_detector_class,
    list_detectors,
    load_detector,
    register,
)
from fakescope.errors import ModelError, NotFittedError
from tests.conftest import make_images


def test_registry_lists_and_creates_every_detector():
    names = list_detectors()
    assert "spectral" in names
    for name in names:
        detector = create(name)
        assert isinstance(detector, Detector)
        assert detector.name == name


def test_registry_unknown_name_and_bad_target(monkeypatch):
    monkeypatch.setattr(registry, "_registry", registry._registry.copy())
    with pytest.raises(KeyError, match="unknown detector 'nope'"):
        create("nope")
    with pytest.raises(ValueError, match="module:ClassName"):
        register("broken", "no_colon_here")
    register("not-a-detector", "json:JSONDecoder")
    with pytest.raises(TypeError, match="not a fakescope Detector"):
        get_detector_class("not-a-detector")
    with pytest.raises(ValueError, match="classifier must be one of"):
        create("spectral", classifier="forest")


def test_get_params_and_clone():
    detector = create("spectral", classifier="svm", n_features=64, C=0.5)
    params = detector.get_params()
    assert params["classifier"] == "svm" and params["n_features"] == 64 and params["C"] == 0.5
    assert clone(detector).get_params() == params


@pytest.mark.parametrize("classifier", ["logistic", "svm", "kmeans"])
def test_twenty_labels_give_a_usable_model(classifier):
    """Few-shot: 10 real + 10 fake training images, tested on 100 unseen images."""
    train_images, train_labels = make_images(10, seed=1)
    test_images, test_labels = make_images(50, seed=2)
    detector = create("spectral", classifier=classifier).fit(train_images, train_labels)
    scores = detector.predict_proba(test_images)
    assert scores.shape == (100,)
    assert np.all((scores >= 0) & (scores <= 1))
    assert roc_auc_score(test_labels, scores) > 0.95
    assert np.mean((scores >= 0.5) == test_labels) > 0.9


@pytest.mark.parametrize("classifier", ["logistic", "svm", "kmeans"])
def test_save_load_round_trip(tmp_path, few_shot_images, classifier):
    images, labels = few_shot_images
    detector = create("spectral", classifier=classifier, n_features=96).fit(images, labels)
    detector.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["detector"] == "spectral" and config["params"]["n_features"] == 96
    with np.load(tmp_path / "weights.npz", allow_pickle=False) as archive:
        assert archive.files  # plain arrays, readable without pickle
    restored = load_detector(tmp_path)
    assert restored.get_params() == detector.get_params()
    np.testing.assert_allclose(restored.predict_proba(images), detector.predict_proba(images))


def test_predict_before_fit_and_bad_labels(few_shot_images):
    images, labels = few_shot_images
    with pytest.raises(NotFittedError):
        create("spectral").predict_proba(images)
    with pytest.raises(ValueError, match="labels"):
        create("spectral").fit(images, labels[:-1])
    with pytest.raises(ValueError, match="at least one real"):
        create("spectral").fit(images, np.ones_like(labels))
    with pytest.raises(ValueError, match="0 \\(real\\) or 1"):
        create("spectral").fit(images, labels * 2)


def test_load_errors(tmp_path, fitted_spectral):
    with pytest.raises(ModelError, match=r"no config\.json"):
        load_detector(tmp_path)
    fitted_spectral.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["detector"] = "unknown-thing"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="unknown detector"):
        load_detector(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        load_detector(tmp_path)


def test_evidence_bands_add_up_to_the_logit(fitted_spectral, few_shot_images):
    images, _ = few_shot_images
    scores, evidence = fitted_spectral.predict_with_evidence(images)
    np.testing.assert_allclose(scores, fitted_spectral.predict_proba(images))
    for item in evidence:
        bands = item["spectral_logit_by_band"]
        assert set(bands) == {"low", "mid", "high"}
        total = sum(bands.values()) + fitted_spectral.head_.intercept
        assert total == pytest.approx(item["spectral_logit"], abs=1e-2)


def test_images_of_different_sizes_share_one_feature_space(fitted_spectral):
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in [(64, 64), (97, 130)]]
    assert fitted_spectral.predict_proba(images).shape == (2,)
