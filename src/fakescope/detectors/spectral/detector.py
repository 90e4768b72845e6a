"""The spectral detector: Durall et al. 2019, "Unmasking DeepFakes with simple features".

Features come from :mod:`fakescope.features.spectral`; they are standardised, then a classifier
head from :mod:`fakescope.detectors.spectral.heads` turns them into log-odds of *fake*:
``logistic`` (default), ``svm`` (Platt-scaled) or unsupervised ``kmeans``.

Works with very few labels: the model has ``n_features + 1`` parameters and a strong L2 prior.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Self

import numpy as np
from scipy.special import expit
from sklearn.preprocessing import StandardScaler

from fakescope.detectors.base import Detector, check_images_labels
from fakescope.detectors.spectral.heads import HEADS, Head
from fakescope.errors import ModelError, NotFittedError
from fakescope.features.spectral import MIN_SPECTRUM_SIDE, AzimuthalSpectrum

# Frequency bands for evidence, as fractions of the profile (DC excluded, corner = 1).
BANDS: dict[str, tuple[float, float]] = {
    "low": (0.0, 1 / 3),
    "mid": (1 / 3, 2 / 3),
    "high": (2 / 3, 1.0),
}


class SpectralDetector(Detector):
    """Azimuthally averaged log spectrum → standardisation → classifier head."""

    name = "spectral"
    min_image_side: ClassVar[int] = MIN_SPECTRUM_SIDE

    def __init__(
        self,
        classifier: str = "logistic",
        n_features: int = 128,
        C: float = 1.0,
        random_state: int = 0,
        fft_workers: int = -1,
    ) -> None:
        self.classifier = classifier
        self.n_features = n_features
        self.C = C
        self.random_state = random_state
        self.fft_workers = fft_workers

    def check_params(self) -> None:
        if self.classifier not in HEADS:
            raise ValueError(f"classifier must be one of {sorted(HEADS)}, got {self.classifier!r}")
        if int(self.n_features) < 2:
            raise ValueError(f"n_features must be at least 2, got {self.n_features}")
        if not float(self.C) > 0:
            raise ValueError(f"C must be positive, got {self.C}")

    # -- features ----------------------------------------------------------------------------
    def transform(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """The raw (unstandardised) spectral features, shape (n, n_features)."""
        return AzimuthalSpectrum(self.n_features, self.fft_workers).transform(images)

    # -- fitting -----------------------------------------------------------------------------
    def fit(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[int],
        on_progress: Callable[[int, int], None] | None = None,  # fast: no progress to report
    ) -> Self:
        self.check_params()
        y = check_images_labels(images, labels)
        return self.fit_features(self.transform(images), y)

    def fit_features(self, features: np.ndarray, labels: np.ndarray) -> Self:
        """Fit on precomputed features (what :meth:`transform` returns)."""
        self.check_params()
        scaler = StandardScaler().fit(features)
        self.mean_ = scaler.mean_.astype(np.float64)
        self.scale_ = scaler.scale_.astype(np.float64)
        head = HEADS[self.classifier]()
        head.fit(scaler.transform(features), np.asarray(labels), self.C, self.random_state)
        self.head_ = head
        return self

    # -- prediction --------------------------------------------------------------------------
    def _fitted_head(self) -> Head:
        head = getattr(self, "head_", None)
        if head is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load()")
        return head

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.predict_proba_features(self.transform(images))

    def predict_proba_features(self, features: np.ndarray) -> np.ndarray:
        return expit(self._fitted_head().logits(self._standardise(features)))

    def _standardise(self, features: np.ndarray) -> np.ndarray:
        self._fitted_head()
        if features.shape[1] != self.mean_.size:
            raise ValueError(f"expected {self.mean_.size} features, got {features.shape[1]}")
        return (features - self.mean_) / self.scale_

    def explain(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        return self.predict_with_evidence(images)[1]

    def predict_with_evidence(
        self, images: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Scores plus how much each frequency band pushed them, in log-odds.

        For linear heads a band's contribution is the sum of coefficient times standardised
        feature over its frequencies (times the Platt slope for the SVM), so the bands add up
        to the logit minus the intercept terms. k-means has no such split: only the logit is.
        """
        head = self._fitted_head()
        z = self._standardise(self.transform(images))
        logits = head.logits(z)
        evidence: list[dict[str, Any]] = [{"spectral_logit": round(float(v), 4)} for v in logits]
        contributions = head.contributions(z)
        if contributions is not None:
            for item, row in zip(evidence, contributions @ self._band_matrix(), strict=True):
                item["spectral_logit_by_band"] = {
                    band: round(float(value), 4) for band, value in zip(BANDS, row, strict=True)
                }
        return expit(logits), evidence

    def _band_matrix(self) -> np.ndarray:
        """(n_features, n_bands) 0/1 matrix assigning each frequency to one band."""
        positions = np.linspace(0.0, 1.0, self.mean_.size)
        edges = np.array([lo for lo, _ in BANDS.values()][1:])
        band_of = np.searchsorted(edges, positions, side="right")
        return np.eye(len(BANDS))[band_of]

    # -- persistence -------------------------------------------------------------------------
    def _weights(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "scale": self.scale_, **self._fitted_head().arrays()}

    def _state(self) -> dict[str, Any]:
        return self._fitted_head().scalars()

    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.check_params()
        n_features = int(self.n_features)
        for key in ("mean", "scale"):
            value = np.asarray(weights.get(key, np.empty(0)), dtype=np.float64)
            if value.shape != (n_features,) or not np.isfinite(value).all():
                raise ModelError(f"spectral weights {key!r} must be {n_features} finite values")
        if not (weights["scale"] > 0).all():
            raise ModelError("spectral weights 'scale' must be positive")
        self.mean_ = np.asarray(weights["mean"], dtype=np.float64)
        self.scale_ = np.asarray(weights["scale"], dtype=np.float64)
        self.head_ = HEADS[self.classifier].restore(weights, state, n_features)
