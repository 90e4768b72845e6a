"""The analysis suite: spectra and spectral matching, colour, channel relevance, attacks."""

from __future__ import annotations

import numpy as np
import pytest

from fakescope.analysis import color, spectra
from fakescope.analysis.adversarial import attack, attack_metrics, spectral_defense
from fakescope.analysis.panel import differentiable_reason
from fakescope.detectors import create
from fakescope.evaluation.metrics import binary_metrics
from tests.conftest import make_images, natural_like


def test_mean_log_spectrum_is_centred_and_profiles_resample():
    rng = np.random.default_rng(0)
    images = [natural_like(rng, 32) for _ in range(3)]
    mean = spectra.mean_log_spectrum(images)
    assert mean.shape == (32, 32)
    # Natural images: more power at low frequencies (centre) than in the corners.
    assert mean[14:18, 14:18].mean() > mean[:4, :4].mean() + 1.0
    assert spectra.resampled_profile(images[0], 20).shape == (20,)
    with pytest.raises(ValueError):
        spectra.mean_log_spectrum([])


def test_band_differences_see_the_missing_high_frequencies_of_blurred_fakes():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(1)
    reals = [natural_like(rng, 48) for _ in range(6)]
    fakes = [gaussian_filter(r, (1.5, 1.5, 0)) for r in reals]
    real = spectra.scope_spectrum("real", reals, 10)
    fake = spectra.scope_spectrum("fake", fakes, 10)
    bands = spectra.band_differences(fake, real)
    assert bands["high"] < bands["mid"] < 0.1 and bands["high"] < -1.0


def test_spectral_equalisation_matches_the_real_mean_and_defeats_a_spectral_detector():
    images, labels = make_images(24, seed=5, size=64)
    reals = [img for img, y in zip(images, labels, strict=True) if y == 0]
    fakes = [img for img, y in zip(images, labels, strict=True) if y == 1]
    detector = create("spectral", n_features=32).fit(images, labels)
    gain = spectra.equalisation_gain(
        spectra.mean_magnitude(reals[:12]), spectra.mean_magnitude(fakes[:12])
    )
    target = np.mean([spectra.ring_log_profile(img) for img in reals[:12]], axis=0)
    attacked = [spectra.equalise(img, gain, target) for img in fakes[12:]]
    assert all(
        a.dtype == np.uint8 and a.shape == f.shape
        for a, f in zip(attacked, fakes[12:], strict=True)
    )

    # Each equalised fake's ring profile is much closer to the reals' mean than before.
    def distance(images: list) -> float:
        return float(np.mean([np.abs(spectra.ring_log_profile(i) - target).mean() for i in images]))

    assert distance(attacked) < 0.3 * distance(fakes[12:])
    test_labels = np.r_[np.zeros(12), np.ones(12)]
    auc_before = binary_metrics(test_labels, detector.predict_proba(reals[12:] + fakes[12:]))[
        "roc_auc"
    ]
    auc_after = binary_metrics(test_labels, detector.predict_proba(reals[12:] + attacked))[
        "roc_auc"
    ]
    assert auc_before > 0.95 and auc_after < 0.6


def test_colour_transforms():
    rng = np.random.default_rng(2)
    image = natural_like(rng, 24)
    grey = color.grayscale(image)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    rotated = color.COLOR_TRANSFORMS["hue+180deg"](image)
    assert rotated.shape == image.shape and not np.array_equal(rotated, image)
    back = color.COLOR_TRANSFORMS["hue+180deg"](rotated)
    assert np.abs(back.astype(int) - image.astype(int)).mean() < 3  # HSV rounding only


def test_color_sensitivity_reports_changes_and_flips():
    labels = np.array([0, 0, 1, 1])
    clean = {"d": np.array([0.1, 0.2, 0.8, 0.9])}
    transformed = {"grayscale": {"d": np.array([0.1, 0.2, 0.3, 0.9])}}
    table = color.color_sensitivity(clean, transformed, labels, {"d": 0.5})["d"]
    assert table["auc_clean"] == 1.0
    grey = table["grayscale"]
    assert grey["mean_abs_change_real"] == 0.0
    assert grey["mean_change_fake"] == pytest.approx(-0.25)
    assert grey["flip_rate"] == 0.25  # one fake of four fell below the threshold


def test_spectral_detector_is_reported_as_not_differentiable(fitted_spectral):
    reason = differentiable_reason(fitted_spectral)
    assert reason is not None and reason.startswith("not differentiable here")


# ------------------------------------------------------------------ torch detectors

torch = pytest.importorskip("torch")

