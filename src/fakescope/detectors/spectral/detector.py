"""The spectral detector: Durall et al. 2019, "Unmasking DeepFakes with simple features".

Features come from :mod:`fakescope.features.spectral`; they are standardised, then one of:

- ``logistic``: L2 logistic regression, whose probabilities are used as they are;
- ``svm``: a linear SVM whose margins are mapped to probabilities by Platt scaling, fitted on
  cross-validated margins so that the mapping is not fitted on the SVM's own training margins;
- ``kmeans``: unsupervised 2-cluster k-means, as in the paper. Labels are used only to name the
  cluster that holds more fakes; the probability comes from an isotropic two-Gaussian posterior
  with the clusters' pooled variance.

Works with very few labels: the model has ``n_features + 1`` parameters and a strong L2 prior.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
from scipy.special import expit
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from fakescope.detectors.base import Detector, check_images_labels
from fakescope.errors import NotFittedError
from fakescope.features.spectral import AzimuthalSpectrum

Classifier = Literal["logistic", "svm", "kmeans"]
CLASSIFIERS: tuple[str, ...] = ("logistic", "svm", "kmeans")
# Frequency bands for evidence, as fractions of the profile (DC excluded, corner = 1).
BANDS: dict[str, tuple[float, float]] = {
    "low": (0.0, 1 / 3),
    "mid": (1 / 3, 2 / 3),
    "high": (2 / 3, 1.0),
}


class SpectralDetector(Detector):
    """Azimuthally averaged log spectrum → standardisation → classifier."""

    name = "spectral"

    def __init__(
        self,
        classifier: Classifier = "logistic",
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

    # -- features ----------------------------------------------------------------------------
    def transform(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """The raw (unstandardised) spectral features, shape (n, n_features)."""
        return AzimuthalSpectrum(self.n_features, self.fft_workers).transform(images)

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, images: Sequence[np.ndarray], labels: Sequence[int]) -> Self:
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {self.classifier!r}")
        y = check_images_labels(images, labels)
        return self.fit_features(self.transform(images), y)

    def fit_features(self, features: np.ndarray, labels: np.ndarray) -> Self:
        """Fit on precomputed features (what :meth:`transform` returns)."""
        scaler = StandardScaler().fit(features)
        z = scaler.transform(features)
        self.mean_ = scaler.mean_.astype(np.float64)
        self.scale_ = scaler.scale_.astype(np.float64)
        if self.classifier == "kmeans":
            self._fit_kmeans(z, labels)
        else:
            self._fit_linear(z, labels)
        return self

    def _fit_linear(self, z: np.ndarray, y: np.ndarray) -> None:
        if self.classifier == "logistic":
            model = LogisticRegression(C=self.C, max_iter=5000).fit(z, y)
            self.coef_ = model.coef_.ravel().astype(np.float64)
            self.intercept_ = float(model.intercept_[0])
            self.platt_ = np.array([1.0, 0.0])
            return
        svm = LinearSVC(C=self.C, max_iter=20000, random_state=self.random_state)
        self.coef_, self.intercept_ = _linear_svm_weights(svm.fit(z, y))
        folds = int(min(5, np.bincount(y).min()))
        if folds >= 2:
            splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
            margins = cross_val_predict(svm, z, y, cv=splitter, method="decision_function")
        else:  # one example of a class: no held-out margins exist, fall back to training margins
            margins = z @ self.coef_ + self.intercept_
        platt = LogisticRegression(C=1e4, max_iter=5000).fit(margins[:, None], y)
        self.platt_ = np.array([float(platt.coef_[0, 0]), float(platt.intercept_[0])])

    def _fit_kmeans(self, z: np.ndarray, y: np.ndarray) -> None:
        kmeans = KMeans(n_clusters=2, n_init=10, random_state=self.random_state).fit(z)
        fake_share = [
            y[kmeans.labels_ == k].mean() if np.any(kmeans.labels_ == k) else 0.0 for k in (0, 1)
        ]
        fake_cluster = int(np.argmax(fake_share))
        self.centers_ = kmeans.cluster_centers_[[1 - fake_cluster, fake_cluster]].astype(np.float64)
        # Pooled per-dimension variance of points around their centres.
        self.sigma2_ = float(kmeans.inertia_ / (z.shape[0] * z.shape[1]) + 1e-12)

    # -- prediction --------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "mean_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load()")

    def decision_function(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """The log-odds of fake for each image."""
        return self._logits(self._standardise(self.transform(images)))

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.predict_proba_features(self.transform(images))

    def predict_proba_features(self, features: np.ndarray) -> np.ndarray:
        return expit(self._logits(self._standardise(features)))

    def _standardise(self, features: np.ndarray) -> np.ndarray:
        self._check_fitted()
        if features.shape[1] != self.mean_.size:
            raise ValueError(f"expected {self.mean_.size} features, got {features.shape[1]}")
        return (features - self.mean_) / self.scale_

    def _logits(self, z: np.ndarray) -> np.ndarray:
        if self.classifier == "kmeans":
            d_real = ((z - self.centers_[0]) ** 2).sum(axis=1)
            d_fake = ((z - self.centers_[1]) ** 2).sum(axis=1)
            return (d_real - d_fake) / (2.0 * self.sigma2_)
        margin = z @ self.coef_ + self.intercept_
        return self.platt_[0] * margin + self.platt_[1]

    def explain(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        return self.predict_with_evidence(images)[1]

    def predict_with_evidence(
        self, images: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Scores plus how much each frequency band pushed them, in log-odds.

        For the linear classifiers a band's contribution is the sum of coefficient times
        standardised feature over its frequencies (times the Platt slope for the SVM), so the bands
        add up to the logit minus the intercept terms. k-means has no such split: only the logit
        is given.
        """
        z = self._standardise(self.transform(images))
        logits = self._logits(z)
        if self.classifier == "kmeans":
            return expit(logits), [{"spectral_logit": round(float(v), 4)} for v in logits]
        contributions = z * (self.coef_ * self.platt_[0])
        band_sums = contributions @ self._band_matrix()
        evidence = [
            {
                "spectral_logit": round(float(logit), 4),
                "spectral_logit_by_band": {
                    band: round(float(value), 4) for band, value in zip(BANDS, row, strict=True)
                },
            }
            for logit, row in zip(logits, band_sums, strict=True)
        ]
        return expit(logits), evidence

    def _band_matrix(self) -> np.ndarray:
        """(n_features, n_bands) 0/1 matrix assigning each frequency to one band."""
        positions = np.linspace(0.0, 1.0, self.mean_.size)
        edges = np.array([lo for lo, _ in BANDS.values()][1:])
        band_of = np.searchsorted(edges, positions, side="right")
        return np.eye(len(BANDS))[band_of]

    # -- persistence -------------------------------------------------------------------------
    def _weights(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        weights = {"mean": self.mean_, "scale": self.scale_}
        if self.classifier == "kmeans":
            weights["centers"] = self.centers_
        else:
            weights["coef"] = self.coef_
            weights["platt"] = self.platt_
        return weights

    def _state(self) -> dict[str, Any]:
        if self.classifier == "kmeans":
            return {"sigma2": self.sigma2_}
        return {"intercept": self.intercept_}

    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.mean_ = weights["mean"]
        self.scale_ = weights["scale"]
        if self.classifier == "kmeans":
            self.centers_ = weights["centers"]
            self.sigma2_ = float(state["sigma2"])
        else:
            self.coef_ = weights["coef"]
            self.platt_ = weights["platt"]
            self.intercept_ = float(state["intercept"])


def _linear_svm_weights(svm: LinearSVC) -> tuple[np.ndarray, float]:
    return svm.coef_.ravel().astype(np.float64), float(svm.intercept_[0])
