"""The fused detector: stacking, evidence, persistence, errors, and its path through scan/train."""

from __future__ import annotations

import csv
import io
import json
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import pytest
from sklearn.base import clone
from typer.testing import CliRunner

from fakescope import detectors as registry
from fakescope.calibration.model import CalibratedModel
from fakescope.calibration.threshold import calibrate_threshold
from fakescope.cli.main import _parse_params, app
from fakescope.detectors import Detector, create, load_detector
from fakescope.errors import ModelError, NotFittedError
from fakescope.fusion import FusedDetector, MemberError, parse_members, stacking_split
from fakescope.pipeline.scan import scan_paths
from tests.conftest import make_images, natural_like, upsampled_fake

runner = CliRunner()
TWO_SPECTRALS = {
    "members": ["spectral", "spectral:coarse"],
    "member_params": {"coarse": {"n_features": 16}},
}


class NoiseDetector(Detector):
    """Scores that carry no information: a hash of the pixels, uniform in (0, 1)."""

    name = "noise-test"

    def __init__(self, salt: int = 0, fail_on_predict: bool = False) -> None:
        self.salt = salt
        self.fail_on_predict = fail_on_predict

    def fit(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[int],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Self:
        self.fitted_ = True
        return self

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if self.fail_on_predict:
            raise RuntimeError("boom")
        hashes = [zlib.crc32(np.ascontiguousarray(img).tobytes(), self.salt) for img in images]
        return (np.array(hashes, dtype=np.float64) + 0.5) / 2**32

    def _weights(self) -> dict[str, np.ndarray]:
        return {"unused": np.zeros(1)}

    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.fitted_ = True


@pytest.fixture
def noise_registered(monkeypatch):
    monkeypatch.setattr(registry, "_registry", registry._registry.copy())
    registry.register(NoiseDetector.name, f"{__name__}:NoiseDetector")


@pytest.fixture(scope="module")
def images_labels() -> tuple[list, np.ndarray]:
    return make_images(20, seed=11, size=64)


@pytest.fixture(scope="module")
def fitted_fusion(images_labels) -> FusedDetector:
    images, labels = images_labels
    return create("fusion", **TWO_SPECTRALS).fit(images, labels)


# -- members and parameters ------------------------------------------------------------------
def test_member_specs_labels_and_validation():
    specs = parse_members("spectral, spectral:coarse")
    assert [(s.detector, s.label) for s in specs] == [
        ("spectral", "spectral"),
        ("spectral", "coarse"),
    ]
    for bad, message in [
        ([], "at least one member"),
        (["spectral", "spectral"], "unique"),
        (["spectral:../x"], "member label"),
        (["spectral:a/b"], "member label"),
        (["spectral:.hidden"], "member label"),
        (["spectral:fusion"], "member label"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_members(bad)
    for params, message in [
        ({"members": ["nope"]}, "unknown detector 'nope'"),
        ({"members": ["fusion:inner"]}, "cannot be a member of a fusion"),
        ({"members": ["spectral"], "member_params": {"other": {}}}, "not members"),
        ({"members": ["spectral"], "member_params": {"spectral": {"colour": 1}}}, "spectral"),
        ({"members": ["spectral"], "stack_fraction": 0.9}, "stack_fraction"),
        ({"members": ["spectral"], "C": 0}, "C must be positive"),
    ]:
        with pytest.raises(ValueError, match=message):
            create("fusion", **params)


def test_members_inherit_the_fusion_seed_and_image_side(noise_registered):
    fused = create("fusion", members=["spectral", "noise-test"], random_state=7)
    assert fused._params_for(fused.member_specs()[0])["random_state"] == 7
    assert "random_state" not in fused._params_for(fused.member_specs()[1])
    assert fused.min_image_side == create("spectral").min_image_side
    assert clone(fused).get_params() == fused.get_params()


# -- fitting, evidence, persistence -----------------------------------------------------------
def test_fit_predict_evidence_and_exact_round_trip(tmp_path, fitted_fusion, images_labels):
    images, labels = images_labels
    scores, evidence = fitted_fusion.predict_with_evidence(images)
    np.testing.assert_array_equal(scores, fitted_fusion.predict_proba(images))
    assert np.mean((scores >= 0.5) == labels) >= 0.9
    for row in evidence:
        assert set(row["detector_scores"]) == {"spectral", "coarse"}
        assert set(row["members"]) == {"spectral", "coarse"}
        assert "spectral_logit_by_band" in row["members"]["coarse"]
        total = row["stacker_intercept"] + sum(row["stacker_contributions"].values())
        assert total == pytest.approx(row["fused_logit"], abs=1e-3)
    assert fitted_fusion.fit_log_["n_member_fit"] + fitted_fusion.fit_log_["n_stacker_fit"] == 40

    fitted_fusion.save(tmp_path / "model")
    for label in ("spectral", "coarse"):
        assert (tmp_path / "model" / "members" / label / "config.json").is_file()
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert set(config["state"]["coefficients"]) == {"spectral", "coarse"}
    loaded = load_detector(tmp_path / "model")
    assert isinstance(loaded, FusedDetector)
    np.testing.assert_array_equal(loaded.predict_proba(images), scores)
    assert loaded.predict_with_evidence(images[:3])[1] == evidence[:3]


def test_groups_keep_photos_on_one_side_of_the_stacking_split():
    labels = np.array([0, 1] * 30)
    groups = np.repeat(np.arange(20), 3)  # three tiles per photo
    member_part, stack_part = stacking_split(labels, groups, 0.3, seed=0)
    assert not set(groups[member_part]) & set(groups[stack_part])
    assert 0.15 < stack_part.size / labels.size < 0.45


def test_refit_members_uses_every_image_and_progress_reaches_the_end(images_labels):
    images, labels = images_labels
    seen: list[tuple[int, int]] = []
    fused = create("fusion", refit_members=True, **TWO_SPECTRALS)
    fused.fit(images, labels, on_progress=lambda step, total: seen.append((step, total)))
    assert fused.fit_log_["n_member_fit"] == len(images)
    assert seen[-1][0] == seen[-1][1] and [s for s, _ in seen] == sorted(s for s, _ in seen)


def test_stacker_weights_the_informative_member_over_noise(noise_registered, images_labels):
    images, labels = images_labels
    fused = create("fusion", members=["spectral", "noise-test"]).fit(images, labels)
    informative, noise = fused.coef_
    assert informative > 0.5 and abs(noise) < 0.5 * informative

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    useful = 1 / (1 + np.exp(-(2.0 * (2 * y - 1) + rng.normal(0, 1.5, y.size))))
    scores = np.column_stack([useful, rng.random(y.size)])
    fused.fit_stacker(scores, y)
    assert fused.coef_[0] > 1.0 and abs(fused.coef_[1]) < 0.1


def test_saturated_members_do_not_produce_infinite_logits(fitted_fusion):
    fused = clone(fitted_fusion)
    fused.fit_stacker(np.array([[0.0, 0.2], [1.0, 0.9], [0.0, 0.1], [1.0, 0.7]]), [0, 1, 0, 1])
    logits, _ = fused._fuse(np.array([[0.0, 0.5], [1.0, 0.5]]))
    assert np.isfinite(logits).all() and logits[1] > logits[0]


def test_calibration_on_fused_scores_hits_its_fpr_on_fresh_reals(fitted_fusion):
    rng = np.random.default_rng(3)

    def member_scores(label: int, n: int) -> np.ndarray:
        shift = 1.5 if label else -1.5
        return 1 / (1 + np.exp(-(shift + rng.normal(0, 1.5, (n, 2)))))

    fused = clone(fitted_fusion)
    fused.fit_stacker(
        np.vstack([member_scores(0, 500), member_scores(1, 500)]), [0] * 500 + [1] * 500
    )
    calibration = calibrate_threshold(
        1 / (1 + np.exp(-fused._fuse(member_scores(0, 4000))[0])), target_fpr=0.05
    )
    fresh = 1 / (1 + np.exp(-fused._fuse(member_scores(0, 20000))[0]))
    assert np.mean(fresh >= calibration.threshold) == pytest.approx(0.05, abs=0.01)


def test_from_members_and_fit_stacker(tmp_path, images_labels):
    images, labels = images_labels
    fine = create("spectral").fit(images[::2], labels[::2])
    coarse = create("spectral", n_features=16).fit(images[::2], labels[::2])
    fused = FusedDetector.from_members([fine, coarse])
    assert fused.member_labels == ["spectral", "spectral-2"]
    with pytest.raises(NotFittedError, match="stacker"):
        fused.predict_proba(images[:2])
    fused.fit_stacker(fused.member_scores(images[1::2]), labels[1::2])
    assert fused.get_params()["member_params"]["spectral-2"]["n_features"] == 16
    loaded = load_detector(fused.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_proba(images), fused.predict_proba(images))


# -- errors ----------------------------------------------------------------------------------
def test_a_failing_member_is_named(noise_registered, images_labels):
    images, labels = images_labels
    fused = create(
        "fusion",
        members=["spectral", "noise-test:flaky"],
        member_params={"flaky": {"fail_on_predict": True}},
    )
    with pytest.raises(MemberError, match=r"member 'flaky' \(noise-test\) failed to score.*boom"):
        fused.fit(images, labels)
    with pytest.raises(NotFittedError):
        create("fusion", **TWO_SPECTRALS).predict_proba(images[:1])


def test_load_refuses_mismatched_or_escaping_members(tmp_path, fitted_fusion):
    model = fitted_fusion.save(tmp_path / "model")
    coarse = model / "members" / "coarse"
    config = json.loads((coarse / "config.json").read_text())
    (coarse / "config.json").write_text(json.dumps({**config, "detector": "fusion"}))
    with pytest.raises(ModelError, match="coarse"):
        load_detector(model)

    model = fitted_fusion.save(tmp_path / "model2")
    outside = fitted_fusion.member_detectors_["coarse"].save(tmp_path / "elsewhere")
    target = model / "members" / "coarse"
    for path in target.iterdir():
        path.unlink()
    target.rmdir()
    target.symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelError, match="leads outside"):
        load_detector(model)

    config = json.loads((model / "config.json").read_text())
    config["params"]["members"] = ["spectral", "spectral:../../x"]
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="member label"):
        load_detector(model)


# -- scan and output -------------------------------------------------------------------------
@pytest.fixture
def fused_model_dir(tmp_path, fitted_fusion) -> Path:
    calibration = calibrate_threshold(np.linspace(0, 0.5, 40), target_fpr=0.05)
    model = CalibratedModel(fitted_fusion, calibration, {"name": "fused"})
    return model.save(tmp_path / "fused")


@pytest.fixture
def two_images(tmp_path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(5)
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(natural_like(rng)).save(folder / "real.png")
    Image.fromarray(upsampled_fake(rng)).save(folder / "fake.png")
    (folder / "broken.png").write_bytes(b"nope")
    return folder


def test_scan_reports_every_member_score(fused_model_dir, two_images):
    from fakescope.models import load_model

    model = load_model(fused_model_dir)
    results = {Path(r.path).name: r for r in scan_paths([str(two_images)], model)}
    fake = results["fake.png"]
    assert list(fake.detectors) == ["fusion", "spectral", "coarse"]
    assert fake.detectors["fusion"] == fake.score
    own = fake.evidence["detector"]  # the model's own evidence, beside the metadata readers'
    assert "detector_scores" not in own and "coarse" in own["members"]
    assert results["broken.png"].detectors == {}


def test_cli_outputs_show_per_detector_scores(fused_model_dir, two_images):
    args = ["scan", str(two_images), "-m", str(fused_model_dir)]
    result = runner.invoke(app, [*args, "-f", "jsonl"])
    assert result.exit_code == 0, result.output
    rows = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(rows["fake.png"]["detectors"]) == {"fusion", "spectral", "coarse"}

    result = runner.invoke(app, [*args, "-f", "csv"])
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {"score_fusion", "score_spectral", "score_coarse"} <= set(table[0])
    fake = next(row for row in table if row["path"].endswith("fake.png"))
    assert float(fake["score_coarse"]) == rows["fake.png"]["detectors"]["coarse"]
    assert next(row for row in table if row["path"].endswith("broken.png"))["score_fusion"] == ""

    result = runner.invoke(app, args)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["verdict", "score", "detectors", "path"]
    assert any("spectral=" in line and "coarse=" in line and "fake.png" in line for line in lines)


# -- training --------------------------------------------------------------------------------
def test_parse_params_handles_lists_bools_dicts_and_dotted_keys():
    params = _parse_params(
        [
            "members=spectral,spectral:coarse",
            "refit_members=true",
            'member_params={"coarse": {"n_features": 16}}',
            "member_params.coarse.classifier=svm",
            "C=0.5",
        ]
    )
    assert params == {
        "members": ["spectral", "spectral:coarse"],
        "refit_members": True,
        "member_params": {"coarse": {"n_features": 16, "classifier": "svm"}},
        "C": 0.5,
    }


def test_cli_train_fusion_then_scan(dataset_dir, tmp_path, monkeypatch):
    seen: dict[str, Any] = {}
    original = FusedDetector.fit

    def spy(self, images, labels, on_progress=None, groups=None):
        seen["groups"] = groups
        return original(self, images, labels, on_progress=on_progress, groups=groups)

    monkeypatch.setattr(FusedDetector, "fit", spy)
    model_dir = tmp_path / "fused-model"
    result = runner.invoke(
        app,
        ["train", "fusion", "--data", str(dataset_dir), "--out", str(model_dir), "--seed", "3",
         "-p", "members=spectral,spectral:coarse", "-p", "member_params.coarse.n_features=16"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen["groups"] is not None and len(seen["groups"]) > 0
    config = json.loads((model_dir / "config.json").read_text())
    assert config["params"]["random_state"] == 3
    member = json.loads((model_dir / "members" / "coarse" / "config.json").read_text())
    assert member["params"]["n_features"] == 16 and member["params"]["random_state"] == 3
    assert (model_dir / "calibration.json").is_file()
    result = runner.invoke(
        app, ["scan", str(dataset_dir / "real"), "-m", str(model_dir), "-f", "jsonl"]
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout.splitlines()[0])
    assert set(row["detectors"]) == {"fusion", "spectral", "coarse"}


def test_cli_train_rejects_bad_fusion_params(dataset_dir, tmp_path):
    out = str(tmp_path / "x")
    for param in ("members=spectral,nope", "member_params.ghost.C=1", "members=spectral:../up"):
        result = runner.invoke(
            app, ["train", "fusion", "--data", str(dataset_dir), "--out", out, "-p", param]
        )
        assert result.exit_code == 2, (param, result.output)


def test_fusing_precomputed_member_scores_equals_scoring_the_images(fitted_fusion, images_labels):
    images, _ = images_labels
    fused = fitted_fusion
    np.testing.assert_allclose(
        fused.fuse_scores(fused.member_scores(images[:6])), fused.predict_proba(images[:6])
    )