from fakescope.analysis import relevance  # noqa: E402
from fakescope.detectors.torch_detector import TorchDetector  # noqa: E402
from fakescope.nn.preprocess import InputConfig  # noqa: E402


class TinyNet(torch.nn.Module):
    """Two convolutions, global average pooling, a linear head: the logit is linear in the
    last feature maps, so a first-order channel relevance is exact."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 6, 3)
        )
        self.head = torch.nn.Linear(6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))[:, 0]


class TinyDetector(TorchDetector):
    name = "tiny-test"

    def __init__(
        self,
        epochs: int = 6,
        batch_size: int = 8,
        learning_rate: float = 0.02,
        weight_decay: float = 0.0,
        blur_prob: float = 0.0,
        jpeg_prob: float = 0.0,
        random_state: int = 0,
        threads: int = 1,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.blur_prob = blur_prob
        self.jpeg_prob = jpeg_prob
        self.random_state = random_state
        self.threads = threads

    def build_network(self) -> torch.nn.Module:
        return TinyNet()

    def input_config(self) -> InputConfig:
        return InputConfig(32)


@pytest.fixture(scope="module")
def tiny_detector() -> tuple[TinyDetector, list, np.ndarray]:
    images, labels = make_images(12, seed=7, size=48)
    return TinyDetector().fit(images, labels), images, labels


def test_channel_relevance_estimate_equals_exact_ablation_for_a_linear_head(tiny_detector):
    detector, images, labels = tiny_detector
    fakes = [img for img, y in zip(images, labels, strict=True) if y == 1]
    reals = [img for img, y in zip(images, labels, strict=True) if y == 0]
    result = relevance.channel_relevance(
        detector, fakes, reals, [color.grayscale(f) for f in fakes], top_k=3
    )
    assert result["layer"] == "features" and result["n_channels"] == 6
    top = result["top_channels"]
    assert [c["relevance_fake"] for c in top] == sorted(
        (c["relevance_fake"] for c in top), reverse=True
    )
    for channel in top:
        assert channel["exact_drop_fake"] == pytest.approx(channel["relevance_fake"], abs=1e-4)


def test_fgsm_and_pgd_stay_in_the_ball_touch_only_the_crop_and_lower_the_fake_score(
    tiny_detector,
):
    detector, images, labels = tiny_detector
    fakes = [img for img, y in zip(images, labels, strict=True) if y == 1]
    clean = detector.predict_logits(fakes)
    for method in ("fgsm", "pgd"):
        attacked = attack(detector, fakes, 8, method, steps=5, seed=0)
        for original, changed in zip(fakes, attacked, strict=True):
            difference = np.abs(changed.astype(int) - original.astype(int))
            assert changed.dtype == np.uint8 and difference.max() <= 8
            assert difference[:8].max() == 0 and difference[:, :8].max() == 0  # outside the crop
        assert np.all(detector.predict_logits(attacked) < clean)
    with pytest.raises(ValueError):
        attack(detector, fakes, 0, "fgsm")
    with pytest.raises(ValueError):
        attack(detector, fakes, 2, "cw")


def test_onnx_backed_detector_is_not_differentiable(tiny_detector):
    detector = tiny_detector[0]
    assert differentiable_reason(detector) is None
    copy = TinyDetector()
    copy.onnx_backend_ = object()
    assert "onnxruntime" in (differentiable_reason(copy) or "")


def test_attack_metrics():
    metrics = attack_metrics(
        clean_fake_scores=np.array([0.9, 0.8, 0.2]),
        attacked_fake_scores=np.array([0.1, 0.7, 0.2]),
        real_scores=np.array([0.0, 0.05]),
        threshold=0.5,
    )
    assert metrics["tpr_at_threshold"] == pytest.approx(1 / 3)
    assert metrics["attack_success_rate"] == 0.5  # one of the two detected fakes escaped


def test_spectral_defense_detects_high_frequency_perturbations():
    rng = np.random.default_rng(3)
    clean = [natural_like(rng, 24) for _ in range(40)]
    groups = [f"p{i // 2}" for i in range(40)]

    def perturbed(image: np.ndarray, eps: int) -> np.ndarray:
        signs = rng.choice([-1, 1], size=image.shape)
        return np.clip(image.astype(int) + eps * signs, 0, 255).astype(np.uint8)

    attacked = {eps: [perturbed(img, eps) for img in clean] for eps in (2, 8)}
    result = spectral_defense(clean, groups, attacked, groups, seed=0)
    assert result["per_epsilon"]["8"]["detection_rate"] >= 0.9
    assert result["per_epsilon"]["8"]["roc_auc"] >= 0.95
    assert result["false_alarm_rate"] <= 0.3
