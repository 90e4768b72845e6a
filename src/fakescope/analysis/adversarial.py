"""Counter-forensic attacks (FGSM, PGD) and a spectral detector of them (SpectralDefense).

**Attacks.** A forger who can query gradients adds a small perturbation to a fake so that a
detector calls it real. For every *differentiable* detector (torch networks with their weights;
spectral and CLIP-probe detectors compute features outside torch, and a model loaded from ONNX
alone has no gradients: the report says so rather than faking a gradient), fakes are attacked
in the L-infinity ball of radius eps = 1/255 .. 8/255 around their pixels:

- **FGSM** (Goodfellow et al. 2015): one step of size eps against the sign of the gradient of
  the fake logit;
- **PGD** (Madry et al. 2018): a random start in the ball, then ``steps`` signed-gradient steps
  of 2.5 eps / steps, each projected back onto the ball and onto valid pixels.

The attack works on the crop the detector scores (its centre crop), then the result is rounded
to 8-bit pixels, clipped to the ball again (rounding must not leave it) and pasted back: the
attacked image is an ordinary image file an attacker could publish, and every detector scores
it through its normal path, which also measures how the attack *transfers* to other detectors.

**SpectralDefense** (Harder et al., IJCNN 2021, "SpectralDefense: Detecting Adversarial Attacks
on CNNs in the Fourier Domain"): adversarial perturbations leave traces in the Fourier
magnitude spectrum of the input. A logistic regression on the log magnitude spectrum (per
channel, of the attacked crop) is trained to tell attacked from clean images on half of the
photos and tested on the other half; its detection rate is the share of held-out attacked
images it flags at probability 0.5 (a threshold fixed before testing, with balanced class
weights), reported with its false-alarm rate on held-out clean images and ROC-AUC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fakescope.evaluation.metrics import binary_metrics

if TYPE_CHECKING:
    from fakescope.detectors.torch_detector import TorchDetector

EPSILONS: tuple[int, ...] = (1, 2, 4, 8)  # in 1/255 steps
PGD_STEPS = 10
ATTACKS = ("fgsm", "pgd")


def crop_box(detector: TorchDetector, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the centre crop the detector scores."""
    config = detector.input_config()
    height, width = shape[:2]
    crop_h, crop_w = min(height, config.crop_size), min(width, config.crop_size)
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def attack(
    detector: TorchDetector,
    images: Sequence[np.ndarray],
    epsilon: int,
    method: str,
    *,
    steps: int = PGD_STEPS,
    seed: int = 0,
) -> list[np.ndarray]:
    """Attacked copies of ``images`` (uint8, same shapes): pushed towards *real*."""
    import torch

    if method not in ATTACKS:
        raise ValueError(f"unknown attack {method!r}; known: {', '.join(ATTACKS)}")
    if not 1 <= epsilon <= 255:
        raise ValueError(f"epsilon is in 1/255 steps and must be 1..255, got {epsilon}")
    network = detector._network()
    config = detector.input_config()
    mean = torch.tensor(config.mean, dtype=torch.float32).reshape(1, 3, 1, 1)
    std = torch.tensor(config.std, dtype=torch.float32).reshape(1, 3, 1, 1)
    generator = torch.Generator().manual_seed(seed)
    eps = epsilon / 255.0
    out = [image.copy() for image in images]
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        by_shape.setdefault(image.shape, []).append(index)

    def fake_logit(x: torch.Tensor) -> torch.Tensor:
        return network((x - mean) / std).reshape(-1)

    for shape, indices in by_shape.items():
        top, left, height, width = crop_box(detector, shape)
        for start in range(0, len(indices), int(detector.batch_size)):
            chunk = indices[start : start + int(detector.batch_size)]
            crops = np.stack([images[i][top : top + height, left : left + width] for i in chunk])
            original = torch.from_numpy(crops.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
            if method == "fgsm":
                x = original.clone().requires_grad_(True)
                fake_logit(x).sum().backward()
                x = (original - eps * x.grad.sign()).clamp(0.0, 1.0)
            else:
                noise = torch.rand(original.shape, generator=generator) * 2 - 1
                x = (original + eps * noise).clamp(0.0, 1.0)
                step = 2.5 * eps / steps
                for _ in range(steps):
                    x = x.detach().requires_grad_(True)
                    fake_logit(x).sum().backward()
                    x = x - step * x.grad.sign()
                    x = torch.min(torch.max(x, original - eps), original + eps).clamp(0.0, 1.0)
            network.zero_grad(set_to_none=True)
            attacked = np.rint(x.detach().numpy().transpose(0, 2, 3, 1) * 255.0)
            base = crops.astype(np.int16)
            attacked = np.clip(attacked, base - epsilon, base + epsilon)
            attacked = np.clip(attacked, 0, 255).astype(np.uint8)
            for position, i in enumerate(chunk):
                out[i][top : top + height, left : left + width] = attacked[position]
    return out


def attack_metrics(
    clean_fake_scores: np.ndarray,
    attacked_fake_scores: np.ndarray,
    real_scores: np.ndarray,
    threshold: float,
) -> dict[str, Any]:
    """Detection of attacked fakes: TPR at ``threshold``, attack success, ROC-AUC vs reals."""
    detected_before = clean_fake_scores >= threshold
    detected_after = attacked_fake_scores >= threshold
    labels = np.r_[np.zeros(real_scores.size), np.ones(attacked_fake_scores.size)]
    success = float(np.mean(~detected_after[detected_before])) if detected_before.any() else None
    return {
        "tpr_at_threshold": float(detected_after.mean()),
        "attack_success_rate": success,
        "roc_auc": binary_metrics(labels, np.r_[real_scores, attacked_fake_scores])["roc_auc"],
        "mean_score": float(attacked_fake_scores.mean()),
    }


# ------------------------------------------------------------------ SpectralDefense


def spectral_features(crops: Sequence[np.ndarray]) -> np.ndarray:
    """Log Fourier magnitude per channel, flattened: (n, H * (W//2+1) * 3), float32."""
    import scipy.fft

    rows = []
    for crop in crops:
        magnitude = np.abs(scipy.fft.rfft2(crop.astype(np.float32), axes=(0, 1), workers=1))
        rows.append(np.log1p(magnitude).ravel())
    return np.stack(rows).astype(np.float32)


def spectral_defense(
    clean: Sequence[np.ndarray],
    clean_groups: Sequence[str],
    attacked: dict[int, Sequence[np.ndarray]],
    attacked_groups: Sequence[str],
    seed: int = 0,
) -> dict[str, Any]:
    """Train on half of the photos, test on the other half; one detector for all eps.

    ``clean``: clean crops (reals and fakes) with their photo ids; ``attacked[eps]``: attacked
    crops of fakes (all of one shape), with their photo ids in ``attacked_groups``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupShuffleSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    photos = sorted(set(clean_groups) | set(attacked_groups))
    if len(photos) < 2:
        return {"error": "needs images from at least two photos"}
    splitter = GroupShuffleSplit(n_splits=1, test_size=0.5, random_state=seed)
    train_photos_idx, _ = next(splitter.split(photos, groups=photos))
    train_photos = {photos[i] for i in train_photos_idx}
    clean_features = spectral_features(clean)
    clean_train = np.array([g in train_photos for g in clean_groups])
    attacked_train = np.array([g in train_photos for g in attacked_groups])
    attacked_features = {eps: spectral_features(crops) for eps, crops in attacked.items()}
    x_train = np.vstack(
        [clean_features[clean_train], *(f[attacked_train] for f in attacked_features.values())]
    )
    y_train = np.r_[
        np.zeros(int(clean_train.sum())),
        np.ones(int(attacked_train.sum()) * len(attacked_features)),
    ]
    if len(set(y_train.tolist())) < 2 or (~clean_train).sum() == 0 or attacked_train.all():
        return {"error": "the photo split left one side without clean or attacked images"}
    classifier = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=0.01, class_weight="balanced", max_iter=2000, random_state=seed),
    )
    classifier.fit(x_train, y_train)
    clean_test_scores = classifier.predict_proba(clean_features[~clean_train])[:, 1]
    per_eps = {}
    for eps, features in attacked_features.items():
        scores = classifier.predict_proba(features[~attacked_train])[:, 1]
        labels = np.r_[np.zeros(clean_test_scores.size), np.ones(scores.size)]
        per_eps[str(eps)] = {
            "detection_rate": float(np.mean(scores >= 0.5)),
            "roc_auc": binary_metrics(labels, np.r_[clean_test_scores, scores])["roc_auc"],
            "n_attacked_test": int(scores.size),
        }
    return {
        "false_alarm_rate": float(np.mean(clean_test_scores >= 0.5)),
        "n_clean_test": int(clean_test_scores.size),
        "n_train": int(y_train.size),
        "n_features": int(clean_features.shape[1]),
        "per_epsilon": per_eps,
    }
