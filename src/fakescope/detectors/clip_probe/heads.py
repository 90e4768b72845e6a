"""Heads on L2-normalised CLIP embeddings, one class per ``head`` value (see :data:`HEADS`).

A head fits on (n, dim) unit-norm embeddings with labels 0/1, scores embeddings as probability
of *fake* plus per-image evidence, and saves itself as named arrays plus JSON scalars.
:meth:`Head.restore` checks what it reads, so a damaged weights file fails at load with a
:class:`~fakescope.errors.ModelError` instead of producing wrong scores later.

Each head names the detector hyper-parameters it takes in :attr:`Head.param_names`; the detector
builds it as ``HEADS[head](**{name: getattr(detector, name) for name in param_names})``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from fakescope.detectors.head_state import restore_state
from fakescope.errors import ModelError

Evidence = list[dict[str, Any]]

# Query rows scored at once by k-NN: bounds the (rows, n_train) similarity matrix in memory.
_KNN_CHUNK = 1024


class Head(ABC):
    #: The ``head`` parameter value that selects this head.
    name: ClassVar[str]
    #: Detector hyper-parameters passed to ``__init__``.
    param_names: ClassVar[tuple[str, ...]]
    #: Arrays and scalars a saved head must have.
    array_keys: ClassVar[tuple[str, ...]]
    scalar_keys: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        """Learn from unit-norm embeddings ``x`` (n, dim) and labels ``y`` (n,) in {0, 1}."""

    @abstractmethod
    def score(self, x: np.ndarray) -> tuple[np.ndarray, Evidence]:
        """Probability of *fake* (n,) and one evidence dict per row."""

    def arrays(self) -> dict[str, np.ndarray]:
        return {key: getattr(self, key) for key in self.array_keys}

    def scalars(self) -> dict[str, float]:
        return {key: float(getattr(self, key)) for key in self.scalar_keys}

    @classmethod
    def restore(
        cls,
        params: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray],
        scalars: Mapping[str, Any],
        dim: int,
    ) -> Self:
        head = cls(**params)
        restore_state(
            head, f"clip-probe {cls.name}", arrays, cls.array_keys, scalars, cls.scalar_keys
        )
        head.check(dim)
        return head

    @abstractmethod
    def check(self, dim: int) -> None:
        """Raise ModelError unless the restored arrays fit embeddings of length ``dim``."""


class LogisticHead(Head):
    """The UnivFD linear probe: class-balanced L2 logistic regression on the embedding.

    Embeddings are standardised per dimension before fitting so that ``C`` means the same for
    any encoder (unit-norm 512-d rows have entries near 0.04, which would make the L2 penalty
    dominate at C=1); the scaler is folded back into ``coef`` and ``intercept``, so the saved
    probe is a plain hyperplane in embedding space: ``logit = x @ coef + intercept``.
    """

    name = "logistic"
    param_names = ("C",)
    array_keys = ("coef",)
    scalar_keys = ("intercept",)

    coef: np.ndarray
    intercept: float

    def __init__(self, C: float = 1.0) -> None:
        self.C = float(C)

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        scaler = StandardScaler().fit(x)
        model = LogisticRegression(C=self.C, class_weight="balanced", max_iter=5000)
        model.fit(scaler.transform(x), y)
        weights = model.coef_.ravel() / scaler.scale_
        self.coef = weights.astype(np.float64)
        self.intercept = float(model.intercept_[0] - scaler.mean_ @ weights)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.coef + self.intercept

    def score(self, x: np.ndarray) -> tuple[np.ndarray, Evidence]:
        logits = self.logits(x)
        return expit(logits), [{"clip_logit": round(float(v), 4)} for v in logits]

    def check(self, dim: int) -> None:
        self.coef = np.asarray(self.coef, dtype=np.float64)
        if self.coef.shape != (dim,):
            raise ModelError(f"clip-probe logistic coef has shape {self.coef.shape}, not ({dim},)")


class KnnHead(Head):
    """k nearest training embeddings by cosine similarity, votes weighted by similarity.

    With ``s_1 >= ... >= s_k`` the similarities of the k nearest training embeddings and
    ``y_i`` their labels, each neighbour votes with weight
    ``w_i = b[y_i] * exp((s_i - s_1) / temperature)``, where ``b[c] = n / (2 n_c)`` balances
    the classes (a training set with more reals does not pull every score towards real) and the
    exponential lets closer neighbours count more (``temperature`` -> inf gives the plain
    fraction of fake neighbours). The probability is Laplace-smoothed,
    ``p = (sum of fake w_i + 1/2) / (sum of w_i + 1)``, so it never reaches 0 or 1 and its
    logit stays finite, and ties among equal vote counts are broken by distance.
    """

    name = "knn"
    param_names = ("k", "temperature")
    array_keys = ("embeddings", "labels")
    smoothing: ClassVar[float] = 0.5

    embeddings: np.ndarray  # (n, dim) float32, unit norm
    labels: np.ndarray  # (n,) int8 in {0, 1}

    def __init__(self, k: int = 10, temperature: float = 0.05) -> None:
        self.k = int(k)
        self.temperature = float(temperature)

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self.embeddings = np.ascontiguousarray(x, dtype=np.float32)
        self.labels = np.asarray(y, dtype=np.int8)

    def _balance(self) -> np.ndarray:
        counts = np.bincount(self.labels, minlength=2).astype(np.float64)
        return self.labels.size / (2.0 * counts)

    def score(self, x: np.ndarray) -> tuple[np.ndarray, Evidence]:
        x = np.asarray(x, dtype=np.float32)
        balance = self._balance()
        k = min(self.k, self.labels.size)
        is_fake = self.labels == 1
        probabilities = np.empty(len(x), dtype=np.float64)
        evidence: Evidence = []
        for start in range(0, len(x), _KNN_CHUNK):
            sims = x[start : start + _KNN_CHUNK] @ self.embeddings.T  # cosine: rows are unit
            nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            near_sims = np.take_along_axis(sims, nearest, axis=1).astype(np.float64)
            near_labels = self.labels[nearest]
            votes = balance[near_labels] * np.exp(
                (near_sims - near_sims.max(axis=1, keepdims=True)) / self.temperature
            )
            fake_votes = (votes * (near_labels == 1)).sum(axis=1)
            p = (fake_votes + self.smoothing) / (votes.sum(axis=1) + 2 * self.smoothing)
            probabilities[start : start + len(p)] = p
            best_real = np.where(is_fake, -np.inf, sims).max(axis=1)
            best_fake = np.where(is_fake, sims, -np.inf).max(axis=1)
            for row in range(len(p)):
                evidence.append(
                    {
                        "clip_logit": round(float(logit(p[row])), 4),
                        "clip_nearest_real_similarity": round(float(best_real[row]), 4),
                        "clip_nearest_fake_similarity": round(float(best_fake[row]), 4),
                        "clip_fake_neighbours": int(near_labels[row].sum()),
                        "clip_neighbours": k,
                    }
                )
        return probabilities, evidence

    def check(self, dim: int) -> None:
        self.embeddings = np.ascontiguousarray(self.embeddings, dtype=np.float32)
        if self.embeddings.ndim != 2 or self.embeddings.shape[1] != dim:
            raise ModelError(
                f"clip-probe knn embeddings have shape {self.embeddings.shape}, not (n, {dim})"
            )
        if self.labels.shape != (len(self.embeddings),) or not np.isin(self.labels, (0, 1)).all():
            raise ModelError("clip-probe knn labels must be one 0/1 value per stored embedding")
        self.labels = self.labels.astype(np.int8)
        if np.unique(self.labels).size < 2:
            raise ModelError("clip-probe knn needs stored embeddings of both classes")


HEADS: dict[str, type[Head]] = {head.name: head for head in (LogisticHead, KnnHead)}
