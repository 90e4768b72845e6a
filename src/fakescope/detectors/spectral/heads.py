"""Classifier heads on standardised spectral features, one class per ``classifier`` value.

Each head fits, turns features into log-odds of *fake*, and saves itself as named arrays plus
JSON scalars; :meth:`Head.restore` checks what it reads, so a damaged weights file fails at load
with a :class:`~fakescope.errors.ModelError` instead of producing wrong scores later.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.svm import LinearSVC

from fakescope.detectors.head_state import restore_state
from fakescope.errors import ModelError


class Head(ABC):
    #: The ``classifier`` parameter value that selects this head.
    name: ClassVar[str]
    #: Arrays and scalars a saved head must have.
    array_keys: ClassVar[tuple[str, ...]]
    scalar_keys: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def fit(self, z: np.ndarray, y: np.ndarray, C: float, random_state: int) -> None: ...

    @abstractmethod
    def logits(self, z: np.ndarray) -> np.ndarray: ...

    def contributions(self, z: np.ndarray) -> np.ndarray | None:
        """Per-feature log-odds that add up to the logit (minus a constant), when that exists."""
        return None

    def arrays(self) -> dict[str, np.ndarray]:
        return {key: getattr(self, key) for key in self.array_keys}

    def scalars(self) -> dict[str, float]:
        return {key: float(getattr(self, key)) for key in self.scalar_keys}

    @classmethod
    def restore(
        cls, arrays: Mapping[str, np.ndarray], scalars: Mapping[str, Any], n_features: int
    ) -> Self:
        head = cls()
        restore_state(
            head,
            f"spectral {cls.name}",
            arrays,
            cls.array_keys,
            scalars,
            cls.scalar_keys,
            dtype=np.float64,
        )
        head.check_shapes(n_features)
        return head

    @abstractmethod
    def check_shapes(self, n_features: int) -> None: ...


class LinearHead(Head):
    """A hyperplane whose margin is mapped to log-odds by a Platt slope and offset."""

    array_keys = ("coef", "platt")
    scalar_keys = ("intercept",)

    coef: np.ndarray
    platt: np.ndarray
    intercept: float

    def logits(self, z: np.ndarray) -> np.ndarray:
        return self.platt[0] * (z @ self.coef + self.intercept) + self.platt[1]

    def contributions(self, z: np.ndarray) -> np.ndarray:
        return z * (self.coef * self.platt[0])

    def check_shapes(self, n_features: int) -> None:
        if self.coef.shape != (n_features,) or self.platt.shape != (2,):
            raise ModelError(
                f"spectral weights have coef {self.coef.shape} and platt {self.platt.shape}; "
                f"expected ({n_features},) and (2,)"
            )


class LogisticHead(LinearHead):
    """L2 logistic regression; its probabilities are used as they are (Platt = identity)."""

    name = "logistic"

    def fit(self, z: np.ndarray, y: np.ndarray, C: float, random_state: int) -> None:
        model = LogisticRegression(C=C, max_iter=5000).fit(z, y)
        self.coef = model.coef_.ravel().astype(np.float64)
        self.intercept = float(model.intercept_[0])
        self.platt = np.array([1.0, 0.0])


class SvmHead(LinearHead):
    """Linear SVM with Platt scaling fitted on cross-validated margins, not its own."""

    name = "svm"

    def fit(self, z: np.ndarray, y: np.ndarray, C: float, random_state: int) -> None:
        svm = LinearSVC(C=C, max_iter=20000, random_state=random_state).fit(z, y)
        self.coef = svm.coef_.ravel().astype(np.float64)
        self.intercept = float(svm.intercept_[0])
        folds = int(min(5, np.bincount(y).min()))
        if folds >= 2:
            splitter = StratifiedKFold(folds, shuffle=True, random_state=random_state)
            margins = cross_val_predict(svm, z, y, cv=splitter, method="decision_function")
        else:  # one example of a class: no held-out margins exist, use the training margins
            margins = z @ self.coef + self.intercept
        platt = LogisticRegression(C=1e4, max_iter=5000).fit(margins[:, None], y)
        self.platt = np.array([float(platt.coef_[0, 0]), float(platt.intercept_[0])])


class KMeansHead(Head):
    """Unsupervised 2-means, as in the paper; labels only name the cluster holding more fakes.

    Log-odds come from an isotropic two-Gaussian posterior with the clusters' pooled variance.
    """

    name = "kmeans"
    array_keys = ("centers",)
    scalar_keys = ("sigma2",)

    centers: np.ndarray  # (2, n_features): real centre, then fake centre
    sigma2: float

    def fit(self, z: np.ndarray, y: np.ndarray, C: float, random_state: int) -> None:
        kmeans = KMeans(n_clusters=2, n_init=10, random_state=random_state).fit(z)
        fake_share = [
            y[kmeans.labels_ == k].mean() if np.any(kmeans.labels_ == k) else 0.0 for k in (0, 1)
        ]
        fake_cluster = int(np.argmax(fake_share))
        self.centers = kmeans.cluster_centers_[[1 - fake_cluster, fake_cluster]].astype(np.float64)
        self.sigma2 = float(kmeans.inertia_ / (z.shape[0] * z.shape[1]) + 1e-12)

    def logits(self, z: np.ndarray) -> np.ndarray:
        d_real = ((z - self.centers[0]) ** 2).sum(axis=1)
        d_fake = ((z - self.centers[1]) ** 2).sum(axis=1)
        return (d_real - d_fake) / (2.0 * self.sigma2)

    def check_shapes(self, n_features: int) -> None:
        if self.centers.shape != (2, n_features) or self.sigma2 <= 0:
            raise ModelError(f"spectral k-means centres {self.centers.shape} or variance invalid")


HEADS: dict[str, type[Head]] = {head.name: head for head in (LogisticHead, SvmHead, KMeansHead)}
