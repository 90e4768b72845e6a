"""The evaluation suite: intervals, ECE, splits, robustness, cross-generator, bias, CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from typer.testing import CliRunner

from fakescope.calibration.model import CalibratedModel
from fakescope.calibration.threshold import calibrate_threshold
from fakescope.cli.main import app
from fakescope.data.layout import LabelledItem, discover_dataset
from fakescope.detectors import create
from fakescope.evaluation.bootstrap import (
    BootstrapConfig,
    metrics_with_intervals,
    weighted_metrics_batch,
)
from fakescope.evaluation.calibration_error import expected_calibration_error
from fakescope.evaluation.eval_set import EvalSet, benchmark_split, build_eval_set, cap_buckets
from fakescope.evaluation.metrics import tpr_at_fpr
from fakescope.evaluation.robustness import SWEEPS, resolve_sweeps, run_robustness
from fakescope.evaluation.scoring import ModelScorer, ScoreCache
from fakescope.evaluation.suite import SuiteConfig, run_suite
from tests.conftest import make_images, natural_like, upsampled_fake, write_dataset

runner = CliRunner()


# ------------------------------------------------------------------ metrics and intervals


def test_vectorised_bootstrap_metrics_equal_scikit_learn_with_weights():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) * 0.7 + 0.3 * labels, 2)  # many ties
    weights = rng.integers(0, 3, (6, 300)).astype(float)
    batch = weighted_metrics_batch(labels, scores, weights, threshold=0.5)
    for row, w in enumerate(weights):
        fpr, tpr, _ = roc_curve(labels, scores, sample_weight=w, drop_intermediate=False)
        assert batch["ap"][row] == pytest.approx(
            average_precision_score(labels, scores, sample_weight=w)
        )
        assert batch["roc_auc"][row] == pytest.approx(
            roc_auc_score(labels, scores, sample_weight=w)
        )
        assert batch["tpr_at_fpr_5"][row] == pytest.approx(tpr[fpr <= 0.05 + 1e-12].max())
        predicted = scores >= 0.5
        assert batch["accuracy"][row] == pytest.approx(np.average(predicted == labels, weights=w))
        assert batch["ece"][row] == pytest.approx(
            expected_calibration_error(labels, scores, sample_weight=w)
        )


def test_intervals_cover_the_estimate_and_photo_clusters_widen_them():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(40), np.ones(40)].astype(int)
    scores = np.clip(rng.normal(0.4 + 0.2 * labels, 0.15), 0, 1)
    # Every image tiled 10 times from one photo: 10x the images, no more information.
    tiled_labels, tiled_scores = np.repeat(labels, 10), np.repeat(scores, 10)
    photos = [f"p{i}" for i in np.repeat(np.arange(80), 10)]
    config = BootstrapConfig(n_resamples=400, seed=0)
    naive = metrics_with_intervals(tiled_labels, tiled_scores, 0.5, None, config)
    clustered = metrics_with_intervals(tiled_labels, tiled_scores, 0.5, photos, config)
    assert clustered["n_clusters"] == 80 and naive["n_clusters"] == 800
    assert clustered["ap"] == naive["ap"]
    low, high = clustered["ci"]["ap"]
    assert low <= clustered["ap"] <= high
    naive_width = np.diff(naive["ci"]["roc_auc"])[0]
    assert np.diff(clustered["ci"]["roc_auc"])[0] > 2 * naive_width
    one_class = metrics_with_intervals(np.zeros(5), np.linspace(0, 1, 5), 0.5)
    assert one_class["ap"] is None and one_class["ci"]["ap"] is None


def test_expected_calibration_error():
    labels = np.array([0, 1] * 50)
    assert expected_calibration_error(labels, np.full(100, 0.9)) == pytest.approx(0.4)
    assert expected_calibration_error(labels, np.full(100, 0.5)) == pytest.approx(0.0)
    assert expected_calibration_error(np.array([]), np.array([])) is None


def test_tpr_at_fpr_keeps_collinear_roc_points():
    # Three thresholds, each a tied real/fake pair: the ROC points are collinear and
    # scikit-learn's default would drop the middle one, the best point under FPR 0.7.
    labels = np.array([1, 0, 1, 0, 1, 0])
    scores = np.array([0.9, 0.9, 0.5, 0.5, 0.1, 0.1])
    assert tpr_at_fpr(labels, scores, 0.7) == pytest.approx(2 / 3)


# ------------------------------------------------------------------ selecting images


def test_cap_buckets_is_seeded_and_caps_each_bucket():
    items = list(range(50))
    buckets = ["a"] * 30 + ["b"] * 20
    chosen = cap_buckets(items, buckets, 8, seed=3)
    assert len(chosen) == 16 and chosen == sorted(chosen)
    assert sum(i < 30 for i in chosen) == 8
    assert chosen == cap_buckets(items, buckets, 8, seed=3)
    assert chosen != cap_buckets(items, buckets, 8, seed=4)
    assert cap_buckets(items, buckets, lambda b: 100 if b == "a" else 2, 0)[:30] == items[:30]


def _tile(rng: np.random.Generator, fake: bool) -> Image.Image:
    return Image.fromarray(upsampled_fake(rng, 32) if fake else natural_like(rng, 32))


def write_benchmark(root: Path) -> Path:
    """A miniature ``fakescope data benchmark`` layout with photo roles in splits.csv."""
    rng = np.random.default_rng(0)
    roles = {f"s{i}": "source" for i in range(10)} | {f"h{i}": "heldout" for i in range(3)}
    roles |= {f"g{i}": "generator" for i in range(3)}
    for photo, role in roles.items():
        (root / "real" / role).mkdir(parents=True, exist_ok=True)
        for k in range(2):
            _tile(rng, False).save(root / "real" / role / f"{photo}_{16 * k}_0.png")
        if role == "source":
            for family in ("fam-a", "fam-b"):
                (root / "fake" / family).mkdir(parents=True, exist_ok=True)
                _tile(rng, True).save(root / "fake" / family / f"{photo}_0_0.png")
    (root / "dcgan" / "1_fake").mkdir(parents=True)
    (root / "dcgan" / "0_real").mkdir(parents=True)
    for i in range(10):
        _tile(rng, True).save(root / "dcgan" / "1_fake" / f"dcgan-{i}_0.png")
        roles[f"dcgan-{i}"] = "generated"
    for photo in ("s0", "h0", "s1"):
        _tile(rng, False).save(root / "dcgan" / "0_real" / f"{photo}_0_16.png")
    with (root / "splits.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["photo_id", "role"])
        writer.writerows(roles.items())
    return root


def test_benchmark_split_keeps_photos_on_one_side(tmp_path):
    root = write_benchmark(tmp_path / "bench")
    items = discover_dataset(root)
    split = benchmark_split(items, root, seed=0)
    assert split is not None and split.protocol == "benchmark"
    test_photos = {it.photo_id for it in split.test if not it.photo_id.startswith("dcgan")}
    train_photos = {it.photo_id for it in split.train if not it.photo_id.startswith("dcgan")}
    assert not test_photos & train_photos
    assert {"h0", "h1", "h2"} <= test_photos  # every heldout photo is tested
    assert len(test_photos & {f"s{i}" for i in range(10)}) == 3  # 30 % of the source photos
    assert not test_photos & {"g0", "g1", "g2"}
    generated_test = [it for it in split.test if it.photo_id.startswith("dcgan")]
    assert len(generated_test) == 3  # a seeded 30 % of the unconditional samples
    assert benchmark_split(items, tmp_path, 0) is None  # no splits.csv there


# ------------------------------------------------------------------ scoring, robustness


def _calibrated_spectral(images: list, labels: np.ndarray) -> CalibratedModel:
    detector = create("spectral", n_features=32).fit(images, labels)
    scores = detector.predict_proba([img for img, y in zip(images, labels, strict=True) if y == 0])
    return CalibratedModel(detector, calibrate_threshold(scores, 0.1), {"name": "toy"})


class CountingModel(CalibratedModel):
    calls = 0

    def score(self, images: list) -> np.ndarray:
        type(self).calls += len(images)
        return super().score(images)


def test_score_cache_skips_images_it_has_seen(tmp_path):
    images, labels = make_images(6, seed=2, size=48)
    base = _calibrated_spectral(images, labels)
    model = CountingModel(base.detector, base.calibration, base.info)
    scorer = ModelScorer(model, None, ScoreCache(tmp_path / "cache"))
    keys = [f"img{i}" for i in range(len(images))]
    first = scorer.score(images, keys).column()
    assert CountingModel.calls == 12
    again = scorer.score(images, keys).column()
    assert CountingModel.calls == 12 and np.array_equal(first, again)
    scorer.score(images[:3], keys[:3], condition="perturb|jpeg:50|seed=0")
    assert CountingModel.calls == 15  # a new condition is scored anew


def _eval_set(images: list, labels: np.ndarray, root: Path) -> EvalSet:
    items = [
        LabelledItem(
            root / f"{'fake/g' if y else 'real'}/{i}.png", int(y), "g" if y else "", f"p{i}"
        )
        for i, y in enumerate(labels)
    ]
    for item in items:
        item.path.parent.mkdir(parents=True, exist_ok=True)
        item.path.write_bytes(b"x")  # keys need a file to stat
    buckets = ["g" if y else "real:real" for y in labels]
    sources = {it.path: "real" for it in items if it.label == 0}
    return EvalSet(root, items, list(images), buckets, sources)


def test_robustness_perturbs_both_classes_alike(tmp_path):
    images, labels = make_images(8, seed=3, size=48)
    images[8] = images[0].copy()  # a "fake" with exactly the pixels of a real image
    scorer = ModelScorer(_calibrated_spectral(images, labels), None, ScoreCache(None))
    eval_set = _eval_set(images, labels, tmp_path)
    clean = scorer.score(images).column()
    sweeps = resolve_sweeps(["jpeg", "blur:2"])
    grid = run_robustness(scorer, eval_set, clean, sweeps, seed=0, bootstrap=BootstrapConfig(50))
    assert grid["clean"]["n_real"] == 8
    grid = grid["sweeps"]
    assert [p["spec"] for p in grid["jpeg"]["points"]] == [p.spec for p in SWEEPS["jpeg"].points]
    for name in ("jpeg", "blur:2"):
        for point in grid[name]["points"]:
            assert point["n_real"] == 8 and point["n_fake"] == 8
            assert 0 <= point["fpr"] <= 1 and point["groups"]["g"]["ap"] is not None
    # Same spec, same pixels: the real and its twin labelled fake get the same perturbed score.
    from fakescope.evaluation.robustness import perturbed_images

    make = perturbed_images(eval_set, "jpeg:30", 0)
    twin_real, twin_fake = make([0, 8])
    assert np.array_equal(twin_real, twin_fake)
    with pytest.raises(ValueError):
        resolve_sweeps(["jpeg:200"])


# ------------------------------------------------------------------ the whole suite


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from fakescope.pipeline.training import TrainingConfig, train_model

    base = tmp_path_factory.mktemp("suite")
    data = write_dataset(base / "data", n_per_class=14, groups=2)
    model = train_model(data, TrainingConfig("spectral", {"n_features": 32}, target_fpr=0.1))
    return data, model.save(base / "model")


def test_cross_generator_matrix_trains_on_one_family_and_tests_all(toy, tmp_path):
    data, model_dir = toy
    config = SuiteConfig(
        data=data, model=str(model_dir), photos="test", train_on=("all",), audit=False,
        n_resamples=50, cache_dir=None, max_train_per_class=40,
    )  # fmt: skip
    report, _ = run_suite(config)
    matrix = report["cross_generator"]
    assert matrix["train_families"] == ["gen0", "gen1"] and matrix["columns"] == ["gen0", "gen1"]
    assert matrix["protocol"] == "grouped-holdout"
    for family in ("gen0", "gen1"):
        row = matrix["rows"][family]
        assert row["n_train_fake"] > 0 and row["n_train_real"] > 0
        # Both groups are the same kind of fake: training on one transfers to the other.
        assert row["gen0"]["ap"] > 0.9 and row["gen1"]["ap"] > 0.9
    assert report["data"]["photos"] == "test"
    with pytest.raises(Exception, match="no fake group"):
        run_suite(SuiteConfig(data=data, model=str(model_dir), train_on=("nope",), audit=False,
                              cache_dir=None, n_resamples=0))  # fmt: skip


def test_bias_check_and_debiased_copy_are_reported_side_by_side(toy, tmp_path):
    from fakescope.data.audit import debias_dataset

    data, model_dir = toy
    copy = tmp_path / "debiased"
    debias_dataset(data, copy)
    config = SuiteConfig(
        data=data, model=str(model_dir), debias=copy, n_resamples=50, cache_dir=None
    )
    report, _ = run_suite(config)
    bias = report["bias"]
    assert set(bias["variables"]) >= {"format", "file_size", "width"}
    debiased = bias["debiased"]
    assert debiased["n_missing"] == 0 and debiased["n_evaluated"] == report["data"]["n_evaluated"]
    assert set(debiased["groups"]) == {"gen0", "gen1"}
    assert report["overall"]["ci"]["ap"] is not None
    assert report["real_sources"]["real"]["n"] == report["overall"]["n_real"]


def test_eval_set_caps_every_bucket(toy):
    data, _ = toy
    eval_set = build_eval_set(data, discover_dataset(data), cap=5, seed=0, min_side=4)
    assert sorted(set(eval_set.buckets)) == ["gen0", "gen1", "real:real"]
    assert all(eval_set.buckets.count(b) == 5 for b in set(eval_set.buckets))


def _flat(text: str) -> str:
    """Terminal output without rich's box drawing and line wrapping."""
    return " ".join(text.replace("│", " ").split())


def test_cli_refuses_localize_without_forgeries_and_bad_perturbations(toy):
    data, model_dir = toy
    base = ["eval", "--model", str(model_dir), "--data", str(data), "--no-cache"]
    result = runner.invoke(app, [*base, "--task", "localize"])
    assert result.exit_code == 2 and "holds no forgery" in _flat(result.output)
    result = runner.invoke(app, [*base, "--perturb", "sharpen:3"])
    assert result.exit_code == 2 and "unknown perturbation" in _flat(result.output)
    result = runner.invoke(app, ["analyze", "--model", str(model_dir), "--data", str(data),
                                 "--only", "colour"])  # fmt: skip
    assert result.exit_code == 2


def test_cli_table_and_json_keep_the_old_keys(toy):
    import json

    data, model_dir = toy
    result = runner.invoke(
        app,
        ["eval", "--model", str(model_dir), "--data", str(data), "--format", "json",
         "--no-cache", "--bootstrap", "50", "--no-audit", "--perturb", "jpeg:50"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in ("overall", "groups", "threshold", "target_fpr", "model", "seed", "data"):
        assert key in report
    assert report["fakescope_version"] and report["model"]["fingerprint"]
    assert report["robustness"]["sweeps"]["jpeg:50"]["points"][0]["spec"] == "jpeg:50"
    table = runner.invoke(app, ["eval", "--model", str(model_dir), "--data", str(data),
                                "--no-cache", "--bootstrap", "0", "--no-audit"])  # fmt: skip
    assert table.exit_code == 0 and "overall" in table.stdout
